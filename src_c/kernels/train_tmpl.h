// kernels/train_tmpl.h - losses, optimisers and element-wise training helpers
// (template; see nnc_internal.h).
//
// Losses are fused forward + backward: one pass writes the gradient w.r.t. the
// prediction and the summed loss.  Reductions are deterministic: the input is
// cut into fixed blocks (NNC_TRAIN_BLOCK elements, or rows for the softmax
// cross-entropy) whose partial sums are added in block order, so the result
// does not depend on the thread count.  Optimiser steps and `add` are purely
// element-wise.

#define NNC_TR_LOG(x) ((NNC_T)(NNC_IS_F32 ? (double)logf((float)(x)) : log((double)(x))))
#define NNC_TR_EXP(x) ((NNC_T)(NNC_IS_F32 ? (double)expf((float)(x)) : exp((double)(x))))
#define NNC_TR_LOG1P(x) ((NNC_T)(NNC_IS_F32 ? (double)log1pf((float)(x)) : log1p((double)(x))))

enum { NNC_FN(LOSS_XENT), NNC_FN(LOSS_MSE), NNC_FN(LOSS_BCE) };

typedef struct {
    int kind, from_logits;
    const NNC_T *p, *t;       // predictions (logits for xent) and float targets (or NULL)
    const int64_t *labels;    // xent integer labels (or NULL)
    nnc_ssize cols;           // xent row length
    NNC_T scale;
    NNC_T *grad;
} NNC_FN(loss_args);

// One softmax cross-entropy row: grad = scale (softmax(z) - target), returns the row loss.
static double NNC_FN(xent_row)(const NNC_FN(loss_args) *a, nnc_ssize r)
{
    nnc_ssize n = a->cols, i;
    const NNC_T *z = a->p + r * n;
    NNC_T *g = a->grad + r * n;
    NNC_T m;
    const NNC_T s = NNC_FN(exp_shift_row)(g, z, n, &m);
    NNC_T lse = NNC_TR_LOG(s) + m;
    nnc_v vinv = nnc_vset1((NNC_T)1 / s), vsc = nnc_vset1(a->scale);
    double loss = 0;
    if (a->labels) {
        int64_t y = a->labels[r];
        NNC_T ey = g[y], inv = (NNC_T)1 / s;
        for (i = 0; i + NNC_VLEN <= n; i += NNC_VLEN) nnc_vstore(g + i, nnc_vmul(nnc_vmul(nnc_vload(g + i), vinv), vsc));
        if (i < n) nnc_vstoren(g + i, nnc_vmul(nnc_vmul(nnc_vloadn(g + i, n - i), vinv), vsc), n - i);
        g[y] = (ey * inv - 1) * a->scale;
        loss = (double)(lse - z[y]);
    } else {
        const NNC_T *t = a->t + r * n;
        for (i = 0; i + NNC_VLEN <= n; i += NNC_VLEN)
            nnc_vstore(g + i, nnc_vmul(nnc_vsub(nnc_vmul(nnc_vload(g + i), vinv), nnc_vload(t + i)), vsc));
        if (i < n)
            nnc_vstoren(g + i, nnc_vmul(nnc_vsub(nnc_vmul(nnc_vloadn(g + i, n - i), vinv), nnc_vloadn(t + i, n - i)), vsc), n - i);
        for (i = 0; i < n; ++i) loss += (double)(t[i] * (lse - z[i]));
    }
    return loss;
}

