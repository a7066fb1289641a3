"""Sequential: a stack of layers with forward/backward, predict, fit,
summary and save (``nnc.load`` restores it)."""
import sys
import threading

import numpy as np

from . import _core, serialization, training
from .training import _batch_lengths, _chunk
from ._validation import dtype_name, layer_dtype, pos_int, shape_str
from .layers.base import Layer
from .layers.registry import layer_from_config, layer_to_config

__all__ = ["Sequential"]

_PREDICT_BATCH = 256
_PLANS = 4   # input shapes a Sequential keeps an inference plan for
_PLAN_BYTES = 32 << 20   # at most this much intermediate memory per plan (big batches gain little)


def _owner(a):
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


def _plan_buffer_bytes(plan, x, y, leaves):
    """Bytes of the forward's intermediate arrays a plan would keep."""
    skip = {id(_owner(x)), id(_owner(y))} | {id(_owner(v)) for leaf in leaves for v in leaf.params.values()}
    owners = {id(o): o for o in map(_owner, plan.arrays()) if id(o) not in skip}
    return sum(getattr(o, "nbytes", 0) for o in owners.values())



class _Model(Layer):
    """What every nnc model has beyond a layer: batch-split :meth:`predict`,
    :meth:`fit`, :meth:`save`, and inference plans (the forward's kernel
    calls recorded once per input shape and replayed, nnc/_plan.pxi).

    A subclass provides ``params``/``grads``, ``_forward_add(x, training,
    add)``, ``_backward``, ``_can_plan`` and ``_leaves`` (the layers whose
    params a plan depends on), and keeps ``self._plans = {}``.
    """

    def forward(self, x, training=False, **kwargs):
        # An inference call goes straight to the plan (Plan.run takes its
        # output from the memory cache itself); the rest as for any layer.
        if training or kwargs:
            return super().forward(x, training, **kwargs)
        y = self._planned(x)
        if y is not None:
            return y
        with _core.memcache():
            return self._forward_add(x, False, None)[0]

    forward.__doc__ = Layer.forward.__doc__

    # The plan is checked at every call: the same layers with the same params
    # arrays (in-place edits are seen; a replaced array makes a new plan).
    def _planned(self, x):
        """The inference forward of x through its plan; None when there is no
        plan (a layer that cannot be planned, an input that is not a
        C-contiguous array of the model's dtype, a recording in progress)."""
        if type(x) is not np.ndarray or _core.recording():
            return None
        plans = self._plans
        entry = plans.get(x.shape)
        leaves = self._leaves()
        if entry is None or not _core.plan_current(leaves, entry[1], entry[2]):
            if x.dtype != self.dtype or not x.ndim or not x.flags.c_contiguous:
                return None
            if len(plans) >= _PLANS:
                plans.clear()
            entry = plans[x.shape] = self._make_plan(x, leaves)
        return entry[0].run(x) if entry[0] is not None else None

    def _make_plan(self, x, leaves):
        """(plan, leaves, params) for inputs of x's shape; plan None when the
        model cannot be planned or the replay does not reproduce the forward
        (on x and on another input)."""
        plan = None
        if self._can_plan():
            plan = _core.Plan()
            try:
                with plan.record():
                    y = self._forward_add(x, False, None)[0]
            except RuntimeError:   # another thread is recording: try again next call
                return (None, [], [])
            if isinstance(y, np.ndarray) and _plan_buffer_bytes(plan, x, y, leaves) <= _PLAN_BYTES \
                    and plan.finish(x, y):
                x2 = (x * 0.5 + 0.25).astype(self.dtype)
                if not (np.array_equal(plan.run(x), y, equal_nan=True) and np.array_equal(
                        plan.run(x2), self._forward_add(x2, False, None)[0], equal_nan=True)):
                    plan = None
            else:
                plan = None
        # after the forward: _param() may have replaced a params array by a converted copy
        return (plan, leaves, [(leaf, k, v) for leaf in leaves for k, v in leaf.params.items()])

    def _fit_inputs(self, x, where):
        """x as fit splits it into batches: an array (for a model with several
        inputs, a dict of arrays by input name)."""
        return np.asarray(x)

    def predict(self, x, batch_size=None, lengths=None):
        """Inference over ``x`` in chunks of ``batch_size`` rows.

        Memory stays bounded and the result is bitwise the same whatever
        ``batch_size`` is (and whatever the thread count).

        Parameters
        ----------
        x : array_like, shape (N, ...)
            The model's input.
        batch_size : int, optional
            Rows per chunk (default 256).
        lengths : array_like of int, shape (N,), optional
            The sequence length of every row of ``x`` (padded sequences),
            split with the batch and passed to the layers that take
            ``lengths=`` (the recurrent layers, :class:`Bidirectional`).

        Returns
        -------
        ndarray
            ``(N, ...)``: the outputs of every chunk, in order.
        """
        where = f"{type(self).__name__}.predict"
        bs = _PREDICT_BATCH if batch_size is None else pos_int(batch_size, "batch_size", where)
        if not isinstance(x, np.ndarray):
            x = np.asarray(x)
        if x.ndim < 1:
            raise ValueError(f"{where}: expected a batch (N, ...), got {shape_str(x.shape)}")
        n = x.shape[0]
        lengths = _batch_lengths(lengths, n, where)
        if n <= bs:
            return self.forward(x, **_chunk(lengths, 0, n))
        out = None
        for s in range(0, n, bs):
            y = self.forward(x[s:s + bs], **_chunk(lengths, s, s + bs))
            if out is None:
                out = np.empty((n,) + y.shape[1:], dtype=y.dtype)
            out[s:s + y.shape[0]] = y
        return out

    # -- training -------------------------------------------------------
    def fit(self, x, y, loss="mse", optimizer="adam", epochs=1, batch_size=32, validation_data=None,
            clip_value=None, clip_norm=None, verbose=1, shuffle=True, metrics="auto", callbacks=None,
            checkpoint=None, checkpoint_every=None, resume=False, on_nonfinite="raise", lengths=None):
        """Mini-batch training, with callbacks and resumable checkpoints.

        Every epoch shuffles the samples (library RNG), then for each batch
        runs ``forward(training=True)``, the loss, ``backward``, a check
        that the loss and the gradients are finite, the clipping and one
        optimiser step.

        Parameters
        ----------
        x : array_like, shape (N, ...)
            Inputs.  For a :class:`~nnc.Graph` with several inputs, a list
            of arrays (in the order of its ``inputs``) or a dict by input
            name, all with the same N: every batch takes the same rows of
            each (one shuffle for all).
        y : array_like, shape (N, ...)
            Targets, as the loss takes them (e.g. integer labels ``(N,)``
            for ``"cross_entropy"``).
        loss : Loss or str, default "mse"
            A :mod:`nnc.losses` object or a name (``"mse"``,
            ``"cross_entropy"``, ``"bce"``, see :func:`nnc.losses.get`).
        optimizer : Optimizer or str, default "adam"
            A :mod:`nnc.optim` object or a name (``"adam"``, ``"sgd"``).
        epochs : int, default 1
            The epoch to end at: a resumed run trains the epochs from its
            checkpoint's position up to this one.
        batch_size : int, default 32
            The last batch of an epoch may be smaller.
        validation_data : (x_val, y_val), optional
            Evaluated (with :meth:`predict`) after every epoch; ``x_val``
            as ``x``.
        clip_value, clip_norm : float, optional
            Gradient clipping at every step: :func:`nnc.clip_grad_value`
            first, then :func:`nnc.clip_grad_norm` on the global norm.
        verbose : {0, 1, 2}, default 1
            0 silent, 1 a progress bar (tqdm, on stderr), 2 one line per epoch.
        shuffle : bool, default True
            Reshuffle the samples every epoch with the library RNG
            (:func:`nnc.seed`).
        metrics : "auto", ["accuracy"] or [], default "auto"
            ``"auto"``: accuracy for the classification losses, none for MSE.
        callbacks : list of Callback, optional
            :mod:`nnc.callbacks` objects (early stopping, learning-rate
            schedules, model checkpoints, CSV log, your own).
        checkpoint : str or os.PathLike, optional
            Write a training checkpoint to this file at the end of every
            epoch (and every ``checkpoint_every`` batches): the model, the
            optimiser's state, the RNG state, the position in the epoch, the
            history and the callbacks' state, atomically; the one it replaces
            is kept as ``<checkpoint>.prev``.  :func:`nnc.load` reads the
            model from it.
        checkpoint_every : int, optional
            Also write the checkpoint after every this many batches of an
            epoch.
        resume : bool, default False
            Continue from ``checkpoint`` when it exists (from
            ``<checkpoint>.prev``, with a warning, when the newer file is
            damaged; ``ValueError`` when no file is valid): the run then ends
            bitwise as if never interrupted.  The model's architecture, the
            data (shape, dtype and SHA-256 of ``x``, of each input array
            for several inputs, ``y`` and the validation data), the loss,
            the optimiser's class and hyper-parameters, ``batch_size``,
            ``shuffle``, the metrics, the clipping, ``on_nonfinite`` and
            the callbacks' classes must be the checkpoint's (``ValueError``
            saying what differs); the learning rate continues from the
            checkpoint's.  Without a file, the run starts fresh.
        on_nonfinite : {"raise", "skip_batch"}, default "raise"
            A NaN or Inf loss or gradient raises ``FloatingPointError``
            naming the epoch and the batch (from 1) and the params key of a
            gradient, before the optimiser step (the model keeps the weights
            of the last finite step); ``"skip_batch"`` warns and skips the
            batch instead.
        lengths : array_like of int, shape (N,), optional
            The sequence length of every sample (padded sequences), split
            with the batches as :meth:`predict` does; ``validation_data``
            may then be ``(x_val, y_val, lengths_val)``.

        Returns
        -------
        dict of str to list of float
            One entry per epoch under ``"loss"`` (the sample-weighted mean
            of the batch losses), and ``"val_loss"``, ``"accuracy"``,
            ``"val_accuracy"`` when computed (and what callbacks add, e.g.
            ``"lr"``); a resumed run returns the whole run's history.

        Raises
        ------
        FloatingPointError
            For a non-finite loss or gradient (``on_nonfinite="raise"``).
        KeyboardInterrupt
            Ctrl-C takes effect between two steps: the model is left
            consistent, a checkpoint is written first (when ``checkpoint``
            is given) and the progress bar closed.
        """
        return training.fit(self, x, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                            validation_data=validation_data, clip_value=clip_value, clip_norm=clip_norm,
                            verbose=verbose, shuffle=shuffle, metrics=metrics, callbacks=callbacks,
                            checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
                            on_nonfinite=on_nonfinite, lengths=lengths)

    def save(self, path):
        """Write the model to exactly ``path``; :func:`nnc.load` restores it.

        The file is one ``.npz`` archive (no pickle): the JSON configuration
        of every layer plus each parameter array with its SHA-256 digest.
        It is written to a temporary file first and then renamed, so
        ``path`` is never left half written.

        Parameters
        ----------
        path : str or os.PathLike
            No suffix is added.
        """
        serialization.save(self, path)


