"""The training loop of ``Model.fit``: mini-batch steps, callbacks,
checkpoints and their exact resume, the non-finite guard, Ctrl-C.

A checkpoint is written only between two optimiser steps and holds all
that the rest of the run depends on: the parameters, the optimiser's state,
the library RNG's state, the position (epoch, batches done and the epoch's
sample order), the running sums of the epoch, the history, the callbacks'
states and the recurrent state of stateful layers.  Resuming from it
therefore continues the very same sequence of operations, and the run ends
bitwise as one that was never interrupted (nnc's results do not depend on
the thread count).
"""
import glob
import hashlib
import json
import math
import operator
import os
import signal
import sys
import threading
import warnings

import numpy as np

from . import _config, _core, losses, optim, serialization
from ._validation import pos_int, shape_str
from .callbacks import Callback
from .clip import _threshold, clip_grad_norm, clip_grad_value
from .layers.registry import layer_to_config

_PREDICT_BATCH = 256
_ON_NONFINITE = ("raise", "skip_batch")
_SUMSQ = {np.dtype(np.float32): _core.sumsq["float"], np.dtype(np.float64): _core.sumsq["double"]}


def _batch_lengths(lengths, n, where):
    """lengths as an array of shape (n,) (each layer checks its values), or None."""
    if lengths is None:
        return None
    a = np.asarray(lengths)
    if a.shape != (n,):
        raise ValueError(f"{where}: expected lengths of shape ({n},) (one per sample), got {shape_str(a.shape)}")
    return a


def _chunk(lengths, *rows):
    """forward()'s keyword arguments for the batch rows ``rows`` (an index
    array, or a range start, stop) of lengths."""
    if lengths is None:
        return {}
    return {"lengths": lengths[rows[0]] if len(rows) == 1 else lengths[rows[0]:rows[1]]}


def _take(x, idx):
    """The rows ``idx`` of fit's inputs: of the array, or of each array of a
    dict of them (a model with several inputs)."""
    return {k: v[idx] for k, v in x.items()} if isinstance(x, dict) else x[idx]


def _samples(x):
    """The number of samples of fit's inputs (a dict's arrays share it)."""
    return next(iter(x.values())).shape[0] if isinstance(x, dict) else x.shape[0]


def _progress_bar(**kwargs):
    """fit's tqdm progress bar.  tqdm.auto is imported here, when a fit first
    needs it, not with nnc: it costs about 40 ms (it probes for Jupyter)."""
    from tqdm.auto import tqdm
    return tqdm(**kwargs)


def _accuracy(pred, target, loss):
    """Number of correct predictions and of predictions in the batch."""
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.ndim >= 2 and pred.shape[-1] > 1 and not isinstance(loss, losses.BinaryCrossEntropy):
        guess = np.argmax(pred, axis=-1)
        truth = np.argmax(target, axis=-1) if target.shape == pred.shape else target.reshape(guess.shape)
        return int(np.count_nonzero(guess == truth)), guess.size
    threshold = 0.0 if getattr(loss, "from_logits", False) else 0.5
    return int(np.count_nonzero((pred > threshold) == (target.reshape(pred.shape) > 0.5))), pred.size


# -- the non-finite guard -----------------------------------------------------

def _sumsq(grads):
    """Sum of the squares of every gradient element: one C reduction per
    float32/float64 array (NaN or Inf in any element makes it non-finite)."""
    total = 0.0
    for a in grads:
        fn = _SUMSQ.get(a.dtype)   # the kernel of that dtype, without the fused-type dispatch
        if fn is not None:
            try:
                total += fn(a.reshape(-1))
                continue
            except ValueError:     # not contiguous
                pass
        total += float(np.sum(np.square(a, dtype=np.float64)))   # a duck-typed layer's other dtype or layout
    return total


class _GradSumsq:
    """_sumsq of a model's gradients through flat views made once: layers
    keep their gradient arrays from one step to the next (checked by
    identity at every call), which halves the guard's cost."""

    def __init__(self):
        self._arrays = None

    def __call__(self, grads):
        if self._arrays is None or len(self._arrays) != len(grads) \
                or not all(map(operator.is_, grads.values(), self._arrays)):
            arrays = list(grads.values())
            fns = {_SUMSQ.get(a.dtype) for a in arrays}
            self._fn = fns.pop() if len(fns) == 1 and all(a.flags.c_contiguous for a in arrays) else None
            self._flat = [a.reshape(-1) for a in arrays] if self._fn is not None else None   # views
            self._arrays = arrays
        return sum(map(self._fn, self._flat)) if self._fn is not None else _sumsq(self._arrays)


