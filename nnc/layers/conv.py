"""Conv2D: 2-D cross-correlation on NHWC activations with HWIO weights.

Besides the layer, this module exposes the geometry helper and functional
forms (``conv2d_forward`` / ``conv2d_backward``) that read a channel slice of
a wider NHWC buffer and write into a channel slice of another, for layers
that keep concatenations in place (DenseBlock).

Weights: the forward kernels read W in place when its HWIO layout already is
their output-channel-blocked one (groups=1 and up to 64 output channels that
fill whole vectors, e.g. 8, 16, 24, 32, 64 on AVX-512 float32); otherwise the
C ops pack W on every call into per-thread scratch (one pass over W).  So a
``params["W"]`` edited in place is always seen, inference never writes to the
layer, and no cache can go stale.
"""
import math
from typing import NamedTuple

import numpy as np

from .. import _config, _core
from .._validation import pair, pos_int, shape_str
from .activations import SOFTMAX, act_id
from .base import Layer


def _padding_arg(padding, where):
    """Normalise ``padding``: "same", "valid" or an (h, w) pair of ints >= 0."""
    if isinstance(padding, str):
        p = padding.lower()
        if p not in ("same", "valid"):
            raise ValueError(f"{where}: expected padding as an int, a pair, 'same' or 'valid', "
                             f"received: padding={padding!r}")
        return p
    return pair(padding, "padding", where, minimum=0)


