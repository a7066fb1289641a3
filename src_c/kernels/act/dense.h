// kernels/act/dense.h - helpers of the dense layers (part of
// kernels/act/act.h): column sums for bias gradients, the perceptron rule.

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
            for (; c + NNC_VLEN <= c1; c += NNC_VLEN)
                nnc_vstore(out + c, nnc_vadd(nnc_vload(out + c), nnc_vload(xr + c)));
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
            for (i = 0; i + NNC_VLEN <= in; i += NNC_VLEN)
                nnc_vstore(w + i, nnc_vfma(ve, nnc_vload(xs + i), nnc_vload(w + i)));
            for (; i < in; ++i) w[i] += e * xs[i];
            b[o] += e;
        }
        wrong += any;
    }
    *mistakes = wrong;
    return NNC_OK;
}
