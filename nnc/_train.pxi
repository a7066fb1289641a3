# train kernels: losses, optimiser steps, element-wise add (included by _core.pyx).

cdef extern from "nnc/nnc.h" nogil:
    int nnc_softmax_xent_f32(const float *z, const int64_t *labels, const float *t, nnc_ssize rows,
                             nnc_ssize cols, float scale, float *grad, double *loss)
    int nnc_softmax_xent_f64(const double *z, const int64_t *labels, const double *t, nnc_ssize rows,
                             nnc_ssize cols, double scale, double *grad, double *loss)
    int nnc_mse_f32(const float *p, const float *t, nnc_ssize n, float scale, float *grad, double *loss)
    int nnc_mse_f64(const double *p, const double *t, nnc_ssize n, double scale, double *grad, double *loss)
    int nnc_bce_f32(const float *p, const float *t, nnc_ssize n, int from_logits, float scale, float *grad,
                    double *loss)
    int nnc_bce_f64(const double *p, const double *t, nnc_ssize n, int from_logits, double scale,
                    double *grad, double *loss)
    int nnc_sgd_step_f32(float *p, const float *g, float *v, nnc_ssize n, float lr, float momentum)
    int nnc_sgd_step_f64(double *p, const double *g, double *v, nnc_ssize n, double lr, double momentum)
    int nnc_adam_step_f32(float *p, const float *g, float *m, float *v, nnc_ssize n, float lr, float b1,
                          float b2, float eps, float bc1, float sqrt_bc2)
    int nnc_adam_step_f64(double *p, const double *g, double *m, double *v, nnc_ssize n, double lr,
                          double b1, double b2, double eps, double bc1, double sqrt_bc2)
    int nnc_add_f32(float *y, const float *a, const float *b, nnc_ssize n)
    int nnc_add_f64(double *y, const double *a, const double *b, nnc_ssize n)


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
        if floating is float:
            _ck(nnc_softmax_xent_f32(&z[0, 0], lp, tp, rows, cols, scale, &grad[0, 0], &loss))
        else:
            _ck(nnc_softmax_xent_f64(&z[0, 0], lp, tp, rows, cols, scale, &grad[0, 0], &loss))
    return loss


def mse(const floating[::1] p, const floating[::1] t, floating[::1] grad, floating scale):
    """scale * sum (p - t)^2; grad = 2 scale (p - t)."""
    cdef double loss = 0
    if p.shape[0] == 0:
        return 0.0
    with nogil:
        if floating is float:
            _ck(nnc_mse_f32(&p[0], &t[0], p.shape[0], scale, &grad[0], &loss))
        else:
            _ck(nnc_mse_f64(&p[0], &t[0], p.shape[0], scale, &grad[0], &loss))
    return loss


def bce(const floating[::1] p, const floating[::1] t, floating[::1] grad, floating scale, bint from_logits):
    """scale * sum of binary cross-entropies (probabilities or logits); writes grad."""
    cdef double loss = 0
    if p.shape[0] == 0:
        return 0.0
    with nogil:
        if floating is float:
            _ck(nnc_bce_f32(&p[0], &t[0], p.shape[0], from_logits, scale, &grad[0], &loss))
        else:
            _ck(nnc_bce_f64(&p[0], &t[0], p.shape[0], from_logits, scale, &grad[0], &loss))
    return loss


def sgd_step(floating[::1] p, const floating[::1] g, floating[::1] v, floating lr, floating momentum):
    """In place: v = momentum v + g; p -= lr v (v None: p -= lr g)."""
    cdef floating *vp = &v[0] if v is not None and v.shape[0] else NULL
    if p.shape[0] == 0:
        return
    with nogil:
        if floating is float:
            _ck(nnc_sgd_step_f32(&p[0], &g[0], vp, p.shape[0], lr, momentum))
        else:
            _ck(nnc_sgd_step_f64(&p[0], &g[0], vp, p.shape[0], lr, momentum))


def adam_step(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v, floating lr,
              floating b1, floating b2, floating eps, floating bc1, floating sqrt_bc2):
    """In place Adam update (PyTorch form) of p and its moments m, v."""
    if p.shape[0] == 0:
        return
    with nogil:
        if floating is float:
            _ck(nnc_adam_step_f32(&p[0], &g[0], &m[0], &v[0], p.shape[0], lr, b1, b2, eps, bc1, sqrt_bc2))
        else:
            _ck(nnc_adam_step_f64(&p[0], &g[0], &m[0], &v[0], p.shape[0], lr, b1, b2, eps, bc1, sqrt_bc2))


def add(floating[::1] y, const floating[::1] a, const floating[::1] b):
    """y = a + b element-wise (y may be a or b)."""
    if y.shape[0] == 0:
        return
    if _recording():
        _rec_add(&y[0], &a[0], &b[0], y.shape[0], floating is double, (y, a, b))
    with nogil:
        if floating is float:
            _ck(nnc_add_f32(&y[0], &a[0], &b[0], y.shape[0]))
        else:
            _ck(nnc_add_f64(&y[0], &a[0], &b[0], y.shape[0]))
