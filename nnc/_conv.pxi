# conv kernels: bindings (included by _core.pyx).
#
# Geometry travels as ``geo``, an nnc.layers.conv.ConvGeometry (fields named
# as nnc_conv_desc's, without the strides) built and validated by
# nnc.layers.conv.  Activations are 4-D
# C-contiguous NHWC buffers; the conv reads/writes a channel slice of them
# starting at the given offset (pixel stride = the buffer's last dimension),
# so DenseBlock can work in place on its concatenation buffers.

cdef inline tuple _shape4(const Py_ssize_t *shape):
    return (shape[0], shape[1], shape[2], shape[3])


cdef int _conv_desc(nnc_conv_desc *p, object geo, tuple xshape, nnc_ssize xoff, tuple yshape,
                    nnc_ssize yoff, tuple wshape) except -1:
    """Fills p from geo and checks every buffer against it (memory safety:
    the Python layer has already produced user-facing messages)."""
    # One tuple unpack (a ConvGeometry is a named tuple whose fields are
    # the struct's, in order: tests/test_package.py checks it).
    (p.n, p.h, p.w, p.c, p.k, p.kh, p.kw, p.stride_h, p.stride_w, p.dil_h, p.dil_w,
     p.pad_top, p.pad_bottom, p.pad_left, p.pad_right, p.groups, p.oh, p.ow) = geo
    if (p.groups < 1 or p.c % p.groups or p.k % p.groups or xoff < 0 or yoff < 0
            or xshape[:3] != (p.n, p.h, p.w) or xoff + p.c > xshape[3]
            or yshape[:3] != (p.n, p.oh, p.ow) or yoff + p.k > yshape[3]
            or wshape != (p.kh, p.kw, p.c // p.groups, p.k)):
        raise ValueError(f"conv: buffers {xshape}+{xoff}, {yshape}+{yoff}, W {wshape} do not match geometry {geo}")
    p.ldx = xshape[3]
    p.ldy = yshape[3]
    return 0


def conv_fwd(object geo, const floating[:, :, :, ::1] x, nnc_ssize x_off, const floating[:, :, :, ::1] W,
             const floating[::1] bias, int act, floating[:, :, :, ::1] y, nnc_ssize y_off,
             const floating[:, :, :, ::1] res=None):
    """y[..., y_off:y_off+K] = act(conv(x[..., x_off:x_off+C], W) + bias) (+ res[..., y_off:y_off+K]
    when res, an array of y's shape, is given: a residual block's skip input)."""
    cdef nnc_conv_desc p
    _conv_desc(&p, geo, _shape4(x.shape), x_off, _shape4(y.shape), y_off, _shape4(W.shape))
    if bias is not None and bias.shape[0] != p.k:
        raise ValueError(f"conv: bias of {bias.shape[0]} elements for {p.k} channels")
    cdef const floating *bp = _ptr_or_null(bias)
    cdef const floating *rp = NULL
    if res is not None:
        if (res.shape[0] != y.shape[0] or res.shape[1] != y.shape[1] or res.shape[2] != y.shape[2]
                or res.shape[3] != y.shape[3]):
            raise ValueError(f"conv: a residual of shape {_shape4(res.shape)} "
                             f"for an output buffer {_shape4(y.shape)}")
        if p.n:
            rp = &res[0, 0, 0, y_off]
    if p.n == 0:
        return
    if _recording():
        _rec_conv(&p, &x[0, 0, 0, x_off], &W[0, 0, 0, 0], bp, act, rp, &y[0, 0, 0, y_off], floating is double,
                  (x, W, bias, res, y))
    with nogil:
        _ck(op_conv_fwd(&p, &x[0, 0, 0, x_off], &W[0, 0, 0, 0], bp, act, rp, &y[0, 0, 0, y_off]))


def conv_bwd_data(object geo, const floating[:, :, :, ::1] dz, nnc_ssize dz_off, const floating[:, :, :, ::1] W,
                  floating[:, :, :, ::1] dx, nnc_ssize dx_off, bint accumulate=False):
    """dx[..., dx_off:dx_off+C] = conv_transpose(dz[..., dz_off:dz_off+K], W), overwritten
    (or added to it with accumulate)."""
    cdef nnc_conv_desc p
    _conv_desc(&p, geo, _shape4(dx.shape), dx_off, _shape4(dz.shape), dz_off, _shape4(W.shape))
    if p.n == 0:
        return
    with nogil:
        _ck(op_conv_bwd_data(&p, &dz[0, 0, 0, dz_off], &W[0, 0, 0, 0], &dx[0, 0, 0, dx_off], accumulate))


def conv_bwd_filter(object geo, const floating[:, :, :, ::1] x, nnc_ssize x_off, const floating[:, :, :, ::1] dz,
                    nnc_ssize dz_off, floating[:, :, :, ::1] dW, floating[::1] db):
    """dW = sum x (x) dz over pixels; db = column sums of dz (skipped if None).  Overwritten."""
    cdef nnc_conv_desc p
    _conv_desc(&p, geo, _shape4(x.shape), x_off, _shape4(dz.shape), dz_off, _shape4(dW.shape))
    if db is not None and db.shape[0] != p.k:
        raise ValueError(f"conv: db of {db.shape[0]} elements for {p.k} channels")
    cdef floating *dbp = NULL if db is None else &db[0]
    with nogil:
        _ck(op_conv_bwd_filter(&p, &x[0, 0, 0, x_off] if p.n else NULL, &dz[0, 0, 0, dz_off] if p.n else NULL,
                               &dW[0, 0, 0, 0], dbp))