// Loss of items [lo, hi) (rows for xent, elements otherwise); writes their gradient.
static double NNC_FN(loss_block)(const NNC_FN(loss_args) *a, nnc_ssize lo, nnc_ssize hi)
{
    double total = 0;
    if (a->kind == NNC_FN(LOSS_XENT)) {
        for (nnc_ssize r = lo; r < hi; ++r) total += NNC_FN(xent_row)(a, r);
        return total;
    }
    const NNC_T *p = a->p, *t = a->t;
    NNC_T *g = a->grad, sc = a->scale;
    if (a->kind == NNC_FN(LOSS_MSE)) {
        nnc_v acc = nnc_vzero(), v2s = nnc_vset1(2 * sc);
        nnc_ssize i = lo;
        for (; i + NNC_VLEN <= hi; i += NNC_VLEN) {
            nnc_v d = nnc_vsub(nnc_vload(p + i), nnc_vload(t + i));
            acc = nnc_vadd(acc, nnc_vmul(d, d));
            nnc_vstore(g + i, nnc_vmul(v2s, d));
        }
        if (i < hi) {
            nnc_v d = nnc_vsub(nnc_vloadn(p + i, hi - i), nnc_vloadn(t + i, hi - i));
            acc = nnc_vadd(acc, nnc_vmul(d, d));
            nnc_vstoren(g + i, nnc_vmul(v2s, d), hi - i);
        }
        return (double)nnc_vhsum(acc);
    }
    for (nnc_ssize i = lo; i < hi; ++i) {  // BCE: log/log1p have no vector wrapper
        NNC_T x = p[i], y = t[i], l;
        if (a->from_logits) {
            // max(x, 0) - x y + log(1 + e^-|x|); d/dx = sigmoid(x) - y
            NNC_T e = NNC_TR_EXP(x >= 0 ? -x : x);
            NNC_T sig = x >= 0 ? 1 / (1 + e) : e / (1 + e);
            l = (x > 0 ? x : 0) - x * y + NNC_TR_LOG1P(e);
            if (x != x) l = x, sig = x;  // NaN in, NaN out
            g[i] = sc * (sig - y);
        } else {
            NNC_T lp = NNC_TR_LOG(x), lq = NNC_TR_LOG(1 - x), lmin = (NNC_T)NNC_BCE_LOG_MIN;
            lp = lp < lmin ? lmin : lp;  // a NaN stays NaN
            lq = lq < lmin ? lmin : lq;
            l = (y - 1) * lq - y * lp;
            NNC_T den = (1 - x) * x, emin = (NNC_T)NNC_BCE_EPS;
            g[i] = sc * (x - y) / (den < emin ? emin : den);
        }
        total += (double)l;
    }
    return total;
}

// Runs loss_block over `count` items in fixed blocks of `bs`; *loss = scale * sum.
static int NNC_FN(loss_run)(const NNC_FN(loss_args) *a, nnc_ssize count, nnc_ssize bs, double work,
                            double *loss)
{
    nnc_ssize nb = NNC_CEILDIV(count, bs);
    double one, *part = &one;
    if (nb > 1) {
        nnc_ssize bytes;
        if (!nnc_mul_ok(nb, (nnc_ssize)sizeof(double), &bytes)) return NNC_EOVERFLOW;
        part = nnc_tls_scratch(NNC_SCRATCH_WORK, (size_t)bytes);
        if (!part) return NNC_ENOMEM;
    }
    int nt = nb > 1 ? nnc_threads_for(work) : 1;
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize b = 0; b < nb; ++b) part[b] = NNC_FN(loss_block)(a, b * bs, NNC_MIN(count, (b + 1) * bs));
    double s = 0;
    for (nnc_ssize b = 0; b < nb; ++b) s += part[b];
    *loss = s * (double)a->scale;
    return NNC_OK;
}

static int NNC_FN(softmax_xent)(const NNC_T *z, const int64_t *labels, const NNC_T *t, nnc_ssize rows,
                                nnc_ssize cols, NNC_T scale, NNC_T *grad, double *loss)
{
    *loss = 0;
    if (rows <= 0 || cols <= 0) return NNC_OK;
    if (!labels == !t) return NNC_EINVAL;
    NNC_FN(loss_args) a = {NNC_FN(LOSS_XENT), 0, z, t, labels, cols, scale, grad};
    nnc_ssize bs = NNC_MAX(1, NNC_TRAIN_BLOCK / cols);
    return NNC_FN(loss_run)(&a, rows, bs, 30.0 * (double)rows * (double)cols, loss);
}

static int NNC_FN(mse)(const NNC_T *p, const NNC_T *t, nnc_ssize n, NNC_T scale, NNC_T *grad, double *loss)
{
    *loss = 0;
    if (n <= 0) return NNC_OK;
    NNC_FN(loss_args) a = {NNC_FN(LOSS_MSE), 0, p, t, NULL, 1, scale, grad};
    return NNC_FN(loss_run)(&a, n, NNC_TRAIN_BLOCK, 4.0 * (double)n, loss);
}

static int NNC_FN(bce)(const NNC_T *p, const NNC_T *t, nnc_ssize n, int from_logits, NNC_T scale, NNC_T *grad,
                       double *loss)
{
    *loss = 0;
    if (n <= 0) return NNC_OK;
    NNC_FN(loss_args) a = {NNC_FN(LOSS_BCE), from_logits != 0, p, t, NULL, 1, scale, grad};
    return NNC_FN(loss_run)(&a, n, NNC_TRAIN_BLOCK, 40.0 * (double)n, loss);
}

