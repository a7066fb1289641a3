"""Independent cross-checks with SciPy (a test extra): the NumPy references
and nnc's kernels against scipy.signal.correlate (2-D convolution with
stride, dilation, groups, padding) and scipy.special.expit (the logistic
sigmoid), so an error shared by a reference and the kernels it checks
cannot hide."""
import numpy as np
import pytest
from scipy import signal, special

import nnc
from nnc.layers.conv import resolve_padding
from nnc.reference import conv as ref
from nnc.reference import convrnn as ref_convrnn
from nnc.reference import dense as ref_dense
from nnc.reference import rnn as ref_rnn
from helpers import UNIT, assert_within


def scipy_conv2d(x, W, b, stride, pads, dilation, groups):
    """NHWC input, HWIO weights: per image and output channel k, the "valid"
    scipy.signal.correlate of the zero-padded input's channels of k's group
    with k's kernel dilated (zeros between taps), subsampled by the stride."""
    KH, KW, Cg, K = W.shape
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = stride, dilation, pads
    Kg = K // groups
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    Wd = np.zeros((dh * (KH - 1) + 1, dw * (KW - 1) + 1, Cg, K))
    Wd[::dh, ::dw] = W
    y = np.stack([np.stack([signal.correlate(img[..., k // Kg * Cg:(k // Kg + 1) * Cg], Wd[..., k], mode="valid",
                                             method="direct")[:, :, 0][::sh, ::sw] for k in range(K)], -1)
                  for img in xp])
    return y + b


# (N, H, W, C, K, kernel, stride, padding, dilation, groups)
CONVS = [(2, 7, 9, 3, 4, (3, 3), (1, 1), "same", (1, 1), 1),
         (2, 11, 10, 4, 6, (3, 2), (2, 1), (1, 2), (1, 1), 2),
         (1, 12, 13, 6, 6, (3, 3), (2, 2), (2, 2), (2, 3), 3),
         (3, 9, 8, 8, 4, (2, 3), (1, 2), "valid", (2, 1), 4),
         (2, 10, 10, 5, 7, (5, 5), (2, 2), "same", (1, 1), 1)]


@pytest.mark.parametrize("N, H, W, C, K, k, stride, padding, dilation, groups", CONVS)
def test_conv_forward_vs_scipy_correlate(N, H, W, C, K, k, stride, padding, dilation, groups, dtype, rng):
    layer = nnc.Conv2D(C, K, k, stride=stride, padding=padding, dilation=dilation, groups=groups, dtype=dtype)
    layer.params["W"][...] = rng.standard_normal(layer.params["W"].shape)
    layer.params["b"][...] = rng.standard_normal(K)
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    Wt, b = layer.params["W"].astype(np.float64), layer.params["b"].astype(np.float64)
    pads = resolve_padding(layer.padding, (H, W), k, stride, dilation)
    want = scipy_conv2d(x, Wt, b, stride, pads, dilation, groups)
    # the reference: the same sums in another order
    got_ref = ref.conv2d_forward(x, Wt, b, stride=stride, padding=pads, dilation=dilation, groups=groups)
    mag = scipy_conv2d(np.abs(x), np.abs(Wt), np.abs(b), stride, pads, dilation, groups)
    red = k[0] * k[1] * C // groups + 1
    assert_within(got_ref, want, 4 * red * UNIT[np.float64] * mag, what="reference vs scipy")
    # the kernels: the gemm bound (tests/test_gemm.py) of a length-red reduction
    y = layer(x)
    assert y.shape == want.shape
    assert_within(y, want, 4 * (red + 4) * UNIT[dtype] * mag + 1e-30, what=f"Conv2D {np.dtype(dtype).name}")


Z = np.concatenate([np.linspace(-60, 60, 1201), [-745.0, -710.0, -100.0, -1e-8, 0.0, 1e-8, 36.0, 100.0, 710.0]])


def test_reference_sigmoids_vs_expit():
    """Every reference's logistic function is scipy's expit to a few ulp,
    tails included (exp(-z) overflowing to inf gives 0, not NaN)."""
    want = special.expit(Z)
    with np.errstate(over="ignore"):
        for name, got in [("dense.act", ref_dense.act(Z, "sigmoid")), ("rnn._sig", ref_rnn._sig(Z)),
                          ("convrnn._sig", ref_convrnn._sig(Z))]:
            np.testing.assert_allclose(got, want, rtol=4 * UNIT[np.float64], atol=0, err_msg=name)


def test_kernel_sigmoid_vs_expit(dtype, isa):
    """The kernels' sigmoid epilogue (Dense with identity weights: z passes
    exactly) against expit, within the smooth-activation bound of
    tests/test_gemm.py (8 u |y| + 4 u)."""
    z = Z[np.abs(Z) <= (80 if dtype == np.float32 else 700)].astype(dtype)
    layer = nnc.Dense(z.size, z.size, activation="sigmoid", dtype=dtype)
    layer.params["W"][...] = np.eye(z.size)
    layer.params["b"][...] = 0
    want = special.expit(z.astype(np.float64))[None]
    u = UNIT[dtype]
    assert_within(layer(z[None]), want, 8 * u * want + 4 * u, what=f"sigmoid {isa}")
