"""Perceptron: forward = sign(x W^T + b), the perceptron rule, contract."""
import json

import numpy as np
import pytest

import nnc


def separable(rng, n=200, d=5):
    w = rng.standard_normal(d)
    x = rng.standard_normal((n, d))
    margin = x @ w + 0.3
    keep = np.abs(margin) > 0.2
    return x[keep], (margin[keep] > 0).astype(np.float64)


def test_learns_linearly_separable_set(dtype, rng):
    nnc.seed(0)
    x, t = separable(rng)
    p = nnc.Perceptron(x.shape[1], 1, dtype=dtype).fit(x, t, epochs=1000, lr=0.1)
    assert p.mistakes_[-1] == 0 and len(p.mistakes_) < 1000
    np.testing.assert_array_equal(p(x)[:, 0], t)


def test_multi_output_and_and_or():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    t = np.array([[0, 0], [0, 1], [0, 1], [1, 1]], dtype=np.float64)   # AND, OR
    p = nnc.Perceptron(2, 2, dtype=np.float64).fit(x, t, epochs=100, lr=1.0)
    np.testing.assert_array_equal(p(x), t)


def test_rule_matches_reference_for_one_epoch(rng):
    # One epoch in a known order, against the rule written out in NumPy.
    x = rng.standard_normal((9, 3))
    t = (rng.random((9, 2)) > 0.5).astype(np.float64)
    p = nnc.Perceptron(3, 2, dtype=np.float64)
    nnc.seed(5)
    p.fit(x, t, epochs=1, lr=0.5)
    order = np.random.default_rng(5).permutation(9)
    W, b = np.zeros((2, 3)), np.zeros(2)
    for s in order:
        y = (W @ x[s] + b >= 0).astype(np.float64)
        W += 0.5 * np.outer(t[s] - y, x[s])
        b += 0.5 * (t[s] - y)
    np.testing.assert_allclose(p.params["W"], W, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(p.params["b"], b, rtol=1e-13, atol=1e-13)


def test_backward_gives_zero_gradients(rng):
    p = nnc.Perceptron(3, 2, dtype=np.float64)
    p.params["W"][...] = rng.standard_normal((2, 3))
    x = rng.standard_normal((4, 3))
    y = p.forward(x, training=True)
    assert set(np.unique(y)) <= {0.0, 1.0}
    dx = p.backward(np.ones_like(y))
    assert not dx.any() and not p.grads["W"].any() and not p.grads["b"].any()


def test_config_and_bad_targets():
    p = nnc.Perceptron(3, 2)
    assert nnc.Perceptron.from_config(json.loads(json.dumps(p.get_config()))).get_config() == p.get_config()
    with pytest.raises(ValueError, match=r"Perceptron.fit: expected targets \(2, 2\)"):
        p.fit(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="0 or 1"):
        p.fit(np.zeros((2, 3)), np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match=r"Perceptron: expected input \(N, \.\.\., 3\), got \(2, 4\)"):
        p.fit(np.zeros((2, 4)), np.zeros((2, 2)))
