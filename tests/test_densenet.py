"""DenseBlock vs the NumPy reference, finite differences, in-place contract."""
import json

import numpy as np
import pytest

import nnc
from nnc.reference import densenet as ref
from helpers import assert_close, assert_threads_bitwise, assert_within, check_layer_grads, conv_grad_bounds


def block(C, L, g, k, dtype, rng):
    layer = nnc.DenseBlock(C, L, g, kernel_size=k, dtype=dtype)
    for key, p in layer.params.items():
        p[...] = rng.standard_normal(p.shape) * (0.3 if key.endswith("W") else 0.1)
    return layer


def weights(layer):
    Ws = [layer.params[f"layer{i}.W"].astype(np.float64) for i in range(layer.num_layers)]
    bs = [layer.params[f"layer{i}.b"].astype(np.float64) for i in range(layer.num_layers)]
    return Ws, bs


@pytest.mark.parametrize("C, L, g, k", [(3, 1, 2, 3), (4, 3, 5, 3), (1, 4, 3, 1), (2, 2, 17, 5), (5, 2, 4, 2)])
@pytest.mark.parametrize("shape", [(1, 5, 6), (3, 4, 4)])
def test_vs_reference(C, L, g, k, shape, dtype, isa, rng):
    layer = block(C, L, g, k, dtype, rng)
    x = rng.standard_normal(shape + (C,))
    y = layer.forward(x, training=True)
    Ws, bs = weights(layer)
    xr = x.astype(dtype).astype(np.float64)
    yr = ref.denseblock_forward(xr, Ws, bs)
    assert y.shape == yr.shape == shape + (C + L * g,)
    assert_close(y, yr, dtype, scale=10 * L, what="DenseBlock forward")
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dxr, dWr, dbr = ref.denseblock_backward(xr, Ws, bs, y.astype(np.float64), dy.astype(dtype).astype(np.float64))
    assert_close(dx, dxr, dtype, scale=30 * L, what="dx")
    out, dout = yr, dy.astype(dtype).astype(np.float64)
    for i in range(L):
        # layer i's pre-activation gradient: the gradient w.r.t. its output y_i
        # (the input gradient of the block of the later layers, whose input ends
        # with y_i) through the ReLU; its inputs the first c_i channels
        ci, co = C + i * g, C + (i + 1) * g
        dyi = ref.denseblock_backward(out[..., :co], Ws[i + 1:], bs[i + 1:], out, dout)[0][..., ci:]
        dz = dyi * (out[..., ci:co] > 0)
        np.testing.assert_allclose(dz.sum((0, 1, 2)), dbr[i], rtol=1e-12, atol=1e-12)
        bw, bb = conv_grad_bounds(dtype, out[:, None, ..., :ci], dz[:, None], Ws[i].shape, depth=16 * L)
        assert_within(layer.grads[f"layer{i}.W"], dWr[i], bw, what=f"dW{i}")
        assert_within(layer.grads[f"layer{i}.b"], dbr[i], bb, what=f"db{i}")


def test_finite_differences(rng):
    layer = block(2, 3, 2, 3, np.float64, rng)
    check_layer_grads(layer, rng.standard_normal((2, 4, 5, 2)), rng)


def test_threads_bitwise_and_grad_not_modified(dtype, rng):
    layer = block(3, 3, 4, 3, dtype, rng)
    x = rng.standard_normal((3, 6, 5, 3)).astype(dtype)
    dy = rng.standard_normal((3, 6, 5, 15)).astype(dtype)
    dy_copy = dy.copy()
    assert_threads_bitwise(layer, x, dy)
    np.testing.assert_array_equal(dy, dy_copy)


def test_contract(rng):
    layer = nnc.DenseBlock(3, 2, 4)
    assert {k: v.shape for k, v in layer.params.items()} == {
        "layer0.W": (3, 3, 3, 4), "layer0.b": (4,), "layer1.W": (3, 3, 7, 4), "layer1.b": (4,)}
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    y = layer(x)
    np.testing.assert_array_equal(y[..., :3], x)
    clone = nnc.DenseBlock.from_config(json.loads(json.dumps(layer.get_config())))
    for k in layer.params:
        clone.params[k][...] = layer.params[k]
    np.testing.assert_array_equal(clone(x), y)
    e = layer.forward(np.zeros((0, 4, 4, 3)), training=True)
    assert e.shape == (0, 4, 4, 11)
    assert layer.backward(e).shape == (0, 4, 4, 3) and not any(v.any() for v in layer.grads.values())
    with pytest.raises(ValueError, match=r"DenseBlock: expected input \(N, H, W, 3\), got \(2, 4, 4, 2\)"):
        layer(np.zeros((2, 4, 4, 2)))
    with pytest.raises(ValueError, match=r"DenseBlock: expected input \(N, H, W, 3\), got \(4, 4, 3\)"):
        layer(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="growth_rate"):
        nnc.DenseBlock(3, 2, 0)
