// kernels/gemm/nt.h - the GEMM engine's dot-product path (part of
// kernels/gemm/gemm.h) for C = act(alpha * A B^T + beta * C + bias) with
// A (m, k) and B (n, k) both row-major.
//
// Both operands are contiguous along k, so no packing is needed: a tile of
// GNT_DR rows of A times NNC_GEMM_NT_DC rows of B keeps DR x DC vector
// accumulators running along k and reduces them horizontally at the end.
// This is the forward of a dense layer (x W^T), where packing the weights
// on every call would cost as much as the product itself at batch 1.
//
// Each element of C pays one horizontal sum, about as much as four vectors
// of FMAs: with a short k the packed GEMM (B^T packed on every call) is
// faster at every m, so gemm_nt runs it instead (gemm_nt_packs).
//
// Determinism: the path depends on n and k only (a layer's shape), never on
// m or the thread count.  On the dot-product path element (i, j) is always
// the same lane-strided FMA chain over k followed by the same horizontal
// sum, whatever the tile it falls in; partial tiles repeat the last valid
// row/column (and discard the duplicate) instead of running a different
// summation.  The packed path is the GEMM's, with its guarantees.

#define GNT_DR 4
#define GNT_CB (8 * NNC_GEMM_NT_DC)   // columns per block: B rows kept hot in L1/L2
// A tile's accumulators, rounded up to whole vectors of sums.
#define GNT_SUMS (NNC_CEILDIV(GNT_DR * NNC_GEMM_NT_DC, NNC_VLEN) * NNC_VLEN)

// out[r][c] = A row ar[r] . B row br[c] over k (vector lanes, then the
// horizontal sum), for dr rows (a compile-time constant at each instance)
// and NNC_GEMM_NT_DC columns.
NNC_INLINE void NNC_FN(gemm_nt_tile)(const NNC_T *const *ar, const NNC_T *const *br, nnc_ssize k,
                                     NNC_T (*out)[NNC_GEMM_NT_DC], const int dr)
{
    nnc_v acc[GNT_DR][NNC_GEMM_NT_DC];
    for (int r = 0; r < dr; ++r)
        for (int c = 0; c < NNC_GEMM_NT_DC; ++c) acc[r][c] = nnc_vzero();
    nnc_ssize p = 0;
    for (; p + NNC_VLEN <= k; p += NNC_VLEN) {
        nnc_v bv[NNC_GEMM_NT_DC];
        for (int c = 0; c < NNC_GEMM_NT_DC; ++c) bv[c] = nnc_vload(br[c] + p);
        for (int r = 0; r < dr; ++r) {
            nnc_v av = nnc_vload(ar[r] + p);
            for (int c = 0; c < NNC_GEMM_NT_DC; ++c) acc[r][c] = nnc_vfma(av, bv[c], acc[r][c]);
        }
    }
    if (p < k) {
        nnc_v bv[NNC_GEMM_NT_DC];
        for (int c = 0; c < NNC_GEMM_NT_DC; ++c) bv[c] = nnc_vloadn(br[c] + p, k - p);
        for (int r = 0; r < dr; ++r) {
            nnc_v av = nnc_vloadn(ar[r] + p, k - p);
            for (int c = 0; c < NNC_GEMM_NT_DC; ++c) acc[r][c] = nnc_vfma(av, bv[c], acc[r][c]);
        }
    }
    // the horizontal sums NNC_VLEN at a time (nnc_vhsums: bitwise nnc_vhsum's)
    nnc_v flat[GNT_SUMS];
    NNC_T sums[GNT_SUMS];
    NNC_UNROLL_TILE for (int r = 0; r < GNT_DR; ++r)
        NNC_UNROLL_TILE for (int c = 0; c < NNC_GEMM_NT_DC; ++c)
            flat[r * NNC_GEMM_NT_DC + c] = r < dr ? acc[r][c] : nnc_vzero();
    NNC_UNROLL_TILE for (int i = GNT_DR * NNC_GEMM_NT_DC; i < GNT_SUMS; ++i) flat[i] = nnc_vzero();
    NNC_UNROLL_TILE for (int i = 0; i < dr * NNC_GEMM_NT_DC; i += NNC_VLEN) nnc_vhsums(flat + i, sums + i);
    for (int r = 0; r < dr; ++r)
        for (int c = 0; c < NNC_GEMM_NT_DC; ++c) out[r][c] = sums[r * NNC_GEMM_NT_DC + c];
}

