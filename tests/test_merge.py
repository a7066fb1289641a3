"""Add, Concat, Activation, LeakyReLU and Permute against the NumPy reference
(nnc/reference/merge.py, nnc/reference/dense.py): forward and backward in both
dtypes on every ISA, finite differences, bad input, config and saving."""
import numpy as np
import pytest

import nnc
from helpers import assert_close, check_layer_grads, numeric_grad
from nnc.reference.dense import act as ref_act
from nnc.reference.dense import act_grad as ref_act_grad
from nnc import _core, serialization
from nnc.layers.activations import LEAKY_RELU
from nnc.reference import merge as ref

SHAPES = [(1, 1), (3, 5), (2, 4, 4, 3), (2, 3, 17)]
ACTS = [None, "relu", "sigmoid", "tanh", "softmax"]


def _xs(rng, shapes, dtype):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("n", [2, 3])
def test_add_vs_reference(shape, activation, n, dtype, isa, rng):
    xs = _xs(rng, [shape] * n, dtype)
    layer = nnc.Add(activation, dtype=dtype)
    y = layer.forward(xs, training=True)
    assert y.dtype == dtype and y.shape == shape
    expected = ref.add(xs, activation)
    assert_close(y, expected, dtype, what="Add forward")
    dy = rng.standard_normal(shape).astype(dtype)
    dxs = layer.backward(dy)
    dz = ref_act_grad(expected, dy.astype(np.float64), activation)
    assert len(dxs) == n
    for dx in dxs:
        assert_close(dx, dz, dtype, what="Add backward")


@pytest.mark.parametrize("lead", [(1,), (3,), (2, 4, 5)])
@pytest.mark.parametrize("channels", [(1, 1), (3, 5), (4, 16, 2)])
def test_concat_vs_reference(lead, channels, dtype, isa, rng):
    xs = _xs(rng, [lead + (c,) for c in channels], dtype)
    layer = nnc.Concat(dtype=dtype)
    y = layer.forward(xs, training=True)
    np.testing.assert_array_equal(y, ref.concat(xs).astype(dtype))   # a copy: exact
    dy = rng.standard_normal(y.shape).astype(dtype)
    for dx, expected in zip(layer.backward(dy), np.split(dy, np.cumsum(channels)[:-1], axis=-1)):
        np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("activation", ACTS)
def test_activation_vs_reference(shape, activation, dtype, isa, rng):
    x = rng.standard_normal(shape).astype(dtype)
    layer = nnc.Activation(activation, dtype=dtype)
    y = layer.forward(x, training=True)
    expected = ref_act(x, activation)
    assert_close(y, expected, dtype, what="Activation forward")
    dy = rng.standard_normal(shape).astype(dtype)
    assert_close(layer.backward(dy), ref_act_grad(expected, dy.astype(np.float64), activation), dtype,
                 what="Activation backward")


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, -0.5])
def test_leaky_relu_vs_reference(slope, dtype, rng):
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    x[0, 0, 0] = np.nan
    layer = nnc.LeakyReLU(slope, dtype=dtype)
    y = layer.forward(x, training=True)
    assert np.isnan(y[0, 0, 0])
    assert_close(y, ref.leaky_relu(x, slope), dtype, what="LeakyReLU forward")
    dy = rng.standard_normal(x.shape).astype(dtype)
    assert_close(layer.backward(dy), ref.leaky_relu_grad(x, dy, slope), dtype, what="LeakyReLU backward")


def _leaky_ref(x, dy, slope):
    """Leaky ReLU and its gradient element by element in Python scalars of
    x's dtype (an independent reference: the same single rounding of
    slope * x, so the kernel must match it bit for bit)."""
    t = x.dtype.type
    with np.errstate(invalid="ignore"):   # 0 * inf
        y = np.array([v if v > 0 else t(slope) * v for v in x.ravel()], x.dtype).reshape(x.shape)
        dx = np.array([g if v > 0 else t(slope) * g for v, g in zip(x.ravel(), dy.ravel())], x.dtype)
    return y, dx.reshape(x.shape)


