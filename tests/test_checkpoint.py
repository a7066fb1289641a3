"""Training checkpoints: a run killed anywhere (between steps, inside a
checkpoint write) and resumed ends bitwise as the uninterrupted run; damaged
files are never used; mismatched data or settings are refused; Ctrl-C."""
import json
import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest

import nnc
from nnc import _config, optim, serialization, training

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "fit_child.py")
ENV = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))


def _child(cfg, tmp_path, name):
    """Run fit_child.py; with cfg["pause"], SIGKILL it where it pauses.
    Returns (params, history, steps it made) of a run that finished, else None."""
    cfg = dict(cfg, out=str(tmp_path / f"{name}.npz"))
    proc = subprocess.Popen([sys.executable, CHILD, json.dumps(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
    try:
        if cfg.get("pause"):
            lines = []
            for line in proc.stdout:
                lines.append(line.strip())
                if line.strip() == "pause":
                    proc.send_signal(signal.SIGKILL)
                    break
            proc.wait(timeout=60)
            assert lines and lines[-1] == "pause", f"{name} did not pause: {lines}\n{proc.stderr.read()}"
            return None
        out, err = proc.communicate(timeout=120)
        steps = sum(line.startswith("batch ") for line in out.splitlines())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 0, err
    with np.load(cfg["out"]) as z:
        history = json.loads(z["history"].tobytes())
        params = {k: z[k] for k in z.files if k.startswith("p:")}
    return params, history, steps


_REFERENCE = {}


def _reference(model, opt, tmp_path):
    """The uninterrupted run (one thread, no checkpoint), once per model and optimiser."""
    key = (model, opt)
    if key not in _REFERENCE:
        _REFERENCE[key] = _child(dict(model=model, opt=opt, threads=1, epochs=3), tmp_path, "reference")
    return _REFERENCE[key]


# Where each case's chain of processes is killed before the last one finishes:
# after a step, inside a checkpoint's write, after its temporary file is
# complete, between its two renames.
KILLS = {
    ("cnn", "sgd"): [("batch", 4), ("write", 2)],
    ("cnn", "adam"): [("batch", 7), ("rename", 2)],
    ("lstm", "sgd"): [("fsync", 3), ("batch", 3)],
    ("lstm", "adam"): [("write", 1), ("rename", 3)],
}


@pytest.mark.parametrize("threads", [1, 2], ids=["t1", "t2"])
@pytest.mark.parametrize("model,opt", list(KILLS), ids=[f"{m}-{o}" for m, o in KILLS])
def test_killed_and_resumed_run_is_bitwise_the_uninterrupted_one(model, opt, threads, tmp_path):
    ref_params, ref_history, ref_steps = _reference(model, opt, tmp_path)
    path = tmp_path / "run.nnc"
    cfg = dict(model=model, opt=opt, threads=threads, epochs=3, checkpoint=str(path), every=2)
    for i, pause in enumerate(KILLS[model, opt]):
        _child(dict(cfg, pause=pause), tmp_path, f"killed{i}")
        temps = [f for f in os.listdir(tmp_path) if f.startswith(".run.nnc.") and f.endswith(".tmp")]
        if pause[0] in ("write", "fsync"):       # the new file was being written: the last one is intact
            assert temps
        if pause[0] == "rename":                 # between the renames only the previous file is there
            assert not path.exists() and (tmp_path / "run.nnc.prev").exists() and temps
    params, history, steps = _child(cfg, tmp_path, "resumed")
    assert 0 < steps < ref_steps == 15          # it continued a checkpoint
    assert history == ref_history
    assert set(params) == set(ref_params)
    for k in params:
        np.testing.assert_array_equal(params[k], ref_params[k], err_msg=k)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]   # a killed write's file is gone


# -- in-process tests: a tiny model --------------------------------------------

def _data(n=40, seed=0):
    g = np.random.default_rng(seed)
    return g.standard_normal((n, 4)).astype(np.float32), g.integers(0, 3, n)


def _model(width=5):
    nnc.seed(7)
    return nnc.Sequential([nnc.Dense(4, width, activation="tanh"), nnc.Dropout(0.2), nnc.Dense(width, 3)])


FIT = dict(loss="cross_entropy", batch_size=8, verbose=0)


def _fit(path=None, epochs=2, model=None, x=None, y=None, **kw):
    model = model or _model()
    x0, y0 = _data()
    kw = {**FIT, "optimizer": optim.Adam(0.01), **kw}
    h = model.fit(x0 if x is None else x, y0 if y is None else y, epochs=epochs, checkpoint=path, **kw)
    return model, h


def _assert_same(a, b):
    ma, ha = a
    mb, hb = b
    assert ha == hb
    for k in ma.params:
        np.testing.assert_array_equal(ma.params[k], mb.params[k], err_msg=k)


def test_more_epochs_on_resume_continue_the_run(tmp_path):
    path = tmp_path / "run.nnc"
    _fit(path, epochs=1)
    model, h = _fit(path, epochs=3, resume=True)
    _assert_same((model, h), _fit(epochs=3))
    assert len(h["loss"]) == 3
    model, h2 = _fit(path, epochs=3, resume=True)        # nothing left to train: the same run
    _assert_same((model, h2), (model, h))
    with pytest.raises(ValueError, match="epoch"):
        _fit(path, epochs=2, resume=True)


def test_resume_without_a_file_starts_fresh_and_checkpoints(tmp_path):
    path = tmp_path / "run.nnc"
    _assert_same(_fit(path, resume=True, checkpoint_every=2), _fit())
    assert sorted(os.listdir(tmp_path)) == ["run.nnc", "run.nnc.prev"]
    model = nnc.load(path)                                # the model, for inference
    x, _ = _data()
    trained, _ = _fit()
    np.testing.assert_array_equal(model.predict(x), trained.predict(x))


def test_a_new_run_replaces_the_files_of_another(tmp_path):
    """Without resume, the old run's files go: a later resume can never fall
    back to them."""
    path = tmp_path / "run.nnc"
    _fit(path, epochs=2)
    assert sorted(os.listdir(tmp_path)) == ["run.nnc", "run.nnc.prev"]
    x, y = _data(32, seed=3)
    _fit(path, epochs=1, x=x, y=y)
    assert os.listdir(tmp_path) == ["run.nnc"]
    assert serialization.read_checkpoint(path)[0]["signature"]["x"][0] == [32, 4]


def _checkpoints(tmp_path):
    """run.nnc (end of epoch 2) and run.nnc.prev (end of epoch 1)."""
    path = tmp_path / "run.nnc"
    _fit(path, epochs=2)
    return path, path.read_bytes(), (tmp_path / "run.nnc.prev").read_bytes()


def test_every_damaged_byte_and_truncation_is_rejected(tmp_path):
    path, good, _ = _checkpoints(tmp_path)
    bad = tmp_path / "bad.nnc"
    bad.write_bytes(good)
    with open(bad, "r+b") as f:      # edited in place: rewriting the file each time is slow
        for off in range(len(good)):
            f.seek(off)
            f.write(bytes([good[off] ^ 0x5A]))
            f.flush()
            with pytest.raises(ValueError, match="bad.nnc"):
                serialization.read_checkpoint(bad)
            f.seek(off)
            f.write(good[off:off + 1])
        f.flush()
        serialization.read_checkpoint(bad)   # intact again
        for cut in range(len(good) - 1, -1, -1):
            f.truncate(cut)
            f.flush()
            with pytest.raises(ValueError, match="bad.nnc"):
                nnc.load(bad)


@pytest.mark.parametrize("damage", ["flip", "truncate", "missing", "empty"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(tmp_path, damage):
    path, good, _ = _checkpoints(tmp_path)
    if damage == "flip":
        data = bytearray(good)
        data[len(data) // 2] ^= 1
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(good[:len(good) - 7])
    elif damage == "missing":       # killed between the two renames of a write
        path.unlink()
    else:
        path.write_bytes(b"")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = _fit(path, epochs=3, resume=True)      # from the end of epoch 1
    fallbacks = [str(w.message) for w in caught if "resuming from the previous checkpoint" in str(w.message)]
    assert len(fallbacks) == (damage != "missing") and all("run.nnc.prev" in m for m in fallbacks)
    _assert_same(resumed, _fit(epochs=3))


def test_no_valid_checkpoint_raises_and_never_starts_fresh(tmp_path):
    path, good, prev = _checkpoints(tmp_path)
    path.write_bytes(good[:-1])
    (tmp_path / "run.nnc.prev").write_bytes(prev[:100])
    with pytest.raises(ValueError, match=r"no valid checkpoint.*run\.nnc.*run\.nnc\.prev"):
        _fit(path, epochs=3, resume=True)
    (tmp_path / "run.nnc.prev").unlink()
    with pytest.raises(ValueError, match="no valid checkpoint"):
        _fit(path, epochs=3, resume=True)
    model = _model()
    model.save(path)                                      # a model file is not a checkpoint
    with pytest.raises(ValueError, match="not a training checkpoint"):
        _fit(path, epochs=3, resume=True)


@pytest.mark.parametrize("change,match", [
    (lambda kw: kw.update(x=_data()[0] * 1), None),
    (lambda kw: kw["x"].__setitem__((3, 1), 0.5), "x differs.*other values"),
    (lambda kw: kw.update(x=_data(41)[0], y=_data(41)[1]), "x differs.*shape"),
    (lambda kw: kw.update(y=_data()[1].astype(np.int32)), "y differs.*dtype"),
    (lambda kw: kw.update(batch_size=4), "batch_size"),
    (lambda kw: kw.update(optimizer=optim.SGD(0.01)), "optimizer"),
    (lambda kw: kw.update(optimizer=optim.Adam(0.01, betas=(0.8, 0.9))), "optimizer"),
    (lambda kw: kw.update(optimizer=optim.Adam(0.5)), None),               # lr: the checkpoint's continues
    (lambda kw: kw.update(loss="mse", y=np.eye(3, dtype=np.float32)[_data()[1]]), "loss"),
    (lambda kw: kw.update(shuffle=False), "shuffle"),
    (lambda kw: kw.update(clip_norm=1.0), "clip_norm"),
    (lambda kw: kw.update(on_nonfinite="skip_batch"), "skip_nonfinite"),
    (lambda kw: kw.update(validation_data=(_data()[0], _data()[1])), "validation_data differs"),
    (lambda kw: kw.update(callbacks=[nnc.EarlyStopping(monitor="loss")]), "callbacks"),
    (lambda kw: kw.update(model=_model(6)), "architecture"),
], ids=["same", "x-values", "x-shape", "y-dtype", "batch", "opt-class", "opt-config", "lr", "loss", "shuffle",
        "clip", "nonfinite", "validation", "callbacks", "architecture"])
def test_resume_refuses_other_data_or_settings(tmp_path, change, match):
    path = tmp_path / "run.nnc"
    _fit(path, epochs=1)
    x, y = _data()
    kw = dict(x=x, y=y)
    change(kw)
    if match is None:
        _fit(path, resume=True, **kw)
    else:
        with pytest.raises(ValueError, match=match):
            _fit(path, resume=True, **kw)


class _Bar:
    """A stand-in progress bar that records its closing."""
    closed = False

    def __init__(self, **kwargs):
        pass

    def set_description(self, *a, **k):
        pass

    set_postfix = update = set_description

    def close(self):
        _Bar.closed = True


class CtrlC(nnc.Callback):
    """Ctrl-C (a SIGINT) after step `at` (from 1; 0: never)."""

    def __init__(self, at):
        self.at, self.steps = at, 0

    def on_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps == self.at:
            signal.raise_signal(signal.SIGINT)


@pytest.mark.parametrize("at", [3, 5, 10])   # mid-epoch, the last batch of epoch 1, epoch 2
def test_ctrl_c_stops_between_steps_writes_a_checkpoint_and_resumes_exactly(tmp_path, monkeypatch, at):
    monkeypatch.setattr(training, "_progress_bar", _Bar)
    _Bar.closed = False
    path = tmp_path / "run.nnc"
    model = _model()
    with pytest.raises(KeyboardInterrupt):
        _fit(path, epochs=3, model=model, callbacks=[CtrlC(at)], verbose=1)
    assert _Bar.closed and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    tree, saved, _ = serialization.read_checkpoint(path)
    assert tree["run"]["epoch"] * 5 + tree["run"]["batch"] == at   # 5 batches per epoch
    for k, v in model.params.items():                               # the model is the checkpoint's
        np.testing.assert_array_equal(v, saved.params[k], err_msg=k)
    resumed = _fit(path, epochs=3, callbacks=[CtrlC(0)], resume=True)
    _assert_same(resumed, _fit(epochs=3, callbacks=[CtrlC(0)]))


def test_second_ctrl_c_inside_a_step_interrupts_at_once_without_writing(tmp_path, monkeypatch):
    """Two Ctrl-C during a forward: the second raises there, in the middle of
    a step, so no checkpoint is written; the last one (epoch 1) stays."""
    monkeypatch.setattr(training, "_progress_bar", _Bar)
    path = tmp_path / "run.nnc"
    model = _model()
    forward, calls = model.forward, [0]

    def forward_with_two_sigints(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 8:                 # epoch 2, batch 3
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        return forward(*args, **kwargs)

    model.forward = forward_with_two_sigints
    with pytest.raises(KeyboardInterrupt):
        _fit(path, epochs=3, model=model)
    assert calls[0] == 8 and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    tree = serialization.read_checkpoint(path)[0]
    assert (tree["run"]["epoch"], tree["run"]["batch"]) == (1, 0)
    _assert_same(_fit(path, epochs=3, resume=True), _fit(epochs=3))


def test_ctrl_c_without_checkpoint_leaves_the_model_after_a_whole_step(monkeypatch):
    monkeypatch.setattr(training, "_progress_bar", _Bar)
    x, y = _data()
    model = _model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=2, callbacks=[CtrlC(2)], optimizer=optim.SGD(0.1), shuffle=False, **FIT)
    steps2 = _model()
    steps2.fit(x[:16], y[:16], epochs=1, optimizer=optim.SGD(0.1), shuffle=False, **FIT)
    for k in model.params:
        np.testing.assert_array_equal(model.params[k], steps2.params[k], err_msg=k)


def test_checkpoint_arguments_are_checked(tmp_path):
    x, y = _data()
    model = _model()
    with pytest.raises(ValueError, match="checkpoint path"):
        model.fit(x, y, resume=True, **FIT)
    with pytest.raises(ValueError, match="checkpoint path"):
        model.fit(x, y, checkpoint_every=2, **FIT)
    with pytest.raises(ValueError, match="checkpoint_every"):
        model.fit(x, y, checkpoint=tmp_path / "a.nnc", checkpoint_every=0, **FIT)
    with pytest.raises(TypeError, match="callbacks"):
        model.fit(x, y, callbacks=[print], **FIT)
    with pytest.raises(ValueError, match="clip_norm"):
        model.fit(x, y, clip_norm=-1.0, **FIT)
    model.fit(x, y, clip_value=np.float32(2), checkpoint=tmp_path / "b.nnc", **FIT)   # stored as JSON numbers
    assert serialization.read_checkpoint(tmp_path / "b.nnc")[0]["signature"]["clip_value"] == 2.0


def test_checkpoint_holds_no_pickle_and_is_a_loadable_model(tmp_path):
    import zipfile
    path = tmp_path / "run.nnc"
    _fit(path, epochs=1, checkpoint_every=3, optimizer=optim.SGD(0.1, momentum=0.9))
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    assert "__nnc__.npy" in names and any(n.startswith("a:s/optimizer/state/0.W") for n in names)
    with np.load(path, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    assert isinstance(nnc.load(path), nnc.Sequential)


def test_stateful_layer_state_is_checkpointed(tmp_path):
    def run(path=None, resume=False, at=0):
        nnc.seed(2)
        model = nnc.Sequential([nnc.GRU(2, 3, stateful=True, return_sequences=False), nnc.Dense(3, 1)])
        g = np.random.default_rng(1)
        x, y = g.standard_normal((16, 4, 2)), g.standard_normal((16, 1))
        h = model.fit(x, y, epochs=2, batch_size=4, loss="mse", verbose=0, checkpoint=path, resume=resume,
                      callbacks=[CtrlC(at)])
        return model, h

    path = tmp_path / "run.nnc"
    with pytest.raises(KeyboardInterrupt):
        run(path, at=6)
    _assert_same(run(path, resume=True), run())


# -- the pieces: optimiser state, RNG state --------------------------------------

@pytest.mark.parametrize("make", [lambda: optim.SGD(0.1, momentum=0.9), lambda: optim.Adam(0.01)])
def test_optimizer_state_dict_continues_bitwise(make, rng):
    params = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(4)]
    a, pa = make(), {k: v.copy() for k, v in params.items()}
    for g in grads:
        a.step(pa, g)
    b, pb = make(), {k: v.copy() for k, v in params.items()}
    for g in grads[:2]:
        b.step(pb, g)
    state = b.state_dict()
    c = make()
    c.load_state_dict(state)
    assert c.state_dict()["lr"] == b.lr and all(x is not y for x, y in zip(c.state["w"], b.state["w"]))
    for g in grads[2:]:
        c.step(pb, g)
    for k in params:
        np.testing.assert_array_equal(pa[k], pb[k])
    with pytest.raises(ValueError, match="load_state_dict"):
        c.load_state_dict({"lr": 0.1})
    with pytest.raises(ValueError, match="load_state_dict"):
        c.load_state_dict({**state, "state": {"w": (np.zeros(3), np.zeros(4))[:c._SLOTS] + (np.zeros(5),)}})


def test_optimizer_lr_is_settable_and_checked():
    opt = optim.SGD(0.1)
    opt.lr = 0.0                      # a schedule may reach 0
    opt.lr = 3e-4
    assert opt.lr == 3e-4 and opt.get_config()["lr"] == 3e-4
    for bad in (-1, float("nan"), "0.1"):
        with pytest.raises((ValueError, TypeError), match="SGD"):
            opt.lr = bad


@pytest.mark.parametrize("bitgen", [None, np.random.MT19937, np.random.Philox])
def test_rng_state_round_trips_through_json(bitgen):
    nnc.seed(5 if bitgen is None else bitgen(5))
    _config.rng().random(3)
    state = json.loads(json.dumps(_config.get_rng_state()))
    want = _config.rng().random(4)
    nnc.seed(99)
    _config.set_rng_state(state)
    np.testing.assert_array_equal(_config.rng().random(4), want)
    with pytest.raises(ValueError, match="set_rng_state"):
        _config.set_rng_state({"bit_generator": "os.system"})
    with pytest.raises(ValueError, match="set_rng_state"):
        _config.set_rng_state({**state, "state": "x"})
