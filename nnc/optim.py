"""Optimisers: ``opt.step(params, grads)`` updates every ``params[key]`` in
place from ``grads[key]``, one C kernel call per array, keeping its state
(momentum, moments) per key in the params' dtype."""
import math

import numpy as np

from . import _core
from ._validation import instance_or_named, shape_str

__all__ = ["Optimizer", "SGD", "Adam", "get"]


def _positive(value, name, where, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: expected a number for {name}, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{where}: expected {name} {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return v


class Optimizer:
    """Base class of the optimisers.

    ``step(params, grads)`` updates every ``params[key]`` in place from
    ``grads[key]``; the state (momentum, moments, step count) is kept per
    key in :attr:`state` and restarts from zeros when a parameter's shape or
    dtype changes.

    Attributes
    ----------
    state : dict
        Per params key, the tuple of state arrays.
    lr : float
        The learning rate; may be set between steps (``opt.lr = 3e-4``,
        what the schedules of :mod:`nnc.callbacks` do), ``>= 0``.
    """

    def __init__(self):
        self.state = {}

    @property
    def name(self):
        """The class name, used in error messages."""
        return type(self).__name__

    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _positive(value, "lr", self.name, allow_zero=True)

    def state_dict(self):
        """The optimiser's state, what a checkpoint stores to continue it.

        Returns
        -------
        dict
            ``{"lr": float, "state": {key: tuple of ndarray}}`` and, for
            :class:`Adam`, ``"steps": {key: int}``.  The arrays are the
            optimiser's own (not copies): write them out before the next
            :meth:`step`.
        """
        return {"lr": self.lr, "state": dict(self.state), **{k: dict(getattr(self, k)) for k in self._EXTRA}}

    def load_state_dict(self, state):
        """Continue from a :meth:`state_dict` (of an optimiser of the same
        class): the learning rate, and copies of the state arrays.

        Raises
        ------
        ValueError
            For a state that is not one of this class's.
        """
        where = f"{self.name}.load_state_dict"
        slots, keys = self._SLOTS, {"lr", "state", *self._EXTRA}
        if not isinstance(state, dict) or set(state) != keys or not isinstance(state["state"], dict):
            raise ValueError(f"{where}: expected a dict with the keys {sorted(keys)}, "
                             f"got {sorted(state) if isinstance(state, dict) else type(state).__name__}")
        arrays = {}
        for key, st in state["state"].items():
            if not isinstance(st, (tuple, list)) or len(st) != slots or not all(
                    isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64) and a.shape == st[0].shape
                    and a.dtype == st[0].dtype for a in st):
                raise ValueError(f"{where}: state[{key!r}] must be {slots} float arrays of one shape and dtype")
            arrays[key] = tuple(np.array(a, order="C") for a in st)
        extra = self._load_extra(state, arrays, where)
        self.lr = state["lr"]
        self.state = arrays
        for name, value in extra.items():
            setattr(self, name, value)

    _SLOTS = 1      # state arrays per params key
    _EXTRA = ()     # state_dict entries beyond "lr" and "state" (attributes, dicts by params key)

    def _load_extra(self, state, arrays, where):
        """The validated _EXTRA attributes of a state_dict."""
        return {}

    def _pairs(self, params, grads):
        for key, p in params.items():
            if key not in grads:
                raise ValueError(f"{self.name}.step: no gradient for params[{key!r}]")
            g = grads[key]
            if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64) \
                    or not p.flags.c_contiguous or not p.flags.writeable:
                raise TypeError(f"{self.name}.step: params[{key!r}] must be a writeable C-contiguous "
                                f"float32/float64 array")
            g = np.asarray(g)
            if g.shape != p.shape:
                raise ValueError(f"{self.name}.step: expected grads[{key!r}] {shape_str(p.shape)}, "
                                 f"got {shape_str(g.shape)}")
            if g.dtype.kind != "f":
                raise TypeError(f"{self.name}.step: grads[{key!r}] must be a float array, got {g.dtype}")
            yield key, p.reshape(-1), np.ascontiguousarray(g, dtype=p.dtype).reshape(-1)

    def _slot(self, key, p, n):
        """(state arrays of params[key], fresh): zeros when new or when the
        shape/dtype of the parameter changed."""
        st = self.state.get(key)
        if st is None or st[0].shape != p.shape or st[0].dtype != p.dtype:
            st = self.state[key] = tuple(np.zeros_like(p) for _ in range(n))
            return st, True
        return st, False

    def __repr__(self):
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (PyTorch's form, no
    dampening, no Nesterov): ``v = momentum*v + g; p -= lr*v``
    (``p -= lr*g`` when ``momentum == 0``).

    Parameters
    ----------
    lr : float
        Learning rate, ``> 0``.
    momentum : float, default 0
        ``>= 0``.
    """

    def __init__(self, lr, momentum=0.0):
        super().__init__()
        self.lr = _positive(lr, "lr", "SGD")   # > 0 here; a schedule may set 0 later
        self.momentum = _positive(momentum, "momentum", "SGD", allow_zero=True)

    def get_config(self):
        """``{"lr": ..., "momentum": ...}``."""
        return {"lr": self.lr, "momentum": self.momentum}

    def step(self, params, grads):
        """Update every ``params[key]`` in place from ``grads[key]``.

        Parameters
        ----------
        params, grads : dict of str to ndarray
            Same keys and shapes; params writeable, C-contiguous float32 or
            float64 (e.g. ``model.params`` and ``model.grads``).
        """
        for key, p, g in list(self._pairs(params, grads)):
            v = self._slot(key, p, 1)[0][0] if self.momentum else None
            _core.sgd_step(p, g, v, self.lr, self.momentum)


class Adam(Optimizer):
    """Adam (PyTorch's form): bias-corrected moments, ``eps`` added to
    ``sqrt(v_hat)``.

    At step ``t`` (counted per params key from 1):
    ``m = b1*m + (1-b1)*g``, ``v = b2*v + (1-b2)*g**2``,
    ``p -= lr/(1-b1**t) * m / (sqrt(v)/sqrt(1-b2**t) + eps)``, i.e.
    ``p -= lr * m_hat / (sqrt(v_hat) + eps)``.

    Parameters
    ----------
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Each in [0, 1).
    eps : float, default 1e-8

    Attributes
    ----------
    steps : dict
        The step count ``t`` per params key.
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__()
        self.lr = _positive(lr, "lr", "Adam")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Adam: expected betas as a pair, got {betas!r}")
        self.betas = tuple(_positive(b, "betas", "Adam", allow_zero=True) for b in betas)
        if any(b >= 1 for b in self.betas):
            raise ValueError(f"Adam: expected betas in [0, 1), got {betas!r}")
        self.eps = _positive(eps, "eps", "Adam", allow_zero=True)
        self.steps = {}

    def get_config(self):
        """``{"lr": ..., "betas": ..., "eps": ...}``."""
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps}

    _SLOTS = 2
    _EXTRA = ("steps",)

    def _load_extra(self, state, arrays, where):
        steps = state["steps"]
        if not isinstance(steps, dict) or set(steps) != set(arrays) or not all(
                isinstance(t, (int, np.integer)) and not isinstance(t, bool) and t >= 1 for t in steps.values()):
            raise ValueError(f"{where}: expected a step count >= 1 for every key of state")
        return {"steps": {k: int(t) for k, t in steps.items()}}

    def step(self, params, grads):
        """Update every ``params[key]`` in place from ``grads[key]``
        (see :meth:`SGD.step`)."""
        b1, b2 = self.betas
        for key, p, g in list(self._pairs(params, grads)):
            (m, v), fresh = self._slot(key, p, 2)
            t = self.steps[key] = 1 if fresh else self.steps[key] + 1
            _core.adam_step(p, g, m, v, self.lr, b1, b2, self.eps, 1.0 - b1 ** t, math.sqrt(1.0 - b2 ** t))


_NAMES = {"sgd": lambda: SGD(0.01), "adam": Adam}


def get(optimizer):
    """An :class:`Optimizer` from an instance or a name.

    Parameters
    ----------
    optimizer : Optimizer or str
        An instance (returned as is), ``"adam"`` (``Adam()``, lr 1e-3) or
        ``"sgd"`` (``SGD(0.01)``), any case.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    return instance_or_named(optimizer, Optimizer, _NAMES, "optimizer")
