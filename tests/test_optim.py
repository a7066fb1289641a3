"""Optimisers: C update kernels vs the NumPy reference, state, contract."""
import numpy as np
import pytest

import nnc
from nnc import optim
from nnc.reference import train as ref
from helpers import assert_close

SHAPES = {"W": (5, 7), "b": (3,), "big": (4100,), "one": (1,)}


def _params(rng, dtype):
    return {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_vs_reference(momentum, dtype, isa, rng):
    params = _params(rng, dtype)
    expect = {k: v.astype(np.float64) for k, v in params.items()}
    vel = {k: np.zeros_like(v) for k, v in expect.items()}
    opt = optim.SGD(0.1, momentum=momentum)
    for _ in range(4):
        grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
        opt.step(params, grads)
        for k in params:
            expect[k], vel[k] = ref.sgd(expect[k], grads[k].astype(np.float64), vel[k], 0.1, momentum)
    for k in params:
        assert params[k].dtype == dtype
        assert_close(params[k], expect[k], dtype, scale=4, what=k)
    if momentum:
        assert all(opt.state[k][0].dtype == dtype for k in params)
    else:
        assert opt.state == {}


@pytest.mark.parametrize("kw", [{}, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}])
def test_adam_vs_reference(kw, dtype, isa, rng):
    params = _params(rng, dtype)
    expect = {k: v.astype(np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in expect.items()}
    v2 = {k: np.zeros_like(v) for k, v in expect.items()}
    opt = optim.Adam(**kw)
    lr, (b1, b2), eps = kw.get("lr", 1e-3), kw.get("betas", (0.9, 0.999)), kw.get("eps", 1e-8)
    for t in range(1, 6):
        grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
        opt.step(params, grads)
        for k in params:
            expect[k], m[k], v2[k] = ref.adam(expect[k], grads[k].astype(np.float64), m[k], v2[k], t,
                                              lr, b1, b2, eps)
    for k in params:
        assert params[k].dtype == dtype
        assert_close(params[k], expect[k], dtype, scale=10, what=k)


def test_adam_hand_computed_first_step():
    # step 1: m_hat = g, v_hat = g^2, so p -= lr * g / (|g| + eps)
    p = {"w": np.array([1.0, -2.0, 0.0])}
    optim.Adam(lr=0.5, eps=0.0).step(p, {"w": np.array([3.0, -0.25, 1e-3])})
    np.testing.assert_allclose(p["w"], [0.5, -1.5, -0.5], rtol=1e-12)


def test_state_per_key_and_in_place(rng):
    params = {"a": np.ones(4), "b": np.ones(4)}
    arr = params["a"]
    opt = optim.Adam(lr=0.1)
    opt.step(params, {"a": np.ones(4), "b": np.ones(4)})
    opt.step({"a": params["a"]}, {"a": np.ones(4)})  # only "a" advances
    assert params["a"] is arr
    assert opt.steps == {"a": 2, "b": 1}
    assert not np.array_equal(params["a"], params["b"])
    sgd = optim.SGD(0.5, momentum=0.5)
    p = {"x": np.zeros(2)}
    for _ in range(3):
        sgd.step(p, {"x": np.ones(2)})
    np.testing.assert_allclose(p["x"], -0.5 * (1 + 1.5 + 1.75) * np.ones(2))


def test_bitwise_across_threads(rng):
    g = {"w": rng.standard_normal(300000).astype(np.float32)}
    out = []
    for n in (1, 2):
        with nnc.threads(n):
            p = {"w": np.ones(300000, np.float32)}
            opt = optim.Adam(0.01)
            opt.step(p, g)
            opt.step(p, g)
            out.append(p["w"])
    np.testing.assert_array_equal(out[0], out[1])


def test_bad_input():
    opt = optim.SGD(0.1)
    with pytest.raises(ValueError, match=r"grads\['w'\].*\(3,\).*\(2,\)"):
        opt.step({"w": np.zeros(3)}, {"w": np.zeros(2)})
    with pytest.raises(ValueError, match="no gradient"):
        opt.step({"w": np.zeros(3)}, {})
    with pytest.raises(TypeError):
        opt.step({"w": np.zeros(3, np.int64)}, {"w": np.zeros(3)})
    p = {"a": np.zeros(2), "b": np.zeros(2)}
    with pytest.raises(ValueError):  # validated before anything is updated
        opt.step(p, {"a": np.ones(2), "b": np.ones(5)})
    assert not p["a"].any()
    for bad in (dict(lr=0), dict(lr=-1), dict(lr=float("nan"))):
        with pytest.raises(ValueError):
            optim.SGD(**bad)
    with pytest.raises(ValueError):
        optim.Adam(betas=(0.9, 1.0))
    with pytest.raises(TypeError):
        optim.SGD("0.1")


def test_names():
    assert isinstance(optim.get("adam"), optim.Adam) and optim.get("sgd").lr == 0.01
    with pytest.raises(ValueError):
        optim.get("rmsprop")
