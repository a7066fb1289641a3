"""Residual: forward/backward vs the reference, finite differences, contract."""
import json

import numpy as np
import pytest

import nnc
from nnc.reference import dense as dref
from nnc.reference import train as ref
from helpers import assert_close, check_layer_grads


def _dense(i, o, act, dtype, rng):
    layer = nnc.Dense(i, o, activation=act, dtype=dtype)
    layer.params["W"][...] = rng.standard_normal((o, i)) / np.sqrt(i)
    layer.params["b"][...] = rng.standard_normal(o)
    return layer


@pytest.mark.parametrize("with_shortcut", [False, True])
@pytest.mark.parametrize("shape", [(1, 6), (9, 6), (2, 3, 6)])
def test_forward_backward_vs_reference(with_shortcut, shape, dtype, isa, rng):
    out = 6 if not with_shortcut else 5
    block = _dense(6, out, "tanh", dtype, rng)
    shortcut = _dense(6, out, None, dtype, rng) if with_shortcut else None
    res = nnc.Residual(block, shortcut)
    x = rng.standard_normal(shape)
    xr = x.astype(dtype).astype(np.float64)
    W, b = (block.params[k].astype(np.float64) for k in ("W", "b"))

    def f_block(v):
        return dref.dense_forward(v, W, b, "tanh")

    f_short = None
    if with_shortcut:
        Ws, bs = (shortcut.params[k].astype(np.float64) for k in ("W", "b"))

        def f_short(v):
            return dref.dense_forward(v, Ws, bs, None)

    y = res.forward(x, training=True)
    assert y.dtype == dtype
    assert_close(y, ref.residual_forward(xr, f_block, f_short), dtype, scale=3, what="y")
    dy = rng.standard_normal(y.shape)
    dyr = dy.astype(dtype).astype(np.float64)
    dx = res.backward(dy)
    dxb, dWb, dbb = dref.dense_backward(xr, W, f_block(xr), dyr, "tanh")
    if with_shortcut:
        dxs, dWs, dbs = dref.dense_backward(xr, Ws, f_short(xr), dyr, None)
        assert_close(res.grads["shortcut.W"], dWs, dtype, scale=3, what="dWs")
        assert_close(res.grads["shortcut.b"], dbs, dtype, scale=3, what="dbs")
    else:
        dxs = dyr
    assert_close(dx, dxb + dxs, dtype, scale=3, what="dx")
    assert_close(res.grads["block.W"], dWb, dtype, scale=3, what="dWb")
    assert_close(res.grads["block.b"], dbb, dtype, scale=3, what="dbb")


@pytest.mark.parametrize("with_shortcut", [False, True])
def test_finite_differences(with_shortcut, rng):
    block = nnc.Sequential([_dense(4, 8, "tanh", np.float64, rng), _dense(8, 3, "sigmoid", np.float64, rng)])
    shortcut = _dense(4, 3, None, np.float64, rng) if with_shortcut else None
    if not with_shortcut:
        block.add(_dense(3, 4, None, np.float64, rng))
    res = nnc.Residual(block, shortcut)
    check_layer_grads(res, rng.standard_normal((5, 4)), rng)


def test_params_are_the_sublayer_arrays(rng):
    block, sc = nnc.Dense(3, 2), nnc.Dense(3, 2, use_bias=False)
    res = nnc.Residual(block, sc)
    assert list(res.params) == ["block.W", "block.b", "shortcut.W"] == list(res.grads)
    assert res.params["block.W"] is block.params["W"] and res.grads["shortcut.W"] is sc.grads["W"]
    res.params["block.W"][...] = 0
    assert not block.params["W"].any()
    nested = nnc.Residual(nnc.Sequential([nnc.Dense(3, 3), nnc.Residual(nnc.Dense(3, 3))]))
    assert list(nested.params) == ["block.0.W", "block.0.b", "block.1.block.W", "block.1.block.b"]


def test_identity_block_doubles_and_add_is_bitwise(rng):
    block = nnc.Dense(5, 5, use_bias=False, dtype=np.float64)
    block.params["W"][...] = np.eye(5)
    x = rng.standard_normal((4, 5))
    np.testing.assert_array_equal(nnc.Residual(block)(x), 2 * x)
    big = nnc.Dense(3, 3, dtype=np.float32)
    res = nnc.Residual(big)
    xb = rng.standard_normal((7000, 3)).astype(np.float32)
    with nnc.threads(1):
        y1 = res(xb)
    with nnc.threads(2):
        y2 = res(xb)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(y1, big(xb) + xb)


