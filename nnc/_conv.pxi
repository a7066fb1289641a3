# conv kernels: bindings (included by _core.pyx).
#
# Geometry travels as a tuple ``geo`` = (N, H, W, C, K, KH, KW, stride_h,
# stride_w, dil_h, dil_w, pad_top, pad_bottom, pad_left, pad_right, groups,
# OH, OW) built and validated by nnc.layers.conv.  Activations are 4-D
# C-contiguous NHWC buffers; the conv reads/writes a channel slice of them
# starting at the given offset (pixel stride = the buffer's last dimension),
# so DenseBlock can work in place on its concatenation buffers.

cdef int _conv_params(nnc_conv_params *p, tuple geo, tuple xshape, nnc_ssize xoff, tuple yshape,
                      nnc_ssize yoff, tuple wshape) except -1:
    """Fills p from geo and checks every buffer against it (memory safety:
    the Python layer has already produced user-facing messages)."""
    (p.N, p.H, p.W, p.C, p.K, p.KH, p.KW, p.stride_h, p.stride_w, p.dil_h, p.dil_w,
     p.pad_top, p.pad_bottom, p.pad_left, p.pad_right, p.groups, p.OH, p.OW) = geo
    if (p.groups < 1 or p.C % p.groups or p.K % p.groups or xoff < 0 or yoff < 0
            or xshape[:3] != (p.N, p.H, p.W) or xoff + p.C > xshape[3]
            or yshape[:3] != (p.N, p.OH, p.OW) or yoff + p.K > yshape[3]
            or wshape != (p.KH, p.KW, p.C // p.groups, p.K)):
        raise ValueError(f"conv: buffers {xshape}+{xoff}, {yshape}+{yoff}, W {wshape} do not match geometry {geo}")
    p.ldx = xshape[3]
    p.ldy = yshape[3]
    return 0


def conv_fwd(tuple geo, const floating[:, :, :, ::1] x, nnc_ssize x_off, const floating[:, :, :, ::1] W,
             const floating[::1] bias, int act, floating[:, :, :, ::1] y, nnc_ssize y_off,
             const floating[:, :, :, ::1] res=None):
    """y[..., y_off:y_off+K] = act(conv(x[..., x_off:x_off+C], W) + bias) (+ res[..., y_off:y_off+K]
    when res, an array of y's shape, is given: a residual block's skip input)."""
    cdef nnc_conv_params p
    _conv_params(&p, geo, (x.shape[0], x.shape[1], x.shape[2], x.shape[3]), x_off, (y.shape[0], y.shape[1], y.shape[2], y.shape[3]), y_off, (W.shape[0], W.shape[1], W.shape[2], W.shape[3]))
    if bias is not None and bias.shape[0] != p.K:
        raise ValueError(f"conv: bias of {bias.shape[0]} elements for {p.K} channels")
    cdef const floating *bp = _ptr_or_null(bias)
    cdef const floating *rp = NULL
    if res is not None:
        if (res.shape[0] != y.shape[0] or res.shape[1] != y.shape[1] or res.shape[2] != y.shape[2]
                or res.shape[3] != y.shape[3]):
            raise ValueError(f"conv: a residual of shape {(res.shape[0], res.shape[1], res.shape[2], res.shape[3])} "
                             f"for an output buffer {(y.shape[0], y.shape[1], y.shape[2], y.shape[3])}")
        if p.N:
            rp = &res[0, 0, 0, y_off]
    if p.N == 0:
        return
    if _recording():
        _rec_conv(&p, &x[0, 0, 0, x_off], &W[0, 0, 0, 0], bp, act, rp, &y[0, 0, 0, y_off], floating is double,
                  (x, W, bias, res, y))
    with nogil:
        _ck(op_conv_fwd(&p, &x[0, 0, 0, x_off], &W[0, 0, 0, 0], bp, act, rp, &y[0, 0, 0, y_off]))


def conv_bwd_data(tuple geo, const floating[:, :, :, ::1] dz, nnc_ssize dz_off, const floating[:, :, :, ::1] W,
                  floating[:, :, :, ::1] dx, nnc_ssize dx_off, bint accumulate=False):
    """dx[..., dx_off:dx_off+C] = conv_transpose(dz[..., dz_off:dz_off+K], W), overwritten
    (or added to it with accumulate)."""
    cdef nnc_conv_params p
    _conv_params(&p, geo, (dx.shape[0], dx.shape[1], dx.shape[2], dx.shape[3]), dx_off, (dz.shape[0], dz.shape[1], dz.shape[2], dz.shape[3]), dz_off, (W.shape[0], W.shape[1], W.shape[2], W.shape[3]))
    if p.N == 0:
        return
    with nogil:
        _ck(op_conv_bwd_data(&p, &dz[0, 0, 0, dz_off], &W[0, 0, 0, 0], &dx[0, 0, 0, dx_off], accumulate))


def conv_bwd_filter(tuple geo, const floating[:, :, :, ::1] x, nnc_ssize x_off, const floating[:, :, :, ::1] dz,
                    nnc_ssize dz_off, floating[:, :, :, ::1] dW, floating[::1] db):
    """dW = sum x (x) dz over pixels; db = column sums of dz (skipped if None).  Overwritten."""
    cdef nnc_conv_params p
    _conv_params(&p, geo, (x.shape[0], x.shape[1], x.shape[2], x.shape[3]), x_off, (dz.shape[0], dz.shape[1], dz.shape[2], dz.shape[3]), dz_off, (dW.shape[0], dW.shape[1], dW.shape[2], dW.shape[3]))
    if db is not None and db.shape[0] != p.K:
        raise ValueError(f"conv: db of {db.shape[0]} elements for {p.K} channels")
    cdef floating *dbp = NULL if db is None else &db[0]
    with nogil:
        _ck(op_conv_bwd_filter(&p, &x[0, 0, 0, x_off] if p.N else NULL, &dz[0, 0, 0, dz_off] if p.N else NULL,
                               &dW[0, 0, 0, 0], dbp))
