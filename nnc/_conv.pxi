# conv kernels: bindings (included by _core.pyx).
#
# Geometry travels as ``geo``, an nnc.layers.conv.ConvGeometry (fields named
# as nnc_conv_desc's, without the strides) built and validated by
# nnc.layers.conv.  Activations are 4-D
# C-contiguous NHWC buffers; the conv reads/writes a channel slice of them
# starting at the given offset (pixel stride = the buffer's last dimension),
# so DenseBlock can work in place on its concatenation buffers.

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


cdef int _conv_fwd_run(floating tag, const nnc_conv_desc *p, const char *x, const char *W, const char *b, int act,
                       const char *res, char *y, tuple refs) except -1:
    if _recording():
        _rec_conv(p, x, W, b, act, res, y, floating is double, refs)
    with nogil:
        _ck(op_conv_fwd(p, <const floating *>x, <const floating *>W, <const floating *>b, act,
                        <const floating *>res, <floating *>y))
    return 0


def conv_fwd(object geo, x, nnc_ssize x_off, W, bias, int act, y, nnc_ssize y_off, res=None, bint res_relu=False):
    """y[..., y_off:y_off+K] = act(conv(x[..., x_off:x_off+C], W) + bias) (+ res[..., y_off:y_off+K]
    when res, an array of y's shape, is given: a residual block's skip input), then max(0, .) with
    res_relu.  x, W, y, res: C-contiguous 4-D ndarrays of one float dtype; bias (K,) or None."""
    cdef int f64 = _f64_of(y, "y")
    cdef nnc_ssize sz = 8 if f64 else 4
    cdef char *yp = _carray(y, f64, 4, "y", True)
    cdef char *xp = _carray(x, f64, 4, "x")
    cdef char *wp = _carray(W, f64, 4, "W")
    cdef nnc_conv_desc p
    _conv_desc(&p, geo, x.shape, x_off, y.shape, y_off, W.shape)
    cdef char *bp = _bias(bias, f64, p.k)
    cdef char *rp = NULL
    if res is not None:
        rp = _carray(res, f64, 4, "res")
        if res.shape != y.shape:
            raise ValueError(f"conv: a residual of shape {res.shape} for an output buffer {y.shape}")
        rp += y_off * sz
    if p.n == 0:
        return
    if res_relu:
        act |= NNC_CONV_RES_RELU
    if f64:
        _conv_fwd_run(<double>0, &p, xp + x_off * sz, wp, bp, act, rp, yp + y_off * sz, (x, W, bias, res, y))
    else:
        _conv_fwd_run(<float>0, &p, xp + x_off * sz, wp, bp, act, rp, yp + y_off * sz, (x, W, bias, res, y))


cdef int _conv_bwd_data_run(floating tag, const nnc_conv_desc *p, const char *dz, const char *W, char *dx,
                            bint accumulate) except -1:
    with nogil:
        _ck(op_conv_bwd_data(p, <const floating *>dz, <const floating *>W, <floating *>dx, accumulate))
    return 0


def conv_bwd_data(object geo, dz, nnc_ssize dz_off, W, dx, nnc_ssize dx_off, bint accumulate=False):
    """dx[..., dx_off:dx_off+C] = conv_transpose(dz[..., dz_off:dz_off+K], W), overwritten
    (or added to it with accumulate)."""
    cdef int f64 = _f64_of(dx, "dx")
    cdef nnc_ssize sz = 8 if f64 else 4
    cdef char *dxp = _carray(dx, f64, 4, "dx", True)
    cdef char *dzp = _carray(dz, f64, 4, "dz")
    cdef char *wp = _carray(W, f64, 4, "W")
    cdef nnc_conv_desc p
    _conv_desc(&p, geo, dx.shape, dx_off, dz.shape, dz_off, W.shape)
    if p.n == 0:
        return
    if f64:
        _conv_bwd_data_run(<double>0, &p, dzp + dz_off * sz, wp, dxp + dx_off * sz, accumulate)
    else:
        _conv_bwd_data_run(<float>0, &p, dzp + dz_off * sz, wp, dxp + dx_off * sz, accumulate)


cdef int _conv_bwd_filter_run(floating tag, const nnc_conv_desc *p, const char *x, const char *dz, char *dW,
                              char *db) except -1:
    with nogil:
        _ck(op_conv_bwd_filter(p, <const floating *>x if p.n else NULL, <const floating *>dz if p.n else NULL,
                               <floating *>dW, <floating *>db))
    return 0


def conv_bwd_filter(object geo, x, nnc_ssize x_off, dz, nnc_ssize dz_off, dW, db):
    """dW = sum x (x) dz over pixels; db = column sums of dz (skipped if None).  Overwritten."""
    cdef int f64 = _f64_of(dW, "dW")
    cdef nnc_ssize sz = 8 if f64 else 4
    cdef char *dwp = _carray(dW, f64, 4, "dW", True)
    cdef char *xp = _carray(x, f64, 4, "x")
    cdef char *dzp = _carray(dz, f64, 4, "dz")
    cdef nnc_conv_desc p
    _conv_desc(&p, geo, x.shape, x_off, dz.shape, dz_off, dW.shape)
    cdef char *dbp = NULL
    if db is not None:
        dbp = _carray(db, f64, 1, "db", True)
        if _dim(db, 0) != p.k:
            raise ValueError(f"conv: db of {_dim(db, 0)} elements for {p.k} channels")
    if f64:
        _conv_bwd_filter_run(<double>0, &p, xp + x_off * sz, dzp + dz_off * sz, dwp, dbp)
    else:
        _conv_bwd_filter_run(<float>0, &p, xp + x_off * sz, dzp + dz_off * sz, dwp, dbp)
