# GEMM and activation kernels: bindings (included by _core.pyx).

cdef inline const floating *_ptr_or_null(const floating[::1] v) noexcept nogil:
    return NULL if v is None or v.shape[0] == 0 else &v[0]


cdef int _gemm_run(floating tag, int ta, int tb, nnc_ssize m, nnc_ssize n, nnc_ssize k, double alpha,
                   const char *A, nnc_ssize lda, const char *B, nnc_ssize ldb, double beta, char *C,
                   const char *bias, int act) except -1:
    with nogil:
        _ck(op_gemm(ta, tb, m, n, k, <floating>alpha, <const floating *>A if m * k else NULL, lda,
                    <const floating *>B if k * n else NULL, ldb, <floating>beta, <floating *>C, n,
                    <const floating *>bias, act))
    return 0


def gemm(int ta, int tb, A, B, C, double alpha=1, double beta=0, bias=None, int act=0):
    """C = act(alpha * op(A) @ op(B) + beta * C + bias), in place on C; op(A)
    (m, k), op(B) (k, n), C (m, n), bias (n,) or None: C-contiguous ndarrays
    of one float dtype."""
    cdef int f64 = _f64_of(C, "C")
    cdef char *c = _carray(C, f64, 2, "C", True)
    cdef nnc_ssize m = _dim(C, 0), n = _dim(C, 1)
    cdef char *a = _carray(A, f64, 2, "A")
    cdef nnc_ssize k = _dim(A, 0) if ta else _dim(A, 1)
    cdef char *b = _carray(B, f64, 2, "B")
    cdef char *bp = _bias(bias, f64, n)
    if ta:
        _shape_is(A, k, m, "A")
    else:
        _shape_is(A, m, k, "A")
    if tb:
        _shape_is(B, n, k, "B")
    else:
        _shape_is(B, k, n, "B")
    if m == 0 or n == 0:
        return
    if f64:
        _gemm_run(<double>0, ta, tb, m, n, k, alpha, a, _dim(A, 1), b, _dim(B, 1), beta, c, bp, act)
    else:
        _gemm_run(<float>0, ta, tb, m, n, k, alpha, a, _dim(A, 1), b, _dim(B, 1), beta, c, bp, act)


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


cdef int _gemm_nt_run(floating tag, nnc_ssize m, nnc_ssize n, nnc_ssize k, double alpha, const char *A,
                      const char *B, double beta, char *C, const char *bias, int act, tuple refs) except -1:
    cdef const floating *a = <const floating *>A if k else NULL
    cdef const floating *b = <const floating *>B if k else NULL
    if _recording():
        _rec_gemm_nt(m, n, k, alpha, a, k, b, k, beta, <floating *>C, n, <const floating *>bias, act,
                     floating is double, refs)
    with nogil:
        _ck(op_gemm_nt(m, n, k, <floating>alpha, a, k, b, k, <floating>beta, <floating *>C, n,
                       <const floating *>bias, act))
    return 0


def gemm_nt(A, B, C, double alpha=1, double beta=0, bias=None, int act=0):
    """C = act(alpha * A @ B.T + beta * C + bias) by dot products along k
    (or, for a short k, the GEMM with B packed per call: the choice depends
    on n and k only); A (m, k), B (n, k), C (m, n), bias (n,) or None,
    C-contiguous ndarrays of one float dtype."""
    cdef int f64 = _f64_of(C, "C")
    cdef char *c = _carray(C, f64, 2, "C", True)
    cdef nnc_ssize m = _dim(C, 0), n = _dim(C, 1)
    cdef char *a = _carray(A, f64, 2, "A")
    cdef nnc_ssize k = _dim(A, 1)
    cdef char *b = _carray(B, f64, 2, "B")
    cdef char *bp = _bias(bias, f64, n)
    _shape_is(A, m, k, "A")
    _shape_is(B, n, k, "B")
    if m == 0 or n == 0:
        return
    if f64:
        _gemm_nt_run(<double>0, m, n, k, alpha, a, b, beta, c, bp, act, (A, B, C, bias))
    else:
        _gemm_nt_run(<float>0, m, n, k, alpha, a, b, beta, c, bp, act, (A, B, C, bias))


