"""Losses: C kernels vs the NumPy reference, finite differences, contract."""
import numpy as np
import pytest

import nnc
from nnc import losses
from nnc.reference import train as ref
from helpers import assert_close, numeric_grad


def _xent_case(shape, target_kind, rng, dtype):
    z = (3 * rng.standard_normal(shape)).astype(dtype)
    if target_kind == "labels":
        t = rng.integers(0, shape[-1], shape[:-1])
    else:
        t = rng.uniform(0, 1, shape)
        t /= t.sum(axis=-1, keepdims=True)
    return z, t


# (5000, 3) spans two reduction blocks (4096 elements per block of rows)
@pytest.mark.parametrize("shape", [(1, 1), (4, 7), (3, 5, 19), (5000, 3)])
@pytest.mark.parametrize("target_kind", ["labels", "probs"])
def test_softmax_xent_vs_reference(shape, target_kind, dtype, isa, rng):
    z, t = _xent_case(shape, target_kind, rng, dtype)
    loss = losses.SoftmaxCrossEntropy()
    val = loss(z, t)
    g = loss.backward()
    rl, rg = ref.softmax_xent(z.astype(np.float64), t)
    assert isinstance(val, float) and g.dtype == dtype and g.shape == z.shape
    assert_close(val, rl, dtype, scale=10, what="loss")
    assert_close(g, rg, dtype, what="grad")


@pytest.mark.parametrize("int_dtype", [np.int8, np.uint8, np.int16, np.int32, np.uint32, np.int64, np.uint64])
def test_softmax_xent_any_integer_labels(int_dtype, rng):
    z = rng.standard_normal((6, 4))
    y = np.array([0, 3, 1, 2, 3, 0])
    loss = losses.SoftmaxCrossEntropy()
    a = loss(z, y.astype(int_dtype))
    ga = loss.backward()
    b = loss(z, np.eye(4)[y])  # one-hot probabilities: the same loss
    gb = loss.backward()
    assert a == b
    np.testing.assert_array_equal(ga, gb)


def test_softmax_xent_averages_over_positions(rng):
    z = rng.standard_normal((2, 5, 3))
    y = rng.integers(0, 3, (2, 5))
    loss = losses.SoftmaxCrossEntropy()
    full = loss(z, y)
    per = [losses.SoftmaxCrossEntropy()(z[i, j][None], y[i, j][None]) for i in range(2) for j in range(5)]
    assert full == pytest.approx(np.mean(per), rel=1e-13)


def test_softmax_xent_stable_for_huge_logits():
    z = np.array([[1e4, 0.0, -1e4], [-1e30, 1e30, 0.0]], dtype=np.float32)
    loss = losses.SoftmaxCrossEntropy()
    val = loss(z, np.array([1, 1]))
    assert val == pytest.approx(1e4 / 2, rel=1e-6)
    g = loss.backward()
    np.testing.assert_allclose(g, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-7)


def test_softmax_xent_nan_propagates():
    loss = losses.SoftmaxCrossEntropy()
    assert np.isnan(loss(np.array([[0.0, np.nan, 1.0], [1.0, 2.0, 3.0]]), np.array([0, 1])))
    g = loss.backward()
    assert np.isnan(g[0]).all() and np.isfinite(g[1]).all()


@pytest.mark.parametrize("bad", [-1, 3, 100])
def test_softmax_xent_out_of_range_labels(bad):
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        losses.SoftmaxCrossEntropy()(np.zeros((2, 3)), np.array([0, bad]))


@pytest.mark.parametrize("target", [np.zeros(3, np.int64), np.zeros((2, 4)), np.zeros((2, 3, 1))])
def test_softmax_xent_bad_target_shape(target):
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy.*\(2, 3\)"):
        losses.SoftmaxCrossEntropy()(np.zeros((2, 3)), target)


def test_softmax_xent_bad_types():
    loss = losses.SoftmaxCrossEntropy()
    with pytest.raises(TypeError):
        loss(np.zeros((2, 3), np.int32), np.array([0, 1]))
    with pytest.raises(TypeError):
        loss(np.zeros((2, 3)), np.array(["a", "b"]))
    with pytest.raises(ValueError):
        loss(np.zeros(3), np.array([0]))


@pytest.mark.parametrize("shape", [(1,), (5, 3), (4, 3, 7), (3, 3000)])
def test_mse_vs_reference(shape, dtype, isa, rng):
    p, t = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape)
    loss = losses.MeanSquaredError()
    val = loss(p, t)
    rl, rg = ref.mse(p.astype(np.float64), t.astype(dtype).astype(np.float64))
    assert_close(val, rl, dtype, scale=10, what="loss")
    assert_close(loss.backward(), rg, dtype, what="grad")


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("shape", [(1,), (5, 3), (4, 3, 7), (3, 3000)])
def test_bce_vs_reference(shape, from_logits, dtype, isa, rng):
    p = (4 * rng.standard_normal(shape)) if from_logits else rng.uniform(0.01, 0.99, shape)
    p = p.astype(dtype)
    t = rng.uniform(0, 1, shape)
    loss = losses.BinaryCrossEntropy(from_logits=from_logits)
    val = loss(p, t)
    rl, rg = ref.bce(p.astype(np.float64), t.astype(dtype).astype(np.float64), from_logits)
    assert_close(val, rl, dtype, scale=10, what="loss")
    assert_close(loss.backward(), rg, dtype, what="grad")


