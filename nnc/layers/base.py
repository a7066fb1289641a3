"""The Layer base class: params/grads dicts, the training cache and its lock,
input conversion, config round trip, registration in the layer registry.
Subclasses implement ``_forward`` and ``_backward`` and call one kernel
each.  Both run with nnc's memory cache as NumPy's data allocator
(``_core.memcache``), so the arrays they allocate reuse resident pages from
one call to the next."""
import pickle
import threading

import numpy as np

from .. import _core
from .._validation import as_input, dtype_name, layer_dtype, shape_str
from .registry import register


class _TrainingLock:
    """``with``: holds a layer's training lock, or raises RuntimeError
    naming the layer when another thread holds it (a plain class: a
    generator-based context manager costs a microsecond per call)."""

    __slots__ = ("layer", "what")

    def __init__(self, layer, what):
        self.layer, self.what = layer, what

    def __enter__(self):
        if not self.layer._lock.acquire(False):
            raise RuntimeError(f"{self.layer.name}.{self.what}: another thread is training this layer")

    def __exit__(self, *exc):
        self.layer._lock.release()
        return False


_for_inference = threading.local()


def dumps_for_inference(obj):
    """``pickle.dumps(obj)`` without the gradients of the layers in it
    (loaded, they are zeros): what a copy that only predicts needs, about
    half the bytes of a trained model's full pickle."""
    _for_inference.active = True
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        _for_inference.active = False