@pytest.mark.parametrize("n", [1, 7, 33, 1000])
@pytest.mark.parametrize("slope", [0.0, 0.01, 0.3, -0.5])
def test_leaky_relu_kernel_bitwise(n, slope, dtype, isa, rng):
    x = rng.standard_normal((2, n)).astype(dtype)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30], dtype)
    x[0, :min(n, special.size)] = special[:n]
    dy = rng.standard_normal(x.shape).astype(dtype)
    dy[1, :min(n, 3)] = [np.inf, np.nan, -0.0][:n]
    layer = nnc.LeakyReLU(slope, dtype=dtype)
    y = layer.forward(x, training=True)
    dx = layer.backward(dy)
    y_ref, dx_ref = _leaky_ref(x, dy, slope)
    np.testing.assert_array_equal(y, y_ref)   # NaN where the reference has NaN
    np.testing.assert_array_equal(np.signbit(y), np.signbit(y_ref))   # -0.0 and NaN signs too
    np.testing.assert_array_equal(dx, dx_ref)
    np.testing.assert_array_equal(np.signbit(dx), np.signbit(dx_ref))
    if n >= special.size:
        assert np.isnan(y[0, 0]) and dx[0, 0] == dtype(slope) * dy[0, 0]   # NaN x: NaN out, slope * dy back
        assert y[0, 1] == np.inf and dx[0, 1] == dy[0, 1]


def test_leaky_relu_kernel_strided_rows(dtype, isa, rng):
    """The act kernels on a channel slice (strided rows), in place."""
    buf = rng.standard_normal((5, 11)).astype(dtype)
    want, _ = _leaky_ref(buf[:, 2:9].copy(), buf[:, 2:9], -0.25)
    before = buf.copy()
    _core.act_fwd(buf[:, 2:9], buf[:, 2:9], LEAKY_RELU, -0.25)
    np.testing.assert_array_equal(buf[:, 2:9], want)
    np.testing.assert_array_equal(np.delete(buf, np.s_[2:9], axis=1), np.delete(before, np.s_[2:9], axis=1))


@pytest.mark.parametrize("slope", [0.0, -0.3, 0.2])
def test_leaky_relu_finite_differences(slope, rng):
    x = rng.standard_normal((3, 7))
    x[np.abs(x) < 1e-3] = 0.5   # away from the kink
    check_layer_grads(nnc.LeakyReLU(slope, dtype=np.float64), x, rng)


@pytest.mark.parametrize("model", ["sequential", "graph"])
def test_leaky_relu_inference_plan(model, dtype, isa, rng):
    nnc.seed(3)
    layers = [nnc.Dense(5, 6, dtype=dtype), nnc.LeakyReLU(-0.2, dtype=dtype), nnc.Dense(6, 3, dtype=dtype),
              nnc.LeakyReLU(0.1, dtype=dtype)]
    if model == "sequential":
        m = nnc.Sequential(layers)
    else:
        m = nnc.Graph([(f"n{i}", layer, f"n{i - 1}" if i else "x") for i, layer in enumerate(layers)])
    x = rng.standard_normal((4, 5)).astype(dtype)
    x[0, 0] = np.nan
    y = m.forward(x)
    assert m._can_plan() and m._plans[x.shape][0] is not None   # the inference ran as a plan
    np.testing.assert_array_equal(m.forward(x, training=True), y)   # the unplanned path: same bits
    np.testing.assert_array_equal(m.predict(x, batch_size=3), y)


@pytest.mark.parametrize("dims", [(1,), (2, 1), (2, 3, 1), (3, 1, 2)])
def test_permute_vs_reference(dims, dtype, rng):
    x = rng.standard_normal((2, 3, 4, 5)[:len(dims) + 1]).astype(dtype)
    layer = nnc.Permute(dims, dtype=dtype)
    y = layer.forward(x, training=True)
    np.testing.assert_array_equal(y, ref.permute(x, dims).astype(dtype))
    assert y.flags.c_contiguous
    dy = rng.standard_normal(y.shape).astype(dtype)
    back = layer.backward(dy)
    np.testing.assert_array_equal(nnc.Permute(dims).forward(back), dy.astype(np.float32))