// The instances: one row, and GNT_DR rows.
static void NNC_FN(gemm_nt_tile_1)(const NNC_T *const *ar, const NNC_T *const *br, nnc_ssize k,
                                   NNC_T (*out)[NNC_GEMM_NT_DC]) { NNC_FN(gemm_nt_tile)(ar, br, k, out, 1); }
static void NNC_FN(gemm_nt_tile_4)(const NNC_T *const *ar, const NNC_T *const *br, nnc_ssize k,
                                   NNC_T (*out)[NNC_GEMM_NT_DC]) { NNC_FN(gemm_nt_tile)(ar, br, k, out, 4); }

// Rows [i0, i1) x columns [j0, j1) (j1 - j0 <= GNT_CB) of C: the dot
// products go to a local tile, then the epilogue runs vectorised along each
// row (the same vact as every other kernel).
static void NNC_FN(gemm_nt_block)(nnc_ssize i0, nnc_ssize i1, nnc_ssize j0, nnc_ssize j1, nnc_ssize k,
                                  NNC_T alpha, const NNC_T *A, nnc_ssize lda, const NNC_T *B, nnc_ssize ldb,
                                  NNC_T beta, NNC_T *C, nnc_ssize ldc, const NNC_T *bias, int act)
{
    // Groups of 4 rows, then single rows; but 2-3 rows left over, when the
    // block's B rows fill more than half of L1, run as one group of 4 with
    // the last row repeated (the duplicates discarded): B streams from L2
    // once instead of once per row.  C harness, AVX-512 f32, 1 thread:
    // 2x789x950 51 -> 33 us, 6x789x950 80 -> 63, 7x512x300 20 -> 12.
    const nnc_ssize left = i1 - i0;
    const int dr = left >= GNT_DR || (left > 1 && (double)(j1 - j0) * (double)k * sizeof(NNC_T) >
                                                       (double)nnc_cpu()->l1d_kib * 512.0) ? GNT_DR : 1;
    const nnc_ssize nc = j1 - j0;
    NNC_T sums[GNT_DR][GNT_CB];
    const nnc_v va = nnc_vset1(alpha), vb = nnc_vset1(beta);
    for (nnc_ssize i = i0; i < i1; i += dr) {
        const NNC_T *ar[GNT_DR];
        for (int r = 0; r < dr; ++r) ar[r] = A + NNC_MIN(i + r, i1 - 1) * lda;
        for (nnc_ssize j = j0; j < j1; j += NNC_GEMM_NT_DC) {
            NNC_T out[GNT_DR][NNC_GEMM_NT_DC];
            const NNC_T *br[NNC_GEMM_NT_DC];
            for (int c = 0; c < NNC_GEMM_NT_DC; ++c) br[c] = B + NNC_MIN(j + c, j1 - 1) * ldb;
            if (dr == GNT_DR) NNC_FN(gemm_nt_tile_4)(ar, br, k, out);
            else NNC_FN(gemm_nt_tile_1)(ar, br, k, out);
            for (int r = 0; r < dr; ++r)
                for (int c = 0; c < NNC_GEMM_NT_DC && j + c < j1; ++c) sums[r][j - j0 + c] = out[r][c];
        }
        for (int r = 0; r < dr && i + r < i1; ++r) {
            NNC_T *crow = C + (i + r) * ldc + j0;
            for (nnc_ssize c = 0; c < nc; c += NNC_VLEN) {
                const nnc_ssize w = NNC_MIN(NNC_VLEN, nc - c);
                nnc_v v = nnc_vmul(va, nnc_vloadp(&sums[r][c], w));
                if (beta != 0) v = nnc_vadd(v, nnc_vmul(vb, nnc_vloadp(crow + c, w)));
                if (bias) v = nnc_vadd(v, nnc_vloadp(bias + j0 + c, w));
                v = NNC_FN(vact)(v, act);
                nnc_vstorep(crow + c, v, w);
            }
        }
    }
}