// k (1..NNC_VLEN) lanes: a full vector or the masked tail.
NNC_INLINE nnc_v NNC_FN(ldk)(const NNC_T *p, nnc_ssize k) { return k == NNC_VLEN ? nnc_vload(p) : nnc_vloadn(p, k); }
NNC_INLINE void NNC_FN(stk)(NNC_T *p, nnc_v v, nnc_ssize k)
{
    if (k == NNC_VLEN) nnc_vstore(p, v);
    else nnc_vstoren(p, v, k);
}

static int NNC_FN(sgd_step)(NNC_T *p, const NNC_T *g, NNC_T *v, nnc_ssize n, NNC_T lr, NNC_T momentum)
{
    if (n <= 0) return NNC_OK;
    nnc_v vlr = nnc_vset1(lr), vmo = nnc_vset1(momentum);
    int nt = nnc_threads_for(3.0 * (double)n);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize s = 0; s < n; s += NNC_TRAIN_BLOCK) {
        nnc_ssize e = NNC_MIN(n, s + NNC_TRAIN_BLOCK), i = s;
        for (; i < e; i += NNC_VLEN) {
            nnc_ssize k = NNC_MIN(NNC_VLEN, e - i);
            nnc_v d = NNC_FN(ldk)(g + i, k);
            if (v) {
                d = nnc_vadd(nnc_vmul(vmo, NNC_FN(ldk)(v + i, k)), d);
                NNC_FN(stk)(v + i, d, k);
            }
            NNC_FN(stk)(p + i, nnc_vsub(NNC_FN(ldk)(p + i, k), nnc_vmul(vlr, d)), k);
        }
    }
    return NNC_OK;
}

static int NNC_FN(adam_step)(NNC_T *p, const NNC_T *g, NNC_T *m, NNC_T *v, nnc_ssize n, NNC_T lr, NNC_T b1,
                             NNC_T b2, NNC_T eps, NNC_T bc1, NNC_T sqrt_bc2)
{
    if (n <= 0) return NNC_OK;
    nnc_v vb1 = nnc_vset1(b1), vc1 = nnc_vset1(1 - b1), vb2 = nnc_vset1(b2), vc2 = nnc_vset1(1 - b2);
    nnc_v vstep = nnc_vset1(lr / bc1), vsb2 = nnc_vset1(sqrt_bc2), veps = nnc_vset1(eps);
    int nt = nnc_threads_for(10.0 * (double)n);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize s = 0; s < n; s += NNC_TRAIN_BLOCK) {
        nnc_ssize e = NNC_MIN(n, s + NNC_TRAIN_BLOCK), i = s;
        for (; i < e; i += NNC_VLEN) {
            nnc_ssize k = NNC_MIN(NNC_VLEN, e - i);
            nnc_v gi = NNC_FN(ldk)(g + i, k);
            nnc_v mi = nnc_vadd(nnc_vmul(vb1, NNC_FN(ldk)(m + i, k)), nnc_vmul(vc1, gi));
            nnc_v vi = nnc_vadd(nnc_vmul(vb2, NNC_FN(ldk)(v + i, k)), nnc_vmul(vc2, nnc_vmul(gi, gi)));
            nnc_v den = nnc_vadd(nnc_vdiv(nnc_vsqrt(vi), vsb2), veps);
            NNC_FN(stk)(m + i, mi, k);
            NNC_FN(stk)(v + i, vi, k);
            NNC_FN(stk)(p + i, nnc_vsub(NNC_FN(ldk)(p + i, k), nnc_vmul(vstep, nnc_vdiv(mi, den))), k);
        }
    }
    return NNC_OK;
}

static int NNC_FN(add)(NNC_T *y, const NNC_T *a, const NNC_T *b, nnc_ssize n)
{
    if (n <= 0) return NNC_OK;
    int nt = nnc_threads_for((double)n);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize s = 0; s < n; s += NNC_TRAIN_BLOCK) {
        nnc_ssize e = NNC_MIN(n, s + NNC_TRAIN_BLOCK), i = s;
        for (; i + NNC_VLEN <= e; i += NNC_VLEN) nnc_vstore(y + i, nnc_vadd(nnc_vload(a + i), nnc_vload(b + i)));
        if (i < e) nnc_vstoren(y + i, nnc_vadd(nnc_vloadn(a + i, e - i), nnc_vloadn(b + i, e - i)), e - i);
    }
    return NNC_OK;
}

#undef NNC_TR_LOG
#undef NNC_TR_EXP
#undef NNC_TR_LOG1P
