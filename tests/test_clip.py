"""Gradient clipping: clip_grad_value and clip_grad_norm semantics vs the reference."""
import numpy as np
import pytest

import nnc
from nnc.reference import rnn as ref


def grads_of(dtype, rng, scale=3.0):
    return {"W": (rng.standard_normal((7, 5)) * scale).astype(dtype),
            "b": (rng.standard_normal(5) * scale).astype(dtype),
            "big": (rng.standard_normal(10007) * scale).astype(dtype)}


def test_clip_value(dtype, isa, rng):
    g = grads_of(dtype, rng)
    before = [a.copy() for a in g.values()]
    n = nnc.clip_grad_value(g, 0.5)
    assert type(n) is float
    np.testing.assert_allclose(n, ref.global_norm(before), rtol=1e-6 if dtype == np.float32 else 1e-13)
    for a, e in zip(g.values(), ref.clip_by_value(before, 0.5)):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, e.astype(dtype))
    assert max(np.abs(a).max() for a in g.values()) == dtype(0.5)


def test_clip_value_nan_and_list(rng):
    a = np.array([np.nan, -3.0, 0.2, np.inf, -np.inf], np.float32)
    n = nnc.clip_grad_value([a], 1.0)
    assert np.isnan(n)
    np.testing.assert_array_equal(a[1:], np.array([-1.0, 0.2, 1.0, -1.0], np.float32))
    assert np.isnan(a[0])


@pytest.mark.parametrize("v", [0.1, 1e9])
def test_clip_norm(v, dtype, isa, rng):
    g = grads_of(dtype, rng)
    before = [a.copy() for a in g.values()]
    n = nnc.clip_grad_norm(g, v)
    assert type(n) is float
    np.testing.assert_allclose(n, ref.global_norm(before), rtol=1e-6 if dtype == np.float32 else 1e-13)
    if v > n:
        for a, b in zip(g.values(), before):
            np.testing.assert_array_equal(a, b)  # untouched
    else:
        for a, e in zip(g.values(), ref.clip_by_norm(before, v)):
            np.testing.assert_allclose(a, e, rtol=1e-6 if dtype == np.float32 else 1e-14)
        np.testing.assert_allclose(ref.global_norm(g.values()), v, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_clip_norm_zero_norm_changes_nothing():
    g = [np.zeros(5), np.zeros((2, 3))]
    assert nnc.clip_grad_norm(g, 1.0) == 0.0
    assert all(np.all(a == 0) and not np.any(np.signbit(a)) for a in g)
    assert nnc.clip_grad_norm([np.zeros(3)], 0.0) == 0.0


def test_clip_norm_exact_small_case():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert nnc.clip_grad_norm(g, 1.0) == 5.0
    np.testing.assert_allclose(g["a"], [0.6, 0.0], rtol=1e-15)
    np.testing.assert_allclose(g["b"], [[0.8]], rtol=1e-15)
    g = [np.array([3.0, 4.0])]
    assert nnc.clip_grad_norm(g, 5.0) == 5.0  # not above the threshold: unchanged
    np.testing.assert_array_equal(g[0], [3.0, 4.0])


def test_non_contiguous_arrays_clipped_in_place(rng):
    base = rng.standard_normal((6, 8)) * 4
    view = base[:, ::2]
    expect = np.clip(view, -1, 1)
    nnc.clip_grad_value([view], 1.0)
    np.testing.assert_array_equal(base[:, ::2], expect)
    f = np.asfortranarray(rng.standard_normal((3, 4)) * 10)
    n0 = np.sqrt(np.sum(f ** 2))
    nnc.clip_grad_norm({"f": f}, 1.0)
    np.testing.assert_allclose(np.sqrt(np.sum(f ** 2)), 1.0, rtol=1e-12)
    assert n0 > 1


def test_norm_deterministic_across_threads(rng):
    g = [rng.standard_normal(300_001).astype(np.float32), rng.standard_normal((517, 33))]
    old = nnc.get_num_threads()
    res = []
    try:
        for nt in (1, 2):
            nnc.set_num_threads(nt)
            c = [a.copy() for a in g]
            res.append((nnc.clip_grad_norm(c, 1.0), c))
    finally:
        nnc.set_num_threads(old)
    assert res[0][0] == res[1][0]
    for a, b in zip(res[0][1], res[1][1]):
        np.testing.assert_array_equal(a, b)


def test_layer_grads_work(rng):
    layer = nnc.LSTM(3, 4)
    layer.forward(rng.standard_normal((2, 5, 3)), training=True)
    layer.backward(rng.standard_normal((2, 5, 4)) * 100)
    n = nnc.clip_grad_norm(layer.grads, 0.5)
    assert n > 0.5
    np.testing.assert_allclose(ref.global_norm(layer.grads.values()), 0.5, rtol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError):
        nnc.clip_grad_value([np.ones(3)], -1.0)
    with pytest.raises(ValueError):
        nnc.clip_grad_norm([np.ones(3)], float("nan"))
    with pytest.raises(TypeError):
        nnc.clip_grad_norm([np.ones(3, np.int64)], 1.0)
    with pytest.raises(TypeError):
        nnc.clip_grad_value([[1.0, 2.0]], 1.0)
    with pytest.raises(TypeError):
        nnc.clip_grad_value(np.ones(3), 1.0)
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        nnc.clip_grad_value([ro], 0.5)