def test_bce_log_clamped_at_minus_100():
    loss = losses.BinaryCrossEntropy()
    assert loss(np.array([0.0, 1.0]), np.array([1.0, 0.0])) == 100.0
    assert loss(np.array([0.0, 1.0]), np.array([0.0, 1.0])) == 0.0
    g = loss.backward()
    assert np.isfinite(g).all()


def test_bce_logits_stable_and_nan():
    loss = losses.BinaryCrossEntropy(from_logits=True)
    assert loss(np.array([1000.0, -1000.0]), np.array([0.0, 1.0])) == pytest.approx(1000.0)
    assert loss(np.array([1000.0, -1000.0]), np.array([1.0, 0.0])) == 0.0
    assert np.isnan(loss(np.array([np.nan, 0.0]), np.array([1.0, 0.0])))
    assert np.isnan(losses.BinaryCrossEntropy()(np.array([np.nan, 0.5]), np.array([1.0, 0.0])))


@pytest.mark.parametrize("make", [
    lambda rng: (losses.MeanSquaredError(), rng.standard_normal((3, 4)), rng.standard_normal((3, 4))),
    lambda rng: (losses.BinaryCrossEntropy(), rng.uniform(0.1, 0.9, (3, 4)), rng.uniform(0, 1, (3, 4))),
    lambda rng: (losses.BinaryCrossEntropy(True), rng.standard_normal((3, 4)), rng.uniform(0, 1, (3, 4))),
    lambda rng: (losses.SoftmaxCrossEntropy(), rng.standard_normal((3, 4)), rng.integers(0, 4, 3)),
    lambda rng: (losses.SoftmaxCrossEntropy(), rng.standard_normal((2, 3, 4)), rng.dirichlet(np.ones(4), (2, 3))),
], ids=["mse", "bce", "bce_logits", "xent_labels", "xent_probs"])
def test_backward_finite_differences(make, rng):
    loss, p, t = make(rng)
    loss(p, t)
    g = loss.backward()
    for flat in range(p.size):
        idx = np.unravel_index(flat, p.shape)
        num = numeric_grad(lambda: losses.get(loss)(p, t), p, idx)
        np.testing.assert_allclose(g[idx], num, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("loss", [losses.MeanSquaredError(), losses.BinaryCrossEntropy(True)])
def test_bitwise_across_threads(loss, rng):
    p, t = rng.standard_normal((7, 5000)).astype(np.float32), rng.uniform(0, 1, (7, 5000))
    out = []
    for n in (1, 2):
        with nnc.threads(n):
            out.append((loss(p, t), loss.backward()))
    assert out[0][0] == out[1][0]
    np.testing.assert_array_equal(out[0][1], out[1][1])


def test_xent_bitwise_across_threads(rng):
    z, y = rng.standard_normal((20000, 10)).astype(np.float32), rng.integers(0, 10, 20000)
    out = []
    for n in (1, 2):
        with nnc.threads(n):
            loss = losses.SoftmaxCrossEntropy()
            out.append((loss(z, y), loss.backward()))
    assert out[0][0] == out[1][0]
    np.testing.assert_array_equal(out[0][1], out[1][1])


def test_contract_details(rng):
    loss = losses.MeanSquaredError()
    with pytest.raises(RuntimeError):
        loss.backward()
    p = rng.standard_normal((3, 2))
    p.flags.writeable = False
    loss(p, np.zeros((3, 2)))
    g1, g2 = loss.backward(), loss.backward()
    np.testing.assert_array_equal(g1, g2)
    assert loss(p.astype(np.float16), np.zeros((3, 2))) >= 0 and loss.backward().dtype == np.float32
    with pytest.raises(ValueError, match=r"MeanSquaredError.*\(3, 2\).*\(2, 3\)"):
        loss(p, np.zeros((2, 3)))
    with pytest.raises(TypeError):
        loss(np.zeros((3, 2), np.int64), np.zeros((3, 2)))
    assert np.isnan(loss(np.zeros((0, 2)), np.zeros((0, 2)))) and loss.backward().shape == (0, 2)


def test_names():
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    assert isinstance(losses.get("cross_entropy"), losses.SoftmaxCrossEntropy)
    assert isinstance(losses.get("bce"), losses.BinaryCrossEntropy)
    with pytest.raises(ValueError):
        losses.get("hinge")
