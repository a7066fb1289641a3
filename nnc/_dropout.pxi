# dropout kernel: bindings (included by _core.pyx).

def dropout(floating[::1] y, const floating[::1] x, uint64_t key, uint64_t threshold, floating scale):
    """y = x * (scale where the (key, index) hash >= threshold, else 0); y may be x."""
    if y.shape[0] == 0:
        return
    with nogil:
        _ck(op_dropout(&y[0], &x[0], y.shape[0], key, threshold, scale))
