"""Graph: a DAG of layers against a NumPy evaluation of the same graph
(nnc/reference/merge.py), finite differences end to end, predict across
batch splits and threads, the inference plan, fit, summary, config, save/load,
memory release and bad input."""
import json
import weakref

import numpy as np
import pytest

import nnc
from helpers import assert_close, numeric_grad
from nnc.reference import merge as ref
from nnc.reference.conv import conv2d_forward as ref_conv
from nnc.reference.dense import act as ref_act


def _resnet_like(dtype=np.float32):
    """conv -> conv + skip (Add, relu) -> concat with the first conv -> pool -> dense."""
    return nnc.Graph([
        ("c1", nnc.Conv2D(3, 4, 3, padding="same", activation="relu", dtype=dtype), "x"),
        ("c2", nnc.Conv2D(4, 3, 3, padding="same", dtype=dtype), "c1"),
        ("sum", nnc.Add("relu", dtype=dtype), ["x", "c2"]),
        ("cat", nnc.Concat(dtype=dtype), ["sum", "c1"]),
        ("pool", nnc.GlobalAvgPool2D(dtype=dtype), "cat"),
        ("fc", nnc.Dense(7, 2, dtype=dtype), "pool"),
    ])


def _reference(g, x):
    """The graph evaluated with the NumPy references, from its parameters."""
    p = {k: np.asarray(v, np.float64) for k, v in g.params.items()}
    nodes = [
        ("c1", lambda a: ref_act(ref_conv(a, p["c1.W"], p["c1.b"], padding=(1, 1, 1, 1)), "relu"), ["x"]),
        ("c2", lambda a: ref_conv(a, p["c2.W"], p["c2.b"], padding=(1, 1, 1, 1)), ["c1"]),
        ("sum", lambda a: ref.add(a, "relu"), ["x", "c2"]),
        ("cat", ref.concat, ["sum", "c1"]),
        ("pool", lambda a: a.mean(axis=(1, 2)), ["cat"]),
        ("fc", lambda a: a @ p["fc.W"].T + p["fc.b"], ["pool"]),
    ]
    return ref.run_graph(nodes, {"x": np.asarray(x, np.float64)}, ["fc"])[0]


def test_forward_vs_reference_and_plan(dtype, isa, rng):
    nnc.seed(1)
    g = _resnet_like(dtype)
    x = rng.standard_normal((3, 5, 6, 3)).astype(dtype)
    y = g.forward(x)
    assert_close(y, _reference(g, x), dtype, scale=10, what="Graph forward")
    assert g._can_plan() and g._plans[x.shape][0] is not None   # the inference ran as a plan
    np.testing.assert_array_equal(g.forward(x, training=True), y)   # the unplanned path: same bits


def test_backward_finite_differences(rng):
    nnc.seed(2)
    g = _resnet_like(np.float64)
    x = rng.standard_normal((2, 4, 4, 3))
    y = g.forward(x, training=True)
    G = rng.standard_normal(y.shape)
    dx = g.backward(G)
    grads = {k: v.copy() for k, v in g.grads.items()}

    def loss():
        return float(np.sum(g.forward(x) * G))

    for arr, analytic, what in [(x, dx, "x")] + [(g.params[k], grads[k], k) for k in g.params]:
        for f in rng.choice(arr.size, size=min(6, arr.size), replace=False):
            idx = np.unravel_index(f, arr.shape)
            np.testing.assert_allclose(analytic[idx], numeric_grad(loss, arr, idx), rtol=1e-5, atol=1e-8,
                                       err_msg=f"d{what}{idx}")
    g.forward(x, training=True)
    assert g.backward(G, input_grad=False) is None
    for k, v in g.grads.items():
        np.testing.assert_array_equal(v, grads[k])


