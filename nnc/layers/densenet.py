"""DenseBlock: DenseNet-style block with a growth rate, computed in place on
one concatenation buffer."""
import math

import numpy as np

from .. import _config, _core
from .._validation import pos_int
from .activations import act_id
from .base import Layer
from .conv import conv2d_backward, conv2d_forward_geometry, conv_geometry


class DenseBlock(Layer):
    """DenseNet block: layer i applies a ``kernel_size`` "same" convolution and
    ReLU to ``concat[x, y_0, ..., y_{i-1}]`` (channel axis) and produces
    ``growth_rate`` maps; the output is ``concat[x, y_0, ..., y_{L-1}]``.

    Parameters
    ----------
    in_channels, num_layers, growth_rate : int
    kernel_size : int, default 3
        Square kernel ``K``.
    dtype : np.float32 or np.float64, default np.float32

    Shape
    -----
    Input ``(N, H, W, in_channels)``; output
    ``(N, H, W, in_channels + num_layers * growth_rate)``.

    Attributes
    ----------
    params : dict
        ``"layer{i}.W"`` ``(K, K, in_channels + i*growth_rate, growth_rate)``
        and ``"layer{i}.b"`` ``(growth_rate,)`` for i = 0 .. num_layers-1.

    The output is allocated once; layer i reads the first channels of it
    (pixel stride = the full channel count) and writes its own channel slice,
    in forward and backward (input gradients are accumulated in place by the
    transposed convolution), so nothing is copied per layer.
    """

    _plannable = True

    _relu = act_id("relu", "DenseBlock")

    def __init__(self, in_channels, num_layers, growth_rate, kernel_size=3, dtype=np.float32):
        super().__init__(dtype)
        self.in_channels = pos_int(in_channels, "in_channels", self.name)
        self.num_layers = pos_int(num_layers, "num_layers", self.name)
        self.growth_rate = pos_int(growth_rate, "growth_rate", self.name)
        self.kernel_size = pos_int(kernel_size, "kernel_size", self.name)
        self.out_channels = self.in_channels + self.num_layers * self.growth_rate
        rng, k, g = _config.rng(), self.kernel_size, self.growth_rate
        for i in range(self.num_layers):
            cin = self.in_channels + i * g
            lim = math.sqrt(6.0 / (k * k * (cin + g)))
            self._add_param(f"layer{i}.W", rng.uniform(-lim, lim, (k, k, cin, g)))
            self._add_param(f"layer{i}.b", np.zeros(g))

    def _geometries(self, shape):
        """The conv geometry of every layer for input ``shape``."""
        k, one = self.kernel_size, (1, 1)
        return tuple(conv_geometry(shape, self.in_channels + i * self.growth_rate,
                                   (k, k, self.in_channels + i * self.growth_rate, self.growth_rate), one, "same",
                                   one, 1, self.name) for i in range(self.num_layers))

    def get_config(self):
        return {"in_channels": self.in_channels, "num_layers": self.num_layers, "growth_rate": self.growth_rate,
                "kernel_size": self.kernel_size, **super().get_config()}

    def _forward(self, x, training):
        x = self._input(x)
        if x.ndim != 4 or x.shape[3] != self.in_channels:
            raise self._shape_error(f"(N, H, W, {self.in_channels})", x.shape)
        out = np.empty(x.shape[:3] + (self.out_channels,), self.dtype)
        C = self.in_channels   # the input into the first C channels: a (threaded) linear act
        _core.act_fwd(out.reshape(-1, self.out_channels)[:, :C], x.reshape(-1, C), 0)
        geos = self._per_shape(x.shape, self._geometries)
        for i, geo in enumerate(geos):
            conv2d_forward_geometry(out, self._param(f"layer{i}.W"), self._param(f"layer{i}.b"), geo, self._relu,
                                    out, out_offset=self.in_channels + i * self.growth_rate)
        if training:
            self._cache = (out, geos)
        return out

    def _backward(self, grad_y, input_grad):
        out, geos = self._cache
        C, g, relu = self.in_channels, self.growth_rate, self._relu
        # G holds dL/d(concat); layers run last to first, each turning its own
        # slice into dz in place and adding its input gradient to the prefix.
        G = np.array(self._grad_input(grad_y, out.shape), dtype=self.dtype, order="C", copy=True)
        flatG, flatY = G.reshape(-1, self.out_channels), out.reshape(-1, self.out_channels)
        for i in reversed(range(self.num_layers)):
            ci = C + i * g
            dz = flatG[:, ci:ci + g]
            _core.act_bwd(dz, dz, flatY[:, ci:ci + g], relu)
            conv2d_backward(geos[i], out, self._param(f"layer{i}.W"), G, dx_out=G, dz_offset=ci,
                            dW=self.grads[f"layer{i}.W"], db=self.grads[f"layer{i}.b"], dx_accumulate=True)
        return np.ascontiguousarray(G[..., :C])

    def __repr__(self):
        return (f"DenseBlock({self.in_channels} -> {self.out_channels}, num_layers={self.num_layers}, "
                f"growth_rate={self.growth_rate}, kernel_size={self.kernel_size})")
