# Gradient clipping helpers (src_c/kernels/train/clip.h): bindings (included
# by _core.pyx).

cdef extern from "nnc/nnc.h" nogil:
    int nnc_clip_value_f32(float *x, nnc_ssize n, float v)
    int nnc_clip_value_f64(double *x, nnc_ssize n, double v)
    int nnc_scale_inplace_f32(float *x, nnc_ssize n, float s)
    int nnc_scale_inplace_f64(double *x, nnc_ssize n, double s)
    int nnc_sumsq_f32(const float *x, nnc_ssize n, double *out)
    int nnc_sumsq_f64(const double *x, nnc_ssize n, double *out)


def clip_value(floating[::1] x, floating v):
    if x.shape[0] == 0:
        return
    with nogil:
        if floating is float:
            _ck(nnc_clip_value_f32(&x[0], x.shape[0], v))
        else:
            _ck(nnc_clip_value_f64(&x[0], x.shape[0], v))


def scale_inplace(floating[::1] x, floating s):
    if x.shape[0] == 0:
        return
    with nogil:
        if floating is float:
            _ck(nnc_scale_inplace_f32(&x[0], x.shape[0], s))
        else:
            _ck(nnc_scale_inplace_f64(&x[0], x.shape[0], s))


def sumsq(const floating[::1] x):
    """Sum of squares in a fixed order, as a Python float."""
    cdef double out = 0
    if x.shape[0] == 0:
        return 0.0
    with nogil:
        if floating is float:
            _ck(nnc_sumsq_f32(&x[0], x.shape[0], &out))
        else:
            _ck(nnc_sumsq_f64(&x[0], x.shape[0], &out))
    return out
