"""Callbacks and learning-rate schedules against hand-computed expectations."""
import csv
import math
import os

import numpy as np
import pytest

import nnc
from nnc import callbacks, optim
from test_checkpoint import CtrlC


def _data(n=24, seed=0):
    g = np.random.default_rng(seed)
    return g.standard_normal((n, 3)), g.standard_normal((n, 2))


def _model():
    nnc.seed(3)
    return nnc.Sequential([nnc.Dense(3, 2, dtype=np.float64)])


class Script(nnc.Callback):
    """Puts scripted values into the epoch logs (before the callbacks after it)."""

    def __init__(self, **series):
        self.series = series

    def on_epoch_end(self, epoch, logs=None):
        for k, v in self.series.items():
            logs[k] = v[epoch]


class Record(nnc.Callback):
    """Records every hook call, the learning rate at each epoch's start and
    a copy of the params at each epoch's end."""

    def __init__(self):
        self.calls, self.lrs, self.weights = [], [], []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))
        self.lrs.append(self.optimizer.lr)

    def on_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, sorted(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs)))
        self.weights.append({k: v.copy() for k, v in self.model.params.items()})

    def on_train_end(self, logs=None):
        self.calls.append(("train_end",))


def _fit(cbs, epochs=6, lr=0.1, batch_size=24, **kw):
    x, y = _data()
    model = _model()
    h = model.fit(x, y, loss="mse", optimizer=optim.SGD(lr), epochs=epochs, batch_size=batch_size, verbose=0,
                  shuffle=False, callbacks=cbs, **kw)
    return model, h


def test_hooks_are_called_in_order_with_logs():
    rec = Record()
    model, h = _fit([rec], epochs=2, batch_size=10, validation_data=_data(5, 1))
    batches = [("batch_end", b, ["loss"]) for b in range(3)]
    end = ["loss", "val_loss"]
    assert rec.calls == [("train_begin",), ("epoch_begin", 0), *batches, ("epoch_end", 0, end),
                         ("epoch_begin", 1), *batches, ("epoch_end", 1, end), ("train_end",)]
    assert rec.model is model and rec.weights[-1]["0.W"].tolist() == model.params["0.W"].tolist()