def test_several_inputs_and_outputs(dtype, rng):
    d1, d2 = nnc.Dense(3, 4, dtype=dtype), nnc.Dense(5, 4, activation="tanh", dtype=dtype)
    g = nnc.Graph([("a", d1, "u"), ("b", d2, "v"), ("s", nnc.Add(dtype=dtype), ["a", "b"]),
                   ("t", nnc.Activation("sigmoid", dtype=dtype), "s")], inputs=["u", "v"], outputs=["t", "a"])
    u, v = rng.standard_normal((6, 3)).astype(dtype), rng.standard_normal((6, 5)).astype(dtype)
    t, a = g.forward([u, v])
    ra = u.astype(np.float64) @ d1.params["W"].T + d1.params["b"]
    rb = np.tanh(v.astype(np.float64) @ d2.params["W"].T + d2.params["b"])
    assert_close(a, ra, dtype, what="output a")
    assert_close(t, ref_act(ra + rb, "sigmoid"), dtype, what="output t")
    t2, a2 = g.forward({"v": v, "u": u})
    np.testing.assert_array_equal(t, t2)
    pt, pa = g.predict([u, v], batch_size=4)
    np.testing.assert_array_equal(pt, t)
    np.testing.assert_array_equal(pa, a)
    g.forward([u, v], training=True)
    du, dv = g.backward([np.ones_like(t), np.ones_like(a)])
    assert du.shape == u.shape and dv.shape == v.shape
    # dL/du through both outputs: W1^T (sigmoid'(s) + 1)
    s = ra + rb
    ds = ref_act(s, "sigmoid") * (1 - ref_act(s, "sigmoid"))
    assert_close(du, (ds + 1) @ d1.params["W"].astype(np.float64), dtype, what="du")


@pytest.mark.parametrize("n", [1, 7, 64])
def test_predict_bitwise_across_batch_splits_and_threads(n, dtype, rng):
    nnc.seed(3)
    g = _resnet_like(dtype)
    x = rng.standard_normal((n, 6, 5, 3)).astype(dtype)
    results = []
    for threads in (1, 2):
        with nnc.threads(threads):
            for bs in (1, 3, 256):
                results.append(g.predict(x, batch_size=bs))
    whole = g.forward(x, training=True)   # the unplanned forward
    for r in results:
        np.testing.assert_array_equal(r, whole)


def test_residual_add_fused_into_the_conv_store_gives_the_same_bits(dtype, rng):
    nnc.seed(4)
    g = _resnet_like(dtype)
    assert g._fuse == {"c2": (2, "x")}
    x = rng.standard_normal((2, 5, 5, 3)).astype(dtype)
    L = {n: layer for n, layer, _ in g.nodes}
    c1 = L["c1"](x)
    s = L["sum"]([x, L["c2"](c1)])
    np.testing.assert_array_equal(g.forward(x), L["fc"](L["pool"](L["cat"]([s, c1]))))


def test_fit_summary_config_save_load(tmp_path, dtype, rng):
    nnc.seed(5)
    g = _resnet_like(dtype)
    x = rng.standard_normal((40, 5, 5, 3)).astype(dtype)
    y = rng.integers(0, 2, 40)
    h = g.fit(x, y, loss="cross_entropy", epochs=3, batch_size=8, verbose=0)
    assert len(h["loss"]) == 3 and h["loss"][-1] < h["loss"][0]
    text = g.summary(file=open(tmp_path / "s.txt", "w"))
    assert "sum (Add)" in text and "(None, 5, 5, 7)" in text and "Total params: 239" in text
    cfg = json.loads(json.dumps(g.get_config()))
    clone = nnc.Graph.from_config(cfg)
    assert clone.get_config() == g.get_config() and sorted(clone.params) == sorted(g.params)
    g.save(tmp_path / "g.npz")
    g2 = nnc.load(tmp_path / "g.npz")
    assert isinstance(g2, nnc.Graph)
    np.testing.assert_array_equal(g2.predict(x), g.predict(x))
    nested = nnc.Sequential([nnc.Permute((2, 3, 1), dtype=dtype), g])
    np.testing.assert_array_equal(nested.predict(x.transpose(0, 3, 1, 2)), g.predict(x))


