# Inference plans (included by _core.pyx).  A Sequential records the kernel
# calls of one inference forward (every binding below reports its resolved C
# arguments while a recording runs on the calling thread) and replays them
# afterwards in one nogil loop: no Python, no argument conversion between
# kernels.  Pointers into the input are re-based onto each call's input,
# pointers into the result onto a fresh output array; every other pointer
# is a buffer of the recorded forward (kept alive by the plan) or a
# parameter array.  The replay makes the very kernel calls of the forward,
# so its results are the same bits.
from cpython.pythread cimport PyThread_get_thread_ident
from libc.stdlib cimport free, malloc, realloc

cdef enum:
    _OP_CONV = 1
    _OP_MAXPOOL = 2
    _OP_AVGPOOL = 3
    _OP_GEMM_NT = 4
    _OP_ACT = 5
    _OP_ADD = 6
    _OP_NPTR = 5

ctypedef struct _plan_op:
    int kind, f64, act
    nnc_conv_desc cp
    nnc_pool_desc pp
    nnc_ssize m, n, k, lda, ldb, ldc   # gemm_nt; act: rows m, cols n, ldy lda, ldz ldb; add: n
    double alpha, beta                 # gemm_nt; act: alpha (leaky ReLU's slope)
    const char *ptr[_OP_NPTR]          # conv: x W bias res y; pools: y x; gemm_nt: A B C bias; act: y z; add: y a b
    int where[_OP_NPTR]                # 0 as recorded, 1 into the input, 2 into the output
    size_t off[_OP_NPTR]

cdef class Plan:
    """Recorded kernel calls of one inference forward (see above)."""
    cdef _plan_op *ops
    cdef Py_ssize_t n, cap
    cdef list refs
    cdef size_t in_lo, in_hi, out_lo, out_hi
    cdef readonly tuple out_shape
    cdef readonly object dtype
    cdef cnp.npy_intp *out_dims
    cdef int typenum
    cdef size_t out_bytes
    cdef bint busy

    def __cinit__(self):
        self.ops, self.n, self.cap = NULL, 0, 0
        self.refs = []
        self.out_dims = NULL
        self.busy = False

    def __dealloc__(self):
        free(self.ops)
        free(self.out_dims)

    def record(self):
        """Context manager: the bindings called on this thread report to this plan."""
        return _Recording(self)

    def arrays(self):
        """The arrays the recorded calls touch (their memoryviews' objects)."""
        return [a if isinstance(a, _np.ndarray) else getattr(a, "base", a)
                for refs in self.refs for a in refs if a is not None]

    def finish(self, x, y):
        """Re-bases the recorded pointers that fall in input x or result y;
        False if nothing was recorded or y overlaps x (then no plan)."""
        cdef size_t xp = x.__array_interface__["data"][0], yp = y.__array_interface__["data"][0]
        cdef size_t p
        self.in_lo, self.in_hi = xp, xp + x.nbytes
        self.out_lo, self.out_hi = yp, yp + y.nbytes
        if self.n == 0 or not y.flags.c_contiguous or (yp < self.in_hi and xp < self.out_hi):
            return False
        self.out_shape, self.dtype, self.typenum = y.shape, y.dtype, cnp.PyArray_TYPE(<cnp.ndarray>y)
        self.out_bytes = y.nbytes
        free(self.out_dims)
        self.out_dims = <cnp.npy_intp *>malloc(sizeof(cnp.npy_intp) * (y.ndim + 1))
        if self.out_dims == NULL:
            raise MemoryError("nnc: out of memory")
        for i in range(y.ndim):
            self.out_dims[i] = y.shape[i]
        for i in range(self.n):
            for j in range(_OP_NPTR):
                p = <size_t>self.ops[i].ptr[j]
                if p == 0:
                    continue
                if self.in_lo <= p < self.in_hi:
                    self.ops[i].where[j], self.ops[i].off[j] = 1, p - self.in_lo
                elif self.out_lo <= p < self.out_hi:
                    self.ops[i].where[j], self.ops[i].off[j] = 2, p - self.out_lo
        return True

    def run(self, x):
        """The recorded forward on x (the recorded shape; the caller checks
        it); None when x is not a C-contiguous array of the recorded dtype,
        or while another thread runs this plan (the busy flag is taken and
        released under the GIL).  An output of 64 KiB or more comes from
        the memory cache, as a layer's would."""
        cdef cnp.ndarray xa = <cnp.ndarray?>x
        if self.busy or cnp.PyArray_TYPE(xa) != self.typenum or not cnp.PyArray_IS_C_CONTIGUOUS(xa):
            return None
        self.busy = True
        try:
            if self.out_bytes >= 65536:
                with memcache():
                    out = cnp.PyArray_EMPTY(len(self.out_shape), self.out_dims, self.typenum, 0)
            else:
                out = cnp.PyArray_EMPTY(len(self.out_shape), self.out_dims, self.typenum, 0)
            self._replay(<const char *>cnp.PyArray_DATA(xa), <char *>cnp.PyArray_DATA(<cnp.ndarray>out))
            return out
        finally:
            self.busy = False

    cdef int _replay(self, const char *xb, char *yb) except -1:
        cdef const char *q[_OP_NPTR]
        cdef _plan_op *o
        cdef int st = NNC_OK
        with nogil:
            for i in range(self.n):
                o = &self.ops[i]
                for j in range(_OP_NPTR):
                    q[j] = (o.ptr[j] if o.where[j] == 0 else (xb if o.where[j] == 1 else yb) + o.off[j])
                st = _run_op(o, q, <double>0) if o.f64 else _run_op(o, q, <float>0)
                if st != NNC_OK:
                    break
        return _ck(st)


