// kernels/act/apply.h - the activation ops over rows (part of
// kernels/act/act.h): element-wise g and softmax forward, their backward.

// y[0..n) = g(z[0..n)) for an element-wise g (not softmax; alpha: leaky
// ReLU's slope); y may equal z.
static void NNC_FN(act_apply)(NNC_T *y, const NNC_T *z, nnc_ssize n, int act, NNC_T alpha)
{
    const nnc_v a = nnc_vset1(alpha);
    nnc_ssize i = 0;
    for (; i + NNC_VLEN <= n; i += NNC_VLEN) nnc_vstore(y + i, NNC_FN(vact_a)(nnc_vload(z + i), act, a));
    if (i < n) nnc_vstoren(y + i, NNC_FN(vact_a)(nnc_vloadn(z + i, n - i), act, a), n - i);
}

// y = exp(z - max z) for one row of n; returns the sum of y and sets *zmax.
// y may equal z.  Shared by softmax and the fused softmax cross-entropy.
static NNC_T NNC_FN(exp_shift_row)(NNC_T *y, const NNC_T *z, nnc_ssize n, NNC_T *zmax)
{
    NNC_T m = z[0];
    for (nnc_ssize i = 1; i < n; ++i) m = z[i] > m ? z[i] : m;   // a NaN elsewhere still reaches s
    nnc_v vm = nnc_vset1(m), vs = nnc_vzero();
    nnc_ssize i = 0;
    for (; i + NNC_VLEN <= n; i += NNC_VLEN) {
        nnc_v e = nnc_vexp(nnc_vsub(nnc_vload(z + i), vm));
        nnc_vstore(y + i, e);
        vs = nnc_vadd(vs, e);
    }
    NNC_T s = nnc_vhsum(vs);
    for (; i < n; ++i) {
        NNC_T t[NNC_VLEN];
        nnc_vstore(t, nnc_vexp(nnc_vset1(z[i] - m)));
        y[i] = t[0];
        s += t[0];
    }
    *zmax = m;
    return s;
}

// One row of softmax: y = exp(z - max z) / sum.  NaN or +Inf anywhere in the
// row gives a NaN row (as PyTorch); y may equal z.
static void NNC_FN(softmax_row)(NNC_T *y, const NNC_T *z, nnc_ssize n)
{
    NNC_T m;
    const NNC_T s = NNC_FN(exp_shift_row)(y, z, n, &m);
    nnc_ssize i;
    nnc_v inv = nnc_vset1((NNC_T)1 / s);
    for (i = 0; i + NNC_VLEN <= n; i += NNC_VLEN) nnc_vstore(y + i, nnc_vmul(nnc_vload(y + i), inv));
    for (; i < n; ++i) y[i] *= (NNC_T)1 / s;
}

// y (rows, cols; row stride ldy) = g(z) (row stride ldz); softmax
// normalises each row; alpha: leaky ReLU's slope.  y may equal z.
static int NNC_FN(act_fwd)(NNC_T *y, nnc_ssize ldy, const NNC_T *z, nnc_ssize ldz, nnc_ssize rows,
                           nnc_ssize cols, int act, NNC_T alpha)
{
    if (rows <= 0 || cols <= 0) return NNC_OK;
    int nt = nnc_threads_for(20.0 * (double)rows * (double)cols);
    if (act == NNC_ACT_SOFTMAX) {
        #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (nnc_ssize r = 0; r < rows; ++r) NNC_FN(softmax_row)(y + r * ldy, z + r * ldz, cols);
    } else if (ldy == cols && ldz == cols) {
        nnc_ssize n = rows * cols, chunk = 4096;
        #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (nnc_ssize s = 0; s < n; s += chunk)
            NNC_FN(act_apply)(y + s, z + s, NNC_MIN(chunk, n - s), act, alpha);
    } else {
        #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (nnc_ssize r = 0; r < rows; ++r) NNC_FN(act_apply)(y + r * ldy, z + r * ldz, cols, act, alpha);
    }
    return NNC_OK;
}

// dz (rows, cols) = dy * g'(.) from s: the forward output y (leaky ReLU:
// the forward input z, slope alpha), each with its own row stride; dz may
// equal dy.
static int NNC_FN(act_bwd)(NNC_T *dz, nnc_ssize lddz, const NNC_T *dy, nnc_ssize lddy, const NNC_T *s,
                           nnc_ssize lds, nnc_ssize rows, nnc_ssize cols, int act, NNC_T alpha)
{
    if (rows <= 0 || cols <= 0) return NNC_OK;
    int nt = nnc_threads_for(4.0 * (double)rows * (double)cols);
    const nnc_v a = nnc_vset1(alpha);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize r = 0; r < rows; ++r) {
        const NNC_T *yr = s + r * lds, *gr = dy + r * lddy;
        NNC_T *dr = dz + r * lddz;
        if (act == NNC_ACT_SOFTMAX) {
            NNC_T t = 0;
            for (nnc_ssize c = 0; c < cols; ++c) t += gr[c] * yr[c];
            for (nnc_ssize c = 0; c < cols; ++c) dr[c] = yr[c] * (gr[c] - t);
            continue;
        }
        nnc_ssize c = 0;
        for (; c + NNC_VLEN <= cols; c += NNC_VLEN)
            nnc_vstore(dr + c, NNC_FN(vact_grad_a)(nnc_vload(yr + c), nnc_vload(gr + c), act, a));
        if (c < cols)
            nnc_vstoren(dr + c,
                        NNC_FN(vact_grad_a)(nnc_vloadn(yr + c, cols - c), nnc_vloadn(gr + c, cols - c), act, a),
                        cols - c);
    }
    return NNC_OK;
}