def test_config_round_trip_through_json(rng):
    f64 = np.float64
    res = nnc.Residual(nnc.Sequential([nnc.Dense(4, 4, "relu", dtype=f64), nnc.Dense(4, 4, dtype=f64)]),
                       nnc.Dense(4, 4, dtype=f64), dtype=f64)
    cfg = json.loads(json.dumps(res.get_config()))
    assert cfg["dtype"] == "float64" and cfg["block"]["class_name"] == "Sequential"
    clone = nnc.Residual.from_config(cfg)
    assert clone.get_config() == res.get_config()
    for k, v in res.params.items():
        clone.params[k][...] = v
    x = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(clone(x), res(x))


def test_errors(rng):
    with pytest.raises(ValueError, match=r"Residual.*\(2, 3\).*\(2, 4\)"):
        nnc.Residual(nnc.Dense(3, 4))(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Residual.*shortcut.*\(2, 5\).*\(2, 4\)"):
        nnc.Residual(nnc.Dense(3, 4), nnc.Dense(3, 5))(np.zeros((2, 3)))
    with pytest.raises(RuntimeError):
        res = nnc.Residual(nnc.Dense(3, 3))
        res(np.zeros((2, 3)))
        res.backward(np.zeros((2, 3)))
    with pytest.raises(TypeError):
        nnc.Residual("dense")
    with pytest.raises(TypeError):
        nnc.Residual(nnc.Dense(3, 3), nnc.Dense(3, 3, dtype=np.float64))
    res = nnc.Residual(nnc.Dense(3, 3))
    res.forward(np.zeros((2, 3)), training=True)
    with pytest.raises(ValueError, match=r"Residual.backward.*\(2, 3\).*\(3, 3\)"):
        res.backward(np.zeros((3, 3)))
    with pytest.raises(TypeError):
        res(np.zeros((2, 3), np.int32))


def test_empty_batch_and_nan(rng):
    res = nnc.Residual(nnc.Dense(3, 3))
    y = res.forward(np.zeros((0, 3)), training=True)
    assert y.shape == (0, 3)
    assert res.backward(np.zeros((0, 3))).shape == (0, 3)
    assert not res.grads["block.W"].any()
    x = np.array([[np.nan, 0, 1], [0, 1, 2]], np.float32)
    out = res(x)
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()


@pytest.mark.parametrize("with_shortcut", [False, True])
def test_conv_block_vs_reference(with_shortcut, dtype, rng):
    from nnc.reference import conv as cref
    cout, stride = (6, 2) if with_shortcut else (4, 1)
    block = nnc.Conv2D(4, cout, 3, stride=stride, padding="same", activation="relu", dtype=dtype)
    block.params["W"][...] = rng.standard_normal(block.params["W"].shape) / 6
    block.params["b"][...] = rng.standard_normal(cout) / 4
    shortcut = nnc.Conv2D(4, cout, 1, stride=stride, dtype=dtype) if with_shortcut else None
    res = nnc.Residual(block, shortcut)
    x = rng.standard_normal((2, 7, 7, 4))
    xr = x.astype(dtype).astype(np.float64)
    W, b = (block.params[k].astype(np.float64) for k in ("W", "b"))
    pad = cref.same_padding(7, 3, stride, 1) * 2
    sargs = dict(stride=(stride, stride), padding=pad)
    yb = cref.conv2d_forward(xr, W, b, activation="relu", **sargs)
    if with_shortcut:
        Ws, bs = (shortcut.params[k].astype(np.float64) for k in ("W", "b"))
        ys = cref.conv2d_forward(xr, Ws, bs, stride=(2, 2))
    else:
        ys = xr
    y = res.forward(x, training=True)
    assert_close(y, yb + ys, dtype, scale=6, what="y")
    dy = rng.standard_normal(y.shape)
    dyr = dy.astype(dtype).astype(np.float64)
    dx = res.backward(dy)
    dxb, dWb, dbb = cref.conv2d_backward(xr, W, yb, dyr, activation="relu", **sargs)
    dxs = cref.conv2d_backward(xr, Ws, ys, dyr, stride=(2, 2))[0] if with_shortcut else dyr
    assert_close(dx, dxb + dxs, dtype, scale=6, what="dx")
    assert_close(res.grads["block.W"], dWb, dtype, scale=10, what="dW")
    assert_close(res.grads["block.b"], dbb, dtype, scale=10, what="db")


@pytest.mark.parametrize("with_shortcut", [False, True])
def test_conv_block_finite_differences(with_shortcut, rng):
    kw = dict(padding="same", dtype=np.float64)
    if with_shortcut:
        res = nnc.Residual(nnc.Conv2D(3, 5, 3, stride=2, activation="tanh", **kw),
                           nnc.Conv2D(3, 5, 1, stride=2, dtype=np.float64))
    else:
        res = nnc.Residual(nnc.Sequential([nnc.Conv2D(3, 3, 3, activation="tanh", **kw), nnc.Conv2D(3, 3, 3, **kw)]))
    check_layer_grads(res, rng.standard_normal((2, 5, 5, 3)), rng)


# (C, K, kernel, stride, groups, activation): each store path of the conv engine
CONV_ADD_CASES = [
    (16, 64, 3, 1, 1, "relu"),    # wide register tiles
    (16, 8, 3, 1, 1, None),       # half-width-vector kernels
    (16, 24, 3, 1, 1, "tanh"),    # a full plus a half-width vector
    (32, 2, 3, 1, 1, None),       # conv_dot (reduction in the lanes)
    (16, 16, 3, 1, 16, "relu"),   # depthwise
    (8, 12, 1, 1, 1, None),       # 1x1 stride 1: the GEMM path cannot add, the direct engine does
    (8, 12, 1, 2, 1, "sigmoid"),  # 1x1 strided
    (3, 16, 7, 2, 1, None),       # 7x7/2: edge columns and rows
]


@pytest.mark.parametrize("C, K, k, stride, groups, act", CONV_ADD_CASES)
def test_conv_adds_the_skip_input_in_its_store_bitwise(C, K, k, stride, groups, act, isa, dtype, rng):
    conv = nnc.Conv2D(C, K, k, stride=stride, padding="same", groups=groups, activation=act, dtype=dtype)
    conv.params["b"][...] = rng.standard_normal(K)
    x = rng.standard_normal((3, 11, 13, C)).astype(dtype)
    y = conv(x)
    add = rng.standard_normal(y.shape).astype(dtype)
    for threads in (1, 2):
        with nnc.threads(threads):
            fused, added = conv._forward_add(x, False, add)
        assert added
        np.testing.assert_array_equal(fused, y + add)
    # not fused: another shape, or training with an activation (backward needs its output)
    assert not conv._forward_add(x, False, add[:, :-1])[1]
    assert conv._forward_add(x, True, add)[1] == (act is None)


@pytest.mark.parametrize("last_act", [None, "relu"])
@pytest.mark.parametrize("with_shortcut", [False, True])
def test_residual_conv_block_fuses_the_add(last_act, with_shortcut, dtype, rng, monkeypatch):
    """A block ending in a Conv2D adds the skip input as it stores: the same
    bits as block(x) + shortcut(x), in inference and training, and the same
    gradients; no separate add pass in inference."""
    kw = dict(padding="same", dtype=dtype)
    s = 2 if with_shortcut else 1
    block = nnc.Sequential([nnc.Conv2D(8, 8, 3, stride=s, activation="relu", **kw),
                            nnc.Conv2D(8, 8, 3, activation=last_act, **kw)])
    shortcut = nnc.Conv2D(8, 8, 1, stride=2, dtype=dtype) if with_shortcut else None
    res = nnc.Residual(block, shortcut)
    x = rng.standard_normal((2, 9, 7, 8)).astype(dtype)
    skip = x if shortcut is None else shortcut(x)
    expect = block(x) + skip
    with monkeypatch.context() as m:
        m.setattr(nnc.layers.residual._core, "add", None)   # the add must be fused
        np.testing.assert_array_equal(res(x), expect)
    y = res.forward(x, training=True)
    np.testing.assert_array_equal(y, expect)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = res.backward(dy)
    grads = {k: v.copy() for k, v in res.grads.items()}
    block.forward(x, training=True)
    want = block.backward(dy)
    if shortcut is None:
        want = want + dy
    else:
        shortcut.forward(x, training=True)
        want = want + shortcut.backward(dy)
    np.testing.assert_array_equal(dx, want)
    for k, v in res.grads.items():
        np.testing.assert_array_equal(grads[k], v)