def plan_current(list leaves, list planned, list triples):
    """True while a plan entry still holds: ``leaves`` are the very layers
    ``planned`` lists, and each ``(leaf, key, array)`` of ``triples`` is
    still that leaf's ``params[key]`` (a model's check before each replay)."""
    cdef Py_ssize_t i, n = len(leaves)
    if n != len(planned):
        return False
    for i in range(n):
        if leaves[i] is not planned[i]:
            return False
    for leaf, key, arr in triples:
        params = leaf.params
        if type(params) is not dict or (<dict>params).get(key) is not arr:
            return False
    return True


cdef Plan _rec_plan = None           # the plan being recorded, or None
cdef unsigned long _rec_thread = 0


cdef _plan_op *_rec_op(int kind, int f64, tuple refs) except NULL:
    """A new op of the plan being recorded (refs: the arrays it touches)."""
    cdef Plan pl = _rec_plan
    cdef _plan_op *o
    if pl.n == pl.cap:
        o = <_plan_op *>realloc(pl.ops, (2 * pl.cap + 8) * sizeof(_plan_op))
        if o == NULL:
            raise MemoryError()
        pl.ops, pl.cap = o, 2 * pl.cap + 8
    o = &pl.ops[pl.n]
    memset(o, 0, sizeof(_plan_op))
    o.kind, o.f64 = kind, f64
    pl.n += 1
    pl.refs.append(refs)
    return o


cdef inline bint _recording() noexcept:
    return _rec_plan is not None and PyThread_get_thread_ident() == _rec_thread


