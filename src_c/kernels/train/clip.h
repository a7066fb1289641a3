// kernels/train/clip.h - gradient clipping helpers (template; see
// nnc_internal.h): clamp, scale and sum of squares over a flat array, with
// the same bits for any thread count.

#define CLIP_CHUNK 4096

static int NNC_FN(clip_value)(NNC_T *x, nnc_ssize n, NNC_T v)
{
    if (n <= 0) return NNC_OK;
    int nt = nnc_threads_for(2.0 * (double)n);
    const nnc_v hi = nnc_vset1(v), lo = nnc_vset1(-v);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize s = 0; s < n; s += CLIP_CHUNK) {
        nnc_ssize e = NNC_MIN(n, s + CLIP_CHUNK);
        for (nnc_ssize i = s; i < e; i += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, e - i);
            nnc_vstorep(x + i, nnc_vmin(hi, nnc_vmax(lo, nnc_vloadp(x + i, m))), m);  // operand order keeps NaN
        }
    }
    return NNC_OK;
}

static int NNC_FN(scale_inplace)(NNC_T *x, nnc_ssize n, NNC_T s)
{
    if (n <= 0) return NNC_OK;
    int nt = nnc_threads_for(2.0 * (double)n);
    const nnc_v vs = nnc_vset1(s);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize c = 0; c < n; c += CLIP_CHUNK) {
        nnc_ssize e = NNC_MIN(n, c + CLIP_CHUNK);
        for (nnc_ssize i = c; i < e; i += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, e - i);
            nnc_vstorep(x + i, nnc_vmul(vs, nnc_vloadp(x + i, m)), m);
        }
    }
    return NNC_OK;
}

// Sum of squares: each CLIP_CHUNK block is summed in vector lanes (fixed
// order), block sums are added in double in block order.
static int NNC_FN(sumsq)(const NNC_T *x, nnc_ssize n, double *out)
{
    double total = 0;
    for (nnc_ssize c = 0; c < n; c += CLIP_CHUNK) {
        nnc_ssize e = NNC_MIN(n, c + CLIP_CHUNK);
        nnc_v acc = nnc_vzero();
        for (nnc_ssize i = c; i < e; i += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, e - i);
            nnc_v v = nnc_vloadp(x + i, m);
            acc = nnc_vadd(acc, nnc_vmul(v, v));
        }
        total += (double)nnc_vhsum(acc);
    }
    *out = total;
    return NNC_OK;
}

#undef CLIP_CHUNK