cdef int _act_fwd_run(floating tag, char *y, nnc_ssize ldy, const char *z, nnc_ssize ldz, nnc_ssize rows,
                     nnc_ssize cols, int act, double alpha, tuple refs) except -1:
    if _recording():
        _rec_act(y, ldy, z, ldz, rows, cols, act, alpha, floating is double, refs)
    with nogil:
        _ck(op_act_fwd(<floating *>y, ldy, <const floating *>z, ldz, rows, cols, act, <floating>alpha))
    return 0


def act_fwd(y, z, int act, double alpha=0):
    """y = act(z) row-wise (softmax over each row; alpha: leaky ReLU's
    slope); y may be z.  Rows may be strided (e.g. a channel slice of an NHWC
    buffer reshaped to 2-D)."""
    cdef int f64 = _f64_of(y, "y")
    cdef nnc_ssize ldy, ldz
    cdef char *yp = _rows(y, f64, "y", &ldy, True)
    cdef nnc_ssize rows = _dim(y, 0), cols = _dim(y, 1)
    cdef char *zp = _rows(z, f64, "z", &ldz)
    _shape_is(z, rows, cols, "z")
    if rows == 0 or cols == 0:
        return
    if f64:
        _act_fwd_run(<double>0, yp, ldy, zp, ldz, rows, cols, act, alpha, (y, z))
    else:
        _act_fwd_run(<float>0, yp, ldy, zp, ldz, rows, cols, act, alpha, (y, z))


cdef int _act_bwd_run(floating tag, char *dz, nnc_ssize lddz, const char *dy, nnc_ssize lddy, const char *s,
                      nnc_ssize lds, nnc_ssize rows, nnc_ssize cols, int act, double alpha) except -1:
    with nogil:
        _ck(op_act_bwd(<floating *>dz, lddz, <const floating *>dy, lddy, <const floating *>s, lds, rows, cols,
                       act, <floating>alpha))
    return 0


def act_bwd(dz, dy, s, int act, double alpha=0):
    """dz = dy * act'(.) from s, the forward output (leaky ReLU, slope alpha:
    the forward input); dz may be dy; rows may be strided."""
    cdef int f64 = _f64_of(dz, "dz")
    cdef nnc_ssize lddz, lddy, lds
    cdef char *dzp = _rows(dz, f64, "dz", &lddz, True)
    cdef nnc_ssize rows = _dim(dz, 0), cols = _dim(dz, 1)
    cdef char *dyp = _rows(dy, f64, "dy", &lddy)
    cdef char *sp = _rows(s, f64, "s", &lds)
    _shape_is(dy, rows, cols, "dy")
    _shape_is(s, rows, cols, "s")
    if rows == 0 or cols == 0:
        return
    if f64:
        _act_bwd_run(<double>0, dzp, lddz, dyp, lddy, sp, lds, rows, cols, act, alpha)
    else:
        _act_bwd_run(<float>0, dzp, lddz, dyp, lddy, sp, lds, rows, cols, act, alpha)


cdef int _colsum_run(floating tag, char *out, const char *x, nnc_ssize rows, nnc_ssize cols) except -1:
    with nogil:
        _ck(op_colsum(<floating *>out, <const floating *>x if rows else NULL, rows, cols))
    return 0


def colsum(out, x):
    """out (n,) = x (m, n).sum(axis=0), rows added in order."""
    cdef int f64 = _f64_of(out, "out")
    cdef char *o = _carray(out, f64, 1, "out", True)
    cdef char *xp = _carray(x, f64, 2, "x")
    cdef nnc_ssize n = _dim(out, 0)
    _shape_is(x, _dim(x, 0), n, "x")
    if n == 0:
        return
    if f64:
        _colsum_run(<double>0, o, xp, _dim(x, 0), n)
    else:
        _colsum_run(<float>0, o, xp, _dim(x, 0), n)


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