// Whether gemm_nt runs the packed GEMM for B (n, k): measured against the
// dot-product tiles on Zen 5 (AVX-512 and AVX2, float32 and float64, m = 1
// to 64), the packed path is 0.3-0.9x their time at 64 rows once k is at
// most 8 vectors, and 0.4-1.4x at one row (the packing of B, paid per call,
// is then most of its time) while k is at most 4 vectors; at 5-8 vectors a
// single row costs up to 2.2x unless B is small (64 KiB: at most a
// microsecond of packing).  B narrower than a micro-tile leaves its lanes
// empty: the dot product.
NNC_INLINE int NNC_FN(gemm_nt_packs)(nnc_ssize n, nnc_ssize k)
{
    const nnc_ssize vectors = NNC_CEILDIV(k, NNC_VLEN);
    return n >= GEMM_NR && (vectors <= 4 || (vectors <= 8 && (double)n * (double)k * sizeof(NNC_T) <= 65536.0));
}

// C (m, n) = act(alpha * A B^T + beta * C + bias); A (m, k), B (n, k).
// Work items are (row block of <= 64 rows x chunk of <= GNT_CB columns):
// those rows of B stay in L1/L2 while A's rows stream past them.  Blocks and
// chunks are balanced to within one tile, and their count is made a multiple
// of the team size where the shape allows, so no thread gets a third more
// than another (a 216-column product is 5 chunks of 48, not 3 + 2 items).
static int NNC_FN(gemm_nt)(nnc_ssize m, nnc_ssize n, nnc_ssize k, NNC_T alpha, const NNC_T *A, nnc_ssize lda,
                           const NNC_T *B, nnc_ssize ldb, NNC_T beta, NNC_T *C, nnc_ssize ldc,
                           const NNC_T *bias, int act)
{
    if (m <= 0 || n <= 0) return NNC_OK;
    if (k <= 0) {
        NNC_FN(gemm_args) g = {0, m, n, 0, alpha, beta, A, lda, 1, B, ldb, NULL, C, ldc, bias, act};
        return NNC_FN(gemm_run)(&g, 1);
    }
    if (NNC_FN(gemm_nt_packs)(n, k))
        return NNC_FN(gemm)(0, 1, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, bias, act);
    const int nt = nnc_threads_for_ns(NNC_FN(gemm_ns)(m, n, k));
    const nnc_ssize DC = NNC_GEMM_NT_DC, tiles = NNC_CEILDIV(n, DC), groups = NNC_CEILDIV(m, GNT_DR);
    nnc_ssize rblocks = NNC_CEILDIV(m, 64), chunks = NNC_CEILDIV(tiles, GNT_CB / DC);
    if ((rblocks * chunks) % nt) {
        if (NNC_CEILDIV(chunks, nt) * nt <= tiles) chunks = NNC_CEILDIV(chunks, nt) * nt;
        else if (NNC_CEILDIV(rblocks, nt) * nt <= groups) rblocks = NNC_CEILDIV(rblocks, nt) * nt;
    }
    // row blocks of whole GNT_DR groups, balanced to within one group
    const nnc_ssize rb = NNC_CEILDIV(groups, rblocks) * GNT_DR;
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize item = 0; item < rblocks * chunks; ++item) {
        const nnc_ssize jc = item / rblocks, ib = item % rblocks;
        const nnc_ssize i0 = ib * rb, i1 = NNC_MIN(m, i0 + rb);
        const nnc_ssize j0 = jc * tiles / chunks * DC, j1 = NNC_MIN(n, (jc + 1) * tiles / chunks * DC);
        if (i0 >= i1) continue;
        // Rows of a block run in groups of GNT_DR; a short tail group of a
        // block runs row by row or as one padded group (gemm_nt_block; the
        // same per-element summation either way).
        const nnc_ssize full = i0 + (i1 - i0) / GNT_DR * GNT_DR;
        if (full > i0)
            NNC_FN(gemm_nt_block)(i0, full, j0, j1, k, alpha, A, lda, B, ldb, beta, C, ldc, bias, act);
        if (full < i1)
            NNC_FN(gemm_nt_block)(full, i1, j0, j1, k, alpha, A, lda, B, ldb, beta, C, ldc, bias, act);
    }
    return NNC_OK;
}
#undef GNT_DR
#undef GNT_CB
#undef GNT_SUMS