def _two_inputs(dtype=np.float32):
    """u (3 features) and v (5) through their own Dense, concatenated, to one output."""
    nnc.seed(6)
    return nnc.Graph([("a", nnc.Dense(3, 4, activation="tanh", dtype=dtype), "u"),
                      ("b", nnc.Dense(5, 4, activation="relu", dtype=dtype), "v"),
                      ("cat", nnc.Concat(dtype=dtype), ["a", "b"]), ("out", nnc.Dense(8, 2, dtype=dtype), "cat")],
                     inputs=["u", "v"])


def _two_input_data(n, seed=0, dtype=np.float32):
    g = np.random.default_rng(seed)
    return (g.standard_normal((n, 3)).astype(dtype), g.standard_normal((n, 5)).astype(dtype),
            g.standard_normal((n, 2)).astype(dtype))


def test_fit_several_inputs_splits_them_alike(dtype):
    """fit on [u, v] is the loop that takes the same shuffled rows of u, v
    and y for every batch; a dict by name gives the same bits."""
    u, v, y = _two_input_data(21, dtype=dtype)
    g = _two_inputs(dtype)
    nnc.seed(11)
    h = g.fit([u, v], y, epochs=2, batch_size=4, verbose=0)
    ref, loss, opt = _two_inputs(dtype), nnc.losses.get("mse"), nnc.optim.get("adam")
    nnc.seed(11)
    for _ in range(2):
        order = nnc._config.rng().permutation(len(y))
        for s in range(0, len(y), 4):
            idx = order[s:s + 4]
            loss(ref.forward({"v": v[idx], "u": u[idx]}, training=True), y[idx])
            ref.backward(loss.backward(), input_grad=False)
            opt.step(ref.params, ref.grads)
    for k in g.params:
        np.testing.assert_array_equal(g.params[k], ref.params[k], err_msg=k)
    by_name = _two_inputs(dtype)
    nnc.seed(11)
    assert by_name.fit({"v": v, "u": u}, y, epochs=2, batch_size=4, verbose=0) == h
    for k in g.params:
        np.testing.assert_array_equal(by_name.params[k], g.params[k], err_msg=k)
    whole = g.forward([u, v])   # predict's batch splits: the bits of one forward
    for bs in (1, 4, 256):
        np.testing.assert_array_equal(g.predict([u, v], batch_size=bs), whole)
        np.testing.assert_array_equal(g.predict({"u": u, "v": v}, batch_size=bs), whole)


def test_fit_several_inputs_validation_and_resume(tmp_path):
    u, v, y = _two_input_data(20)
    uv, vv, yv = _two_input_data(7, seed=1)
    kw = dict(epochs=2, batch_size=8, verbose=0, validation_data=([uv, vv], yv))
    whole = _two_inputs()
    h = whole.fit([u, v], y, **kw)
    assert h["val_loss"][-1] == nnc.losses.get("mse")(whole.predict([uv, vv]), yv)
    path = tmp_path / "run.nnc"
    _two_inputs().fit([u, v], y, checkpoint=path, **{**kw, "epochs": 1})
    resumed = _two_inputs()
    assert resumed.fit([u, v], y, checkpoint=path, resume=True, **kw) == h
    for k in whole.params:
        np.testing.assert_array_equal(resumed.params[k], whole.params[k], err_msg=k)
    v2 = v.copy()
    v2[3, 1] += 1   # every input is hashed
    with pytest.raises(ValueError, match=r"x differs from the checkpoint's data \(input v: same shape and "
                                         r"dtype, other values"):
        _two_inputs().fit([u, v2], y, checkpoint=path, resume=True, **kw)
    with pytest.raises(ValueError, match=r"validation_data differs from the checkpoint's data \(input u: shape"):
        _two_inputs().fit([u, v], y, checkpoint=path, resume=True, **{**kw, "validation_data": ([uv[:5], vv[:5]],
                                                                                                   yv[:5])})