def resolve_padding(padding, size, kernel, stride, dilation):
    """(top, bottom, left, right) for a normalised padding argument and an
    input (H, W).  "same": output ceil(in/stride), odd extra cell bottom/right."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        pads = []
        for n, k, s, d in zip(size, kernel, stride, dilation):
            total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    return (padding[0], padding[0], padding[1], padding[1])


class ConvGeometry(NamedTuple):
    """The geometry of one convolution, as the C ops take it (nnc_conv_desc,
    whose pixel strides the bindings add from the buffers): input (n, h, w, c),
    kernel (kh, kw), output (n, oh, ow, k)."""
    n: int
    h: int
    w: int
    c: int
    k: int
    kh: int
    kw: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    groups: int
    oh: int
    ow: int


def conv_geometry(x_shape, in_channels, W_shape, stride, padding, dilation, groups, where="Conv2D"):
    """The ConvGeometry for input ``x_shape`` (N, H, W, >= in_channels) and
    weights ``W_shape`` (KH, KW, in_channels/groups, K); ValueError when the
    dilated kernel does not fit the padded input."""
    N, H, Wd = x_shape[:3]
    KH, KW, _, K = W_shape
    pt, pb, pl, pr = resolve_padding(padding, (H, Wd), (KH, KW), stride, dilation)
    eh, ew = dilation[0] * (KH - 1) + 1, dilation[1] * (KW - 1) + 1
    if eh > H + pt + pb or ew > Wd + pl + pr:
        raise ValueError(
            f"{where}: the dilated kernel ({eh}, {ew}) (kernel_size=({KH}, {KW}), dilation={tuple(dilation)}) "
            f"is larger than the padded input ({H + pt + pb}, {Wd + pl + pr}) (padding=({pt}, {pb}, {pl}, {pr})); "
            f"expected input (N, H >= {max(eh - pt - pb, 1)}, W >= {max(ew - pl - pr, 1)}, {in_channels}), "
            f"got {shape_str(x_shape)}")
    OH = (H + pt + pb - eh) // stride[0] + 1
    OW = (Wd + pl + pr - ew) // stride[1] + 1
    return ConvGeometry(n=N, h=H, w=Wd, c=in_channels, k=K, kh=KH, kw=KW, stride_h=stride[0], stride_w=stride[1],
                        dil_h=dilation[0], dil_w=dilation[1], pad_top=pt, pad_bottom=pb, pad_left=pl,
                        pad_right=pr, groups=groups, oh=OH, ow=OW)


def conv2d_forward(x, W, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, activation=None,
                   out=None, x_offset=0, out_offset=0, where="conv2d"):
    """y = act(conv(x[..., x_offset:x_offset+C], W) + b), C = W.shape[2]*groups.

    ``x`` and ``W`` must be C-contiguous arrays of one float dtype (x may
    have more channels than C).  With ``out`` (N, OH, OW, >= K), the result
    is written into ``out[..., out_offset:out_offset+K]`` and ``out`` is
    returned; otherwise a new (N, OH, OW, K) array.  Returns (y, geo);
    ``geo`` feeds conv2d_backward.  padding: int/pair, "same" or "valid".
    """
    stride = pair(stride, "stride", where)
    dilation = pair(dilation, "dilation", where)
    padding = _padding_arg(padding, where)
    geo = conv_geometry(x.shape, W.shape[2] * groups, W.shape, stride, padding, dilation, groups, where)
    return conv2d_forward_geometry(x, W, b, geo, act_id(activation, where), out, x_offset, out_offset), geo


def conv2d_forward_geometry(x, W, b, geo, act, out=None, x_offset=0, out_offset=0, res=None, res_relu=False):
    """conv2d_forward for a geometry from conv_geometry and an activation id
    (layers that keep them per input shape: Conv2D, DenseBlock); ``res`` (an
    array of out's shape, not with softmax) is added after the activation,
    then a ReLU with ``res_relu``."""
    if out is None:
        out = np.empty((x.shape[0], geo.oh, geo.ow, W.shape[3]), dtype=x.dtype)
        out_offset = 0
    _core.conv_fwd(geo, x, x_offset, W, b, 0 if act == SOFTMAX else act, out, out_offset, res, res_relu)
    if act == SOFTMAX:
        K = W.shape[3]
        if out.shape[3] == K:
            _core.act_fwd(out.reshape(-1, K), out.reshape(-1, K), SOFTMAX)
        else:
            sl = out[..., out_offset:out_offset + K]
            sl[...] = _softmax_copy(sl)
    return out


def _softmax_copy(a):
    t = np.ascontiguousarray(a).reshape(-1, a.shape[-1])
    _core.act_fwd(t, t, SOFTMAX)
    return t.reshape(a.shape)


def conv2d_backward(geo, x, W, dz, need_dx=True, need_db=True, dx_out=None, x_offset=0, dz_offset=0,
                    dx_offset=0, dW=None, db=None, dx_accumulate=False):
    """Gradients of z = conv(x, W) + b given dz = dL/dz (activation already
    applied).  Returns (dx, dW, db); dx is written into
    ``dx_out[..., dx_offset:dx_offset+C]`` when given (overwriting it), and
    is None when not ``need_dx``; with ``dx_accumulate`` the input gradient is
    added to ``dx_out`` instead.  db is None when not ``need_db``.  ``dW``
    and ``db`` may be given (C-contiguous, overwritten)."""
    if dW is None:
        dW = np.empty(W.shape, dtype=W.dtype)
    if not need_db:
        db = None
    elif db is None:
        db = np.empty(W.shape[3], dtype=W.dtype)
    _core.conv_bwd_filter(geo, x, x_offset, dz, dz_offset, dW, db)
    dx = None
    if need_dx:
        if dx_out is None:
            dx_out = np.empty(x.shape[:3] + (geo.c,), dtype=x.dtype)
            dx_offset = 0
        _core.conv_bwd_data(geo, dz, dz_offset, W, dx_out, dx_offset, dx_accumulate)
        dx = dx_out
    return dx, dW, db


class Conv2D(Layer):
    """2-D convolution (cross-correlation) on NHWC input with HWIO weights.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int or (h, w) pair
    padding : int, (h, w) pair, "same" or "valid"
        "same": output ``ceil(in/stride)``, the odd extra cell at the
        bottom/right; "valid": no padding.
    groups : int
        Divides both channel counts; ``groups == in_channels`` is a
        depthwise convolution.
    activation : None, "linear", "relu", "sigmoid", "tanh", "sign" or "softmax"
    use_bias : bool
    dtype : np.float32 or np.float64

    Shape
    -----
    Input ``(N, H, W, in_channels)``; output ``(N, OH, OW, out_channels)``
    with ``OH = (H + pad_top + pad_bottom - dilation_h*(KH-1) - 1) // stride_h + 1``
    (likewise OW).

    Attributes
    ----------
    params : dict
        ``"W"`` ``(KH, KW, in_channels/groups, out_channels)`` (HWIO), Glorot
        uniform; ``"b"`` ``(out_channels,)``, zeros (absent when ``use_bias=False``).
    """

    _plannable = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 activation=None, use_bias=True, dtype=np.float32):
        super().__init__(dtype)
        self.in_channels = pos_int(in_channels, "in_channels", self.name)
        self.out_channels = pos_int(out_channels, "out_channels", self.name)
        self.kernel_size = pair(kernel_size, "kernel_size", self.name)
        self.stride = pair(stride, "stride", self.name)
        self.dilation = pair(dilation, "dilation", self.name)
        self.padding = _padding_arg(padding, self.name)
        self.groups = pos_int(groups, "groups", self.name)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"{self.name}: groups={self.groups} must divide in_channels={self.in_channels} "
                             f"and out_channels={self.out_channels}")
        self.activation = activation
        self._act = act_id(activation, self.name)
        self.use_bias = bool(use_bias)
        KH, KW = self.kernel_size
        cg, kg = self.in_channels // self.groups, self.out_channels // self.groups
        limit = math.sqrt(6.0 / (KH * KW * (cg + kg)))
        self._add_param("W", _config.rng().uniform(-limit, limit, (KH, KW, cg, self.out_channels)))
        if self.use_bias:
            self._add_param("b", np.zeros(self.out_channels))

    def get_config(self):
        pad = self.padding if isinstance(self.padding, str) else list(self.padding)
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": pad,
                "dilation": list(self.dilation), "groups": self.groups, "activation": self.activation,
                "use_bias": self.use_bias, **super().get_config()}

    def _check(self, x):
        x = self._input(x)
        if x.ndim != 4 or x.shape[3] != self.in_channels:
            raise self._shape_error(f"(N, H, W, {self.in_channels})", x.shape)
        return x

    def _forward(self, x, training):
        return self._forward_add(x, training, None)[0]

    def _forward_add(self, x, training, add, relu=False):
        # The conv's store adds ``add`` after the activation (then a ReLU with
        # ``relu``, at inference).  Not with softmax (applied after the store),
        # nor when training with an activation (backward then needs the
        # activation's own output, which is not kept).
        x = self._check(x)
        W = self._param("W")
        b = self._param("b") if self.use_bias else None
        geo = self._per_shape(x.shape, lambda s: conv_geometry(s, self.in_channels, W.shape, self.stride,
                                                               self.padding, self.dilation, self.groups, self.name))
        fuse = (add is not None and self._act != SOFTMAX and (not training or self._act == 0)
                and isinstance(add, np.ndarray) and add.dtype == self.dtype and add.flags.c_contiguous
                and add.shape == (x.shape[0], geo.oh, geo.ow, self.out_channels))
        y = conv2d_forward_geometry(x, W, b, geo, self._act, res=add if fuse else None,
                                    res_relu=fuse and relu)
        if training:
            self._cache = (x, y, geo)
        return y, fuse

    def _backward(self, grad_y, input_grad):
        x, y, geo = self._cache
        g = self._grad_input(grad_y, y.shape)
        if self._act != 0:
            dz = np.empty_like(y)
            _core.act_bwd(dz.reshape(-1, self.out_channels), g.reshape(-1, self.out_channels),
                          y.reshape(-1, self.out_channels), self._act)
        else:
            dz = g
        W = self._param("W")
        dx, _, _ = conv2d_backward(geo, x, W, dz, need_dx=input_grad, need_db=self.use_bias, dW=self.grads["W"],
                                   db=self.grads["b"] if self.use_bias else None)
        return dx

    def __repr__(self):
        return (f"Conv2D({self.in_channels} -> {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}, groups={self.groups}, "
                f"activation={self.activation!r})")
