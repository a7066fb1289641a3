"""Conv2D kernel paths chosen by the channel counts: the half-width-vector
kernels (few outputs, e.g. K = 8 on AVX-512; K = 24 a full and a half-width
vector), conv_dot (very few outputs, long reduction), the swapped
weight-gradient kernel (x's channels in the lanes), wide 12-pixel tiles
(K <= 32), and vertical tiles of edge pixels.
Forward, dx and dW against nnc.reference.conv through the functional
channel-slice API (DenseBlock's use), every ISA path, both dtypes."""
import numpy as np
import pytest

import nnc
from nnc.layers.activations import act_id
from nnc.layers.conv import conv2d_backward, conv2d_forward, conv2d_forward_geometry
from nnc.reference import conv as ref

from helpers import assert_close

KS = [1, 3, 6, 8, 12, 16, 24, 32]


def _check(N, H, W, C, K, k, stride, pad, groups, dtype, rng, x_extra=0, y_extra=0):
    """Runs the conv on channel slices (x at offset 1 of a buffer with x_extra
    more channels, y/dz/dx likewise) and compares y, dx, dW, db."""
    Wt = rng.standard_normal((k, k, C // groups, K)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    xo = 1 if x_extra else 0
    yo = 2 if y_extra else 0
    xw = rng.standard_normal((N, H, W, C + x_extra)).astype(dtype)
    x = xw[..., xo:xo + C]
    kw = dict(stride=stride, padding=pad, groups=groups)
    ry = ref.conv2d_forward(x, Wt, b, dilation=(1, 1), **{**kw, "stride": (stride, stride),
                                                           "padding": _pads(H, W, k, stride, pad)})
    yw = np.full(ry.shape[:3] + (K + y_extra,), 7.0, dtype)
    _, geo = conv2d_forward(xw, Wt, b, out=yw, x_offset=xo, out_offset=yo, **kw)
    red = k * k * C // groups
    assert_close(yw[..., yo:yo + K], ry, dtype, scale=max(1, red / 50), what="y")
    assert (np.delete(yw, np.s_[yo:yo + K], axis=3) == 7).all()
    gy = rng.standard_normal(ry.shape).astype(dtype)
    dzw = np.zeros_like(yw)
    dzw[..., yo:yo + K] = gy
    rdx, rdW, rdb = ref.conv2d_backward(x, Wt, ry, gy, stride=(stride, stride), padding=_pads(H, W, k, stride, pad),
                                        dilation=(1, 1), groups=groups, activation=None)
    dxw = np.full(xw.shape, 5.0, dtype)
    dx, dW, db = conv2d_backward(geo, xw, Wt, dzw, x_offset=xo, dz_offset=yo, dx_out=dxw, dx_offset=xo)
    assert_close(dxw[..., xo:xo + C], rdx, dtype, scale=max(1, K * k * k / groups / 50), what="dx")
    assert (np.delete(dxw, np.s_[xo:xo + C], axis=3) == 5).all()
    P = ry.shape[0] * ry.shape[1] * ry.shape[2]
    assert_close(dW, rdW, dtype, scale=max(1, P / 20), what="dW")
    assert_close(db, rdb, dtype, scale=max(1, P / 20), what="db")
    return yw, dxw, dW, db


def _pads(H, W, k, s, pad):
    if pad == "same":
        return ref.same_padding(H, k, s, 1) + ref.same_padding(W, k, s, 1)
    return (pad, pad, pad, pad)


@pytest.mark.parametrize("K", KS)
@pytest.mark.parametrize("C, N, H, W", [(16, 7, 6, 9), (24, 1, 7, 17), (3, 7, 5, 14)], ids=["c16", "c24", "c3"])
def test_output_channel_counts(C, N, H, W, K, isa, dtype, rng):
    _check(N, H, W, C, K, 3, 1, 1, 1, dtype, rng, x_extra=3, y_extra=5)


@pytest.mark.parametrize("K", [8, 12, 24])
@pytest.mark.parametrize("k, stride, pad", [(3, 2, "same"), (5, 1, 2), (7, 2, 3)], ids=["3s2", "5p2", "7s2"])
def test_strides_and_kernels(k, stride, pad, K, isa, dtype, rng):
    _check(7, 13, 12, 16, K, k, stride, pad, 1, dtype, rng)


@pytest.mark.parametrize("C, K, groups", [(16, 16, 2), (24, 24, 3), (8, 16, 2), (32, 8, 4)])
def test_groups_few_outputs(C, K, groups, isa, dtype, rng):
    _check(2, 9, 11, C, K, 3, 1, 1, groups, dtype, rng, x_extra=2, y_extra=3)


@pytest.mark.parametrize("C, K, k, s", [(16, 8, 3, 1), (24, 8, 3, 1), (3, 32, 3, 1), (3, 12, 7, 2), (8, 16, 3, 2)],
                         ids=["16-8", "24-8", "3-32", "3-12-7x7s2", "8-16-s2"])
def test_new_paths_threads_and_batch_split_bitwise(C, K, k, s, isa, dtype, rng):
    """The determinism contract on the new paths: 1 vs 2 threads bitwise for
    y, dx, dW, db; y and dx of a batch slice equal the full batch's."""
    x = rng.standard_normal((7, 23, 22, C)).astype(dtype)
    Wt = rng.standard_normal((k, k, C, K)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)

    y0, _ = conv2d_forward(x, Wt, b, stride=s, padding=k // 2)
    dz = np.cos(np.arange(y0.size, dtype=dtype)).reshape(y0.shape)   # the rows of a slice are its rows

    def run(lo, hi):
        y, geo = conv2d_forward(x[lo:hi], Wt, b, stride=s, padding=k // 2)
        dx, dW, db = conv2d_backward(geo, x[lo:hi], Wt, dz[lo:hi])
        return y, dx, dW, db
    with nnc.threads(1):
        a = run(0, 7)
        part1 = run(2, 5)
    with nnc.threads(2):
        bb = run(0, 7)
        part = run(2, 5)
    for u, v in zip(a, bb):
        assert np.array_equal(u, v)
    for u, v in zip(part1, part):
        assert np.array_equal(u, v)
    assert np.array_equal(part[0], a[0][2:5]), "y of a batch slice"
    assert np.array_equal(part[1], a[1][2:5]), "dx of a batch slice"


# conv_dot's tiles (reduction channels in the lanes, up to NNC_CONV_RWD pixels
# x 4 outputs) and the lane kernels next to them: K = 1..9 outputs per group
# from long reductions, with odd image sizes, strides, dilations, padding,
# groups, an activation and batch 1.
DOT_CASES = [
    # N, H, W, C, k, stride, pad, dilation, groups, activation
    (3, 9, 11, 108, 3, 1, 1, 1, 1, None),
    (1, 13, 10, 41, 3, 2, 1, 2, 1, "relu"),
    (2, 7, 9, 140, 3, 1, 2, 1, 2, None),
    (5, 6, 7, 64, 1, 1, 1, 1, 1, "tanh"),
    (4, 5, 9, 37, 1, 1, 0, 1, 1, None),   # 1x1 without padding: the engine below a half-width vector
]


@pytest.mark.parametrize("K", range(1, 10))
@pytest.mark.parametrize("case", DOT_CASES, ids=["108-3x3", "41-s2d2", "g2-p2", "64-1x1p1", "37-1x1"])
def test_dot_tiles(case, K, isa, dtype, rng):
    """y against the reference; 1 vs 2 threads and a batch slice bitwise."""
    N, H, W, C, k, s, p, d, g, act = case
    Kt = K * g
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    Wt = rng.standard_normal((k, k, C // g, Kt)).astype(dtype)
    b = rng.standard_normal(Kt).astype(dtype)
    kw = dict(stride=(s, s), dilation=(d, d), groups=g, activation=act)
    ry = ref.conv2d_forward(x, Wt, b, padding=(p, p, p, p), **kw)
    with nnc.threads(1):
        y1, _ = conv2d_forward(x, Wt, b, padding=p, **kw)
        part1, _ = conv2d_forward(x[N - 1:], Wt, b, padding=p, **kw)
    with nnc.threads(2):
        y2, _ = conv2d_forward(x, Wt, b, padding=p, **kw)
    assert_close(y1, ry, dtype, scale=max(1, k * k * C / g / 50), what="y")
    assert np.array_equal(y1, y2), "1 vs 2 threads"
    assert np.array_equal(part1, y1[N - 1:]), "batch slice"


@pytest.mark.parametrize("H, W, s", [(7, 7, 1), (11, 9, 2)], ids=["7x7", "11x9-s2"])
def test_whole_image_jobs_bitwise(H, W, s, isa, dtype, rng):
    """Small images run as whole-image jobs when there are enough of them
    (13 images), as row blocks otherwise (a slice of 3): y and dx the same
    bitwise, at 1 and 2 threads, and y against the reference."""
    x = rng.standard_normal((13, H, W, 19)).astype(dtype)
    Wt = rng.standard_normal((3, 3, 19, 40)).astype(dtype)
    b = rng.standard_normal(40).astype(dtype)
    y0, _ = conv2d_forward(x, Wt, b, stride=s, padding=1)
    dz = np.sin(np.arange(y0.size, dtype=dtype)).reshape(y0.shape)

    def run(lo, hi):
        y, geo = conv2d_forward(x[lo:hi], Wt, b, stride=s, padding=1)
        return y, conv2d_backward(geo, x[lo:hi], Wt, dz[lo:hi])[0]
    with nnc.threads(1):
        a, part1 = run(0, 13), run(4, 7)
    with nnc.threads(2):
        bb, part2 = run(0, 13), run(4, 7)
    ry = ref.conv2d_forward(x, Wt, b, stride=(s, s), padding=(1, 1, 1, 1), dilation=(1, 1))
    assert_close(a[0], ry, dtype, scale=max(1, 9 * 19 / 50), what="y")
    for u, v, w, z in zip(a, bb, part1, part2):
        assert np.array_equal(u, v)
        assert np.array_equal(u[4:7], w)
        assert np.array_equal(w, z)


@pytest.mark.parametrize("C, K, k, s, groups", [(16, 16, 3, 1, 1), (3, 16, 3, 1, 1), (16, 8, 3, 1, 1),
                                                (24, 3, 3, 1, 1), (16, 24, 3, 2, 1), (8, 32, 1, 1, 1),
                                                (16, 32, 1, 2, 1), (12, 12, 3, 1, 12)],
                         ids=["16-16", "3-16", "narrow", "dot", "s2", "1x1", "1x1s2", "depthwise"])
@pytest.mark.parametrize("act", [None, "relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_residual_add_then_relu_in_the_store(C, K, k, s, groups, act, bias, isa, dtype, rng):
    """res_relu: y = max(0, act(conv + b) + res) in the store, the same bits as
    adding res in the store and applying the ReLU afterwards, and the
    reference's values; every tile path (full and partial vectors)."""
    x = rng.standard_normal((3, 9, 11, C)).astype(dtype)
    Wt = rng.standard_normal((k, k, C // groups, K)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if bias else None
    kw = dict(stride=(s, s), padding=(k // 2, k // 2), groups=groups, activation=act)
    y, geo = conv2d_forward(x, Wt, b, **kw)
    res = rng.standard_normal(y.shape).astype(dtype)
    fused = conv2d_forward_geometry(x, Wt, b, geo, act_id(act, "test"), res=res, res_relu=True)
    added = conv2d_forward_geometry(x, Wt, b, geo, act_id(act, "test"), res=res)
    np.testing.assert_array_equal(fused, np.maximum(added, 0))
    ry = ref.conv2d_forward(x, Wt, np.zeros(K) if b is None else b, stride=(s, s), padding=(k // 2,) * 4,
                            dilation=(1, 1), groups=groups)
    ry = np.maximum(ry, 0) if act == "relu" else ry
    assert_close(fused, np.maximum(ry + res, 0), dtype, scale=max(1, k * k * C / groups / 50), what="y")
    assert (fused < 0).sum() == 0 and (fused == 0).any()


@pytest.mark.parametrize("K", [1, 3, 4, 6, 8, 12, 16])
@pytest.mark.parametrize("C, H, W, stride, pad, dil", [(3, 5, 3, (1, 1), 0, (1, 1)), (16, 6, 14, (1, 1), 0, (1, 1)),
                                                       (3, 7, 31, (1, 1), 1, (1, 1)), (5, 9, 27, (2, 1), 1, (2, 1))],
                         ids=["1px", "12px", "wide", "sh2-dh2"])
def test_sliding_kernel_row(C, H, W, stride, pad, dil, K, isa, dtype, rng):
    """One vector of outputs (K from 1 to 16 covers it for every ISA and
    dtype), 3 kernel columns, stride 1 along the row: the sliding kernels for
    the interior (tiles of 1 to 12 pixels), the other tiles for the edges;
    against the reference, and 1 vs 2 threads and a batch slice bitwise."""
    x = rng.standard_normal((12, H, W, C)).astype(dtype)
    Wt = rng.standard_normal((3, 3, C, K)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    kw = dict(stride=stride, padding=(pad, pad), dilation=dil, activation="relu")
    with nnc.threads(1):
        y1, _ = conv2d_forward(x, Wt, b, **kw)
    with nnc.threads(2):
        y2, _ = conv2d_forward(x, Wt, b, **kw)
        part, _ = conv2d_forward(x[1:4], Wt, b, **kw)
    ry = ref.conv2d_forward(x, Wt, b, stride=stride, padding=(pad,) * 4, dilation=dil, activation="relu")
    assert_close(y1, ry, dtype, scale=max(1, 9 * C / 50), what="y")
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(part, y1[1:4])