def test_fit_several_inputs_bad_input():
    u, v, y = _two_input_data(6)
    g = _two_inputs()
    with pytest.raises(ValueError, match=r"Graph.fit: every input must be a batch \(N, \.\.\.\) with the same N, "
                                         r"got u \(6, 3\), v \(5, 5\)"):
        g.fit([u, v[:5]], y, verbose=0)
    with pytest.raises(ValueError, match=r"Graph.fit: expected inputs \['u', 'v'\], got \['u'\] "
                                         r"\(missing \['v'\]\)"):
        g.fit({"u": u}, y, verbose=0)
    with pytest.raises(ValueError, match=r"Graph.fit: expected inputs \['u', 'v'\], got \['u', 'v', 'w'\] "
                                         r"\(unexpected \['w'\]\)"):
        g.fit({"u": u, "v": v, "w": v}, y, verbose=0)
    with pytest.raises(ValueError, match=r"Graph.fit: expected a list of 2 inputs \['u', 'v'\], got 3 arrays"):
        g.fit([u, v, v], y, verbose=0)
    with pytest.raises(ValueError, match=r"Graph.fit: x and y must have the same number of samples, "
                                         r"got u \(6, 3\), v \(6, 5\) and \(5, 2\)"):
        g.fit([u, v], y[:5], verbose=0)
    with pytest.raises(ValueError, match=r"Graph.fit: validation_data: every input must be a batch"):
        g.fit([u, v], y, verbose=0, validation_data=([u, v[:2]], y))
    two_out = nnc.Graph([("a", nnc.Dense(3, 2), "u"), ("b", nnc.Dense(5, 2), "v")], inputs=["u", "v"],
                        outputs=["a", "b"])
    with pytest.raises(ValueError, match=r"Graph.fit: expected a Graph with one output, this one has \['a', 'b'\]"):
        two_out.fit([u, v], y, verbose=0)


class _Probe:
    """A duck-typed identity layer that remembers its output (weakly)."""

    def __init__(self, seen):
        self.dtype, self.params, self.grads, self.seen = np.float32, {}, {}, seen

    def forward(self, x, training=False):
        y = np.array(x)
        self.seen.append(weakref.ref(y))
        return y

    def backward(self, g):
        return g

    def get_config(self):
        return {}


def test_an_activation_is_released_after_its_last_reader(rng):
    seen = []

    class Check(_Probe):
        def forward(self, x, training=False):
            alive.append([r() is not None for r in seen])
            return super().forward(x, training)

    alive = []
    g = nnc.Graph([("a", _Probe(seen), "x"), ("b", _Probe(seen), "a"), ("c", Check(seen), "b"),
                   ("d", Check(seen), ["c"])])
    g.forward(rng.standard_normal((2, 3)).astype(np.float32))
    # when c runs, a's output (read by b only) is gone; when d runs, b's too
    assert alive == [[False, True], [False, False, True]]


