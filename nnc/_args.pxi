# Argument checks of the bindings on the NumPy C API (included by _core.pyx).
#
# The hot small calls (a dense layer at batch 1, an inference plan's replay)
# take plain ndarray objects and read their dtype, shape and data pointer
# here: a few field reads per array, where a fused-type def function spends
# most of a microsecond matching its signature and acquiring memoryviews.
# Every binding still checks what the C core relies on (dtype, rank, shape
# agreement, C-contiguity), so no call can make it read out of bounds.
cimport numpy as cnp

cnp.import_array()


cdef int _f64_of(object a, str what) except -1:
    """1 if a is a float64 ndarray, 0 if float32; TypeError otherwise."""
    if not cnp.PyArray_Check(a):
        raise TypeError(f"nnc: {what} must be a numpy.ndarray, got {type(a).__name__}")
    cdef int t = cnp.PyArray_TYPE(<cnp.ndarray>a)
    if t == cnp.NPY_FLOAT32:
        return 0
    if t == cnp.NPY_FLOAT64:
        return 1
    raise TypeError(f"nnc: {what} must be float32 or float64, got {(<cnp.ndarray>a).dtype}")


cdef cnp.ndarray _array(object a, int f64, int ndim, str what, bint out):
    """a as an ndarray, after checking its dtype (the one f64 names), its
    rank and, when out, that it is writeable."""
    if _f64_of(a, what) != f64:
        raise TypeError(f"nnc: {what} must be {'float64' if f64 else 'float32'}, got {(<cnp.ndarray>a).dtype}")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if cnp.PyArray_NDIM(arr) != ndim:
        raise ValueError(f"nnc: {what} must have {ndim} dimensions, got shape {a.shape}")
    if out and not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"nnc: {what} is read-only")
    return arr


cdef char *_carray(object a, int f64, int ndim, str what, bint out=False) except NULL:
    """a's data pointer, after _array's checks and C-contiguity."""
    cdef cnp.ndarray arr = _array(a, f64, ndim, what, out)
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        raise ValueError(f"nnc: {what} must be C-contiguous")
    return <char *>cnp.PyArray_DATA(arr)


cdef inline nnc_ssize _dim(object a, int i) noexcept:
    return cnp.PyArray_DIM(<cnp.ndarray>a, i)


cdef int _shape_is(object a, nnc_ssize d0, nnc_ssize d1, str what) except -1:
    """Checks a 2-D array's shape."""
    if _dim(a, 0) != d0 or _dim(a, 1) != d1:
        raise ValueError(f"nnc: {what} has shape {a.shape}, expected ({d0}, {d1})")
    return 0


cdef char *_rows(object a, int f64, str what, nnc_ssize *ld, bint out=False) except NULL:
    """The data pointer of a 2-D ndarray whose rows are contiguous but may
    be strided (a channel slice of an NHWC buffer); *ld its row stride in
    elements."""
    cdef cnp.ndarray arr = _array(a, f64, 2, what, out)
    cdef nnc_ssize sz = 8 if f64 else 4
    cdef nnc_ssize s0 = cnp.PyArray_STRIDE(arr, 0), s1 = cnp.PyArray_STRIDE(arr, 1)
    if cnp.PyArray_SIZE(arr) and ((s1 != sz and cnp.PyArray_DIM(arr, 1) > 1) or s0 < 0 or s0 % sz
            or (cnp.PyArray_DIM(arr, 0) > 1 and s0 < sz * cnp.PyArray_DIM(arr, 1))):
        raise ValueError(f"nnc: {what} must have contiguous, non-overlapping rows, got strides {a.strides}")
    ld[0] = s0 // sz if cnp.PyArray_DIM(arr, 0) > 1 else cnp.PyArray_DIM(arr, 1)
    return <char *>cnp.PyArray_DATA(arr)


cdef char *_bias(object bias, int f64, nnc_ssize n) except? NULL:
    """A bias vector's data pointer (NULL for None), checked to be (n,)."""
    if bias is None:
        return NULL
    cdef char *p = _carray(bias, f64, 1, "bias")
    if _dim(bias, 0) != n:
        raise ValueError(f"nnc: bias has shape {bias.shape}, expected ({n},)")
    return p
