"""Pooling layers on NHWC images: MaxPool2D, AvgPool2D, GlobalAvgPool2D.

Each forward and backward is one C kernel call (src_c/kernels/pool/):
one pass over memory, SIMD over channels, OpenMP over images and rows.
"""
import numpy as np

from .. import _core
from .._validation import pair, shape_str
from .base import Layer


class _Pool2D(Layer):
    """Shared constructor, shape rules and bookkeeping of MaxPool2D / AvgPool2D."""

    _plannable = True

    def __init__(self, pool_size, stride=None, padding=0, dtype=np.float32):
        super().__init__(dtype)
        self.pool_size = pair(pool_size, "pool_size", self.name)
        self.stride = self.pool_size if stride is None else pair(stride, "stride", self.name)
        self.padding = pair(padding, "padding", self.name, minimum=0)
        if any(p > k // 2 for p, k in zip(self.padding, self.pool_size)):
            raise ValueError(f"{self.name}: padding must be at most pool_size // 2; received: "
                             f"padding={self.padding}, pool_size={self.pool_size}")
        if self._max_cells is not None and self.pool_size[0] * self.pool_size[1] > self._max_cells:
            raise ValueError(f"{self.name}: a pool window of at most {self._max_cells} cells is supported; "
                             f"received: pool_size={self.pool_size}")

    _max_cells = None

    def get_config(self):
        return {"pool_size": self.pool_size, "stride": self.stride, "padding": self.padding,
                **super().get_config()}

    def _check(self, x):
        """Converted input and the output shape; ValueError on a wrong rank
        or a window that does not fit."""
        x = self._input(x)
        if x.ndim != 4:
            raise self._shape_error("(N, H, W, C)", x.shape)
        out = [(size + 2 * p - k) // s + 1 if size >= 1 else 0
               for size, k, s, p in zip(x.shape[1:3], self.pool_size, self.stride, self.padding)]
        if min(out) < 1:
            raise ValueError(f"{self.name}: pool_size {self.pool_size} with stride {self.stride} and padding "
                             f"{self.padding} gives output size {tuple(out)} < 1 for input H, W = "
                             f"{x.shape[1:3]}; expected input (N, H, W, C) with H >= "
                             f"{self.pool_size[0] - 2 * self.padding[0]} and W >= "
                             f"{self.pool_size[1] - 2 * self.padding[1]}, got {shape_str(x.shape)}")
        return x, (x.shape[0], out[0], out[1], x.shape[3])

    @property
    def _window(self):
        return (*self.pool_size, *self.stride, *self.padding)

    def __repr__(self):
        return f"{self.name}(pool_size={self.pool_size}, stride={self.stride}, padding={self.padding})"


class MaxPool2D(_Pool2D):
    """2-D max pooling: ``y[n, i, j, c]`` is the maximum of the window at
    ``(i*sh - ph, j*sw - pw)`` over the cells inside the input.

    Parameters
    ----------
    pool_size : int or (h, w)
        The window ``(kh, kw)``, at most 2**24 cells.
    stride : int, (h, w) or None, default None
        ``(sh, sw)``; None means ``pool_size``.
    padding : int or (h, w), default 0
        ``(ph, pw)`` cells on each side, at most ``pool_size // 2``; padded
        cells never win.
    dtype : np.float32 or np.float64, default np.float32

    Shape
    -----
    Input ``(N, H, W, C)``; output ``(N, OH, OW, C)`` with
    ``OH = (H + 2*ph - kh) // sh + 1`` (likewise OW), at least 1.

    Notes
    -----
    A window holding NaN gives NaN.  Backward sends each window's gradient to
    its first maximum in row-major window order (the first NaN if any);
    overlapping windows add up.  Training keeps the winning cell of every
    output (the buffer is reused across calls of the same shape).
    """

    _max_cells = 1 << 24   # NNC_POOL_MAX_CELLS: the winning cell is stored exactly

    def __init__(self, pool_size, stride=None, padding=0, dtype=np.float32):
        super().__init__(pool_size, stride, padding, dtype)
        self._idx = None

    def _forward(self, x, training):
        x, out_shape = self._check(x)
        y = np.empty(out_shape, dtype=self.dtype)
        if not training:
            _core.maxpool2d_fwd(y, x, self._window)
            return y
        idx = self._idx
        if idx is None or idx.shape != out_shape:
            idx = self._idx = np.empty(out_shape, dtype=self.dtype)
        _core.maxpool2d_fwd(y, x, self._window, idx)
        self._cache = (x.shape, idx)
        return y

    def _backward(self, grad_y, input_grad):
        x_shape, idx = self._cache
        g = self._grad_input(grad_y, idx.shape)
        dx = np.empty(x_shape, dtype=self.dtype)
        _core.maxpool2d_bwd(dx, g, idx, self._window)
        return dx


class AvgPool2D(_Pool2D):
    """2-D average pooling: the mean of each window's cells inside the input.

    Padded cells are not counted: the sum is divided by the number of valid
    cells of that window (a corner window with padding 1 averages fewer
    cells).  Backward gives each valid cell ``dy / count``; overlapping
    windows add up.

    Parameters
    ----------
    pool_size : int or (h, w)
    stride : int, (h, w) or None, default None
        None means ``pool_size``.
    padding : int or (h, w), default 0
        At most ``pool_size // 2``.
    dtype : np.float32 or np.float64, default np.float32

    Shape
    -----
    As :class:`MaxPool2D`: ``(N, H, W, C) -> (N, OH, OW, C)``.
    """

    def _forward(self, x, training):
        x, out_shape = self._check(x)
        y = np.empty(out_shape, dtype=self.dtype)
        _core.avgpool2d_fwd(y, x, self._window)
        if training:
            self._cache = (x.shape, out_shape)
        return y

    def _backward(self, grad_y, input_grad):
        x_shape, out_shape = self._cache
        g = self._grad_input(grad_y, out_shape)
        dx = np.empty(x_shape, dtype=self.dtype)
        _core.avgpool2d_bwd(dx, g, self._window)
        return dx


class GlobalAvgPool2D(Layer):
    """Mean over the spatial axes: ``y[n, c] = sum(x[n, :, :, c]) / (H*W)``.

    Runs the average-pooling kernel with one window covering the image.

    Parameters
    ----------
    dtype : np.float32 or np.float64, default np.float32

    Shape
    -----
    Input ``(N, H, W, C)`` with H, W >= 1; output ``(N, C)``.
    """

    _plannable = True

    def _forward(self, x, training):
        x = self._input(x)
        if x.ndim != 4 or x.shape[1] < 1 or x.shape[2] < 1:
            raise self._shape_error("(N, H, W, C) with H, W >= 1", x.shape)
        n, h, w, c = x.shape
        y = np.empty((n, 1, 1, c), dtype=self.dtype)
        _core.avgpool2d_fwd(y, x, (h, w, h, w, 0, 0))
        if training:
            self._cache = x.shape
        return y.reshape(n, c)

    def _backward(self, grad_y, input_grad):
        n, h, w, c = self._cache
        g = self._grad_input(grad_y, (n, c)).reshape(n, 1, 1, c)
        dx = np.empty(self._cache, dtype=self.dtype)
        _core.avgpool2d_bwd(dx, g, (h, w, h, w, 0, 0))
        return dx