def test_stop_training_from_a_callback_ends_after_the_epoch():
    class Stop(nnc.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    rec = Record()
    _, h = _fit([Stop(), rec], epochs=5, batch_size=10)
    assert len(h["loss"]) == 1 and rec.calls[-1] == ("train_end",) and len(rec.weights) == 1


@pytest.mark.parametrize("series,kw,stops_at,best", [
    # val_loss per epoch; patience 2: two epochs without a new best after epoch 1 stop at epoch 3
    ([1.0, 0.5, 0.6, 0.55, 0.1, 0.1], dict(patience=2), 3, 1),
    ([1.0, 0.5, 0.6, 0.55, 0.1, 0.1], dict(patience=0), 2, 1),
    # min_delta 0.2: 0.9 is no improvement on 1.0, so patience 1 stops at epoch 1; 0.7 is one
    ([1.0, 0.9, 0.85, 0.7, 0.6, 0.5], dict(patience=1, min_delta=0.2), 1, 0),
    ([1.0, 0.9, 0.85, 0.7, 0.6, 0.5], dict(patience=3, min_delta=0.2), None, 3),
    ([1.0, 0.9, 0.85, 0.7, 0.6, 0.5], dict(patience=5), None, 5),
    # NaN is never a best; the first epoch never stops
    ([np.nan, 1.0, 2.0, 3.0, 4.0, 5.0], dict(patience=1), 2, 1),
])
def test_early_stopping(series, kw, stops_at, best):
    rec = Record()
    stop = nnc.EarlyStopping(monitor="val_loss", restore_best_weights=True, **kw)
    model, h = _fit([Script(val_loss=series), stop, rec])
    assert len(h["loss"]) == (6 if stops_at is None else stops_at + 1)
    assert h["val_loss"] == pytest.approx(series[:len(h["loss"])], nan_ok=True)
    assert stop.stopped_epoch == (stops_at or 0) and stop.best_epoch == best
    for k, v in model.params.items():          # the weights of the best epoch are back
        np.testing.assert_array_equal(v, rec.weights[best][k])


def test_early_stopping_mode_and_missing_key():
    assert nnc.EarlyStopping(monitor="val_accuracy").mode == "max"
    stop = nnc.EarlyStopping(monitor="acc_top", patience=1, mode="auto")
    _, h = _fit([Script(acc_top=[0.1, 0.5, 0.4, 0.3, 0.9, 0.9]), stop])
    assert len(h["loss"]) == 3      # "max": 0.4 after 0.5 stops at epoch 2
    _, h = _fit([nnc.EarlyStopping(monitor="accuracy", mode="max", patience=0)], epochs=4, metrics=["accuracy"])
    acc = h["accuracy"]       # patience 0, "max": the first epoch that is not a new maximum stops
    stop = next((e for e in range(1, len(acc)) if acc[e] <= max(acc[:e])), None)
    assert len(acc) == (4 if stop is None else stop + 1)
    with pytest.warns(RuntimeWarning, match="'nope' is not in the logs"):
        _, h = _fit([nnc.EarlyStopping(monitor="nope")], epochs=3)
    assert len(h["loss"]) == 3
    for bad in (dict(mode="up"), dict(patience=-1), dict(min_delta=math.inf)):
        with pytest.raises(ValueError, match="EarlyStopping"):
            nnc.EarlyStopping(**bad)


def test_model_checkpoint(tmp_path):
    rec = Record()
    pattern = str(tmp_path / "m-{epoch:02d}-{val_loss:.1f}.nnc")
    _fit([Script(val_loss=[0.5, 0.7, 0.4, 0.4, 0.45, 0.1]), nnc.ModelCheckpoint(pattern, save_best_only=True), rec])
    assert sorted(os.listdir(tmp_path)) == ["m-01-0.5.nnc", "m-03-0.4.nnc", "m-06-0.1.nnc"]
    saved = nnc.load(tmp_path / "m-03-0.4.nnc")
    for k, v in saved.params.items():
        np.testing.assert_array_equal(v, rec.weights[2][k])
    every = tmp_path / "every"
    every.mkdir()
    _fit([nnc.ModelCheckpoint(str(every / "last.nnc"))], epochs=2)
    assert os.listdir(every) == ["last.nnc"]


def _lrs(schedule, epochs=6):
    rec = Record()
    _, h = _fit([nnc.LearningRateScheduler(schedule), rec], epochs=epochs, lr=0.5)
    assert h["lr"] == rec.lrs      # the rate in use, in the history
    return rec.lrs


@pytest.mark.parametrize("schedule,want", [
    (nnc.StepDecay(0.1, 2), [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]),
    (nnc.StepDecay(0.1, 1, factor=0.1), [0.1, 0.01, 0.001, 1e-4, 1e-5, 1e-6]),
    (nnc.ExponentialDecay(0.1, 2, 0.5), [0.1, 0.1 * 0.5 ** 0.5, 0.05, 0.05 * 0.5 ** 0.5, 0.025, 0.025 * 0.5 ** 0.5]),
    (nnc.ExponentialDecay(0.1, 2, 0.5, staircase=True), [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]),
    # 0.1 * (0.9 * (1 + cos(pi * e / 4)) / 2 + 0.1), constant after epoch 4
    (nnc.CosineDecay(0.1, 4, alpha=0.1), [0.1, 0.08681980515339464, 0.055, 0.023180194846605358, 0.01, 0.01]),
    (nnc.CosineDecay(0.2, 2), [0.2, 0.1, 0.0, 0.0, 0.0, 0.0]),
    (nnc.WarmUp(0.1, 3), [0.025, 0.05, 0.075, 0.1, 0.1, 0.1]),
    (nnc.WarmUp(nnc.StepDecay(0.1, 1, 0.5), 2, start_lr=0.01), [0.04, 0.07, 0.1, 0.05, 0.025, 0.0125]),
    (lambda epoch: 0.1 / (epoch + 1), [0.1, 0.05, 0.1 / 3, 0.025, 0.02, 0.1 / 6]),
    (lambda epoch, lr: lr * 0.5, [0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125]),
], ids=["step", "step-0.1", "exp", "exp-stair", "cosine", "cosine-0", "warmup", "warmup-step", "fn1", "fn2"])
def test_schedules(schedule, want):
    assert _lrs(schedule) == pytest.approx(want, rel=1e-9, abs=1e-15)


def test_scheduled_rates_are_the_ones_the_steps_use():
    """One full batch per epoch, plain SGD: W_{e+1} = W_e - lr_e * dL/dW."""
    x, y = _data()
    schedule = nnc.StepDecay(0.2, 1, 0.5)
    fitted, _ = _fit([nnc.LearningRateScheduler(schedule)], epochs=3)
    manual = _model()
    loss = nnc.losses.MeanSquaredError()
    for e in range(3):
        loss(manual.forward(x, training=True), y)
        manual.backward(loss.backward())
        optim.SGD(schedule(e)).step(manual.params, manual.grads)
    for k, v in manual.params.items():
        np.testing.assert_array_equal(fitted.params[k], v)


def test_schedule_errors():
    for make in (lambda: nnc.StepDecay(0.1, 0), lambda: nnc.ExponentialDecay(-1, 1, 0.5),
                 lambda: nnc.CosineDecay(0.1, 2, alpha=2), lambda: nnc.WarmUp(0.1, 0),
                 lambda: nnc.ReduceLROnPlateau(factor=1.0), lambda: nnc.ReduceLROnPlateau(factor=0)):
        with pytest.raises(ValueError):
            make()
    with pytest.raises(TypeError):
        nnc.LearningRateScheduler(0.1)
    with pytest.raises(ValueError, match="LearningRateScheduler.*epoch 2"):
        _fit([nnc.LearningRateScheduler(lambda e: 0.1 if e == 0 else -1.0)], epochs=3)
    assert "StepDecay(initial_lr=0.1, step_epochs=2, factor=0.5)" == repr(nnc.StepDecay(0.1, 2))


def test_reduce_lr_on_plateau():
    # patience 2, cool-down 1: epoch 3 is the second without a new best (0.9): lr halves; epoch 4 is
    # the cool-down; 0.5 is a new best at epoch 5; epochs 6 and 7 without one: lr halves again.
    series = [1.0, 0.9, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7, 0.8]
    cb = nnc.ReduceLROnPlateau(patience=2, factor=0.5, cooldown=1, min_delta=0.0)
    rec = Record()
    _, h = _fit([Script(val_loss=series), cb, rec], epochs=9)
    assert h["lr"] == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025]   # logged before the epoch's change
    assert rec.lrs == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025]
    cb = nnc.ReduceLROnPlateau(patience=1, factor=0.1, min_lr=0.02)
    rec = Record()
    _fit([Script(val_loss=[1.0] * 5), cb, rec], epochs=5)
    assert rec.lrs == pytest.approx([0.1, 0.1, 0.02, 0.02, 0.02])


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    _, h = _fit([nnc.CSVLogger(path)], epochs=3, validation_data=_data(5, 1))
    rows = _rows(path)
    assert rows[0] == ["epoch", "loss", "val_loss"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2]
    assert [float(r[1]) for r in rows[1:]] == h["loss"] and [float(r[2]) for r in rows[1:]] == h["val_loss"]
    _fit([nnc.CSVLogger(path, append=True)], epochs=2, validation_data=_data(5, 1))
    assert len(_rows(path)) == 6 and _rows(path)[4][0] == "0"
    _fit([nnc.CSVLogger(path, separator=";")], epochs=1)
    assert _rows(path) == [["epoch;loss"], [f"0;{_rows(path)[1][0].split(';')[1]}"]]


