"""Flatten: ``(N, ...) -> (N, prod(...))``, a reshape (no copy for C-contiguous input)."""
import math

from .base import Layer


class Flatten(Layer):
    """Flattens every axis but the first: ``(N, d1, ..., dk) -> (N, d1*...*dk)``.

    Row-major order: an NHWC image flattens as (H, W, C).  A rank-1 input
    ``(N,)`` gives ``(N, 1)``.  The output is a view of the (converted)
    input; backward reshapes the gradient back.  No parameters.

    Parameters
    ----------
    dtype : np.float32 or np.float64, default np.float32

    Shape
    -----
    Input ``(N, d1, ..., dk)``; output ``(N, d1*...*dk)``.
    """

    _plannable = True

    def _forward(self, x, training):
        x = self._input(x)
        if x.ndim < 1:
            raise self._shape_error("(N, ...)", x.shape)
        y = x.reshape(x.shape[0], math.prod(x.shape[1:]))
        if training:
            self._cache = x.shape
        return y

    def _backward(self, grad_y, input_grad):
        shape = self._cache
        g = self._grad_input(grad_y, (shape[0], math.prod(shape[1:])))
        return g.reshape(shape)