class Sequential(_Model):
    """Layers applied in order: ``y = layers[-1](...layers[0](x))``.

    A Sequential is itself a layer: ``forward``, ``backward``, ``params``,
    ``grads``, ``get_config``; it can be a :class:`~nnc.Residual` block or
    be nested in another Sequential.  On top of that it trains
    (:meth:`fit`), predicts in chunks (:meth:`predict`), prints a
    :meth:`summary` and is saved with :meth:`save` and restored with
    :func:`nnc.load`.

    Parameters
    ----------
    layers : sequence of layers, optional
        nnc layers (or objects with ``forward``, ``backward``, ``params``,
        ``grads`` and ``get_config``).
    dtype : np.float32 or np.float64, optional
        Default: the first layer's dtype (float32 for an empty model).

    Attributes
    ----------
    layers : list
        The layers; ``model[i]`` and ``len(model)`` index it.
    params : dict of str to ndarray
        The layers' very arrays (not copies) under ``"{index}.{key}"``,
        e.g. ``"0.W"``, ``"1.block.0.b"``.
    grads : dict of str to ndarray
        Likewise for the gradients.

    Examples
    --------
    >>> import numpy as np, nnc
    >>> model = nnc.Sequential([nnc.Dense(4, 8, activation="relu"), nnc.Dense(8, 3)])
    >>> sorted(model.params)
    ['0.W', '0.b', '1.W', '1.b']
    >>> model.predict(np.zeros((5, 4), np.float32)).shape
    (5, 3)
    """

    def __init__(self, layers=(), dtype=None):
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not all(hasattr(layer, a) for a in ("forward", "backward", "params", "grads", "get_config")):
                raise TypeError(f"Sequential: layers[{i}] is not an nnc layer ({type(layer).__name__})")
        self.layers = layers
        default = layers[0].dtype if layers else np.float32
        self.dtype = layer_dtype(default if dtype is None else dtype, "Sequential")
        self._cache = None
        self._lock = threading.Lock()
        self._input_shape = None
        self._plans = {}   # {input shape: plan entry}, a memo (Layer._memos)

    def add(self, layer):
        """Append a layer (the first one sets the model's dtype)."""
        if not all(hasattr(layer, a) for a in ("forward", "backward", "params", "grads", "get_config")):
            raise TypeError(f"Sequential.add: not an nnc layer ({type(layer).__name__})")
        if not self.layers:
            self.dtype = layer_dtype(layer.dtype, "Sequential")
        self.layers.append(layer)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    @property
    def params(self):
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    @property
    def grads(self):
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}

    # -- forward / backward ---------------------------------------------
    def _forward(self, x, training, lengths=None, **kwargs):
        if not training and not kwargs and lengths is None:
            y = self._planned(x)
            if y is not None:
                return y
        if lengths is not None and not any(getattr(layer, "_takes_lengths", False) for layer in self.layers):
            raise ValueError("Sequential: lengths given, but no layer takes lengths (recurrent layers do)")
        return self._forward_add(x, training, None, lengths=lengths)[0]

    # -- inference plans ------------------------------------------------
    # Inference replays the kernel calls recorded from one forward (per input
    # shape; nnc/_plan.pxi): the same calls, so the same bits, without the
    # Python and argument conversion of every layer.  The plan is checked at
    # every call: the same layers with the same params arrays (in-place
    # edits are seen; a replaced array makes a new plan).
    def _can_plan(self):
        return bool(self.layers) and all(isinstance(layer, Layer) and layer._can_plan() for layer in self.layers)

    def _leaves(self):
        return [leaf for layer in self.layers for leaf in (layer._leaves() if isinstance(layer, Layer) else [layer])]

    @staticmethod
    def _sub_forward_lengths(layer, x, training, lengths):
        """A sub-layer's forward, with lengths= for the layers that take it."""
        if lengths is not None and getattr(layer, "_takes_lengths", False):
            return layer.forward(x, training=training, lengths=lengths)
        return Layer._sub_forward(layer, x, training)

    def _forward_add(self, x, training, add, relu=False, lengths=None):
        # the last layer may add ``add`` (a Residual's skip input) as it stores
        if not self.layers:
            raise ValueError("Sequential: the model has no layers")
        if training:
            self._input_shape = tuple(np.shape(x)[1:])
        for layer in self.layers[:-1]:
            x = self._sub_forward_lengths(layer, x, training, lengths)
        if add is None or lengths is not None:
            y, added = self._sub_forward_lengths(self.layers[-1], x, training, lengths), False
        else:
            y, added = self._sub_forward_add(self.layers[-1], x, training, add, relu)
        if training:
            self._cache = True
        return y, added

    def _backward(self, grad_y, input_grad):
        g = grad_y
        for i in range(len(self.layers) - 1, -1, -1):
            g = self._sub_backward(self.layers[i], g, input_grad or i > 0)
        return g

    # -- description and persistence ---------------------------------------
    def summary(self, input_shape=None, file=None):
        """Print (and return) a table of the layers, their output shapes and
        parameter counts.

        Parameters
        ----------
        input_shape : tuple of int, optional
            The shape of one sample (no batch axis).  Default: the one seen
            in training, else the first layer's ``in_features``; unknown
            output shapes print as "?".
        file : file-like, optional
            Where to print (default ``sys.stdout``).

        Returns
        -------
        str
            The printed table.
        """
        shape = input_shape or self._input_shape
        if shape is None and self.layers and hasattr(self.layers[0], "in_features"):
            shape = (self.layers[0].in_features,)
        x = None if shape is None else np.zeros((0,) + tuple(shape), dtype=self.dtype)
        rows, total = [], 0
        for i, layer in enumerate(self.layers):
            if x is not None:
                try:
                    x = layer.forward(x)
                except (ValueError, TypeError, RuntimeError):
                    x = None
            count = sum(int(p.size) for p in layer.params.values())
            total += count
            out = "?" if x is None else shape_str((None,) + x.shape[1:])
            rows.append((f"{i} {layer.name}", out, f"{count:,}"))
        head = ("Layer (type)", "Output shape", "Params")
        w = [max(len(r[j]) for r in rows + [head]) + 2 for j in range(3)]
        line = "-" * sum(w)
        text = [f"Sequential ({dtype_name(self.dtype)})", line,
                "".join(h.ljust(w[j]) for j, h in enumerate(head)), "=" * sum(w)]
        text += ["".join(c.ljust(w[j]) for j, c in enumerate(r)) for r in rows]
        text += [line, f"Total params: {total:,}"]
        out = "\n".join(text)
        print(out, file=file or sys.stdout)
        return out

    def get_config(self):
        return {"layers": [layer_to_config(layer) for layer in self.layers], "dtype": dtype_name(self.dtype)}

    @classmethod
    def from_config(cls, config):
        specs = config.get("layers")
        if not isinstance(specs, list):
            raise ValueError("Sequential.from_config: expected a list under 'layers'")
        return cls([layer_from_config(s, "Sequential.from_config") for s in specs], dtype=config.get("dtype"))

    def __repr__(self):
        return "Sequential([" + ", ".join(repr(layer) for layer in self.layers) + "])"
