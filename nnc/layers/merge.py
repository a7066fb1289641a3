"""Merge layers for graph models: Add (element-wise sum, optional activation)
and Concat (along the channel axis).  They take a list of arrays."""
import numpy as np

from .. import _core
from .._validation import shape_str
from .activations import act_id
from .base import Layer


class _Merge(Layer):
    """Checks of the input list shared by the merge layers."""

    _plannable = True

    def _inputs(self, xs):
        if not isinstance(xs, (list, tuple)) or len(xs) < 2:
            got = f"{len(xs)} arrays" if isinstance(xs, (list, tuple)) else type(xs).__name__
            raise ValueError(f"{self.name}: expected a list of at least 2 arrays, got {got}")
        xs = [self._input(x, f"input {i}") for i, x in enumerate(xs)]
        lead = xs[0].shape[:-1] if xs[0].ndim else None
        if lead is None or any(x.ndim != xs[0].ndim or not self._compatible(xs[0].shape, x.shape) for x in xs):
            raise ValueError(f"{self.name}: expected inputs of {self._rule}, got "
                             + ", ".join(shape_str(x.shape) for x in xs))
        return xs


class Add(_Merge):
    """Element-wise sum of its inputs, then an optional activation:
    ``y = act(x_0 + x_1 + ...)`` (a residual join in a :class:`~nnc.Graph`).

    Parameters
    ----------
    activation : str or None, default None
        Applied after the sum (any activation name; softmax over the last axis).
    dtype : np.float32 or np.float64, default np.float32

    Shape
    -----
    Inputs: a list of at least two arrays of one shape ``(N, ...)``; output
    the same shape.  No parameters.
    """

    _rule = "one shape"

    def __init__(self, activation=None, dtype=np.float32):
        super().__init__(dtype)
        self.activation = activation
        self._act = act_id(activation, self.name)

    def get_config(self):
        return {"activation": self.activation, **super().get_config()}

    @staticmethod
    def _compatible(a, b):
        return a == b

    def _forward(self, xs, training):
        xs = self._inputs(xs)
        y = np.empty_like(xs[0])
        flat = y.reshape(-1)
        _core.add(flat, xs[0].reshape(-1), xs[1].reshape(-1))
        for x in xs[2:]:
            _core.add(flat, flat, x.reshape(-1))
        return self._activate(y, len(xs), training)

    def _activate(self, y, n_inputs, training):
        """The activation applied in place to the sum ``y``; keeps what
        backward needs."""
        if self._act != 0 and y.ndim:
            y2 = y.reshape(-1, y.shape[-1]) if y.ndim > 1 else y.reshape(1, -1)
            _core.act_fwd(y2, y2, self._act)
        if training:
            self._cache = (y, n_inputs)
        return y

    def _backward(self, grad_y, input_grad):
        y, n = self._cache
        g = self._grad_input(grad_y, y.shape)
        if self._act != 0 and y.ndim:
            dz = np.empty_like(y)
            shape2 = (-1, y.shape[-1]) if y.ndim > 1 else (1, -1)
            _core.act_bwd(dz.reshape(shape2), g.reshape(shape2), y.reshape(shape2), self._act)
            g = dz
        return [g] * n

    def __repr__(self):
        return f"Add(activation={self.activation!r})"


class Concat(_Merge):
    """Concatenation along the last (channel) axis:
    ``y[..., c_0 + ... + c_{i-1} + j] = x_i[..., j]``.

    Each input is copied into its channel slice of the output by one kernel
    call.

    Parameters
    ----------
    dtype : np.float32 or np.float64, default np.float32

    Shape
    -----
    Inputs: a list of at least two arrays ``(N, ..., C_i)`` that agree on
    every axis but the last; output ``(N, ..., sum C_i)``.  No parameters.
    """

    _rule = "equal shapes but for the last axis"

    @staticmethod
    def _compatible(a, b):
        return a[:-1] == b[:-1]

    def _forward(self, xs, training):
        xs = self._inputs(xs)
        sizes = [x.shape[-1] for x in xs]
        total = sum(sizes)
        y = np.empty(xs[0].shape[:-1] + (total,), self.dtype)
        y2 = y.reshape(-1, total)
        c = 0
        for x, ci in zip(xs, sizes):
            if ci and y2.shape[0]:
                _core.act_fwd(y2[:, c:c + ci], x.reshape(-1, ci), 0)
            c += ci
        if training:
            self._cache = (y.shape, sizes)
        return y

    def _backward(self, grad_y, input_grad):
        shape, sizes = self._cache
        g = self._grad_input(grad_y, shape)
        bounds = np.cumsum([0] + sizes)
        return [np.ascontiguousarray(g[..., a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
