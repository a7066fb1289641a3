# Pooling kernels: bindings (included by _core.pyx).  Arrays are NHWC; the
# Python layer has validated shapes (nnc/nnc_pool.h states the rules, which
# the C core checks again).

cdef nnc_pool_desc _pool_desc(const Py_ssize_t *xs, const Py_ssize_t *ys, tuple window,
                            const Py_ssize_t *ids=NULL) except *:
    """The nnc_pool_desc of input shape xs, output shape ys and window
    (kh, kw, sh, sw, ph, pw).  The C core checks the window against H, W,
    OH, OW; the batch and channel counts and the idx shape are checked here,
    so that no call reaches memory outside the arrays."""
    cdef nnc_pool_desc p
    if xs[0] != ys[0] or xs[3] != ys[3] or (ids != NULL and (ids[0] != ys[0] or ids[1] != ys[1] or
                                                             ids[2] != ys[2] or ids[3] != ys[3])):
        raise ValueError(f"nnc pooling: inconsistent shapes: input {[xs[i] for i in range(4)]}, output "
                         f"{[ys[i] for i in range(4)]}"
                         + ("" if ids == NULL else f", idx {[ids[i] for i in range(4)]}"))
    p.n, p.h, p.w, p.c = xs[0], xs[1], xs[2], xs[3]
    p.oh, p.ow = ys[1], ys[2]
    p.kh, p.kw, p.sh, p.sw, p.ph, p.pw = window
    return p


def maxpool2d_fwd(floating[:, :, :, ::1] y, const floating[:, :, :, ::1] x, tuple window,
                  floating[:, :, :, ::1] idx=None):
    """y = max pooling of x; idx (y's shape, optional) receives the window cell
    of each first maximum."""
    cdef nnc_pool_desc p = _pool_desc(x.shape, y.shape, window, NULL if idx is None else idx.shape)
    cdef floating *ip = NULL
    if y.shape[0] == 0 or y.shape[3] == 0:
        return
    if idx is not None:
        ip = &idx[0, 0, 0, 0]
    elif _recording():
        _rec_pool(_OP_MAXPOOL, &p, &y[0, 0, 0, 0], &x[0, 0, 0, 0], floating is double, (y, x))
    with nogil:
        _ck(op_maxpool2d_fwd(&y[0, 0, 0, 0], ip, &x[0, 0, 0, 0], &p))


def maxpool2d_bwd(floating[:, :, :, ::1] dx, const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] idx,
                  tuple window):
    """dx = gradient of max pooling from dy and the forward's idx (dx overwritten)."""
    cdef nnc_pool_desc p = _pool_desc(dx.shape, dy.shape, window, idx.shape)
    if dx.shape[0] == 0 or dx.shape[3] == 0:
        return
    with nogil:
        _ck(op_maxpool2d_bwd(&dx[0, 0, 0, 0], &dy[0, 0, 0, 0], &idx[0, 0, 0, 0], &p))


def avgpool2d_fwd(floating[:, :, :, ::1] y, const floating[:, :, :, ::1] x, tuple window):
    """y = average pooling of x (padded cells not counted)."""
    cdef nnc_pool_desc p = _pool_desc(x.shape, y.shape, window)
    if y.shape[0] == 0 or y.shape[3] == 0:
        return
    if _recording():
        _rec_pool(_OP_AVGPOOL, &p, &y[0, 0, 0, 0], &x[0, 0, 0, 0], floating is double, (y, x))
    with nogil:
        _ck(op_avgpool2d_fwd(&y[0, 0, 0, 0], &x[0, 0, 0, 0], &p))


def avgpool2d_bwd(floating[:, :, :, ::1] dx, const floating[:, :, :, ::1] dy, tuple window):
    """dx = gradient of average pooling from dy (dx overwritten)."""
    cdef nnc_pool_desc p = _pool_desc(dx.shape, dy.shape, window)
    if dx.shape[0] == 0 or dx.shape[3] == 0:
        return
    with nogil:
        _ck(op_avgpool2d_bwd(&dx[0, 0, 0, 0], &dy[0, 0, 0, 0], &p))
