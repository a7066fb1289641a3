"""Dropout: inverted dropout, one kernel call per forward and backward."""
import math
import numbers

import numpy as np

from .. import _config, _core
from .base import Layer


class Dropout(Layer):
    """Inverted dropout: ``y = x * m / (1 - rate)`` in training, ``y = x`` in inference.

    Each training forward draws a fresh mask ``m`` (each element kept with
    probability ``1 - rate``) from nnc's random generator (:func:`nnc.seed`
    makes it reproducible); backward applies the same mask to the gradient:
    ``dx = dy * m / (1 - rate)``.  The mask is a hash of the element index and
    a key drawn per call, so it is the same for every thread count, ISA and
    dtype, and nothing but the key is kept for backward.  As ``x * 0``, a
    dropped NaN or infinite element stays NaN.

    Parameters
    ----------
    rate : float
        Probability of dropping an element, ``0 <= rate < 1``.
    dtype : float32 or float64

    Shape
    -----
    Input ``(N, ...)``, any shape; output the same shape.  In inference the
    output is the (converted) input itself.

    Attributes
    ----------
    params, grads : dict
        Empty: the layer has no parameters.

    Examples
    --------
    >>> import numpy as np, nnc
    >>> layer = nnc.Dropout(0.25)
    >>> y = layer.forward(np.ones((4, 8), np.float32), training=True)
    >>> bool(np.all((y == 0) | np.isclose(y, 4 / 3)))
    True
    >>> layer.forward(y) is y      # inference: the input itself
    True
    """

    _plannable = True

    def __init__(self, rate=0.5, dtype=np.float32):
        super().__init__(dtype)
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
            raise TypeError(f"Dropout: expected a real rate in [0, 1), received: rate={rate!r}")
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout: expected a rate in [0, 1), received: rate={rate!r}")
        self.rate = float(rate)
        self._threshold = math.ceil(self.rate * 2.0 ** 32)   # kept where hash32 >= threshold
        self._scale = 1.0 / (1.0 - self.rate)

    def get_config(self):
        return {"rate": self.rate, **super().get_config()}

    def _apply(self, x, key):
        y = np.empty_like(x)
        _core.dropout(y.reshape(-1), x.reshape(-1), key, self._threshold, self._scale)
        return y

    def _forward(self, x, training):
        x = self._input(x)
        if not training:
            return x
        key = int(_config.rng().integers(0, 2 ** 64, dtype=np.uint64))
        self._cache = (key, x.shape)
        return self._apply(x, key)

    def _backward(self, grad_y, input_grad):
        key, shape = self._cache
        g = self._grad_input(grad_y, shape)
        return self._apply(g, key) if input_grad else None