def _nonfinite_key(grads):
    """The first params key whose gradient holds NaN or Inf, else None (a
    sum of squares that overflowed on finite values)."""
    return next((k for k, g in grads.items() if not np.isfinite(np.asarray(g)).all()), None)


# -- Ctrl-C -------------------------------------------------------------------

class _DeferredInterrupt:
    """While fit runs (in the main thread, under Python's default SIGINT
    handler), Ctrl-C sets ``pending`` and fit raises KeyboardInterrupt at the
    next point between two steps; a second Ctrl-C interrupts at once."""

    def __enter__(self):
        self.pending = False
        self._handler = None
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._handler = self._on_sigint
            signal.signal(signal.SIGINT, self._handler)
        return self

    def _on_sigint(self, signum, frame):
        self.pending = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc):
        if self._handler is not None and signal.getsignal(signal.SIGINT) == self._handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)


# -- checkpoint contents ------------------------------------------------------

def _split(obj, arrays, path="s"):
    """obj as JSON data, its NumPy arrays moved to ``arrays`` under their
    path and replaced by ``{"__array__": name}``."""
    if isinstance(obj, np.ndarray):
        arrays[path] = obj
        return {"__array__": path}
    if isinstance(obj, dict):
        return {str(k): _split(v, arrays, f"{path}/{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split(v, arrays, f"{path}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _join(obj, arrays):
    """The inverse of _split."""
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        return {k: _join(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, arrays) for v in obj]
    return obj


def _data_id(a):
    """[shape, dtype, SHA-256 of the bytes] of an array (None for None; for a
    dict of arrays, the model's several inputs, a dict of them)."""
    if a is None:
        return None
    if isinstance(a, dict):
        return {k: _data_id(v) for k, v in a.items()}
    return [list(a.shape), a.dtype.str, hashlib.sha256(np.ascontiguousarray(a)).hexdigest()]


def _plain(obj):
    """obj as it reads back from JSON (tuples as lists)."""
    return json.loads(json.dumps(obj))


class _Run:
    """A fit's position and running sums: with the model, the optimiser,
    the RNG and the callbacks, the whole state of the training."""

    def __init__(self, history):
        self.epoch = 0          # the current epoch (from 0)
        self.batch = 0          # batches of it done
        self.order = None       # its sample order; None before it begins
        self.total = 0.0        # sum of batch loss * batch rows
        self.seen = 0           # rows of the batches stepped (skipped ones are not)
        self.correct = 0
        self.count = 0
        self.history = history
        self.stopped = False
        self.safe = True        # between two steps: a checkpoint may be written

    _FIELDS = ("epoch", "batch", "total", "seen", "correct", "count", "history", "stopped")

    def new_epoch(self, order):
        self.batch, self.order, self.total, self.seen, self.correct, self.count = 0, order, 0.0, 0, 0, 0


class _Trainer:
    """One call of fit: its validated arguments and its run."""

    def __init__(self, model, x, y, loss, optimizer, epochs, batch_size, validation_data, clip_value, clip_norm,
                 verbose, shuffle, metrics, callbacks, checkpoint, checkpoint_every, resume, on_nonfinite,
                 lengths=None):
        self.where = where = f"{type(model).__name__}.fit"
        self.model = model
        self.loss = losses.get(loss)
        self.opt = optim.get(optimizer)
        self.epochs = pos_int(epochs, "epochs", where, minimum=0)
        self.batch_size = pos_int(batch_size, "batch_size", where)
        if metrics == "auto":
            metrics = [] if isinstance(self.loss, losses.MeanSquaredError) else ["accuracy"]
        metrics = list(metrics or [])
        if any(m != "accuracy" for m in metrics):
            raise ValueError(f"{where}: unknown metrics {metrics!r}; supported: ['accuracy']")
        self.want_acc = "accuracy" in metrics
        self.x, self.y = model._fit_inputs(x, where), np.asarray(y)
        if isinstance(self.x, dict):
            x_shapes = ", ".join(f"{k} {shape_str(v.shape)}" for k, v in self.x.items())
        else:
            x_shapes = shape_str(self.x.shape)
        if not isinstance(self.x, dict) and self.x.ndim < 1 or self.y.ndim < 1 or _samples(self.x) != self.y.shape[0]:
            raise ValueError(f"{where}: x and y must have the same number of samples, "
                             f"got {x_shapes} and {shape_str(self.y.shape)}")
        self.lengths = _batch_lengths(lengths, self.y.shape[0], where)
        self.val = self.val_lengths = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(f"{where}: validation_data must be a pair (x_val, y_val) or a triple "
                                 f"(x_val, y_val, lengths_val)")
            self.val = (model._fit_inputs(validation_data[0], f"{where}: validation_data"),
                        np.asarray(validation_data[1]))
            if len(validation_data) == 3:
                self.val_lengths = _batch_lengths(validation_data[2], _samples(self.val[0]), where)
        if on_nonfinite not in _ON_NONFINITE:
            raise ValueError(f"{where}: expected on_nonfinite in {list(_ON_NONFINITE)}, got {on_nonfinite!r}")
        self.skip = on_nonfinite == "skip_batch"
        self.clip_value, self.clip_norm = (None if v is None else _threshold(v, f"{where}: {name}")
                                           for v, name in ((clip_value, "clip_value"), (clip_norm, "clip_norm")))
        self.verbose, self.shuffle = verbose, bool(shuffle)
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"{where}: callbacks must be nnc.callbacks.Callback instances, "
                                f"got {type(cb).__name__}")
        if checkpoint is None:
            if checkpoint_every is not None or resume:
                raise ValueError(f"{where}: checkpoint_every and resume need a checkpoint path")
        else:
            checkpoint = os.fspath(checkpoint)
            if checkpoint_every is not None:
                checkpoint_every = pos_int(checkpoint_every, "checkpoint_every", where)
        self.checkpoint, self.every, self.resume = checkpoint, checkpoint_every, bool(resume)
        self.n = self.y.shape[0]
        self.nbatches = -(-self.n // self.batch_size)
        history = {"loss": []}
        if self.val is not None:
            history["val_loss"] = []
        if self.want_acc:
            history["accuracy"] = []
            if self.val is not None:
                history["val_accuracy"] = []
        self.run = _Run(history)
        self.grad_sumsq = _GradSumsq()

    # -- checkpoints ------------------------------------------------------
    def _signature(self):
        """The fit arguments a resumed run must share with the checkpoint's."""
        opt = {k: v for k, v in self.opt.get_config().items() if k != "lr"}   # lr: the checkpoint's continues
        return _plain({
            "loss": [self.loss.name, self.loss.get_config()], "optimizer": [self.opt.name, opt],
            "batch_size": self.batch_size, "shuffle": self.shuffle, "accuracy": self.want_acc,
            "clip_value": self.clip_value, "clip_norm": self.clip_norm, "skip_nonfinite": self.skip,
            "x": _data_id(self.x), "y": _data_id(self.y),
            "validation_data": None if self.val is None else [_data_id(self.val[0]), _data_id(self.val[1])],
            "lengths": None if self.lengths is None else _data_id(self.lengths),
            "validation_lengths": None if self.val_lengths is None else _data_id(self.val_lengths),
            "callbacks": [type(cb).__name__ for cb in self.callbacks]})

    def _stateful(self):
        return [leaf for leaf in self.model._leaves() if getattr(leaf, "stateful", False)]

    def save(self):
        run = self.run
        state = {"run": {k: getattr(run, k) for k in _Run._FIELDS}, "order": run.order,
                 "signature": self.sig, "epochs": self.epochs, "rng": _config.get_rng_state(),
                 "optimizer": self.opt.state_dict(), "callbacks": [cb.state_dict() for cb in self.callbacks],
                 "layer_states": [leaf.state for leaf in self._stateful()]}
        arrays = {}
        tree = _split(state, arrays)
        serialization.save_checkpoint(self.model, self.checkpoint, tree, arrays, keep_previous=self.rotate)
        self.rotate = True

    def _find(self):
        """(path, training, model, arrays) of the newest valid checkpoint;
        None when there is none; ValueError when files exist but none is
        valid."""
        errors = []
        for path in (self.checkpoint, self.checkpoint + ".prev"):
            if not os.path.exists(path):
                continue
            try:
                found = (path, *serialization.read_checkpoint(path, self.where))
            except ValueError as e:
                errors.append(str(e))
                continue
            if errors:
                warnings.warn(f"{errors[0]}; resuming from the previous checkpoint {path}",
                              RuntimeWarning, stacklevel=4)
            return found
        if errors:
            raise ValueError(f"{self.where}: no valid checkpoint to resume from: " + "; ".join(errors))
        return None

    def restore(self):
        """Continue from the checkpoint when there is one: True if resumed."""
        found = self._find()
        if found is None:
            return False
        path, tree, saved, arrays = found
        where = f"{self.where}: cannot resume from {path}"
        if _plain(layer_to_config(self.model)) != _plain(layer_to_config(saved)):
            raise ValueError(f"{where}: the model's architecture differs from the checkpoint's")
        state = _join(tree, arrays)
        old, new = state["signature"], self.sig
        for key in new:
            if old.get(key) != new[key]:
                if key in ("x", "y", "validation_data"):
                    raise ValueError(f"{where}: {key} differs from the checkpoint's data ({_describe(old[key], new[key])})")
                raise ValueError(f"{where}: the checkpoint was written with {key}={old.get(key)!r}, "
                                 f"this fit has {key}={new[key]!r}")
        run = state["run"]
        if self.epochs < run["epoch"] + (state["order"] is not None):
            raise ValueError(f"{where}: it is at epoch {run['epoch'] + 1} (batch {run['batch']}), "
                             f"beyond epochs={self.epochs}")
        stateful = self._stateful()
        if len(state["layer_states"]) != len(stateful):
            raise ValueError(f"{where}: the stateful layers differ from the checkpoint's")
        for k, v in self.model.params.items():
            v[...] = saved.params[k]
        self.opt.load_state_dict(state["optimizer"])
        _config.set_rng_state(state["rng"])
        for leaf, st in zip(stateful, state["layer_states"]):
            leaf.state = tuple(st) if isinstance(st, list) else st
        for k in _Run._FIELDS:
            setattr(self.run, k, run[k])
        self.run.order = state["order"]
        self.callback_states = state["callbacks"]
        return True

    # -- the loop ---------------------------------------------------------
    def _nonfinite(self, what, epoch, b):
        msg = (f"{self.where}: {what} at epoch {epoch + 1}, batch {b + 1} (of {self.nbatches})")
        if self.skip:
            warnings.warn(msg + "; the batch is skipped", RuntimeWarning, stacklevel=4)
            return
        raise FloatingPointError(msg + "; the model keeps the weights of the last finite step "
                                 "(on_nonfinite='skip_batch' skips such batches)")

    def _step(self, epoch, b):
        """One batch: forward, loss, backward, guard, clipping, optimiser
        step; False when the batch was skipped."""
        run, model, loss_fn = self.run, self.model, self.loss
        idx = run.order[b * self.batch_size:(b + 1) * self.batch_size]
        xb, yb = _take(self.x, idx), self.y[idx]
        out = model.forward(xb, training=True, **_chunk(self.lengths, idx))
        batch_loss = loss_fn(out, yb)
        if not math.isfinite(batch_loss):
            self._nonfinite(f"the loss is {batch_loss}", epoch, b)
            return False
        model.backward(loss_fn.backward(), input_grad=False)
        grads = model.grads
        if self.clip_norm is not None and self.clip_value is None:
            norm = clip_grad_norm(grads, self.clip_norm)   # the guard reuses the clipper's norm (Inf scales to NaN)
        else:
            norm = self.grad_sumsq(grads)                    # before clip_value clamps an Inf away
        if not math.isfinite(norm):
            key = _nonfinite_key(grads)
            if key is not None:
                self._nonfinite(f"the gradient of params[{key!r}] is not finite", epoch, b)
                return False
        if self.clip_value is not None:
            clip_grad_value(grads, self.clip_value)
            if self.clip_norm is not None:
                clip_grad_norm(grads, self.clip_norm)
        self.opt.step(model.params, grads)
        rows = len(idx)
        run.total += batch_loss * rows
        run.seen += rows
        if self.want_acc:
            c, m = _accuracy(out, yb, loss_fn)
            run.correct, run.count = run.correct + c, run.count + m
        return True

    def _batch_logs(self):
        run = self.run
        logs = {"loss": run.total / run.seen if run.seen else math.nan}
        if self.want_acc:
            logs["accuracy"] = run.correct / run.count if run.count else math.nan
        return logs

    def _epoch_end(self, epoch):
        run = self.run
        logs = self._batch_logs()
        if self.val is not None:
            xv, yv = self.val
            kw = {} if self.val_lengths is None else {"lengths": self.val_lengths}   # Graph.predict takes none
            pv = self.model.predict(xv, batch_size=max(self.batch_size, _PREDICT_BATCH), **kw)
            logs["val_loss"] = self.loss(pv, yv)
            if self.want_acc:
                c, m = _accuracy(pv, yv, self.loss)
                logs["val_accuracy"] = c / m if m else math.nan
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)
        for k, v in logs.items():
            run.history.setdefault(k, []).append(v)
        run.epoch, run.batch, run.order = epoch + 1, 0, None
        run.stopped = bool(getattr(self.model, "stop_training", False))
        return logs

    def fit(self):
        model, run, cbs = self.model, self.run, self.callbacks
        if self.checkpoint is not None:
            self.sig = self._signature()
            for tmp in glob.glob(os.path.join(glob.escape(os.path.dirname(os.path.abspath(self.checkpoint))),
                                              f".{glob.escape(os.path.basename(self.checkpoint))}.*.tmp")):
                os.unlink(tmp)   # a write that was killed
        resumed = self.resume and self.restore()
        # A new run's first checkpoint replaces any file at the path without keeping it as .prev:
        # a later resume never falls back to another run's checkpoint.
        self.rotate = resumed
        if self.checkpoint is not None and not resumed and os.path.exists(self.checkpoint + ".prev"):
            os.unlink(self.checkpoint + ".prev")
        model.stop_training = run.stopped
        for cb in cbs:
            cb.set_model(model)
            cb.optimizer = self.opt
            cb.params = {"epochs": self.epochs, "steps": self.nbatches, "verbose": self.verbose}
        for i, cb in enumerate(cbs):
            cb.on_train_begin({})
            if resumed:
                cb.load_state_dict(self.callback_states[i])
        bar = _progress_bar(total=self.epochs * self.nbatches, initial=run.epoch * self.nbatches + run.batch,
                            unit="batch", file=sys.stderr, disable=self.verbose != 1, dynamic_ncols=True,
                            mininterval=0.2)
        try:
            with _DeferredInterrupt() as interrupt:
                self._loop(bar, interrupt)
        except KeyboardInterrupt:
            if self.checkpoint is not None and run.safe:
                self.save()
            raise
        finally:
            bar.close()
        for cb in cbs:
            cb.on_train_end({})
        return {k: list(v) for k, v in run.history.items()}

    def _loop(self, bar, interrupt):
        run, cbs, nb = self.run, self.callbacks, self.nbatches
        for epoch in range(run.epoch, self.epochs):
            if run.stopped:
                break
            bar.set_description(f"Epoch {epoch + 1}/{self.epochs}", refresh=False)
            if run.order is None:
                for cb in cbs:
                    cb.on_epoch_begin(epoch, {})
                run.new_epoch(_config.rng().permutation(self.n) if self.shuffle else np.arange(self.n))
            for b in range(run.batch, nb):
                if interrupt.pending:
                    raise KeyboardInterrupt
                run.safe = False
                stepped = self._step(epoch, b)
                run.batch, run.safe = b + 1, True
                if stepped:
                    logs = self._batch_logs()
                    bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
                    for cb in cbs:
                        cb.on_batch_end(b, logs)
                bar.update(1)
                if self.every and run.batch % self.every == 0 and run.batch < nb:
                    self.save()
            if interrupt.pending:
                raise KeyboardInterrupt
            run.safe = False
            logs = self._epoch_end(epoch)
            run.safe = True
            if self.checkpoint is not None:
                self.save()
            post = {k: f"{v[-1]:.4f}" for k, v in run.history.items() if k in logs}
            bar.set_postfix(post, refresh=True)
            if self.verbose == 2:
                print(f"Epoch {epoch + 1}/{self.epochs}: " + ", ".join(f"{k}={v}" for k, v in post.items()))


def _describe(old, new):
    """What differs between two _data_id entries."""
    if old is None or new is None:
        return "given to one run only"
    if isinstance(old, dict) or isinstance(new, dict):   # several inputs, by name
        if not (isinstance(old, dict) and isinstance(new, dict)) or set(old) != set(new):
            return f"inputs {sorted(new) if isinstance(new, dict) else 'one array'}, the checkpoint's " \
                   f"{sorted(old) if isinstance(old, dict) else 'one array'}"
        return "; ".join(f"input {k}: {_describe(old[k], new[k])}" for k in new if old[k] != new[k])
    if len(old) == 2:   # a validation pair ([shape, dtype, digest] has 3 entries)
        return "; ".join(_describe(o, n) for o, n in zip(old, new) if o != n)
    if old[0] != new[0]:
        return f"shape {tuple(new[0])}, the checkpoint's {tuple(old[0])}"
    if old[1] != new[1]:
        return f"dtype {np.dtype(new[1])}, the checkpoint's {np.dtype(old[1])}"
    return "same shape and dtype, other values (SHA-256)"


def fit(model, x, y, **kwargs):
    """Model.fit (see its docstring)."""
    return _Trainer(model, x, y, **kwargs).fit()
