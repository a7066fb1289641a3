"""Dense and activations: C core vs the NumPy reference, gradients, contract."""
import json

import numpy as np
import pytest

import nnc
from nnc.reference import dense as ref
from helpers import assert_close, assert_threads_bitwise, check_layer_grads

ACTS = [None, "linear", "relu", "sigmoid", "tanh", "sign", "softmax"]


def make(in_f, out_f, act, dtype, rng, use_bias=True):
    layer = nnc.Dense(in_f, out_f, activation=act, use_bias=use_bias, dtype=dtype)
    layer.params["W"][...] = rng.standard_normal((out_f, in_f)) / np.sqrt(in_f)
    if use_bias:
        layer.params["b"][...] = rng.standard_normal(out_f)
    return layer


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", [(1, 3), (7, 19), (2, 5, 33)])
def test_forward_backward_vs_reference(act, shape, dtype, isa, rng):
    in_f, out_f = shape[-1], 17
    layer = make(in_f, out_f, act, dtype, rng)
    x = rng.standard_normal(shape)
    y = layer.forward(x, training=True)
    W, b = layer.params["W"].astype(np.float64), layer.params["b"].astype(np.float64)
    xr = x.astype(dtype).astype(np.float64)
    yr = ref.dense_forward(xr, W, b, act)
    assert y.dtype == dtype and y.shape == shape[:-1] + (out_f,)
    if act == "sign":  # discontinuous: compare away from z == 0 only
        z = xr @ W.T + b
        keep = np.abs(z) > 1e-3
        np.testing.assert_array_equal(y[keep], yr[keep])
    else:
        assert_close(y, yr, dtype, scale=np.sqrt(in_f), what=f"Dense {act} forward")
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dxr, dWr, dbr = ref.dense_backward(xr, W, y.astype(np.float64), dy.astype(dtype).astype(np.float64), act)
    assert_close(dx, dxr, dtype, scale=np.sqrt(out_f), what="dx")
    assert_close(layer.grads["W"], dWr, dtype, scale=np.sqrt(np.prod(shape[:-1])), what="dW")
    assert_close(layer.grads["b"], dbr, dtype, scale=np.sqrt(np.prod(shape[:-1])), what="db")


@pytest.mark.parametrize("act", ["linear", "relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_finite_differences(act, use_bias, rng):
    layer = make(6, 5, act, np.float64, rng, use_bias)
    check_layer_grads(layer, rng.standard_normal((4, 3, 6)), rng)


def test_no_bias_has_no_b_key(rng):
    layer = nnc.Dense(4, 3, use_bias=False)
    assert set(layer.params) == {"W"} and set(layer.grads) == {"W"}
    x = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(layer(x), x @ layer.params["W"].T, rtol=1e-5, atol=1e-6)


def test_hand_computed():
    layer = nnc.Dense(2, 2, activation="relu", dtype=np.float64)
    layer.params["W"][...] = [[1.0, 2.0], [-3.0, 4.0]]
    layer.params["b"][...] = [0.5, -1.0]
    y = layer(np.array([[1.0, 1.0], [2.0, -1.0]]))
    np.testing.assert_array_equal(y, [[3.5, 0.0], [0.5, 0.0]])


def test_sign_ties_and_nan():
    layer = nnc.Dense(1, 1, activation="sign", dtype=np.float64)
    layer.params["W"][...] = 1.0
    y = layer(np.array([[0.0], [-0.0], [-1e-300], [np.nan], [2.0]]))
    np.testing.assert_array_equal(y[[0, 1, 2, 4], 0], [1.0, 1.0, 0.0, 1.0])
    assert np.isnan(y[3, 0])


@pytest.mark.parametrize("act", ACTS)
def test_nan_inf_propagate(act, dtype):
    layer = nnc.Dense(3, 4, activation=act, dtype=dtype)
    x = np.array([[np.nan, 1, 2], [1, 2, 3]], dtype=dtype)
    y = layer(x)
    assert np.all(np.isnan(y[0])) and np.all(np.isfinite(y[1]))


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "softmax"])
def test_large_inputs_stay_finite(act, dtype):
    layer = nnc.Dense(2, 3, activation=act, use_bias=False, dtype=dtype)
    layer.params["W"][...] = [[1, 0], [0, 1], [1, 1]]
    y = layer(np.array([[1e4, -1e4], [-1e4, 1e4]], dtype=dtype))
    assert np.all(np.isfinite(y))


def test_threads_and_row_subsets_are_bitwise_identical(dtype, isa, rng):
    layer = make(70, 45, "tanh", dtype, rng)
    x = rng.standard_normal((67, 70)).astype(dtype)
    assert_threads_bitwise(layer, x, subsets=[(0, 1), (5, 12), (13, 67), (60, 67)])


def test_input_layouts_are_accepted_and_never_written(rng):
    layer = make(5, 3, "relu", np.float32, rng)
    base = rng.standard_normal((6, 5))
    expected = layer(base.astype(np.float32))
    f_order = np.asfortranarray(base)
    strided = np.repeat(base, 2, axis=0)[::2]
    readonly = base.copy()
    readonly.flags.writeable = False
    big_endian = base.astype(">f4")
    for x in [f_order, strided, readonly, big_endian, base.astype(np.float16).astype(np.float64), base.tolist()]:
        before = np.array(x, copy=True)
        y = layer(x)
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, expected, rtol=2e-3, atol=2e-3)
        np.testing.assert_array_equal(np.asarray(x), before)


