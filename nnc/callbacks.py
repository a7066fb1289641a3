"""Callbacks of ``fit(..., callbacks=[...])`` and learning-rate schedules,
with Keras's names.

A callback's hooks run at fixed points of the training loop; its
``state_dict()`` is stored in ``fit``'s checkpoints so that a resumed run
continues it exactly.  Epochs and batches are numbered from 0 in the hooks'
arguments (as in Keras) and from 1 in messages and file names.
"""
import inspect
import math
import numbers
import os
import warnings

from ._validation import pos_int

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler", "ReduceLROnPlateau",
           "CSVLogger", "StepDecay", "ExponentialDecay", "CosineDecay", "WarmUp"]


def _number(value, name, where, minimum=None, maximum=None, low_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number {name}, received: {name}={value!r}")
    v = float(value)
    if minimum is not None and (v < minimum or (low_open and v == minimum)):
        raise ValueError(f"{where}: expected {name} {'>' if low_open else '>='} {minimum}, received: {name}={value!r}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{where}: expected {name} <= {maximum}, received: {name}={value!r}")
    return v


class Callback:
    """Base class of the callbacks: every hook does nothing.

    ``fit`` sets :attr:`model`, :attr:`optimizer` and :attr:`params`, then
    calls ``on_train_begin``; for every epoch ``on_epoch_begin``, after every
    optimiser step ``on_batch_end``, after the epoch (and its validation)
    ``on_epoch_end``; at the end ``on_train_end``.  ``logs`` is a dict:
    at a batch's end the epoch's running ``"loss"`` (and ``"accuracy"``), at
    an epoch's end the values that go into the history (``"loss"``,
    ``"val_loss"``, ...); a callback may add entries to it (they go into the
    history too).  Setting ``model.stop_training = True`` ends the training
    after the current epoch.

    A callback whose state matters for continuing a run (counters, best
    values) returns it from :meth:`state_dict` (JSON data and NumPy arrays);
    a resumed ``fit`` calls :meth:`load_state_dict` with it after
    ``on_train_begin``.

    Attributes
    ----------
    model : Model
        The model being trained.
    optimizer : Optimizer
        Its optimiser (``optimizer.lr`` may be set between steps).
    params : dict
        ``{"epochs": ..., "steps": batches per epoch, "verbose": ...}``.
    """

    model = None
    optimizer = None
    params = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def state_dict(self):
        """What a checkpoint must store to continue this callback: a dict of
        JSON data and NumPy arrays ({} when there is nothing)."""
        return {}

    def load_state_dict(self, state):
        """Continue from a :meth:`state_dict`."""


class _Monitor(Callback):
    """A callback watching one logs entry for improvements."""

    def __init__(self, monitor, mode, min_delta, where):
        if not isinstance(monitor, str):
            raise TypeError(f"{where}: expected a logs key as monitor, received: monitor={monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{where}: expected mode 'auto', 'min' or 'max', received: mode={mode!r}")
        self.monitor = monitor
        self.mode = mode if mode != "auto" else ("max" if "acc" in monitor else "min")
        self.min_delta = abs(_number(min_delta, "min_delta", where))
        self.best = None
        self._warned = False

    def _reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf

    def _current(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None and not self._warned:
            self._warned = True
            warnings.warn(f"{type(self).__name__}: {self.monitor!r} is not in the logs "
                          f"(available: {sorted(logs or {})}); the callback does nothing", RuntimeWarning,
                          stacklevel=3)
        return value

    def _improved(self, current):
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def state_dict(self):
        return {"best": self.best}

    def load_state_dict(self, state):
        self.best = float(state["best"])


class EarlyStopping(_Monitor):
    """Stop training when the monitored value has stopped improving.

    After each epoch, the value improves when it is below ``best -
    min_delta`` (``mode="min"``; above ``best + min_delta`` for ``"max"``);
    after ``patience`` epochs in a row without improvement (and never after
    the first epoch), training stops.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A logs / history key.
    min_delta : float, default 0
    patience : int, default 0
    mode : {"auto", "min", "max"}, default "auto"
        ``"auto"``: ``"max"`` when the key contains ``"acc"``, else ``"min"``.
    restore_best_weights : bool, default False
        At the end of training, put back the weights of the best epoch.

    Attributes
    ----------
    best, wait, stopped_epoch, best_epoch
        The best value so far, the epochs since it, the epoch (from 0) that
        stopped the training (0: none) and the best epoch.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto", restore_best_weights=False):
        super().__init__(monitor, mode, min_delta, "EarlyStopping")
        self.patience = pos_int(patience, "patience", "EarlyStopping", minimum=0)
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, logs=None):
        self._reset()
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self._current(logs)
        if current is None:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = {k: v.copy() for k, v in self.model.params.items()}
            self.best_epoch = epoch
        self.wait += 1
        if self._improved(current):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: v.copy() for k, v in self.model.params.items()}
        elif self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            for k, v in self.model.params.items():
                v[...] = self.best_weights[k]

    def state_dict(self):
        return {**super().state_dict(), "wait": self.wait, "stopped_epoch": self.stopped_epoch,
                "best_epoch": self.best_epoch, "best_weights": self.best_weights}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.wait, self.stopped_epoch, self.best_epoch = (int(state[k]) for k in ("wait", "stopped_epoch",
                                                                                  "best_epoch"))
        self.best_weights = state["best_weights"]


class ModelCheckpoint(_Monitor):
    """Save the model (:meth:`~nnc.Sequential.save`) after each epoch, or
    only when the monitored value improved.

    Parameters
    ----------
    filepath : str or os.PathLike
        May hold ``{epoch}`` (from 1) and logs keys, e.g.
        ``"model-{epoch:02d}-{val_loss:.3f}.nnc"``.
    monitor : str, default "val_loss"
    save_best_only : bool, default False
        Save only when ``monitor`` improved (and then overwrite the file).
    mode : {"auto", "min", "max"}, default "auto"
    min_delta : float, default 0
    """

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto", min_delta=0.0):
        super().__init__(monitor, mode, min_delta, "ModelCheckpoint")
        self.filepath = os.fspath(filepath)
        self.save_best_only = bool(save_best_only)

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            current = self._current(logs)
            if current is None or not self._improved(current):
                return
            self.best = current
        self.model.save(self.filepath.format(epoch=epoch + 1, **logs))


def _call_schedule(schedule, where):
    """schedule as a function of (epoch, lr): Keras's two-argument form, or
    a one-argument function of the epoch."""
    if not callable(schedule):
        raise TypeError(f"{where}: expected a callable schedule, received: {schedule!r}")
    try:
        inspect.signature(schedule).bind(0, 0.0)
        return schedule
    except TypeError:
        return lambda epoch, lr: schedule(epoch)
    except ValueError:   # no signature (a builtin): call it with the epoch
        return lambda epoch, lr: schedule(epoch)


class LearningRateScheduler(Callback):
    """Set the optimiser's learning rate at the beginning of every epoch to
    ``schedule(epoch, lr)`` (or ``schedule(epoch)``), epoch from 0.

    ``schedule`` is one of the schedules below or any function; the rate
    in use is added to the logs (and the history) as ``"lr"``.

    Parameters
    ----------
    schedule : callable
    """

    def __init__(self, schedule):
        self.schedule = schedule
        self._fn = _call_schedule(schedule, "LearningRateScheduler")

    def on_epoch_begin(self, epoch, logs=None):
        lr = self._fn(epoch, self.optimizer.lr)
        self.optimizer.lr = _number(lr, "lr", f"LearningRateScheduler (epoch {epoch + 1})", minimum=0)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = self.optimizer.lr


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` when the monitored value has
    not improved for ``patience`` epochs (Keras's rule).

    After each epoch: during a cool-down, count it down and reset the
    wait; an improvement (beyond ``min_delta``) resets the wait; otherwise,
    outside a cool-down, the wait grows and, on reaching ``patience``,
    ``lr = max(lr * factor, min_lr)`` (when ``lr > min_lr``), the wait
    restarts and a cool-down of ``cooldown`` epochs begins.  The rate is
    added to the logs as ``"lr"``.

    Parameters
    ----------
    monitor : str, default "val_loss"
    factor : float, default 0.1
        In (0, 1).
    patience : int, default 10
    mode : {"auto", "min", "max"}, default "auto"
    min_delta : float, default 1e-4
    cooldown : int, default 0
    min_lr : float, default 0
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, mode="auto", min_delta=1e-4, cooldown=0,
                 min_lr=0.0):
        where = "ReduceLROnPlateau"
        super().__init__(monitor, mode, min_delta, where)
        self.factor = _number(factor, "factor", where, minimum=0, maximum=1, low_open=True)
        if self.factor == 1:
            raise ValueError(f"{where}: expected factor < 1, received: factor={factor!r}")
        self.patience = pos_int(patience, "patience", where, minimum=0)
        self.cooldown = pos_int(cooldown, "cooldown", where, minimum=0)
        self.min_lr = _number(min_lr, "min_lr", where, minimum=0)

    def on_train_begin(self, logs=None):
        self._reset()
        self.wait = self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["lr"] = self.optimizer.lr
        current = self._current(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and self.optimizer.lr > self.min_lr:
                self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
                self.cooldown_counter, self.wait = self.cooldown, 0

    def state_dict(self):
        return {**super().state_dict(), "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.wait, self.cooldown_counter = int(state["wait"]), int(state["cooldown_counter"])


class CSVLogger(Callback):
    """Write one row per epoch to a CSV file: ``epoch`` (from 0, as Keras)
    then the logs in key order, every float at full precision.

    A resumed ``fit`` keeps the rows of the epochs the checkpoint had
    finished and drops any written after it, so the file ends as the one of
    an uninterrupted run.

    Parameters
    ----------
    filename : str or os.PathLike
    separator : str, default ","
    append : bool, default False
        Append to an existing file (without a second header) instead of
        overwriting it.
    """

    def __init__(self, filename, separator=",", append=False):
        self.filename = os.fspath(filename)
        self.separator = str(separator)
        self.append = bool(append)
        self._rows, self._keep, self._started = 0, None, False

    def on_train_begin(self, logs=None):
        self._rows, self._keep, self._started = 0, None, False

    def _start(self):
        """The file as this fit's first row finds it: the kept rows of a
        resumed run, the existing rows when appending, else empty."""
        exists = os.path.exists(self.filename)
        if self._keep is not None and exists:
            with open(self.filename, encoding="utf-8") as f:
                lines = f.readlines()[:self._keep + 1]   # the header and the kept rows
        elif self.append and exists:
            with open(self.filename, encoding="utf-8") as f:
                self._rows = max(sum(1 for _ in f) - 1, 0)
            return
        else:
            lines = []
        with open(self.filename, "w", encoding="utf-8") as f:
            f.writelines(lines)
        self._rows = max(len(lines) - 1, 0)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not self._started:
            self._start()
            self._started = True
        keys = sorted(logs)
        with open(self.filename, "a", encoding="utf-8") as f:   # closed after each row: nothing left open
            if f.tell() == 0:
                f.write(self.separator.join(["epoch", *keys]) + "\n")
            f.write(self.separator.join([str(epoch), *(repr(logs[k]) for k in keys)]) + "\n")
        self._rows += 1

    def state_dict(self):
        return {"rows": self._rows}

    def load_state_dict(self, state):
        self._keep = self._rows = int(state["rows"])


# -- learning-rate schedules: lr as a function of the epoch (from 0) ----------

class _Schedule:
    def __call__(self, epoch, lr=None):
        return self._lr(pos_int(epoch, "epoch", type(self).__name__, minimum=0))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class StepDecay(_Schedule):
    """``initial_lr * factor ** (epoch // step_epochs)``: the rate drops by
    ``factor`` every ``step_epochs`` epochs.

    Parameters
    ----------
    initial_lr : float
    step_epochs : int
    factor : float, default 0.5
    """

    def __init__(self, initial_lr, step_epochs, factor=0.5):
        self.initial_lr = _number(initial_lr, "initial_lr", "StepDecay", minimum=0)
        self.step_epochs = pos_int(step_epochs, "step_epochs", "StepDecay")
        self.factor = _number(factor, "factor", "StepDecay", minimum=0)

    def _lr(self, epoch):
        return self.initial_lr * self.factor ** (epoch // self.step_epochs)


class ExponentialDecay(_Schedule):
    """``initial_lr * decay_rate ** (epoch / decay_epochs)`` (with
    ``staircase=True`` the exponent is ``epoch // decay_epochs``), Keras's
    ``ExponentialDecay`` counted in epochs.

    Parameters
    ----------
    initial_lr : float
    decay_epochs : int
    decay_rate : float
    staircase : bool, default False
    """

    def __init__(self, initial_lr, decay_epochs, decay_rate, staircase=False):
        self.initial_lr = _number(initial_lr, "initial_lr", "ExponentialDecay", minimum=0)
        self.decay_epochs = pos_int(decay_epochs, "decay_epochs", "ExponentialDecay")
        self.decay_rate = _number(decay_rate, "decay_rate", "ExponentialDecay", minimum=0)
        self.staircase = bool(staircase)

    def _lr(self, epoch):
        p = epoch // self.decay_epochs if self.staircase else epoch / self.decay_epochs
        return self.initial_lr * self.decay_rate ** p


class CosineDecay(_Schedule):
    """``initial_lr * ((1 - alpha) * (1 + cos(pi * t)) / 2 + alpha)`` with
    ``t = min(epoch, decay_epochs) / decay_epochs``: from ``initial_lr``
    down to ``alpha * initial_lr`` at ``decay_epochs``, then constant
    (Keras's ``CosineDecay`` counted in epochs).

    Parameters
    ----------
    initial_lr : float
    decay_epochs : int
    alpha : float, default 0
    """

    def __init__(self, initial_lr, decay_epochs, alpha=0.0):
        self.initial_lr = _number(initial_lr, "initial_lr", "CosineDecay", minimum=0)
        self.decay_epochs = pos_int(decay_epochs, "decay_epochs", "CosineDecay")
        self.alpha = _number(alpha, "alpha", "CosineDecay", minimum=0, maximum=1)

    def _lr(self, epoch):
        t = min(epoch, self.decay_epochs) / self.decay_epochs
        return self.initial_lr * ((1 - self.alpha) * 0.5 * (1 + math.cos(math.pi * t)) + self.alpha)


class WarmUp(_Schedule):
    """A linear warm-up before another schedule: for ``epoch <
    warmup_epochs``, ``start_lr + (peak - start_lr) * (epoch + 1) /
    (warmup_epochs + 1)`` with ``peak = after(0)``; from then on
    ``after(epoch - warmup_epochs)``.

    Parameters
    ----------
    after : float or schedule
        The rate (or the schedule, called with the epochs since the
        warm-up) once warmed up.
    warmup_epochs : int
    start_lr : float, default 0
        The rate the ramp starts from (the first epoch already gets
        ``1 / (warmup_epochs + 1)`` of the way).
    """

    def __init__(self, after, warmup_epochs, start_lr=0.0):
        if isinstance(after, numbers.Real) and not isinstance(after, bool):
            after = StepDecay(after, 1, 1.0)
        self.after = after
        self._after = _call_schedule(after, "WarmUp")
        self.warmup_epochs = pos_int(warmup_epochs, "warmup_epochs", "WarmUp")
        self.start_lr = _number(start_lr, "start_lr", "WarmUp", minimum=0)

    def _lr(self, epoch):
        if epoch >= self.warmup_epochs:
            return self._after(epoch - self.warmup_epochs, None)
        peak = self._after(0, None)
        return self.start_lr + (peak - self.start_lr) * (epoch + 1) / (self.warmup_epochs + 1)

