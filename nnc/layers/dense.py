"""Dense (fully connected) layer: z = x @ W.T + b, y = g(z)."""
import math

import numpy as np

from .. import _config, _core
from .._validation import pos_int, shape_str
from .activations import SOFTMAX, act_id
from .base import Layer


class Dense(Layer):
    """Fully connected layer ``y = g(x @ W.T + b)`` over the last axis.

    Parameters
    ----------
    in_features : int
        Size of the input's last axis.
    out_features : int
        Size of the output's last axis.
    activation : {None, "linear", "relu", "sigmoid", "tanh", "sign", "softmax"}, default None
        ``g``; softmax runs over the last axis.
    use_bias : bool, default True
    dtype : np.float32 or np.float64, default np.float32

    Shape
    -----
    Input ``(N, ..., in_features)`` (rank >= 2); output ``(N, ..., out_features)``.

    Attributes
    ----------
    params : dict
        ``"W"`` ``(out_features, in_features)``, Glorot uniform in
        ``±sqrt(6 / (in_features + out_features))``; ``"b"``
        ``(out_features,)``, zeros (absent when ``use_bias=False``).

    Notes
    -----
    The forward is the GEMM engine's unpacked dot-product path (``x W^T``
    needs no packing of W, which matters at batch 1) with bias and activation
    as its epilogue (softmax: one extra row pass).

    Examples
    --------
    >>> import numpy as np, nnc
    >>> layer = nnc.Dense(64, 10, activation="softmax")
    >>> y = layer.forward(np.ones((32, 64), np.float32), training=True)
    >>> dx = layer.backward(np.ones_like(y))       # fills layer.grads["W"], ["b"]
    >>> y.shape, dx.shape, layer.grads["W"].shape
    ((32, 10), (32, 64), (10, 64))
    """

    _plannable = True

    def __init__(self, in_features, out_features, activation=None, use_bias=True, dtype=np.float32):
        super().__init__(dtype)
        self.in_features = pos_int(in_features, "in_features", self.name)
        self.out_features = pos_int(out_features, "out_features", self.name)
        self.activation = activation
        self._act = act_id(activation, self.name)
        self.use_bias = bool(use_bias)
        limit = math.sqrt(6.0 / (self.in_features + self.out_features))
        self._add_param("W", _config.rng().uniform(-limit, limit, (self.out_features, self.in_features)))
        if self.use_bias:
            self._add_param("b", np.zeros(self.out_features))

    def get_config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "activation": self.activation, "use_bias": self.use_bias, **super().get_config()}

    def _check(self, x):
        x = self._input(x)
        if x.ndim < 2 or x.shape[-1] != self.in_features:
            raise self._shape_error(f"(N, ..., {self.in_features})", x.shape)
        return x

    def _forward(self, x, training):
        x = self._check(x)
        x2 = x if x.ndim == 2 else x.reshape(-1, self.in_features)
        y = np.empty((x2.shape[0], self.out_features), dtype=self.dtype)
        act = self._act
        _core.gemm_nt(x2, self._param("W"), y, 1.0, 0.0, self._param("b") if self.use_bias else None,
                      0 if act == SOFTMAX else act)
        if act == SOFTMAX:
            _core.act_fwd(y, y, SOFTMAX)
        out_shape = y.shape if x.ndim == 2 else x.shape[:-1] + (self.out_features,)
        if training:
            self._cache = (x2, y, out_shape)
        return y if x.ndim == 2 else y.reshape(out_shape)

    def _backward(self, grad_y, input_grad):
        x2, y, out_shape = self._cache
        g = self._grad_input(grad_y, out_shape)
        if g.ndim != 2:
            g = g.reshape(y.shape)
        if self._act != 0:
            dz = np.empty_like(y)
            _core.act_bwd(dz, g, y, self._act)
        else:
            dz = g
        _core.gemm(1, 0, dz, x2, self.grads["W"])
        if self.use_bias:
            _core.colsum(self.grads["b"], dz)
        if not input_grad:
            return None
        dx = np.empty_like(x2)
        _core.gemm(0, 0, dz, self._param("W"), dx)
        return dx if len(out_shape) == 2 else dx.reshape(out_shape[:-1] + (self.in_features,))

    def __repr__(self):
        return f"Dense({self.in_features} -> {self.out_features}, activation={self.activation!r})"