@pytest.mark.parametrize("make", [lambda: nnc.Activation("tanh", dtype=np.float64),
                                  lambda: nnc.Activation("softmax", dtype=np.float64),
                                  lambda: nnc.LeakyReLU(0.1, dtype=np.float64),
                                  lambda: nnc.Permute((3, 1, 2), dtype=np.float64)])
def test_single_input_finite_differences(make, rng):
    x = rng.standard_normal((2, 3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5   # keep LeakyReLU away from its kink
    check_layer_grads(make(), x, rng)


@pytest.mark.parametrize("make", [lambda: nnc.Add("sigmoid", dtype=np.float64),
                                  lambda: nnc.Concat(dtype=np.float64)])
def test_merge_finite_differences(make, rng):
    layer = make()
    xs = [rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))]
    y = layer.forward(xs, training=True)
    G = rng.standard_normal(y.shape)
    dxs = layer.backward(G)

    def loss():
        return float(np.sum(layer.forward(xs) * G))

    for x, dx in zip(xs, dxs):
        for idx in [(0, 0, 0), (1, 2, 3), (1, 1, 2)]:
            np.testing.assert_allclose(dx[idx], numeric_grad(loss, x, idx), rtol=1e-6, atol=1e-9)


def test_bad_input(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    for layer in (nnc.Add(), nnc.Concat()):
        with pytest.raises(ValueError, match=f"{layer.name}: expected a list of at least 2"):
            layer.forward(x)
        with pytest.raises(ValueError, match=f"{layer.name}: expected a list of at least 2"):
            layer.forward([x])
        with pytest.raises(TypeError):
            layer.forward([x, x.astype(np.int32)])
    with pytest.raises(ValueError, match=r"Add: expected inputs of one shape, got \(2, 3\), \(2, 4\)"):
        nnc.Add().forward([x, np.zeros((2, 4))])
    with pytest.raises(ValueError, match=r"Concat: expected inputs of equal shapes but for the last axis"):
        nnc.Concat().forward([x, np.zeros((3, 3))])
    with pytest.raises(ValueError, match="Add: unknown activation 'gelu'"):
        nnc.Add("gelu")
    with pytest.raises(ValueError, match="Activation: unknown activation"):
        nnc.Activation("swish")
    with pytest.raises(ValueError, match="LeakyReLU: negative_slope must be finite"):
        nnc.LeakyReLU(float("nan"))
    with pytest.raises(ValueError, match="Permute: dims must be a permutation"):
        nnc.Permute((1, 1))
    with pytest.raises(ValueError, match=r"Permute: expected input of rank 3, got \(2, 3\)"):
        nnc.Permute((2, 1)).forward(x)
    for layer in (nnc.Activation("relu"), nnc.LeakyReLU()):
        with pytest.raises(ValueError, match=f"{layer.name}: expected"):
            layer.forward(np.float32(1.0))
        with pytest.raises(TypeError):
            layer.forward(np.array(["a"]))
        layer.forward(x, training=True)
        with pytest.raises(ValueError, match=rf"{layer.name}.backward: expected grad_y \(2, 3\)"):
            layer.backward(np.zeros((3, 2)))


@pytest.mark.parametrize("make", [lambda: nnc.Add("relu", dtype=np.float64), lambda: nnc.Concat(),
                                  lambda: nnc.Activation("softmax"), lambda: nnc.LeakyReLU(0.3),
                                  lambda: nnc.Permute((2, 1))])
def test_config_and_save_load(make, tmp_path):
    layer = make()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    serialization.save(layer, tmp_path / "l.npz")
    assert nnc.load(tmp_path / "l.npz").get_config() == layer.get_config()


def test_empty_batch(dtype):
    x = np.zeros((0, 3, 4), dtype)
    for layer, arg in [(nnc.Add("relu", dtype=dtype), [x, x]), (nnc.Concat(dtype=dtype), [x, x]),
                       (nnc.Activation("softmax", dtype=dtype), x), (nnc.LeakyReLU(dtype=dtype), x),
                       (nnc.Permute((2, 1), dtype=dtype), x)]:
        y = layer.forward(arg, training=True)
        assert y.shape[0] == 0 and y.dtype == dtype
        dx = layer.backward(np.zeros_like(y))
        for d in (dx if isinstance(dx, list) else [dx]):
            assert d.shape == x.shape
