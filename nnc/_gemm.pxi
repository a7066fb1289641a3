# GEMM and activation kernels: bindings (included by _core.pyx).

cdef inline const floating *_ptr_or_null(const floating[::1] v) noexcept nogil:
    return NULL if v is None or v.shape[0] == 0 else &v[0]


def gemm(int ta, int tb, const floating[:, ::1] A, const floating[:, ::1] B, floating[:, ::1] C,
         floating alpha=1, floating beta=0, const floating[::1] bias=None, int act=0):
    """C = act(alpha * op(A) @ op(B) + beta * C + bias), in place on C.

    Shapes are the caller's responsibility (checked by nnc.gemm in Python)."""
    cdef nnc_ssize m = C.shape[0], n = C.shape[1]
    cdef nnc_ssize k = A.shape[0] if ta else A.shape[1]
    cdef const floating *bp = _ptr_or_null(bias)
    if m == 0 or n == 0:
        return
    with nogil:
        _ck(op_gemm(ta, tb, m, n, k, alpha, &A[0, 0] if A.shape[0] * A.shape[1] else NULL, A.shape[1],
                    &B[0, 0] if B.shape[0] * B.shape[1] else NULL, B.shape[1], beta, &C[0, 0], C.shape[1], bp,
                    act))


def gemm_block_sizes(dtype_is_f64):
    """The GEMM's (MR, NR, KC, MC, NC) under the active ISA and CPU row."""
    cdef nnc_ssize out[5]
    op_gemm_block_sizes(dtype_is_f64, out)
    return tuple(out[i] for i in range(5))


def gemm_packed_b_size(dtype_is_f64, nnc_ssize n, nnc_ssize k):
    cdef nnc_ssize s = op_gemm_packed_b_size(dtype_is_f64, n, k)
    if s < 0:
        raise ValueError("nnc: packed weight too large")
    return s


def gemm_pack_b(floating[::1] dst, int tb, nnc_ssize n, nnc_ssize k, const floating[:, ::1] B):
    """Pack op(B) (k, n) into dst (gemm_packed_b_size elements)."""
    if n == 0 or k == 0:
        return
    with nogil:
        _ck(op_gemm_pack_b(&dst[0], tb, n, k, &B[0, 0], B.shape[1]))


def gemm_packed(int ta, const floating[:, ::1] A, const floating[::1] Bp, nnc_ssize k, floating[:, ::1] C,
                floating alpha=1, floating beta=0, const floating[::1] bias=None, int act=0):
    """C = act(alpha * op(A) @ B + beta * C + bias) with B packed by gemm_pack_b."""
    cdef nnc_ssize m = C.shape[0], n = C.shape[1]
    cdef const floating *bp = _ptr_or_null(bias)
    if m == 0 or n == 0:
        return
    with nogil:
        _ck(op_gemm_packed(ta, m, n, k, alpha, &A[0, 0] if k else NULL, A.shape[1], &Bp[0] if k else NULL,
                           beta, &C[0, 0], C.shape[1], bp, act))


def gemm_nt(const floating[:, ::1] A, const floating[:, ::1] B, floating[:, ::1] C,
            floating alpha=1, floating beta=0, const floating[::1] bias=None, int act=0):
    """C = act(alpha * A @ B.T + beta * C + bias) by the unpacked dot-product path."""
    cdef nnc_ssize m = C.shape[0], n = C.shape[1], k = A.shape[1]
    cdef const floating *bp = _ptr_or_null(bias)
    if m == 0 or n == 0:
        return
    if _recording():
        _rec_gemm_nt(m, n, k, alpha, &A[0, 0] if k else NULL, k, &B[0, 0] if k else NULL, k, beta, &C[0, 0], n, bp,
                     act, floating is double, (A, B, C, bias))
    with nogil:
        _ck(op_gemm_nt(m, n, k, alpha, &A[0, 0] if k else NULL, k, &B[0, 0] if k else NULL, k, beta, &C[0, 0],
                       n, bp, act))


cdef inline nnc_ssize _ld(nnc_ssize stride_bytes, nnc_ssize itemsize) noexcept nogil:
    return stride_bytes // itemsize


cdef int _rows_ok(tuple arrays, nnc_ssize rows, nnc_ssize cols, nnc_ssize sz) except -1:
    for a in arrays:
        if a.shape[0] != rows or a.shape[1] != cols or a.strides[1] != sz or a.strides[0] % sz:
            raise ValueError("act: arrays must share one 2-D shape with contiguous rows")
    return 0


def act_fwd(floating[:, :] y, const floating[:, :] z, int act, floating alpha=0):
    """y = act(z) row-wise (softmax over each row; alpha: leaky ReLU's
    slope); y may be z.  Rows may be strided (e.g. a channel slice of an NHWC
    buffer reshaped to 2-D)."""
    if y.shape[0] == 0 or y.shape[1] == 0:
        return
    cdef nnc_ssize sz = sizeof(floating)
    _rows_ok((y, z), y.shape[0], y.shape[1], sz)
    if _recording():
        _rec_act(&y[0, 0], _ld(y.strides[0], sz), &z[0, 0], _ld(z.strides[0], sz), y.shape[0], y.shape[1], act,
                 alpha, floating is double, (y, z))
    with nogil:
        _ck(op_act_fwd(&y[0, 0], _ld(y.strides[0], sz), &z[0, 0], _ld(z.strides[0], sz), y.shape[0],
                       y.shape[1], act, alpha))


def act_bwd(floating[:, :] dz, const floating[:, :] dy, const floating[:, :] s, int act, floating alpha=0):
    """dz = dy * act'(.) from s, the forward output (leaky ReLU, slope alpha:
    the forward input); dz may be dy; rows may be strided."""
    if dz.shape[0] == 0 or dz.shape[1] == 0:
        return
    cdef nnc_ssize sz = sizeof(floating)
    _rows_ok((dz, dy, s), dz.shape[0], dz.shape[1], sz)
    with nogil:
        _ck(op_act_bwd(&dz[0, 0], _ld(dz.strides[0], sz), &dy[0, 0], _ld(dy.strides[0], sz), &s[0, 0],
                       _ld(s.strides[0], sz), dz.shape[0], dz.shape[1], act, alpha))


def colsum(floating[::1] out, const floating[:, ::1] x):
    """out = x.sum(axis=0), rows added in order."""
    if out.shape[0] == 0:
        return
    with nogil:
        _ck(op_colsum(&out[0], &x[0, 0] if x.shape[0] else NULL, x.shape[0], out.shape[0]))


def perceptron_epoch(floating[:, ::1] W, floating[::1] b, const floating[:, ::1] x,
                     const floating[:, ::1] t, const int64_t[::1] order, floating lr):
    """One online perceptron-rule epoch in the given sample order; returns mistakes."""
    cdef int64_t wrong = 0
    if order.shape[0] == 0:
        return 0
    with nogil:
        _ck(op_perceptron_epoch(&W[0, 0], &b[0], &x[0, 0], &t[0, 0], &order[0], order.shape[0], W.shape[1],
                                W.shape[0], lr, &wrong))
    return wrong
