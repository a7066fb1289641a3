"""Bidirectional: a recurrent layer run over each sequence forwards and backwards."""
import threading

import numpy as np

from .._validation import dtype_name, shape_str
from .base import Layer
from .recurrent import _Recurrent, check_lengths
from .registry import layer_from_config, layer_to_config
from .residual import _prefixed

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _reversal(n, t, lengths):
    """(rows, steps) indices reading each row backwards within its length
    (steps past it stay in place); the map is its own inverse."""
    steps = np.arange(t)
    if lengths is None:
        return np.arange(n)[:, None], np.broadcast_to(steps[::-1], (n, t))
    return np.arange(n)[:, None], np.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)


class Bidirectional(Layer):
    """Runs a recurrent layer over each sequence forwards and a copy of it
    over the sequence reversed, and merges the two outputs.

    With ``lengths=`` the backward direction reads each row reversed within
    its own length (its padding stays at the end), as PyTorch's
    ``bidirectional=True`` on packed sequences; its outputs are put back in
    time order before the merge.  With ``return_sequences=False`` the
    backward direction's output is its state after reading the whole
    (reversed) sequence, i.e. at the first step.

    Parameters
    ----------
    layer : SimpleRNN, LSTM, GRU, ConvRNN2D or ConvLSTM2D
        The forward direction (not stateful); the backward direction is a
        new layer of the same configuration, initialised afresh.
    merge_mode : "concat", "sum", "mul", "ave" or None, default "concat"
        How the two outputs combine: concatenated along the last axis,
        added, multiplied, averaged, or (None) returned as a list
        ``[forward, backward]`` (backward then takes such a list too).

    Shape
    -----
    The layer's input ``(N, T, ...)``; output the layer's output, its last
    axis doubled for ``"concat"``.  ``forward(x, lengths=l)`` as the
    layer's.

    Attributes
    ----------
    params, grads : dict
        The two directions' arrays under ``"forward.<key>"`` and
        ``"backward.<key>"``.

    Examples
    --------
    >>> import numpy as np, nnc
    >>> bi = nnc.Bidirectional(nnc.GRU(3, 4, reset_after=True))
    >>> bi.forward(np.ones((2, 5, 3), np.float32), lengths=[5, 2]).shape
    (2, 5, 8)
    """

    _takes_lengths = True   # forward(x, lengths=...)

    def __init__(self, layer, merge_mode="concat"):
        if not isinstance(layer, _Recurrent):
            raise TypeError(f"Bidirectional: expected a recurrent layer (SimpleRNN, LSTM, GRU, ConvRNN2D, "
                            f"ConvLSTM2D), got {type(layer).__name__}")
        if layer.stateful:
            raise ValueError("Bidirectional: expected a layer with stateful=False, got stateful=True")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"Bidirectional: expected merge_mode in {list(_MERGE_MODES)}, got {merge_mode!r}")
        self.dtype = layer.dtype
        self.merge_mode = merge_mode
        self.forward_layer = layer
        self.backward_layer = layer_from_config(layer_to_config(layer), "Bidirectional")
        self._cache = None
        self._lock = threading.Lock()
        self._shape_cache = {}

    @property
    def params(self):
        return _prefixed((("forward", self.forward_layer), ("backward", self.backward_layer)), "params")

    @property
    def grads(self):
        return _prefixed((("forward", self.forward_layer), ("backward", self.backward_layer)), "grads")

    @property
    def return_sequences(self):
        return self.forward_layer.return_sequences

    def get_config(self):
        return {"layer": layer_to_config(self.forward_layer), "merge_mode": self.merge_mode}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(layer_from_config(config.pop("layer"), "Bidirectional.from_config"), **config)

    def _leaves(self):
        return [self.forward_layer, self.backward_layer]

    def _forward(self, x, training, lengths=None):
        x = self._input(x)
        if x.ndim < 3:
            raise self._shape_error("(N, T, ...)", x.shape)
        n, t = x.shape[:2]
        kw = {}
        if lengths is not None:
            lengths = check_lengths(lengths, n, t, self.name)
            kw["lengths"] = lengths
        rev = _reversal(n, t, lengths)
        yf = self.forward_layer.forward(x, training=training, **kw)
        yb = self.backward_layer.forward(x[rev], training=training, **kw)
        if self.return_sequences:
            yb = yb[rev]
        if training:
            self._cache = (x.shape, rev, yf, yb)
        if self.merge_mode == "concat":
            return np.concatenate([yf, yb], axis=-1)
        if self.merge_mode == "sum":
            return yf + yb
        if self.merge_mode == "mul":
            return yf * yb
        if self.merge_mode == "ave":
            return (yf + yb) * self.dtype(0.5)
        return [yf, yb]

    def _split(self, grad_y, yf, yb):
        """The output gradient as the two directions' output gradients."""
        if self.merge_mode is None:
            if not isinstance(grad_y, (list, tuple)) or len(grad_y) != 2:
                raise ValueError("Bidirectional.backward: expected grad_y as a list [forward, backward] "
                                 "(merge_mode=None)")
            return (self._grad_input(grad_y[0], yf.shape), self._grad_input(grad_y[1], yb.shape))
        if self.merge_mode == "concat":
            w = yf.shape[-1]
            g = self._grad_input(grad_y, yf.shape[:-1] + (2 * w,))
            return g[..., :w], g[..., w:]
        g = self._grad_input(grad_y, yf.shape)
        if self.merge_mode == "sum":
            return g, g
        if self.merge_mode == "ave":
            half = g * self.dtype(0.5)
            return half, half
        return g * yb, g * yf

    def _backward(self, grad_y, input_grad):
        shape, rev, yf, yb = self._cache
        gf, gb = self._split(grad_y, yf, yb)
        if self.return_sequences:
            gb = gb[rev]
        dxf = self._sub_backward(self.forward_layer, np.ascontiguousarray(gf), input_grad)
        dxb = self._sub_backward(self.backward_layer, np.ascontiguousarray(gb), input_grad)
        if not input_grad:
            return None
        if dxf.shape != tuple(shape):
            raise RuntimeError(f"Bidirectional.backward: expected input gradients {shape_str(shape)}, "
                               f"got {shape_str(dxf.shape)}")
        return dxf + dxb[rev]

    def __repr__(self):
        return f"Bidirectional({self.forward_layer!r}, merge_mode={self.merge_mode!r}, dtype={dtype_name(self.dtype)})"