def test_float64_layer_never_downcasts(rng):
    layer = make(3, 2, None, np.float64, rng)
    x32 = rng.standard_normal((4, 3)).astype(np.float32)
    y = layer(x32)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, x32.astype(np.float64) @ layer.params["W"].T + layer.params["b"], rtol=1e-14)


def test_empty_batch(dtype):
    layer = nnc.Dense(4, 3, activation="relu", dtype=dtype)
    y = layer.forward(np.zeros((0, 4), dtype), training=True)
    assert y.shape == (0, 3)
    layer.grads["W"][...] = 7
    dx = layer.backward(np.zeros((0, 3)))
    assert dx.shape == (0, 4)
    assert not layer.grads["W"].any() and not layer.grads["b"].any()


def test_backward_overwrites_and_repeats(rng):
    layer = make(4, 3, "sigmoid", np.float64, rng)
    x = rng.standard_normal((5, 4))
    y = layer.forward(x, training=True)
    dx1 = layer.backward(np.ones_like(y))
    g1 = layer.grads["W"].copy()
    dx2 = layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(dx1, dx2)
    np.testing.assert_array_equal(g1, layer.grads["W"])


def test_params_are_live_and_checked(rng):
    layer = nnc.Dense(3, 2)
    layer.params["W"][...] = 0
    layer.params["b"][...] = [1, 2]
    np.testing.assert_array_equal(layer(np.ones((1, 3))), [[1, 2]])
    layer.params["W"] = np.ones((2, 3), dtype=np.float64, order="F")   # replaced: copied back in
    np.testing.assert_array_equal(layer(np.ones((1, 3))), [[4, 5]])
    assert layer.params["W"].dtype == np.float32 and layer.params["W"].flags.c_contiguous
    layer.params["W"] = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"Dense.*\(2, 3\).*\(3, 2\)"):
        layer(np.ones((1, 3)))


def test_config_round_trip(rng):
    layer = nnc.Dense(3, 4, activation="tanh", use_bias=False, dtype=np.float64)
    cfg = json.loads(json.dumps(layer.get_config()))
    clone = nnc.Dense.from_config(cfg)
    assert clone.get_config() == layer.get_config()
    assert clone.dtype == np.float64


def test_seed_makes_init_reproducible():
    nnc.seed(7)
    a = nnc.Dense(5, 4).params["W"].copy()
    nnc.seed(7)
    b = nnc.Dense(5, 4).params["W"].copy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("x, exc, pattern", [
    (np.zeros(4, np.float32), ValueError, r"Dense: expected input \(N, \.\.\., 4\), got \(4,\)"),
    (np.zeros((2, 5), np.float32), ValueError, r"Dense: expected input \(N, \.\.\., 4\), got \(2, 5\)"),
    (np.zeros((2, 4), np.int64), TypeError, r"Dense.*int64"),
    (np.zeros((2, 4), bool), TypeError, r"Dense.*bool"),
    (np.zeros((2, 4), complex), TypeError, r"Dense.*complex"),
    (np.zeros((2, 4), object), TypeError, r"Dense.*object"),
    (None, TypeError, r"Dense"),
    ("abc", TypeError, r"Dense"),
])
def test_bad_input(x, exc, pattern):
    with pytest.raises(exc, match=pattern):
        nnc.Dense(4, 3)(x)


def test_bad_construction_and_backward():
    with pytest.raises(ValueError, match="Dense.*activation"):
        nnc.Dense(2, 2, activation="swish")
    with pytest.raises(ValueError, match="in_features"):
        nnc.Dense(0, 2)
    with pytest.raises(TypeError, match="out_features"):
        nnc.Dense(2, 2.5)
    with pytest.raises(TypeError, match="out_features"):
        nnc.Dense(2, True)
    with pytest.raises(TypeError, match="dtype"):
        nnc.Dense(2, 2, dtype=np.int32)
    layer = nnc.Dense(2, 3)
    with pytest.raises(RuntimeError, match="Dense.backward"):
        layer.backward(np.zeros((1, 3)))
    layer(np.zeros((1, 2)))   # inference only: still no training cache
    with pytest.raises(RuntimeError, match="Dense.backward"):
        layer.backward(np.zeros((1, 3)))
    layer.forward(np.zeros((4, 2)), training=True)
    with pytest.raises(ValueError, match=r"Dense.backward: expected grad_y \(4, 3\), got \(4, 2\)"):
        layer.backward(np.zeros((4, 2)))


def test_show_config_and_threads(capsys):
    nnc.show_config()
    out = capsys.readouterr().out
    assert "isa:" in out and "threads:" in out and "openmp:" in out
    old = nnc.get_num_threads()
    with nnc.threads(1):
        assert nnc.get_num_threads() == 1
    assert nnc.get_num_threads() == old
    with pytest.raises(ValueError):
        nnc.set_num_threads(0)
