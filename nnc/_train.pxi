# train kernels: losses, optimiser steps, element-wise add (included by _core.pyx).

def softmax_xent(const floating[:, ::1] z, const int64_t[::1] labels, const floating[:, ::1] t,
                 floating[:, ::1] grad, floating scale):
    """Fused softmax cross-entropy over rows: returns scale * sum of row losses and
    writes grad = scale * (softmax(z) - target).  Exactly one of labels / t is given
    (labels already checked to lie in [0, cols))."""
    cdef double loss = 0
    cdef nnc_ssize rows = z.shape[0], cols = z.shape[1]
    cdef const int64_t *lp = &labels[0] if labels is not None and labels.shape[0] else NULL
    cdef const floating *tp = &t[0, 0] if t is not None and t.shape[0] else NULL
    if rows == 0 or cols == 0:
        return 0.0
    with nogil:
        _ck(op_softmax_xent(&z[0, 0], lp, tp, rows, cols, scale, &grad[0, 0], &loss))
    return loss


def mse(const floating[::1] p, const floating[::1] t, floating[::1] grad, floating scale):
    """scale * sum (p - t)^2; grad = 2 scale (p - t)."""
    cdef double loss = 0
    if p.shape[0] == 0:
        return 0.0
    with nogil:
        _ck(op_mse(&p[0], &t[0], p.shape[0], scale, &grad[0], &loss))
    return loss


def bce(const floating[::1] p, const floating[::1] t, floating[::1] grad, floating scale, bint from_logits):
    """scale * sum of binary cross-entropies (probabilities or logits); writes grad."""
    cdef double loss = 0
    if p.shape[0] == 0:
        return 0.0
    with nogil:
        _ck(op_bce(&p[0], &t[0], p.shape[0], from_logits, scale, &grad[0], &loss))
    return loss


def sgd_step(floating[::1] p, const floating[::1] g, floating[::1] v, floating lr, floating momentum):
    """In place: v = momentum v + g; p -= lr v (v None: p -= lr g)."""
    cdef floating *vp = &v[0] if v is not None and v.shape[0] else NULL
    if p.shape[0] == 0:
        return
    with nogil:
        _ck(op_sgd_step(&p[0], &g[0], vp, p.shape[0], lr, momentum))


def adam_step(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v, floating lr,
              floating b1, floating b2, floating eps, floating bc1, floating sqrt_bc2):
    """In place Adam update (PyTorch form) of p and its moments m, v."""
    if p.shape[0] == 0:
        return
    with nogil:
        _ck(op_adam_step(&p[0], &g[0], &m[0], &v[0], p.shape[0], lr, b1, b2, eps, bc1, sqrt_bc2))


def add(floating[::1] y, const floating[::1] a, const floating[::1] b):
    """y = a + b element-wise (y may be a or b)."""
    if y.shape[0] == 0:
        return
    if _recording():
        _rec_add(&y[0], &a[0], &b[0], y.shape[0], floating is double, (y, a, b))
    with nogil:
        _ck(op_add(&y[0], &a[0], &b[0], y.shape[0]))
