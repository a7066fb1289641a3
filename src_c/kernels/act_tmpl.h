// kernels/act_tmpl.h - activations (template; see nnc_internal.h).
//
// Forward y = g(z) element-wise (softmax: over each row), and backward
// dz = dy * g'(z) computed from the saved output y (sigma' = y(1-y),
// tanh' = 1-y^2, relu' = [y > 0], sign' = 0; softmax: y * (dy - <dy, y>)).
// The vector helpers vact/vact_grad are also the epilogue of the GEMM and the
// conv kernels, so fused and unfused paths round identically.

NNC_INLINE nnc_v NNC_FN(vact)(nnc_v z, int act)
{
    switch (act) {
    case NNC_ACT_RELU: return nnc_vmax(nnc_vzero(), z);              // keeps NaN
    case NNC_ACT_SIGMOID: return nnc_vsigmoid(z);
    case NNC_ACT_TANH: return nnc_vtanh(z);
    case NNC_ACT_SIGN: return nnc_vsel_ge(z, z, nnc_vsel_ge(z, nnc_vzero(), nnc_vset1(1), nnc_vzero()), z);
    default: return z;
    }
}

NNC_INLINE nnc_v NNC_FN(vact_grad)(nnc_v y, nnc_v dy, int act)
{
    switch (act) {
    case NNC_ACT_RELU: return nnc_vsel_gt(y, nnc_vzero(), dy, nnc_vzero());
    case NNC_ACT_SIGMOID: return nnc_vmul(dy, nnc_vmul(y, nnc_vsub(nnc_vset1(1), y)));
    case NNC_ACT_TANH: return nnc_vmul(dy, nnc_vsub(nnc_vset1(1), nnc_vmul(y, y)));
    case NNC_ACT_SIGN: return nnc_vzero();
    default: return dy;
    }
}

// y[0..n) = g(z[0..n)) for an element-wise g (not softmax); y may equal z.
static void NNC_FN(act_apply)(NNC_T *y, const NNC_T *z, nnc_ssize n, int act)
{
    nnc_ssize i = 0;
    for (; i + NNC_VLEN <= n; i += NNC_VLEN) nnc_vstore(y + i, NNC_FN(vact)(nnc_vload(z + i), act));
    if (i < n) nnc_vstoren(y + i, NNC_FN(vact)(nnc_vloadn(z + i, n - i), act), n - i);
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
// normalises each row.  y may equal z.
static int NNC_FN(act_fwd)(NNC_T *y, nnc_ssize ldy, const NNC_T *z, nnc_ssize ldz, nnc_ssize rows, nnc_ssize cols,
                           int act)
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
            NNC_FN(act_apply)(y + s, z + s, NNC_MIN(chunk, n - s), act);
    } else {
        #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (nnc_ssize r = 0; r < rows; ++r) NNC_FN(act_apply)(y + r * ldy, z + r * ldz, cols, act);
    }
    return NNC_OK;
}

// dz (rows, cols) = dy * g'(.) from the forward output y, each with its own
// row stride; dz may equal dy.
static int NNC_FN(act_bwd)(NNC_T *dz, nnc_ssize lddz, const NNC_T *dy, nnc_ssize lddy, const NNC_T *y,
                           nnc_ssize ldy, nnc_ssize rows, nnc_ssize cols, int act)
{
    if (rows <= 0 || cols <= 0) return NNC_OK;
    int nt = nnc_threads_for(4.0 * (double)rows * (double)cols);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize r = 0; r < rows; ++r) {
        const NNC_T *yr = y + r * ldy, *gr = dy + r * lddy;
        NNC_T *dr = dz + r * lddz;
        if (act == NNC_ACT_SOFTMAX) {
            NNC_T s = 0;
            for (nnc_ssize c = 0; c < cols; ++c) s += gr[c] * yr[c];
            for (nnc_ssize c = 0; c < cols; ++c) dr[c] = yr[c] * (gr[c] - s);
            continue;
        }
        nnc_ssize c = 0;
        for (; c + NNC_VLEN <= cols; c += NNC_VLEN)
            nnc_vstore(dr + c, NNC_FN(vact_grad)(nnc_vload(yr + c), nnc_vload(gr + c), act));
        if (c < cols)
            nnc_vstoren(dr + c, NNC_FN(vact_grad)(nnc_vloadn(yr + c, cols - c), nnc_vloadn(gr + c, cols - c), act),
                    cols - c);
    }
    return NNC_OK;
}

// out[j] = sum_i x[i, j] for x (rows, cols): bias gradients.  Rows are added
// in order for every column, so the result does not depend on the threads.
static int NNC_FN(colsum)(NNC_T *NNC_RESTRICT out, const NNC_T *NNC_RESTRICT x, nnc_ssize rows,
                          nnc_ssize cols)
{
    if (cols <= 0) return NNC_OK;
    nnc_ssize cb = 64 * NNC_VLEN;  // column block owned by one thread
    int nt = nnc_threads_for((double)rows * (double)cols);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize c0 = 0; c0 < cols; c0 += cb) {
        nnc_ssize c1 = NNC_MIN(c0 + cb, cols);
        for (nnc_ssize c = c0; c < c1; ++c) out[c] = 0;
        for (nnc_ssize r = 0; r < rows; ++r) {
            const NNC_T *xr = x + r * cols;
            nnc_ssize c = c0;
            for (; c + NNC_VLEN <= c1; c += NNC_VLEN) nnc_vstore(out + c, nnc_vadd(nnc_vload(out + c), nnc_vload(xr + c)));
            for (; c < c1; ++c) out[c] += xr[c];
        }
    }
    return NNC_OK;
}

// One epoch of the perceptron rule, online, in the sample order given:
// for each sample s: y = sign(W x_s + b); W += lr (t - y) x_s^T; b += lr (t - y).
// W (out, in), b (out), x (n, in), t (n, out) in {0, 1}, order (n) indices.
// Returns (in *mistakes) the number of samples with at least one wrong output.
static int NNC_FN(perceptron_epoch)(NNC_T *NNC_RESTRICT W, NNC_T *NNC_RESTRICT b, const NNC_T *x,
                                    const NNC_T *t, const int64_t *order, nnc_ssize n, nnc_ssize in,
                                    nnc_ssize out, NNC_T lr, int64_t *mistakes)
{
    int64_t wrong = 0;
    for (nnc_ssize s = 0; s < n; ++s) {
        const NNC_T *xs = x + order[s] * in, *ts = t + order[s] * out;
        int any = 0;
        for (nnc_ssize o = 0; o < out; ++o) {
            NNC_T *w = W + o * in;
            nnc_v acc = nnc_vzero();
            nnc_ssize i = 0;
            for (; i + NNC_VLEN <= in; i += NNC_VLEN) acc = nnc_vfma(nnc_vload(w + i), nnc_vload(xs + i), acc);
            NNC_T z = nnc_vhsum(acc) + b[o];
            for (; i < in; ++i) z += w[i] * xs[i];
            NNC_T y = z >= 0 ? (NNC_T)1 : (NNC_T)0;
            NNC_T e = lr * (ts[o] - y);
            if (e == 0) continue;
            any = 1;
            nnc_v ve = nnc_vset1(e);
            for (i = 0; i + NNC_VLEN <= in; i += NNC_VLEN) nnc_vstore(w + i, nnc_vfma(ve, nnc_vload(xs + i), nnc_vload(w + i)));
            for (; i < in; ++i) w[i] += e * xs[i];
            b[o] += e;
        }
        wrong += any;
    }
    *mistakes = wrong;
    return NNC_OK;
}