cdef int _run_op(const _plan_op *o, const char **q, floating dtype_tag) noexcept nogil:
    """Replays one recorded call; q holds its re-based pointers.  The fused
    dtype_tag (a 0 of the recorded element type) picks float32 or float64."""
    if o.kind == _OP_CONV:
        return op_conv_fwd(&o.cp, <const floating *>q[0], <const floating *>q[1], <const floating *>q[2], o.act,
                           <const floating *>q[3], <floating *>q[4])
    if o.kind == _OP_MAXPOOL:
        return op_maxpool2d_fwd(<floating *>q[0], NULL, <const floating *>q[1], &o.pp)
    if o.kind == _OP_AVGPOOL:
        return op_avgpool2d_fwd(<floating *>q[0], <const floating *>q[1], &o.pp)
    if o.kind == _OP_GEMM_NT:
        return op_gemm_nt(o.m, o.n, o.k, <floating>o.alpha, <const floating *>q[0], o.lda, <const floating *>q[1],
                          o.ldb, <floating>o.beta, <floating *>q[2], o.ldc, <const floating *>q[3], o.act)
    if o.kind == _OP_ACT:
        return op_act_fwd(<floating *>q[0], o.lda, <const floating *>q[1], o.ldb, o.m, o.n, o.act, <floating>o.alpha)
    if o.kind == _OP_ADD:
        return op_add(<floating *>q[0], <const floating *>q[1], <const floating *>q[2], o.n)
    return NNC_EINVAL


cdef class _Recording:
    cdef Plan plan

    def __cinit__(self, Plan plan):
        self.plan = plan

    def __enter__(self):
        global _rec_plan, _rec_thread
        if _rec_plan is not None:
            raise RuntimeError("nnc: a plan is already being recorded")
        _rec_plan, _rec_thread = self.plan, PyThread_get_thread_ident()
        return self.plan

    def __exit__(self, *exc):
        global _rec_plan
        _rec_plan = None
        return False


def recording():
    """True while a plan records on this thread (a nested Sequential then runs
    its layers instead of its own plan)."""
    return _recording()


# What the bindings report while recording (pointers as they pass them).
cdef int _rec_conv(const nnc_conv_desc *p, const void *x, const void *W, const void *b, int act,
                   const void *res, const void *y, int f64, tuple refs) except -1:
    cdef _plan_op *o = _rec_op(_OP_CONV, f64, refs)
    o.cp, o.act = p[0], act
    o.ptr[0], o.ptr[1], o.ptr[2], o.ptr[3], o.ptr[4] = <const char *>x, <const char *>W, <const char *>b, \
        <const char *>res, <const char *>y
    return 0


cdef int _rec_pool(int kind, const nnc_pool_desc *p, const void *y, const void *x, int f64, tuple refs) except -1:
    cdef _plan_op *o = _rec_op(kind, f64, refs)
    o.pp = p[0]
    o.ptr[0], o.ptr[1] = <const char *>y, <const char *>x
    return 0


cdef int _rec_gemm_nt(nnc_ssize m, nnc_ssize n, nnc_ssize k, double alpha, const void *A, nnc_ssize lda,
                      const void *B, nnc_ssize ldb, double beta, const void *C, nnc_ssize ldc, const void *bias,
                      int act, int f64, tuple refs) except -1:
    cdef _plan_op *o = _rec_op(_OP_GEMM_NT, f64, refs)
    o.m, o.n, o.k, o.lda, o.ldb, o.ldc, o.alpha, o.beta, o.act = m, n, k, lda, ldb, ldc, alpha, beta, act
    o.ptr[0], o.ptr[1], o.ptr[2], o.ptr[3] = <const char *>A, <const char *>B, <const char *>C, <const char *>bias
    return 0


cdef int _rec_act(const void *y, nnc_ssize ldy, const void *z, nnc_ssize ldz, nnc_ssize rows, nnc_ssize cols,
                  int act, double alpha, int f64, tuple refs) except -1:
    cdef _plan_op *o = _rec_op(_OP_ACT, f64, refs)
    o.m, o.n, o.lda, o.ldb, o.act, o.alpha = rows, cols, ldy, ldz, act, alpha
    o.ptr[0], o.ptr[1] = <const char *>y, <const char *>z
    return 0


cdef int _rec_add(const void *y, const void *a, const void *b, nnc_ssize n, int f64, tuple refs) except -1:
    cdef _plan_op *o = _rec_op(_OP_ADD, f64, refs)
    o.n = n
    o.ptr[0], o.ptr[1], o.ptr[2] = <const char *>y, <const char *>a, <const char *>b
    return 0
