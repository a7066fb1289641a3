"""Conv2D: forward/backward against nnc.reference.conv over the option grid,
every ISA path, thread-count and batch-split invariance (bitwise), float64
finite differences, hypothesis properties, the functional channel-slice API
and the bad-input contract."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nnc
from nnc import _core
from nnc.layers.conv import conv2d_backward, conv2d_forward
from nnc.reference import conv as ref

from helpers import assert_close, check_layer_grads

# (name, N, H, W, Cin, Cout, kernel, stride, padding, dilation, groups, activation)
GRID = [
    ("3x3-p1", 2, 7, 8, 4, 6, 3, 1, 1, 1, 1, "relu"),
    ("3x3-same-s2-odd", 1, 9, 7, 3, 5, 3, 2, "same", 1, 1, None),
    ("3x3-same-s2-even", 7, 8, 6, 5, 4, 3, 2, "same", 1, 1, "tanh"),
    ("3x3-valid-d2", 2, 9, 10, 4, 8, 3, 1, "valid", 2, 1, None),
    ("3x3-p2-d3-s3", 2, 13, 12, 3, 4, 3, 3, 2, 3, 1, "sigmoid"),
    ("3x3-p0-s3", 7, 10, 11, 6, 3, 3, 3, 0, 1, 1, None),
    ("3x3-g2", 2, 6, 7, 6, 8, 3, 1, 1, 1, 2, "relu"),
    ("3x3-g2-s2-same", 1, 9, 8, 4, 6, 3, 2, "same", 1, 2, None),
    ("3x3-dw", 2, 8, 7, 19, 19, 3, 1, 1, 1, 19, "relu"),
    ("3x3-dw-s2-d2", 7, 9, 10, 8, 8, 3, 2, 2, 2, 8, None),
    ("3x3-dw-mult2", 2, 6, 6, 3, 6, 3, 1, "same", 1, 3, None),
    ("5x3-p2-s2", 2, 11, 9, 5, 7, (5, 3), 2, 2, 1, 1, "tanh"),
    ("5x3-same-d(1,2)", 1, 8, 9, 3, 4, (5, 3), (1, 2), "same", (1, 2), 1, None),
    ("5x3-dw-same", 2, 7, 8, 5, 5, (5, 3), 1, "same", 1, 5, None),
    ("7x7-s2-p3-cin3", 2, 16, 15, 3, 20, 7, 2, 3, 1, 1, "relu"),
    ("7x7-valid", 1, 9, 8, 2, 3, 7, 1, "valid", 1, 1, None),
    ("7x7-same-s3", 2, 10, 11, 4, 4, 7, 3, "same", 1, 2, None),
    ("1x7-same", 2, 5, 12, 4, 6, (1, 7), 1, "same", 1, 1, None),
    ("1x7-p(0,3)-g2", 7, 4, 9, 4, 4, (1, 7), 1, (0, 3), 1, 2, None),
    ("1x1", 7, 5, 6, 8, 12, 1, 1, 0, 1, 1, "relu"),
    ("1x1-wide", 1, 3, 4, 70, 40, 1, 1, "valid", 1, 1, None),
    ("1x1-s2", 2, 7, 6, 5, 9, 1, 2, 0, 1, 1, None),
    ("1x1-p1", 1, 4, 5, 3, 4, 1, 1, 1, 1, 1, None),
    ("1x1-g2", 2, 5, 5, 6, 4, 1, 1, 0, 1, 2, None),
    ("2x2-same-even", 2, 6, 8, 3, 5, 2, 1, "same", 1, 1, None),
    ("4x4-s2-same-d3", 1, 12, 13, 2, 3, 4, 2, "same", 3, 1, None),
    ("3x3-c70-k40", 1, 6, 7, 70, 40, 3, 1, 1, 1, 1, None),
    ("3x3-k70", 2, 5, 5, 9, 70, 3, 1, 1, 1, 1, "relu"),
    ("3x3-bigpad", 1, 3, 3, 2, 3, 3, 1, 2, 1, 1, None),
    ("3x3-softmax", 2, 5, 6, 3, 7, 3, 1, 1, 1, 1, "softmax"),
    # few outputs per group: the reduction-in-lanes kernel (forward; dx of few inputs)
    ("3x3-c20-k3", 2, 7, 8, 20, 3, 3, 1, 1, 1, 1, "sigmoid"),
    ("3x3-g2-c36-k4-s2", 1, 6, 7, 36, 4, 3, 2, "same", 1, 2, None),
    ("5x5-c2-k33-d2", 2, 9, 10, 2, 33, 5, 1, "same", 2, 1, None),
]
ISA_SUBSET = ["3x3-p1", "3x3-same-s2-even", "3x3-dw-s2-d2", "5x3-p2-s2", "7x7-s2-p3-cin3", "1x1",
              "3x3-c70-k40", "1x7-p(0,3)-g2", "3x3-c20-k3", "3x3-g2-c36-k4-s2", "5x5-c2-k33-d2"]
BY_NAME = {c[0]: c for c in GRID}


def make(case, dtype, rng, use_bias=True):
    _, N, H, W, C, K, k, s, p, d, g, act = case
    layer = nnc.Conv2D(C, K, k, stride=s, padding=p, dilation=d, groups=g, activation=act, use_bias=use_bias,
                       dtype=dtype)
    if use_bias:
        layer.params["b"][...] = rng.standard_normal(K)
    x = rng.standard_normal((N, H, W, C))
    return layer, x


def reference(layer, x, gy):
    geo = layer._cache[2]
    kw = dict(stride=layer.stride, padding=geo[11:15], dilation=layer.dilation, groups=layer.groups,
              activation=layer.activation)
    b = layer.params.get("b")
    y = ref.conv2d_forward(x, layer.params["W"], b, **kw)
    dx, dW, db = ref.conv2d_backward(x, layer.params["W"], y, gy, **kw)
    return y, dx, dW, db


def check_against_reference(layer, x, dtype, rng):
    y = layer.forward(x, training=True)
    gy = rng.standard_normal(y.shape)
    dx = layer.backward(gy)
    ry, rdx, rdW, rdb = reference(layer, x.astype(dtype), gy.astype(dtype))
    K = layer.kernel_size[0] * layer.kernel_size[1] * layer.in_channels // layer.groups
    assert_close(y, ry, dtype, scale=max(1, K / 50), what="y")
    assert_close(dx, rdx, dtype, scale=max(1, K / 50), what="dx")
    P = y.shape[0] * y.shape[1] * y.shape[2]
    assert_close(layer.grads["W"], rdW, dtype, scale=max(1, P / 20), what="dW")
    if layer.use_bias:
        assert_close(layer.grads["b"], rdb, dtype, scale=max(1, P / 20), what="db")
    return y, dx


@pytest.mark.parametrize("case", GRID, ids=[c[0] for c in GRID])
def test_grid_against_reference(case, dtype, rng):
    layer, x = make(case, dtype, rng)
    y, _ = check_against_reference(layer, x, dtype, rng)
    assert y.dtype == dtype and y.shape[0] == case[1]


@pytest.mark.parametrize("name", ISA_SUBSET)
def test_every_isa_path(name, isa, dtype, rng):
    layer, x = make(BY_NAME[name], dtype, rng)
    check_against_reference(layer, x, dtype, rng)


def test_no_bias(dtype, rng):
    layer, x = make(BY_NAME["3x3-g2"], dtype, rng, use_bias=False)
    assert "b" not in layer.params
    check_against_reference(layer, x, dtype, rng)


THREAD_CASES = [
    ("3x3", 7, 18, 17, 16, 24, 3, 1, 1, 1, 1, "relu"),
    ("3x3-s2-same", 7, 15, 14, 8, 32, 3, 2, "same", 1, 1, None),
    ("dw", 7, 20, 21, 64, 64, 3, 1, 1, 1, 64, None),
    ("dw-c16", 5, 19, 23, 16, 16, 3, 1, 1, 1, 16, "relu"),
    ("dw-c6-s2", 6, 21, 18, 6, 6, 3, 2, 1, 1, 6, None),
    ("1x1", 7, 16, 16, 32, 48, 1, 1, 0, 1, 1, None),
    ("7x7-cin3", 3, 30, 29, 3, 32, 7, 2, 3, 1, 1, None),
    ("g2-5x3", 7, 12, 11, 16, 16, (5, 3), 1, "same", 1, 2, None),
    ("dot", 7, 16, 15, 40, 3, 3, 1, 1, 1, 1, "relu"),
    ("few-jobs", 5, 7, 9, 8, 16, 3, 1, 1, 1, 1, None),   # row blocks added so 2 threads split evenly
]


def _run_all(layer, x, gy):
    y = layer.forward(x, training=True)
    dx = layer.backward(gy)
    return [y, dx] + [layer.grads[k].copy() for k in sorted(layer.grads)]


@pytest.mark.parametrize("case", THREAD_CASES, ids=[c[0] for c in THREAD_CASES])
def test_threads_and_batch_split_bitwise(case, dtype, isa, rng):
    layer, x = make(case, dtype, rng)
    gy = rng.standard_normal(layer.forward(x).shape)
    with nnc.threads(1):
        a = _run_all(layer, x, gy)
    with nnc.threads(2):
        b = _run_all(layer, x, gy)
        # y and dx of a sample do not depend on the rest of the batch
        parts = [_run_all(layer, x[i:j], gy[i:j])[:2] for i, j in ((0, 3), (3, x.shape[0]))]
    for u, v in zip(a, b):
        assert np.array_equal(u, v, equal_nan=True)
    for k in (0, 1):
        assert np.array_equal(np.concatenate([p[k] for p in parts]), a[k])


GRAD_CASES = ["3x3-same-s2-even", "3x3-dw-s2-d2", "5x3-p2-s2", "1x1", "3x3-g2", "1x7-same",
              "4x4-s2-same-d3", "3x3-softmax", "3x3-c20-k3", "5x5-c2-k33-d2"]


@pytest.mark.parametrize("name", GRAD_CASES)
def test_finite_difference_gradients(name, rng):
    case = BY_NAME[name]
    case = (case[0], min(case[1], 2)) + case[2:]
    layer, x = make(case, np.float64, rng)
    check_layer_grads(layer, x, rng)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.data())
def test_hypothesis_random_configs(data):
    d = data.draw
    g = d(st.sampled_from([1, 1, 2, 3]))
    C = g * d(st.integers(1, 4))
    K = g * d(st.integers(1, 5))
    kh, kw = d(st.integers(1, 5)), d(st.integers(1, 5))
    sh, sw = d(st.integers(1, 3)), d(st.integers(1, 3))
    dh, dw = d(st.integers(1, 3)), d(st.integers(1, 3))
    pad = d(st.sampled_from(["same", "valid", 0, 1, 2, (1, 0), (0, 2)]))
    H, W = d(st.integers(1, 11)), d(st.integers(1, 11))
    N = d(st.integers(1, 3))
    dtype = d(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(d(st.integers(0, 2**16)))
    layer = nnc.Conv2D(C, K, (kh, kw), stride=(sh, sw), padding=pad, dilation=(dh, dw), groups=g, dtype=dtype)
    x = rng.standard_normal((N, H, W, C))
    ph = pw = 0
    if isinstance(pad, tuple):
        ph, pw = pad
    elif isinstance(pad, int):
        ph = pw = pad
    fits = pad == "same" or (dh * (kh - 1) + 1 <= H + 2 * ph and dw * (kw - 1) + 1 <= W + 2 * pw)
    if not fits:
        with pytest.raises(ValueError, match="Conv2D"):
            layer.forward(x)
        return
    y, _ = check_against_reference(layer, x, dtype, rng)
    if pad == "same":
        assert y.shape[1:3] == (-(-H // sh), -(-W // sw))


def test_same_padding_split_and_shapes():
    layer = nnc.Conv2D(1, 1, 4, stride=3, padding="same", use_bias=False, dtype=np.float64)
    x = np.zeros((1, 10, 11, 1))
    layer.forward(x, training=True)
    geo = layer._cache[2]
    # out = ceil(10/3) = 4: total = 3*3 + 4 - 10 = 3 -> (1, 2); W: ceil(11/3)=4, total 2 -> (1, 1)
    assert geo[11:15] == (1, 2, 1, 1) and geo[16:18] == (4, 4)


def test_known_values_exact():
    # small integers: every path must be exact
    rng = np.random.default_rng(5)
    for case in GRID[:12]:
        layer, _ = make(case, np.float64, rng, use_bias=False)
        layer.activation, layer._act = None, 0
        layer.params["W"][...] = rng.integers(-3, 4, layer.params["W"].shape)
        x = rng.integers(-3, 4, (case[1], case[2], case[3], case[4])).astype(np.float64)
        y = layer.forward(x, training=True)
        ry, *_ = reference(layer, x, np.zeros_like(y))
        assert np.array_equal(y, ry), case[0]


def test_empty_batch(dtype):
    layer = nnc.Conv2D(3, 5, 3, padding=1, dtype=dtype)
    layer.grads["W"][...] = 7
    y = layer.forward(np.zeros((0, 6, 5, 3)), training=True)
    assert y.shape == (0, 6, 5, 5)
    dx = layer.backward(np.zeros((0, 6, 5, 5)))
    assert dx.shape == (0, 6, 5, 3)
    assert not layer.grads["W"].any() and not layer.grads["b"].any()


def test_params_edited_in_place_and_nan(rng):
    layer = nnc.Conv2D(2, 3, 3, padding=1, activation="relu", dtype=np.float64)
    x = rng.standard_normal((1, 5, 5, 2))
    y0 = layer.forward(x)
    layer.params["W"][...] *= 2
    y1 = layer.forward(x)
    assert np.allclose(y1, 2 * y0) and not np.array_equal(y0, y1)
    x[0, 2, 2, 0] = np.nan
    y = layer.forward(x)
    assert np.isnan(y[0, 1:4, 1:4]).all() and not np.isnan(y[0, 0, 0]).any()


def test_non_contiguous_and_readonly_input(rng):
    layer = nnc.Conv2D(3, 4, 3, stride=2, padding="same", dtype=np.float64)
    x = rng.standard_normal((2, 3, 9, 8)).transpose(0, 2, 3, 1)
    x.flags.writeable = False
    y = layer.forward(x)
    assert np.array_equal(y, layer.forward(np.ascontiguousarray(x)))
    assert np.array_equal(layer.forward(np.asfortranarray(x)), y)
    assert np.array_equal(layer.forward(x.astype(">f8")), y)


def test_config_round_trip():
    layer = nnc.Conv2D(4, 6, (5, 3), stride=2, padding="same", dilation=(1, 2), groups=2, activation="relu",
                       dtype=np.float64)
    cfg = json.loads(json.dumps(layer.get_config()))
    other = nnc.Conv2D.from_config(cfg)
    assert other.get_config() == layer.get_config()
    assert other.params["W"].shape == (5, 3, 2, 6) and other.params["W"].dtype == np.float64


def test_functional_channel_slices(dtype, rng):
    """DenseBlock use: read the first C channels of a wider buffer, write a
    channel slice of another, backward through the same slices."""
    C, K, Ctot, Kofs, Ktot = 5, 4, 9, 3, 10
    W = rng.standard_normal((3, 3, C, K)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    xw = rng.standard_normal((2, 6, 7, Ctot)).astype(dtype)
    x = np.ascontiguousarray(xw[..., :C])
    y, geo = conv2d_forward(x, W, b, padding="same", activation="relu")
    out = np.full((2, 6, 7, Ktot), 9.0, dtype)
    out2, geo2 = conv2d_forward(xw, W, b, padding="same", activation="relu", out=out, out_offset=Kofs)
    assert out2 is out and geo2[:3] == geo[:3]
    assert np.array_equal(out[..., Kofs:Kofs + K], y)
    assert (out[..., :Kofs] == 9).all() and (out[..., Kofs + K:] == 9).all()
    dz = rng.standard_normal(y.shape).astype(dtype)
    dzw = np.zeros((2, 6, 7, Ktot), dtype)
    dzw[..., Kofs:Kofs + K] = dz
    dx, dW, db = conv2d_backward(geo, x, W, dz)
    dxw = np.full((2, 6, 7, Ctot + 2), 5.0, dtype)
    dx2, dW2, db2 = conv2d_backward(geo2, xw, W, dzw, dz_offset=Kofs, dx_out=dxw, dx_offset=2)
    assert dx2 is dxw and np.array_equal(dxw[..., 2:2 + C], dx)
    assert (dxw[..., :2] == 5).all() and (dxw[..., 2 + C:] == 5).all()
    assert np.array_equal(dW, dW2) and np.array_equal(db, db2)


@pytest.mark.parametrize("C, K, k, s, g", [(5, 4, 3, 1, 1), (3, 20, 3, 2, 1), (6, 6, 3, 1, 6), (4, 7, 1, 1, 1),
                                           (4, 6, 5, 1, 2)], ids=["general", "dot", "depthwise", "1x1", "groups"])
def test_functional_dx_accumulate(C, K, k, s, g, dtype, isa, rng):
    """dx_accumulate adds the input gradient into a channel slice (DenseBlock)."""
    W = rng.standard_normal((k, k, C // g, K)).astype(dtype)
    x = rng.standard_normal((2, 7, 6, C)).astype(dtype)
    y, geo = conv2d_forward(x, W, padding="same", stride=s, groups=g)
    dz = rng.standard_normal(y.shape).astype(dtype)
    dx, _, _ = conv2d_backward(geo, x, W, dz)
    base = rng.standard_normal((2, 7, 6, C + 3)).astype(dtype)
    acc = base.copy()
    conv2d_backward(geo, x, W, dz, dx_out=acc, dx_offset=1, dx_accumulate=True)
    assert_close(acc[..., 1:1 + C], base[..., 1:1 + C] + dx, dtype)
    assert np.array_equal(acc[..., :1], base[..., :1]) and np.array_equal(acc[..., 1 + C:], base[..., 1 + C:])


def test_binding_rejects_mismatched_buffers():
    W = np.zeros((3, 3, 2, 4))
    x = np.zeros((1, 5, 5, 2))
    _, geo = conv2d_forward(x, W, padding=1)
    with pytest.raises(ValueError):
        _core.conv_fwd(geo, x, 1, W, None, 0, np.zeros((1, 5, 5, 4)), 0)   # channel slice past the end
    with pytest.raises(ValueError):
        _core.conv_fwd(geo, x, 0, W, None, 0, np.zeros((1, 4, 5, 4)), 0)   # wrong output size
    y = np.zeros((1, 5, 5, 4))
    bad = [lambda: _core.conv_fwd(geo, x, 0, W, np.zeros(3), 0, y, 0),                  # bias size
           lambda: _core.conv_fwd(geo, x, 0, W, None, 0, y, 0, np.zeros((1, 5, 5, 3))),  # residual shape
           lambda: _core.conv_fwd(geo, x.astype(np.float32), 0, W, None, 0, y, 0),     # dtypes differ
           lambda: _core.conv_fwd(geo, np.zeros((1, 5, 5, 4))[..., ::2], 0, W, None, 0, y, 0),  # strided
           lambda: _core.conv_fwd(geo, x, 0, W[:, :, :, :2], None, 0, y, 0),           # weight shape
           lambda: _core.conv_bwd_data(geo, y, 0, W, np.zeros((1, 5, 5, 1)), 0),       # dx channels
           lambda: _core.conv_bwd_filter(geo, x, 0, y, 0, np.zeros((3, 3, 2, 4)), np.zeros(5)),  # db size
           lambda: _core.conv_bwd_filter(geo, x, 0, y, 0, np.zeros((3, 3, 2, 3)), None)]  # dW shape
    for i, call in enumerate(bad):
        with pytest.raises((TypeError, ValueError)):
            call()
            pytest.fail(f"bad call {i}: no exception")


# -- bad input ---------------------------------------------------------------
@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(kernel_size=0), ValueError, "kernel_size"),
    (dict(kernel_size=(3, -1)), ValueError, "kernel_size"),
    (dict(kernel_size=3, stride=0), ValueError, "stride"),
    (dict(kernel_size=3, stride=-2), ValueError, "stride"),
    (dict(kernel_size=3, dilation=0), ValueError, "dilation"),
    (dict(kernel_size=3, groups=0), ValueError, "groups"),
    (dict(kernel_size=3, groups=4), ValueError, "groups"),
    (dict(kernel_size=3, padding=-1), ValueError, "padding"),
    (dict(kernel_size=3, padding="full"), ValueError, "padding"),
    (dict(kernel_size=(1, 2, 3)), ValueError, "kernel_size"),
    (dict(kernel_size=2.5), TypeError, "kernel_size"),
    (dict(kernel_size=True), TypeError, "kernel_size"),
    (dict(kernel_size=3, activation="swish"), ValueError, "activation"),
])
def test_bad_constructor_args(kwargs, exc, match):
    with pytest.raises(exc, match=match) as e:
        nnc.Conv2D(6, 9, **kwargs)
    assert "Conv2D" in str(e.value)


def test_bad_inputs():
    layer = nnc.Conv2D(3, 4, 3, dilation=2)
    with pytest.raises(ValueError, match=r"Conv2D: expected input \(N, H, W, 3\), got \(32, 32, 3\)"):
        layer.forward(np.zeros((32, 32, 3)))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\), got \(2, 8, 8, 4\)"):
        layer.forward(np.zeros((2, 8, 8, 4)))
    with pytest.raises(ValueError, match=r"Conv2D: the dilated kernel \(5, 5\).*got \(1, 4, 9, 3\)"):
        layer.forward(np.zeros((1, 4, 9, 3)))   # input smaller than the dilated kernel
    with pytest.raises(TypeError, match="Conv2D"):
        layer.forward(np.zeros((1, 8, 8, 3), dtype=np.int32))
    with pytest.raises(RuntimeError, match="Conv2D"):
        nnc.Conv2D(3, 4, 3).backward(np.zeros((1, 6, 6, 4)))
    layer.forward(np.zeros((1, 8, 8, 3)), training=True)
    with pytest.raises(ValueError, match=r"Conv2D.backward: expected grad_y \(1, 4, 4, 4\), got \(1, 4, 4, 5\)"):
        layer.backward(np.zeros((1, 4, 4, 5)))
    layer.params["W"] = np.zeros((3, 3, 3, 5))
    with pytest.raises(ValueError, match=r"params\['W'\]"):
        layer.forward(np.zeros((1, 8, 8, 3)))