class Layer:
    """Base of every nnc layer.

    A layer holds its trainable arrays in ``params`` and their gradients in
    ``grads``; ``forward(x, training=True)`` keeps what ``backward`` needs,
    and ``backward(grad_y)`` returns the input gradient and overwrites
    ``grads``.  Inputs of another float dtype are converted to the layer's
    dtype (nnc never writes into a caller's array); non-float input raises
    ``TypeError``, a wrong shape ``ValueError`` naming the layer, the
    expected and the received shape.  Layers pickle (parameters, gradients
    and recurrent state; not the training cache).

    Parameters
    ----------
    dtype : np.float32 or np.float64, default np.float32
        The dtype of the parameters and of every computation.

    Attributes
    ----------
    params : dict of str to ndarray
        The trainable arrays, C-contiguous and owned by the layer: assigning
        ``layer.params["W"][...] = w`` changes the layer.
    grads : dict of str to ndarray
        Same keys and shapes as ``params``; overwritten by each ``backward``.
    dtype : type
        ``np.float32`` or ``np.float64``.
    """

    def __init_subclass__(cls, **kwargs):
        """nnc's public layer classes (Sequential too) register themselves
        under their class name: the classes ``from_config``/``nnc.load`` may
        build.  Private bases (``_Pool2D``) and classes defined outside the
        nnc package are not registered (saving one raises TypeError)."""
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_") and cls.__module__.partition(".")[0] == "nnc":
            register(cls)

    def __init__(self, dtype=np.float32):
        self.dtype = layer_dtype(dtype, type(self).__name__)
        self.params = {}
        self.grads = {}
        self._cache = None
        self._lock = threading.Lock()
        self._shape_cache = {}
        self._valid = {}   # {params key: the array _param last accepted}

    # -- public surface -------------------------------------------------
    def __call__(self, x, *args, **kwargs):
        return self.forward(x, *args, **kwargs)

    def forward(self, x, training=False, **kwargs):
        """Compute the layer's output (also ``layer(x)``).

        Parameters
        ----------
        x : array_like
            The input (see each layer's Shape); converted to the layer's
            dtype and made C-contiguous when needed (a copy; ``x`` itself is
            never written).
        training : bool, default False
            True keeps what :meth:`backward` needs.  An inference call
            (False) writes nothing to the layer (a recurrent layer's
            ``state`` aside), so one layer may serve many threads; two
            threads training one layer at once raise ``RuntimeError``.
        **kwargs
            ``initial_state=`` and ``lengths=`` for the recurrent layers.

        Returns
        -------
        ndarray
            The output, of the layer's dtype.
        """
        with _core.memcache():
            if not training:
                return self._forward(x, False, **kwargs)
            with self._training_lock("forward"):
                return self._forward(x, True, **kwargs)

    def backward(self, grad_y, input_grad=True):
        """Backpropagate through the last ``forward(x, training=True)``.

        Overwrites ``grads`` with the gradient of the loss w.r.t. every
        parameter.  Calling it twice on the same forward gives the same
        result.

        Parameters
        ----------
        grad_y : array_like
            Gradient of the loss w.r.t. the output, of the output's shape.
        input_grad : bool, default True
            False computes only ``grads`` and returns None (what a model's
            first layer needs: its input gradient is often the most
            expensive product).

        Returns
        -------
        ndarray or None
            Gradient w.r.t. ``x``, of ``x``'s shape.

        Raises
        ------
        RuntimeError
            Without a previous training forward.
        """
        with _core.memcache(), self._training_lock("backward"):
            if self._cache is None:
                raise RuntimeError(f"{self.name}.backward: call forward(x, training=True) first")
            dx = self._backward(grad_y, bool(input_grad))
            return dx if input_grad else None

    def get_config(self):
        """The constructor arguments as a JSON-serialisable dict
        (``dtype`` as ``"float32"``/``"float64"``; containers nest
        ``{"class_name": ..., "config": ...}``)."""
        return {"dtype": dtype_name(self.dtype)}

    # -- inference writes nothing but memos -------------------------------
    # An inference forward (training=False) never assigns to the layer (a
    # recurrent layer's ``state`` aside): one layer may serve many threads.
    # It may only add entries to these per-input-shape memo dicts (conv
    # geometries, Sequential's plans), created with the layer: an entry is a
    # function of the input shape and the layer alone, so threads racing on
    # one store equal entries, and a lost entry is recomputed, not wrong.
    _memos = ("_shape_cache", "_plans", "_valid")

    # -- pickling (Dask and Ray ship models this way) -------------------
    def __getstate__(self):
        """Everything but the training lock, what a training forward kept
        for backward and the memos: parameters, gradients, config, recurrent
        state.  Inside :func:`dumps_for_inference` the gradients are left
        out too (they come back as zeros)."""
        state = self.__dict__.copy()
        state["_lock"] = None
        state["_cache"] = None
        for name in self._memos:
            if name in state:
                state[name] = {}
        if getattr(_for_inference, "active", False) and "grads" in state:
            state["grads"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self.__dict__.setdefault("_valid", {})
        if self.__dict__.get("grads", {}) is None:
            self.grads = {key: np.zeros(p.shape, p.dtype) for key, p in self.params.items()}

    @classmethod
    def from_config(cls, config):
        """A new layer built from :meth:`get_config`'s dict (also after a
        JSON round trip: lists for tuples), with freshly initialised
        parameters."""
        return cls(**config)

    @property
    def name(self):
        """The class name, used in error messages."""
        return type(self).__name__

    def __repr__(self):
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{self.name}({cfg})"

    # -- helpers for subclasses ----------------------------------------
    def _training_lock(self, what):
        """Training forward/backward hold the layer; a second thread gets RuntimeError."""
        return _TrainingLock(self, what)

    def _per_shape(self, shape, make):
        """make(shape), computed once per input shape (e.g. a conv geometry);
        at most 16 shapes are kept."""
        v = self._shape_cache.get(shape)
        if v is None:
            if len(self._shape_cache) >= 16:
                self._shape_cache.clear()
            v = self._shape_cache[shape] = make(shape)
        return v

    def _input(self, x, what="input"):
        return as_input(x, self.dtype, self.name, what)

    def _shape_error(self, expected, got, what="input"):
        return ValueError(f"{self.name}: expected {what} {expected}, got {shape_str(got)}")

    def _add_param(self, key, array):
        self.params[key] = np.ascontiguousarray(array, dtype=self.dtype)
        self.grads[key] = np.zeros_like(self.params[key])

    def _param(self, key):
        """The params array, checked: a user may have replaced it.  A wrong
        shape raises; a wrong dtype or layout is copied back into an owned,
        C-contiguous array.  An array accepted once is not re-checked while
        it stays in params (the kernels' bindings check dtype, shape and
        layout of every array they get, whatever happens to it in place)."""
        p = self.params[key]
        if p is self._valid.get(key):
            return p
        g = self.grads[key]
        if not isinstance(p, np.ndarray) or p.shape != g.shape:
            got = getattr(p, "shape", type(p).__name__)
            raise ValueError(f"{self.name}: params[{key!r}] must have shape {shape_str(g.shape)}, got {got}")
        if p.dtype != self.dtype or not p.flags.c_contiguous or not p.flags.writeable:
            p = self.params[key] = np.array(p, dtype=self.dtype, order="C")
        self._valid[key] = p
        return p

    @staticmethod
    def _sub_forward(layer, x, training):
        """forward of a sub-layer.  Inference of an nnc layer calls its
        _forward directly: it takes no lock and the caller already runs
        with the memory cache, so a call level per layer is saved."""
        if not training and isinstance(layer, Layer):
            return layer._forward(x, False)
        return layer.forward(x, training=training)

    # -- inference plans (Sequential, nnc/_plan.pxi) -----------------------
    # A layer whose inference forward makes only kernel calls a plan can
    # record (conv, pooling, gemm_nt, act, add) sets _plannable.
    _plannable = False

    def _can_plan(self):
        return self._plannable

    def _leaves(self):
        """The layers holding parameters, in order (a plan checks that they and
        their params arrays are still the ones it recorded)."""
        return [self]

    def _forward_add(self, x, training, add, relu=False):
        """(forward(x) + add, True) when the layer adds ``add`` (an array of its
        output's shape: a residual block's skip input) in the pass that writes
        its output, the same bits as adding afterwards, and then applies a
        ReLU when ``relu`` (asked for at inference only); (forward(x), False)
        when it cannot and the caller adds (and applies the ReLU)."""
        return self._forward(x, training), False

    @staticmethod
    def _sub_forward_add(layer, x, training, add, relu=False):
        """_forward_add of a sub-layer, with forward's training lock."""
        if not isinstance(layer, Layer):
            return layer.forward(x, training=training), False
        if not training:
            return layer._forward_add(x, False, add, relu)
        with layer._training_lock("forward"):
            return layer._forward_add(x, True, add, relu)

    @staticmethod
    def _sub_backward(layer, grad_y, input_grad):
        """backward of a sub-layer; input_grad=False is passed on to nnc
        layers only (a user's duck-typed layer may not take it)."""
        if input_grad or not isinstance(layer, Layer):
            return layer.backward(grad_y)
        return layer.backward(grad_y, input_grad=False)

    def _grad_input(self, grad_y, expected_shape):
        g = as_input(grad_y, self.dtype, f"{self.name}.backward", "grad_y")
        if g.shape != tuple(expected_shape):
            raise ValueError(f"{self.name}.backward: expected grad_y {shape_str(expected_shape)}, "
                             f"got {shape_str(g.shape)}")
        return g