def test_callback_state_is_checkpointed_and_resumed(tmp_path):
    """An interrupted run with every stateful callback resumes to the
    uninterrupted run's history, weights and CSV file, even when the killed
    process had logged an epoch its checkpoint does not hold."""
    x, y = _data(40)
    xv, yv = _data(8, 2)

    def run(at, path=None, log="log.csv"):
        model = _model()
        cbs = [CtrlC(at), nnc.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True),
               nnc.ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5, min_delta=0.5),
               nnc.LearningRateScheduler(lambda e, lr: lr * 0.9), nnc.CSVLogger(tmp_path / log)]
        h = model.fit(x, y, loss="mse", optimizer=optim.Adam(0.05), epochs=8, batch_size=8, verbose=0,
                      validation_data=(xv, yv), callbacks=cbs, checkpoint=path, resume=path is not None)
        return model, h, cbs

    ref_model, ref_h, ref_cbs = run(0, log="ref.csv")
    path = tmp_path / "run.nnc"
    with pytest.raises(KeyboardInterrupt):
        run(17, path)                               # in epoch 4
    with open(tmp_path / "log.csv", "a") as f:      # a row logged after the checkpoint, then killed
        f.write("3,9,9,9,9\n")
    model, h, cbs = run(0, path)
    assert h == ref_h and "lr" in h
    for k in model.params:
        np.testing.assert_array_equal(model.params[k], ref_model.params[k])
    assert (tmp_path / "log.csv").read_text() == (tmp_path / "ref.csv").read_text()
    assert cbs[1].stopped_epoch == ref_cbs[1].stopped_epoch and cbs[2].wait == ref_cbs[2].wait


def test_callbacks_module_exports():
    for name in callbacks.__all__:
        assert getattr(nnc, name) is getattr(callbacks, name)