def test_bad_graphs_and_inputs(rng):
    d = nnc.Dense(3, 3)
    with pytest.raises(ValueError, match="Graph: node 'b' reads \\['zz'\\]"):
        nnc.Graph([("a", nnc.Dense(3, 3), "x"), ("b", nnc.Dense(3, 3), "zz")])
    with pytest.raises(ValueError, match="Graph: node name 'a' is used twice"):
        nnc.Graph([("a", nnc.Dense(3, 3), "x"), ("a", nnc.Dense(3, 3), "a")])
    with pytest.raises(ValueError, match="reuses a layer object"):
        nnc.Graph([("a", d, "x"), ("b", d, "a")])
    with pytest.raises(ValueError, match="without '.'"):
        nnc.Graph([("a.b", nnc.Dense(3, 3), "x")])
    with pytest.raises(ValueError, match="feed no node and no output"):
        nnc.Graph([("a", nnc.Dense(3, 3), "x"), ("b", nnc.Dense(3, 3), "x")], outputs="b")
    with pytest.raises(ValueError, match="outputs must be distinct names"):
        nnc.Graph([("a", nnc.Dense(3, 3), "x")], outputs=["q"])
    with pytest.raises(TypeError, match="Graph: node 'a' is not an nnc layer"):
        nnc.Graph([("a", "relu", "x")])
    with pytest.raises(TypeError, match="Graph: node 'b' has dtype float64, expected float32"):
        nnc.Graph([("a", nnc.Dense(3, 3), "x"), ("b", nnc.Dense(3, 3, dtype=np.float64), "a")])
    with pytest.raises(ValueError, match="at least one node"):
        nnc.Graph([])
    with pytest.raises(ValueError, match="Graph.from_config: expected a list of node dicts"):
        nnc.Graph.from_config({"nodes": "x"})
    g = nnc.Graph([("a", nnc.Dense(3, 2), "u"), ("b", nnc.Dense(4, 2), "v"), ("s", nnc.Add(), ["a", "b"])],
                  inputs=["u", "v"])
    with pytest.raises(ValueError, match=r"Graph: expected a list of 2 inputs \['u', 'v'\], got ndarray"):
        g.forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Graph: expected inputs \['u', 'v'\], got \['u'\]"):
        g.forward({"u": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"Dense: expected input \(N, \.\.\., 4\), got \(2, 3\)"):
        g.forward([np.zeros((2, 3)), np.zeros((2, 3))])
    with pytest.raises(ValueError, match="Graph.predict: every input must be a batch"):
        g.predict([np.zeros((2, 3)), np.zeros((3, 4))])
    with pytest.raises(TypeError):
        g.forward([np.zeros((2, 3), np.int64), np.zeros((2, 4))])
    with pytest.raises(RuntimeError, match="call forward"):
        nnc.Graph([("a", nnc.Dense(3, 3), "x")]).backward(np.zeros((2, 3)))
    g1 = _resnet_like()
    with pytest.raises(ValueError, match=r"Conv2D: expected input \(N, H, W, 3\)"):
        g1.predict(np.zeros((2, 5, 5, 4), np.float32))
    with pytest.raises(ValueError, match=r"Graph.predict: expected a batch"):
        g1.predict(np.float32(1))


def test_pickle_and_nesting(rng):
    import pickle
    nnc.seed(6)
    g = _resnet_like()
    x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    y = g.predict(x)
    clone = pickle.loads(pickle.dumps(g))
    np.testing.assert_array_equal(clone.predict(x), y)
    block = nnc.Graph([("a", nnc.Dense(4, 4, activation="tanh"), "x"), ("b", nnc.Dense(4, 4), "a"),
                       ("c", nnc.Concat(), ["a", "b"]), ("d", nnc.Dense(8, 4), "c")])
    res = nnc.Residual(block)
    v = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(res.forward(v), block.forward(v) + v)
    res.forward(v, training=True)
    assert res.backward(np.ones((3, 4), np.float32)).shape == (3, 4)


def test_empty_batch(dtype):
    g = _resnet_like(dtype)
    x = np.zeros((0, 5, 5, 3), dtype)
    y = g.forward(x, training=True)
    assert y.shape == (0, 2)
    assert g.backward(np.zeros((0, 2), dtype)).shape == x.shape
    assert all(not np.any(v) for v in g.grads.values())
    assert g.predict(x).shape == (0, 2)


def test_concurrent_predict_is_bitwise_serial(rng):
    from concurrent.futures import ThreadPoolExecutor
    nnc.seed(7)
    g = _resnet_like()
    xs = [rng.standard_normal((n, 5, 6, 3)).astype(np.float32) for n in (1, 3, 1, 5)]
    serial = [g.predict(x) for x in xs]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: (i % 4, g.predict(xs[i % 4])), range(40)))
    for i, y in results:
        np.testing.assert_array_equal(y, serial[i])
