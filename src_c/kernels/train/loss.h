// kernels/train/loss.h - the losses (part of kernels/train/train.h): fused
// forward + backward, summed in fixed blocks in block order.

// The C library's log / exp / log1p in the element type's precision.
#define NNC_TR_LOG(x) ((NNC_T)(NNC_IS_F32 ? (double)logf((float)(x)) : log((double)(x))))
#define NNC_TR_EXP(x) ((NNC_T)(NNC_IS_F32 ? (double)expf((float)(x)) : exp((double)(x))))
#define NNC_TR_LOG1P(x) ((NNC_T)(NNC_IS_F32 ? (double)log1pf((float)(x)) : log1p((double)(x))))

// Which loss loss_block computes.
enum { NNC_FN(LOSS_XENT), NNC_FN(LOSS_MSE), NNC_FN(LOSS_BCE) };

// One loss problem: predictions, targets, the gradient it writes.
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
        for (i = 0; i + NNC_VLEN <= n; i += NNC_VLEN)
            nnc_vstore(g + i, nnc_vmul(nnc_vmul(nnc_vload(g + i), vinv), vsc));
        if (i < n) nnc_vstoren(g + i, nnc_vmul(nnc_vmul(nnc_vloadn(g + i, n - i), vinv), vsc), n - i);
        g[y] = (ey * inv - 1) * a->scale;
        loss = (double)(lse - z[y]);
    } else {
        const NNC_T *t = a->t + r * n;
        for (i = 0; i + NNC_VLEN <= n; i += NNC_VLEN)
            nnc_vstore(g + i, nnc_vmul(nnc_vsub(nnc_vmul(nnc_vload(g + i), vinv), nnc_vload(t + i)), vsc));
        if (i < n) {
            nnc_v d = nnc_vsub(nnc_vmul(nnc_vloadn(g + i, n - i), vinv), nnc_vloadn(t + i, n - i));
            nnc_vstoren(g + i, nnc_vmul(d, vsc), n - i);
        }
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

// The ops (see ops/train.def): blocks of rows (xent) or NNC_TRAIN_BLOCK elements.
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

#undef NNC_TR_LOG
#undef NNC_TR_EXP
#undef NNC_TR_LOG1P
