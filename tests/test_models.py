"""Sequential: gradients end to end, predict, fit, summary, save/load, the demo CLI."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

import nnc
from nnc import losses, optim
from nnc.data import load_digits
from helpers import check_layer_grads, numeric_grad


def _mlp(dtype=np.float32, seed=0):
    nnc.seed(seed)
    return nnc.Sequential([
        nnc.Dense(6, 8, activation="tanh", dtype=dtype),
        nnc.Residual(nnc.Dense(8, 8, activation="sigmoid", dtype=dtype), dtype=dtype),
        nnc.Dense(8, 3, dtype=dtype),
    ])


def test_params_keys_and_identity():
    m = _mlp()
    assert list(m.params) == ["0.W", "0.b", "1.block.W", "1.block.b", "2.W", "2.b"] == list(m.grads)
    assert m.params["0.W"] is m.layers[0].params["W"] and m.grads["2.b"] is m.layers[2].grads["b"]
    m.params["2.b"][...] = 7
    assert (m.layers[2].params["b"] == 7).all()


def test_backward_matches_finite_differences(rng):
    check_layer_grads(_mlp(np.float64), rng.standard_normal((5, 6)), rng)


@pytest.mark.parametrize("loss", [losses.SoftmaxCrossEntropy(), losses.MeanSquaredError()])
def test_loss_gradient_end_to_end(loss, rng):
    m = _mlp(np.float64)
    x = rng.standard_normal((4, 6))
    y = rng.integers(0, 3, 4) if isinstance(loss, losses.SoftmaxCrossEntropy) else rng.standard_normal((4, 3))
    loss(m.forward(x, training=True), y)
    dx = m.backward(loss.backward())
    grads = {k: v.copy() for k, v in m.grads.items()}

    def f():
        return loss(m.forward(x), y)

    for k, p in m.params.items():
        for flat in rng.choice(p.size, size=min(5, p.size), replace=False):
            idx = np.unravel_index(flat, p.shape)
            np.testing.assert_allclose(grads[k][idx], numeric_grad(f, p, idx), rtol=1e-5, atol=1e-9, err_msg=k)
    idx = (1, 2)
    np.testing.assert_allclose(dx[idx], numeric_grad(f, x, idx), rtol=1e-5, atol=1e-9)


def test_predict_batch_size_invariant(nthreads, rng):
    m = _mlp()
    x = rng.standard_normal((700, 6)).astype(np.float32)
    full = m.forward(x)
    for bs in (None, 1, 7, 256, 699, 1000):
        np.testing.assert_array_equal(m.predict(x, batch_size=bs), full)
    assert m.predict(x[:0]).shape == (0, 3)
    with pytest.raises(ValueError):
        m.predict(x, batch_size=0)


def _digits_split():
    x, y = load_digits()
    x = x.reshape(len(x), -1)
    return x[:1400], y[:1400], x[1400:], y[1400:]


def test_fit_learns_digits():
    xtr, ytr, xte, yte = _digits_split()
    nnc.seed(3)
    m = nnc.Sequential([nnc.Dense(64, 32, "relu"), nnc.Dense(32, 10)])
    h = m.fit(xtr, ytr, loss="cross_entropy", optimizer="adam", epochs=3, batch_size=32,
              validation_data=(xte, yte), verbose=0)
    assert set(h) == {"loss", "val_loss", "accuracy", "val_accuracy"}
    assert all(len(v) == 3 for v in h.values())
    assert h["loss"][-1] < h["loss"][0]
    acc = np.mean(np.argmax(m.predict(xte), -1) == yte)
    assert acc > 0.6 and h["val_accuracy"][-1] == pytest.approx(acc)


def test_fit_reproducible_with_seed_and_options(rng):
    xtr, ytr, _, _ = _digits_split()
    runs = []
    for _ in range(2):
        nnc.seed(11)
        m = nnc.Sequential([nnc.Dense(64, 10)])
        h = m.fit(xtr[:300], ytr[:300], loss=losses.SoftmaxCrossEntropy(), optimizer=optim.SGD(0.1, 0.9),
                  epochs=2, batch_size=50, verbose=0, metrics=[])
        runs.append((m.params["0.W"].copy(), h))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1] and set(runs[0][1]) == {"loss"}
    nnc.seed(11)
    m = nnc.Sequential([nnc.Dense(64, 10)])
    m.fit(xtr[:300], ytr[:300], loss="cross_entropy", optimizer=optim.SGD(0.1, 0.9), epochs=2, batch_size=50,
          verbose=0, shuffle=False)
    assert not np.array_equal(m.params["0.W"], runs[0][0])
    y = rng.standard_normal((40, 2))
    h = nnc.Sequential([nnc.Dense(3, 2)]).fit(rng.standard_normal((40, 3)), y, loss="mse", verbose=2, epochs=1)
    assert set(h) == {"loss"}


def test_fit_errors(rng):
    m = nnc.Sequential([nnc.Dense(3, 2)])
    x, y = rng.standard_normal((10, 3)), rng.integers(0, 2, 10)
    with pytest.raises(ValueError, match="loss"):
        m.fit(x, y, loss="hinge", verbose=0)
    with pytest.raises(ValueError, match="optimizer"):
        m.fit(x, y, loss="cross_entropy", optimizer="rmsprop", verbose=0)
    with pytest.raises(ValueError, match="samples"):
        m.fit(x, y[:5], loss="cross_entropy", verbose=0)
    with pytest.raises(ValueError, match="metrics"):
        m.fit(x, y, loss="cross_entropy", metrics=["f1"], verbose=0)


def test_fit_progress_bar(capsys, rng):
    nnc.Sequential([nnc.Dense(3, 2)]).fit(rng.standard_normal((20, 3)), rng.integers(0, 2, 20),
                                          loss="cross_entropy", epochs=2, batch_size=5, verbose=1)
    err = capsys.readouterr().err
    assert "Epoch 2/2" in err and "8/8" in err and "loss=" in err


def test_summary(capsys):
    m = _mlp()
    text = m.summary()
    assert capsys.readouterr().out.strip() == text.strip()
    for piece in ("0 Dense", "1 Residual", "2 Dense", "(None, 8)", "(None, 3)", "Total params: 155"):
        assert piece in text
    assert "(None, 5, 3)" in m.summary(input_shape=(5, 6), file=io.StringIO())


def test_config_round_trip_through_json(rng):
    m = _mlp(np.float64)
    cfg = json.loads(json.dumps(m.get_config()))
    assert cfg["layers"][1] == {"class_name": "Residual", "config": m.layers[1].get_config()}
    clone = nnc.Sequential.from_config(cfg)
    assert clone.get_config() == m.get_config() and clone.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip(tmp_path, dtype, rng):
    m = _mlp(dtype)
    m.fit(rng.standard_normal((30, 6)), rng.integers(0, 3, 30), loss="cross_entropy", epochs=1, verbose=0)
    path = tmp_path / "model.nnc"
    m.save(path)
    assert os.listdir(tmp_path) == ["model.nnc"]  # exactly `path`, no ".npz" added, no temp left
    m2 = nnc.load(str(path))
    assert isinstance(m2, nnc.Sequential) and m2.get_config() == m.get_config()
    for k, v in m.params.items():
        assert m2.params[k].dtype == dtype
        np.testing.assert_array_equal(m2.params[k], v)
    x = rng.standard_normal((50, 6))
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))
    with zipfile.ZipFile(path) as z:  # plain .npy arrays of numbers, nothing pickled
        for name in z.namelist():
            assert name.endswith(".npy"), name
            with z.open(name) as f:
                fmt = np.lib.format
                header = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0
                dt = header(f)[2]
            assert not dt.hasobject, f"{name}: dtype {dt} would be pickled"
    with np.load(path, allow_pickle=False) as z:   # raises on a pickled member
        assert all(z[k].dtype != object for k in z.files)


def _rewrite(path, edit):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays["__nnc__"].tobytes())
    edit(arrays, header)
    arrays["__nnc__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _tamper_shape(arrays, header):
    header["model"]["config"]["layers"][0]["config"]["out_features"] = 9


def _tamper_value(arrays, header):
    arrays["p:0.W"] = arrays["p:0.W"] + 1


def _tamper_class(arrays, header):
    header["model"]["config"]["layers"][0]["class_name"] = "os.system"


def _tamper_missing(arrays, header):
    del arrays["p:2.b"]


def _tamper_dtype(arrays, header):
    arrays["p:0.b"] = arrays["p:0.b"].astype(np.float64)


def _tamper_config(arrays, header):
    header["model"]["config"]["layers"][0]["config"]["evil"] = 1


def _tamper_huge(arrays, header):
    header["model"]["config"]["layers"][0]["config"]["in_features"] = 10 ** 12


@pytest.mark.parametrize("edit", [_tamper_shape, _tamper_value, _tamper_class, _tamper_missing, _tamper_dtype,
                                  _tamper_config, _tamper_huge])
def test_load_rejects_tampered_files(tmp_path, edit):
    path = tmp_path / "m.npz"
    _mlp().save(path)
    _rewrite(path, edit)
    with pytest.raises(ValueError, match="nnc.load"):
        nnc.load(path)


@pytest.mark.parametrize("cut", [0, 10, 100, 0.5, -30])
def test_load_rejects_truncated_files(tmp_path, cut):
    path = tmp_path / "m.npz"
    _mlp().save(path)
    data = path.read_bytes()
    n = int(len(data) * cut) if isinstance(cut, float) else (cut if cut >= 0 else len(data) + cut)
    path.write_bytes(data[:n])
    with pytest.raises(ValueError, match="nnc.load"):
        nnc.load(path)


def test_load_rejects_corrupted_and_foreign_files(tmp_path, rng):
    path = tmp_path / "m.npz"
    _mlp().save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # one flipped byte inside the stored arrays
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="nnc.load"):
        nnc.load(path)
    np.save(tmp_path / "a.npy", np.zeros(3))
    np.savez(tmp_path / "b.npz", x=np.zeros(3))
    np.savez(tmp_path / "c.npz", __nnc__=np.array([{"a": 1}], dtype=object))
    (tmp_path / "d.npz").write_bytes(b"not a model at all")
    for name in ("a.npy", "b.npz", "c.npz", "d.npz"):
        with pytest.raises(ValueError, match="nnc.load"):
            nnc.load(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        nnc.load(tmp_path / "missing.npz")


def test_registry_covers_every_exported_layer():
    from nnc.serialization import registry
    reg = registry()
    assert "Layer" not in reg and reg["Sequential"] is nnc.Sequential
    for name in nnc.layers.__all__:
        if name != "Layer":
            assert reg[name] is getattr(nnc.layers, name)


def test_sequential_contract(rng):
    m = _mlp()
    with pytest.raises(RuntimeError):
        m.backward(np.zeros((2, 3)))
    with pytest.raises(TypeError):
        nnc.Sequential([nnc.Dense(2, 2), "relu"])
    with pytest.raises(ValueError):
        nnc.Sequential([]).forward(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"Dense.*\(2, 5\)"):
        m.forward(np.zeros((2, 5)))
    nested = nnc.Sequential([nnc.Sequential([nnc.Dense(2, 3)]), nnc.Dense(3, 1)])
    assert list(nested.params) == ["0.0.W", "0.0.b", "1.W", "1.b"]
    assert nested.predict(rng.standard_normal((4, 2))).shape == (4, 1)


def test_demo_quick(capsys):
    from nnc.__main__ import main
    old = nnc.get_num_threads()
    try:
        assert main(["demo", "--quick", "--threads", "1"]) == 0
    finally:
        nnc.set_num_threads(old)
    out = capsys.readouterr().out
    acc = float(out.split("test accuracy:")[1].split("%")[0])
    assert acc > 60  # chance is 10%
    assert "images/s" in out and "training time" in out
    for name in ("SimpleRNN", "LSTM", "GRU"):
        assert f"{name}: test MSE" in out


def test_cli_help(capsys):
    from nnc.__main__ import main
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    for opt in ("--epochs", "--threads", "--only", "--quick"):
        assert opt in out


@pytest.mark.parametrize("clip", [dict(clip_value=0.05), dict(clip_norm=0.1), dict(clip_value=0.05, clip_norm=0.1)])
def test_fit_clipping_matches_manual_step(clip, rng):
    x, y = rng.standard_normal((16, 6)), rng.integers(0, 3, 16)
    fitted, manual = _mlp(np.float64, seed=5), _mlp(np.float64, seed=5)
    fitted.fit(x, y, loss="cross_entropy", optimizer=optim.SGD(0.5), epochs=1, batch_size=16, shuffle=False,
               verbose=0, **clip)
    loss = losses.SoftmaxCrossEntropy()
    loss(manual.forward(x, training=True), y)
    manual.backward(loss.backward())
    grads = manual.grads
    before = nnc.clip_grad_norm({k: v.copy() for k, v in grads.items()}, np.inf)
    if "clip_value" in clip:  # value first, then norm
        nnc.clip_grad_value(grads, clip["clip_value"])
    if "clip_norm" in clip:
        nnc.clip_grad_norm(grads, clip["clip_norm"])
    after = nnc.clip_grad_norm({k: v.copy() for k, v in grads.items()}, np.inf)
    assert after < before  # the clipping was active
    optim.SGD(0.5).step(manual.params, grads)
    for k, v in manual.params.items():
        np.testing.assert_array_equal(fitted.params[k], v, err_msg=k)


def _small_cnn(dtype=np.float32):
    kw = dict(padding="same", dtype=dtype)
    return nnc.Sequential([
        nnc.Conv2D(1, 4, 3, activation="relu", **kw),
        nnc.Residual(nnc.Sequential([nnc.Conv2D(4, 4, 3, activation="tanh", **kw), nnc.Conv2D(4, 4, 3, **kw)])),
        nnc.MaxPool2D(2, dtype=dtype),
        nnc.DenseBlock(4, 2, 2, dtype=dtype),
        nnc.Residual(nnc.Conv2D(8, 6, 3, stride=2, **kw), shortcut=nnc.Conv2D(8, 6, 1, stride=2, dtype=dtype)),
        nnc.GlobalAvgPool2D(dtype=dtype),
        nnc.Dense(6, 10, dtype=dtype),
    ])


def test_cnn_backward_finite_differences(rng):
    nnc.seed(2)
    check_layer_grads(_small_cnn(np.float64), rng.standard_normal((2, 8, 8, 1)), rng, n_coords=6)


def test_cnn_save_load_and_predict_invariance(tmp_path, rng):
    nnc.seed(4)
    m = _small_cnn()
    x, y = load_digits()
    m.fit(x[:64], y[:64], loss="cross_entropy", epochs=1, verbose=0)
    m.save(tmp_path / "cnn.npz")
    m2 = nnc.load(tmp_path / "cnn.npz")
    assert m2.get_config() == m.get_config()
    ref = m.predict(x[:300])
    for bs in (1, 33, 300):
        np.testing.assert_array_equal(m2.predict(x[:300], batch_size=bs), ref)


class _Twice:
    """A duck-typed user layer (not an nnc.Layer): its backward takes no input_grad."""
    params = grads = {}

    def forward(self, x, training=False):
        return 2 * x

    def backward(self, g):
        return 2 * g

    def get_config(self):
        return {}


@pytest.mark.parametrize("make", [
    lambda dt: nnc.Conv2D(3, 4, 3, padding=1, activation="relu", dtype=dt),
    lambda dt: nnc.Dense(12, 5, activation="tanh", dtype=dt),
    lambda dt: nnc.Residual(nnc.Sequential([nnc.Conv2D(3, 3, 3, padding=1, dtype=dt), _Twice()]),
                            shortcut=nnc.Conv2D(3, 3, 1, dtype=dt), dtype=dt),
    lambda dt: nnc.Sequential([nnc.Conv2D(3, 4, 3, stride=2, padding=1, dtype=dt), nnc.MaxPool2D(2, dtype=dt),
                               nnc.DenseBlock(4, 2, 2, dtype=dt), nnc.GlobalAvgPool2D(dtype=dt),
                               nnc.Dense(8, 2, dtype=dt)]),
    lambda dt: nnc.LSTM(3, 4, dtype=dt),
], ids=["conv", "dense", "residual", "sequential", "lstm"])
def test_backward_without_input_grad_gives_the_same_grads(make, dtype, rng):
    layer = make(dtype)
    shape = {nnc.Dense: (6, 12), nnc.LSTM: (2, 5, 3)}.get(type(layer), (2, 6, 6, 3))
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(layer.forward(x).shape).astype(dtype)
    layer.forward(x, training=True)
    dx = layer.backward(g)
    assert dx.shape == x.shape
    full = {k: v.copy() for k, v in layer.grads.items()}
    for v in layer.grads.values():
        v[...] = np.nan
    layer.forward(x, training=True)
    assert layer.backward(g, input_grad=False) is None
    assert full and list(full) == list(layer.grads)
    for k, v in layer.grads.items():
        np.testing.assert_array_equal(v, full[k], err_msg=k)


def test_pickle_round_trip(rng):
    """Models pickle (Dask and Ray ship them that way): bitwise predictions,
    params and grads kept, a working lock, no training cache carried over."""
    import pickle
    nnc.seed(5)
    m = nnc.Sequential([_small_cnn(), nnc.Dense(10, 3)])
    x = rng.standard_normal((4, 8, 8, 1)).astype(np.float32)
    m.forward(x, training=True)
    m.backward(np.ones((4, 3), np.float32))
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))
    for k in m.params:
        np.testing.assert_array_equal(m2.params[k], m.params[k])
        np.testing.assert_array_equal(m2.grads[k], m.grads[k])
    with pytest.raises(RuntimeError, match="forward"):
        m2.backward(np.ones((4, 3), np.float32))
    m2.forward(x, training=True)
    m2.backward(np.ones((4, 3), np.float32))
    for k in m.grads:
        np.testing.assert_array_equal(m2.grads[k], m.grads[k])
    rnn = nnc.GRU(3, 4, stateful=True)
    seq = rng.standard_normal((2, 5, 3))
    rnn(seq)
    rnn2 = pickle.loads(pickle.dumps(rnn))
    np.testing.assert_array_equal(rnn2(seq), rnn(seq))   # the carried state came along


@pytest.mark.parametrize("kind", ["cnn", "bidirectional"])
def test_pickle_for_inference_leaves_the_gradients_out(kind, rng):
    """dumps_for_inference (what nnc.dask ships): nested blocks included, the
    copy predicts bitwise, its gradients are zeros of the right shapes and
    dtypes, and it trains like the original."""
    import pickle
    from nnc.layers.base import dumps_for_inference
    nnc.seed(6)
    if kind == "cnn":
        m = nnc.Sequential([_small_cnn(np.float64), nnc.Dense(10, 3, dtype=np.float64)])
        x = rng.standard_normal((4, 8, 8, 1))
    else:
        m = nnc.Sequential([nnc.Bidirectional(nnc.LSTM(3, 5, return_sequences=False)), nnc.Dense(10, 3)])
        x = rng.standard_normal((4, 6, 3)).astype(np.float32)
    g = np.ones((4, 3), m.dtype)
    m.forward(x, training=True)
    m.backward(g)
    data = dumps_for_inference(m)
    assert len(data) < len(pickle.dumps(m)) - sum(v.nbytes for v in m.grads.values()) // 2
    clone = pickle.loads(data)
    np.testing.assert_array_equal(clone.predict(x), m.predict(x))
    assert list(clone.grads) == list(m.grads)
    for k, v in clone.grads.items():
        assert v.shape == m.grads[k].shape and v.dtype == m.grads[k].dtype and not v.any(), k
    clone.forward(x, training=True)
    clone.backward(g)
    for k in m.grads:
        np.testing.assert_array_equal(clone.grads[k], m.grads[k], err_msg=k)
    assert pickle.loads(pickle.dumps(m)).grads["0.forward.W_x" if kind != "cnn" else "1.W"].any()


def _plan_of(model, x):
    entry = model.__dict__.get("_plans", {}).get(x.shape)
    return None if entry is None else entry[0]


@pytest.mark.parametrize("n", [1, 3])
def test_inference_plan_replays_the_forward_bitwise(n, dtype, nthreads, rng):
    """Sequential inference replays the recorded kernel calls: the same bits
    as running the layers, for every layer kind a plan can record."""
    nnc.seed(6)
    m = nnc.Sequential([_small_cnn(dtype), nnc.Dense(10, 4, activation="softmax", dtype=dtype),
                        nnc.Flatten(dtype=dtype)])
    m.layers[0].layers.insert(3, nnc.AvgPool2D(2, stride=1, padding=1, dtype=dtype))
    for _ in range(2):
        x = rng.standard_normal((n, 8, 8, 1)).astype(dtype)
        with nnc.threads(nthreads):
            y = m.predict(x)
        assert _plan_of(m, x) is not None
        np.testing.assert_array_equal(y, m._forward_add(x, False, None)[0])


def test_inference_plan_follows_params_and_structure(rng):
    nnc.seed(7)
    m = _small_cnn()
    x = rng.standard_normal((2, 8, 8, 1)).astype(np.float32)
    y0 = m.predict(x)
    plan = _plan_of(m, x)
    assert plan is not None
    head = m.layers[-1]
    head.params["W"] *= 2                          # an in-place edit: the same plan sees it
    np.testing.assert_array_equal(m.predict(x), m._forward_add(x, False, None)[0])
    assert _plan_of(m, x) is plan
    head.params["b"] = head.params["b"] + 1        # a replaced array: a new plan
    y = m.predict(x)
    assert _plan_of(m, x) is not plan
    np.testing.assert_array_equal(y, m._forward_add(x, False, None)[0])
    assert not np.array_equal(y, y0)
    head.params = {k: v.copy() for k, v in head.params.items()}   # a new params dict
    head.params["W"][...] = 0
    np.testing.assert_array_equal(m.predict(x), np.broadcast_to(head.params["b"], (2, 10)))
    m.layers.append(nnc.Dense(10, 2))              # another structure: a new plan
    assert m.predict(x).shape == (2, 2)
    np.testing.assert_array_equal(m.predict(x), m._forward_add(x, False, None)[0])


def test_inference_plan_falls_back(rng, monkeypatch):
    """Models with a layer a plan cannot record, inputs that are not
    C-contiguous arrays of the model's dtype, and forwards with more
    intermediate memory than a plan may keep run layer by layer."""
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    rnn = nnc.Sequential([nnc.LSTM(4, 6), nnc.Dense(6, 2)])
    np.testing.assert_array_equal(rnn.predict(x), rnn.layers[1](rnn.layers[0](x)))
    assert _plan_of(rnn, x) is None
    duck = nnc.Sequential([nnc.Dense(4, 4), _Twice()])
    np.testing.assert_array_equal(duck.predict(x), 2 * duck.layers[0](x))
    assert _plan_of(duck, x) is None
    m = _small_cnn()
    xi = rng.standard_normal((2, 8, 8, 1))
    want = m.predict(xi.astype(np.float32))
    np.testing.assert_array_equal(m.predict(xi), want)                         # float64 in
    xf = np.asfortranarray(xi.astype(np.float32))
    np.testing.assert_array_equal(m.predict(xf), want)                         # F-order
    np.testing.assert_array_equal(m.predict(xi.astype(np.float32).tolist()), want)
    assert m.predict(np.zeros((0, 8, 8, 1), np.float32)).shape == (0, 10)
    x1 = xi[:1].astype(np.float32)
    monkeypatch.setattr(nnc.models, "_PLAN_BYTES", 4 * 8 * 8 * 4 * 2)   # less than the forward's buffers
    np.testing.assert_array_equal(m.predict(x1), want[:1])
    assert _plan_of(m, x1) is None
    monkeypatch.undo()
    big = nnc.Sequential([nnc.Conv2D(1, 4, 3, padding=1), nnc.Flatten()])
    assert _plan_of(big, x1) is None and big.predict(x1) is not None and _plan_of(big, x1) is not None
