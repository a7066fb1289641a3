"""Residual connection: y = F(x) + x, or F(x) + S(x) with a shortcut layer."""
import threading

import numpy as np

from .. import _core
from .._validation import dtype_name, layer_dtype, shape_str
from .base import Layer
from .registry import layer_from_config, layer_to_config


def _prefixed(parts, attr):
    return {f"{prefix}.{k}": v for prefix, layer in parts if layer is not None
            for k, v in getattr(layer, attr).items()}


class Residual(Layer):
    """Skip connection around ``block``: ``y = block(x) + x``, or
    ``block(x) + shortcut(x)`` when a ``shortcut`` layer is given (e.g. a
    1x1 strided Conv2D projecting to the block's output shape).

    ``backward`` sends ``grad_y`` through both paths and adds the two input
    gradients (one C kernel; so is the forward addition, which a block
    ending in a Conv2D does as it stores its output).

    Parameters
    ----------
    block : Layer
        Any nnc layer (a Sequential too).
    shortcut : Layer or None, default None
        None is the identity.
    dtype : np.float32 or np.float64, optional
        Default: the block's; the sub-layers must have this dtype.

    Shape
    -----
    The block's input and output; the block's output must have the shape of
    ``x`` (or of ``shortcut(x)``), else ``ValueError``.

    Attributes
    ----------
    params : dict
        The sub-layers' very arrays under ``"block.<key>"`` and
        ``"shortcut.<key>"``.
    grads : dict
        Likewise.
    """

    def __init__(self, block, shortcut=None, dtype=None):
        for what, layer in (("block", block), ("shortcut", shortcut)):
            if layer is None and what == "shortcut":
                continue
            if not all(hasattr(layer, a) for a in ("forward", "backward", "params", "grads", "get_config")):
                raise TypeError(f"Residual: {what} must be an nnc layer, got {type(layer).__name__}")
        self.dtype = layer_dtype(block.dtype if dtype is None else dtype, "Residual")
        for what, layer in (("block", block), ("shortcut", shortcut)):
            if layer is not None and np.dtype(layer.dtype) != np.dtype(self.dtype):
                raise TypeError(f"Residual: {what} has dtype {dtype_name(layer.dtype)}, "
                                f"expected {dtype_name(self.dtype)}")
        self.block = block
        self.shortcut = shortcut
        self._cache = None
        self._lock = threading.Lock()

    @property
    def params(self):
        return _prefixed((("block", self.block), ("shortcut", self.shortcut)), "params")

    @property
    def grads(self):
        return _prefixed((("block", self.block), ("shortcut", self.shortcut)), "grads")

    def get_config(self):
        return {"block": layer_to_config(self.block),
                "shortcut": None if self.shortcut is None else layer_to_config(self.shortcut),
                "dtype": dtype_name(self.dtype)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        block = layer_from_config(config.pop("block"), "Residual.from_config")
        sc = config.pop("shortcut", None)
        shortcut = None if sc is None else layer_from_config(sc, "Residual.from_config")
        return cls(block, shortcut, **config)

    def _can_plan(self):
        return all(isinstance(p, Layer) and p._can_plan() for p in (self.block, self.shortcut) if p is not None)

    def _leaves(self):
        return [leaf for p in (self.block, self.shortcut) if p is not None
                for leaf in (p._leaves() if isinstance(p, Layer) else [p])]

    def _forward(self, x, training, **kwargs):
        x = self._input(x)
        s = x if self.shortcut is None else self._sub_forward(self.shortcut, x, training)
        if kwargs:
            y, added = self.block.forward(x, training=training, **kwargs), False
        else:   # a block ending in a Conv2D adds s as it stores its output
            y, added = self._sub_forward_add(self.block, x, training, s)
        if added:
            out = y
        else:
            if y.shape != s.shape:
                what = "the input" if self.shortcut is None else "the shortcut output"
                raise ValueError(f"Residual: expected the block output to have the shape of {what} "
                                 f"{shape_str(s.shape)}, got {shape_str(y.shape)}")
            out = np.empty_like(y)
            _core.add(out.reshape(-1), np.ascontiguousarray(y).reshape(-1), s.reshape(-1))
        if training:
            self._cache = (x.shape, out.shape)
        return out

    def _backward(self, grad_y, input_grad):
        in_shape, out_shape = self._cache
        g = self._grad_input(grad_y, out_shape)
        gb = self._sub_backward(self.block, g, input_grad)
        gs = g if self.shortcut is None else self._sub_backward(self.shortcut, g, input_grad)
        if not input_grad:
            return None
        gb = np.ascontiguousarray(gb, dtype=self.dtype)
        gs = np.ascontiguousarray(gs, dtype=self.dtype)
        if gb.shape != tuple(in_shape) or gs.shape != tuple(in_shape):
            raise RuntimeError("Residual.backward: sub-layer input gradients do not match the input shape")
        dx = np.empty(in_shape, dtype=self.dtype)
        _core.add(dx.reshape(-1), gb.reshape(-1), gs.reshape(-1))
        return dx

    def __repr__(self):
        return f"Residual({self.block!r}" + (f", shortcut={self.shortcut!r})" if self.shortcut else ")")
