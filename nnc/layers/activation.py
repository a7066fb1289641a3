"""Stand-alone activation layers: Activation (any activation name) and
LeakyReLU."""
import numpy as np

from .. import _core
from .activations import LEAKY_RELU, act_id
from .base import Layer


def _rows(a):
    """a as 2-D rows of its last axis (a scalar batch as one row)."""
    return a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(1, -1)


class _ElementWise(Layer):
    """An activation applied by one kernel call (act_fwd / act_bwd): the id
    ``_act`` with parameter ``_alpha``; the backward reads the saved output,
    or the saved input when ``_grad_from_input``."""

    _plannable = True
    _alpha = 0.0
    _grad_from_input = False

    def _forward(self, x, training):
        x = self._input(x)
        if x.ndim < 1:
            raise self._shape_error("(N, ...)", x.shape)
        y = np.empty_like(x)
        if y.size:
            _core.act_fwd(_rows(y), _rows(x), self._act, self._alpha)
        if training:
            self._cache = x if self._grad_from_input else y
        return y

    def _backward(self, grad_y, input_grad):
        s = self._cache
        g = self._grad_input(grad_y, s.shape)
        dx = np.empty_like(s)
        if s.size:
            _core.act_bwd(_rows(dx), _rows(g), _rows(s), self._act, self._alpha)
        return dx


class Activation(_ElementWise):
    """``y = act(x)`` element-wise (softmax: over the last axis), one kernel call.

    Parameters
    ----------
    activation : str
        ``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"softmax"``, ``"sign"`` or
        ``"linear"``.
    dtype : np.float32 or np.float64, default np.float32

    Shape
    -----
    Any ``(N, ...)``; output the same.  No parameters.
    """

    def __init__(self, activation, dtype=np.float32):
        super().__init__(dtype)
        self._act = act_id(activation, self.name)
        self.activation = activation

    def get_config(self):
        return {"activation": self.activation, **super().get_config()}

    def __repr__(self):
        return f"Activation({self.activation!r})"


class LeakyReLU(_ElementWise):
    """``y = x`` for ``x > 0``, else ``negative_slope * x``; NaN propagates.

    One C kernel call forward and backward (vectorised, multi-threaded for
    large inputs), so a model with LeakyReLU runs as an inference plan.  The
    gradient is ``grad_y`` where ``x > 0`` and ``negative_slope * grad_y``
    elsewhere (``x <= 0`` or NaN), taken from the saved input, so a zero or
    negative slope is handled exactly.

    Parameters
    ----------
    negative_slope : float, default 0.01
        Any finite value, zero and negative included.
    dtype : np.float32 or np.float64, default np.float32

    Shape
    -----
    Any ``(N, ...)``; output the same.  No parameters.
    """

    _act = LEAKY_RELU
    _grad_from_input = True

    def __init__(self, negative_slope=0.01, dtype=np.float32):
        super().__init__(dtype)
        slope = float(negative_slope)
        if not np.isfinite(slope):
            raise ValueError(f"LeakyReLU: negative_slope must be finite, got {negative_slope!r}")
        self.negative_slope = slope

    @property
    def _alpha(self):
        return self.negative_slope

    def get_config(self):
        return {"negative_slope": self.negative_slope, **super().get_config()}

    def __repr__(self):
        return f"LeakyReLU(negative_slope={self.negative_slope})"


class Permute(Layer):
    """Reorders the axes after the batch axis: ``y = x.transpose(0, *dims)``
    (a copy), e.g. ``Permute((2, 3, 1))`` takes NCHW images to NHWC.

    Parameters
    ----------
    dims : tuple of int
        A permutation of ``1 .. k`` for a rank ``k + 1`` input.
    dtype : np.float32 or np.float64, default np.float32

    Shape
    -----
    ``(N, d_1, ..., d_k)`` -> ``(N, d_dims[0], ..., d_dims[k-1])``.  No parameters.
    """

    def __init__(self, dims, dtype=np.float32):
        super().__init__(dtype)
        try:
            dims = tuple(int(d) for d in dims)
        except (TypeError, ValueError):
            raise ValueError(f"Permute: dims must be a sequence of ints, got {dims!r}") from None
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"Permute: dims must be a permutation of 1..{len(dims)}, got {dims}")
        self.dims = dims
        self._inverse = tuple(int(i) + 1 for i in np.argsort(dims))

    def get_config(self):
        return {"dims": list(self.dims), **super().get_config()}

    def _forward(self, x, training):
        x = self._input(x)
        if x.ndim != len(self.dims) + 1:
            raise self._shape_error(f"of rank {len(self.dims) + 1}", x.shape)
        if training:
            self._cache = x.shape
        return np.ascontiguousarray(x.transpose((0,) + self.dims))

    def _backward(self, grad_y, input_grad):
        shape = self._cache
        g = self._grad_input(grad_y, (shape[0],) + tuple(shape[d] for d in self.dims))
        return np.ascontiguousarray(g.transpose((0,) + self._inverse))

    def __repr__(self):
        return f"Permute({self.dims})"
