// kernels/gemm/pack.h - the GEMM's operand packing (part of
// kernels/gemm/gemm.h): A into MR-row panels, B into NR-column panels, and
// the prepacked-B layout of gemm_pack_b (its size, one panel, all panels).

// Packs rows [i0, i0+mc) x cols [p0, p0+kc) of op(A) into MR-row panels:
// dst[panel][p][i].  The last panel's missing rows are left unset: the
// micro-kernel for `rows` rows never reads them.
static void NNC_FN(gemm_pack_a)(NNC_T *NNC_RESTRICT dst, const NNC_FN(gemm_args) *g, nnc_ssize i0,
                                nnc_ssize mc, nnc_ssize p0, nnc_ssize kc)
{
    for (nnc_ssize ip = 0; ip < mc; ip += NNC_GEMM_MR) {
        nnc_ssize rows = NNC_MIN(NNC_GEMM_MR, mc - ip);
        NNC_T *d = dst + ip * kc;
        if (g->ta) {
            for (nnc_ssize p = 0; p < kc; ++p) {
                const NNC_T *s = g->A + (p0 + p) * g->lda + i0 + ip;
                for (nnc_ssize i = 0; i < rows; ++i) d[p * NNC_GEMM_MR + i] = s[i];
            }
        } else {
            // Row-major A: NNC_TB x NNC_TB register transposes, scalar edges.
            const nnc_ssize it = rows / NNC_TB * NNC_TB, pt = kc / NNC_TB * NNC_TB;
            nnc_ssize i = 0;
            for (; i < it; i += NNC_TB) {
                const NNC_T *s = g->A + (i0 + ip + i) * g->lda + p0;
                nnc_ssize p = 0;
                for (; p < pt; p += NNC_TB) nnc_vtransp(d + p * NNC_GEMM_MR + i, NNC_GEMM_MR, s + p, g->lda);
                for (; p < kc; ++p)
                    for (nnc_ssize ii = 0; ii < NNC_TB; ++ii) d[p * NNC_GEMM_MR + i + ii] = s[ii * g->lda + p];
            }
            for (; i < rows; ++i) {
                const NNC_T *s = g->A + (i0 + ip + i) * g->lda + p0;
                for (nnc_ssize p = 0; p < kc; ++p) d[p * NNC_GEMM_MR + i] = s[p];
            }
        }
    }
}

// Packs one NR-column panel: cols [j0, j0+NR) x rows [p0, p0+kc) of op(B),
// zero-padding columns >= n: dst[p][j].  Transposed B goes through
// NNC_TB x NNC_TB register transposes, row-major B through vector copies.
static void NNC_FN(gemm_pack_b_panel)(NNC_T *NNC_RESTRICT dst, int tb, const NNC_T *B, nnc_ssize ldb,
                                      nnc_ssize n, nnc_ssize j0, nnc_ssize p0, nnc_ssize kc)
{
    const nnc_ssize cols = NNC_MIN(GEMM_NR, n - j0);
    if (tb) {
        const nnc_ssize jt = cols / NNC_TB * NNC_TB, pt = kc / NNC_TB * NNC_TB;
        nnc_ssize j = 0;
        for (; j < jt; j += NNC_TB) {
            const NNC_T *s = B + (j0 + j) * ldb + p0;
            nnc_ssize p = 0;
            for (; p < pt; p += NNC_TB) nnc_vtransp(dst + p * GEMM_NR + j, GEMM_NR, s + p, ldb);
            for (; p < kc; ++p)
                for (nnc_ssize jj = 0; jj < NNC_TB; ++jj) dst[p * GEMM_NR + j + jj] = s[jj * ldb + p];
        }
        for (; j < GEMM_NR; ++j) {
            const NNC_T *s = B + (j0 + j) * ldb + p0;
            if (j < cols)
                for (nnc_ssize p = 0; p < kc; ++p) dst[p * GEMM_NR + j] = s[p];
            else
                for (nnc_ssize p = 0; p < kc; ++p) dst[p * GEMM_NR + j] = 0;
        }
    } else if (cols == GEMM_NR) {
        for (nnc_ssize p = 0; p < kc; ++p)
            for (int v = 0; v < NNC_GEMM_NV; ++v)
                nnc_vstore(dst + p * GEMM_NR + v * NNC_VLEN, nnc_vload(B + (p0 + p) * ldb + j0 + v * NNC_VLEN));
    } else {
        for (nnc_ssize p = 0; p < kc; ++p) {
            const NNC_T *s = B + (p0 + p) * ldb + j0;
            nnc_ssize j = 0;
            for (; j < cols; ++j) dst[p * GEMM_NR + j] = s[j];
            for (; j < GEMM_NR; ++j) dst[p * GEMM_NR + j] = 0;
        }
    }
}

// Elements needed by gemm_pack_b for op(B) of shape (k, n); -1 on overflow.
static nnc_ssize NNC_FN(gemm_packed_b_size)(nnc_ssize n, nnc_ssize k)
{
    nnc_ssize r;
    if (n < 0 || k < 0 || !nnc_mul_ok(NNC_CEILDIV(n, GEMM_NR) * GEMM_NR, k, &r)) return -1;
    return r;
}

// The KC slice depth: a GEMV-shaped caller (the recurrent kernels) that
// reads packed panels itself restarts its FMA chains at the same slice
// boundaries.
static nnc_ssize NNC_FN(gemm_kc)(void) { return NNC_FN(gemm_blocking)().kc; }

// {MR, NR, KC, MC, NC} (the op gemm_block_sizes, for nnc.show_config).
static int NNC_FN(gemm_block_sizes)(nnc_ssize *out)
{
    const NNC_FN(gemm_blocks) blk = NNC_FN(gemm_blocking)();
    out[0] = NNC_GEMM_MR;
    out[1] = GEMM_NR;
    out[2] = blk.kc;
    out[3] = blk.mc;
    out[4] = blk.nc;
    return NNC_OK;
}

// gemm_pack_b's layout: panel jp holds columns [jp*NR, jp*NR+NR) for every
// p, so any KC slice of a panel is contiguous.  Packs panel jp of op(B)
// (k, n) into dst (the whole packed B).
NNC_INLINE void NNC_FN(gemm_pack_b_one)(NNC_T *dst, int tb, nnc_ssize n, nnc_ssize k, const NNC_T *B,
                                        nnc_ssize ldb, nnc_ssize jp)
{
    NNC_FN(gemm_pack_b_panel)(dst + jp * k * GEMM_NR, tb, B, ldb, n, jp * GEMM_NR, 0, k);
}

// Threads for packing `elems` elements: a pack runs at memory speed (about
// 0.13 ns an element from cache, 0.7 ns from DRAM on Zen 4), as long as
// 15-70 flops at the FMA peak; nnc_threads_for counts flops.
static int NNC_FN(gemm_pack_threads)(double elems) { return nnc_threads_for(16.0 * elems); }

// Packs all of op(B) (k, n) into dst (gemm_packed_b_size elements); threads
// own whole panels.
static int NNC_FN(gemm_pack_b)(NNC_T *dst, int tb, nnc_ssize n, nnc_ssize k, const NNC_T *B, nnc_ssize ldb)
{
    nnc_ssize np = NNC_CEILDIV(n, GEMM_NR);
    int nt = NNC_FN(gemm_pack_threads)((double)n * (double)k);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize jp = 0; jp < np; ++jp) NNC_FN(gemm_pack_b_one)(dst, tb, n, k, B, ldb, jp);
    return NNC_OK;
}
