# Gradient clipping helpers (src_c/kernels/train/clip.h): bindings (included
# by _core.pyx).

def clip_value(floating[::1] x, floating v):
    if x.shape[0] == 0:
        return
    with nogil:
        _ck(op_clip_value(&x[0], x.shape[0], v))


def scale_inplace(floating[::1] x, floating s):
    if x.shape[0] == 0:
        return
    with nogil:
        _ck(op_scale_inplace(&x[0], x.shape[0], s))


def sumsq(const floating[::1] x):
    """Sum of squares in a fixed order, as a Python float."""
    cdef double out = 0
    if x.shape[0] == 0:
        return 0.0
    with nogil:
        _ck(op_sumsq(&x[0], x.shape[0], &out))
    return out
