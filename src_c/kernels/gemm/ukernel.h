// kernels/gemm/ukernel.h - the GEMM's register-tile micro-kernels (part of
// kernels/gemm/gemm.h): an MR x NR tile of C accumulated in registers over
// one KC slice of packed A and packed (or in-place) B, then stored with the
// epilogue  c = alpha*acc (+ beta*c on the first slice, + c on later ones),
// bias and activation on the last slice.

// Writes one row of a finished (or partial-K) tile:  c = alpha*acc (+ beta*c
// on the first slice, + c on later ones), then bias and activation on the last.
NNC_INLINE void NNC_FN(gemm_store_row)(NNC_T *c, const nnc_v *acc, nnc_ssize ncols, int first, int last,
                                       const NNC_FN(gemm_args) *g, const NNC_T *bias)
{
    nnc_v va = nnc_vset1(g->alpha), vb = nnc_vset1(g->beta);
    for (int j = 0; j < NNC_GEMM_NV; ++j) {
        nnc_ssize nc = ncols - (nnc_ssize)j * NNC_VLEN;
        if (nc <= 0) break;
        NNC_T *cj = c + j * NNC_VLEN;
        nnc_v r = nnc_vmul(va, acc[j]);
        if (!first) r = nnc_vadd(r, nnc_vloadp(cj, nc));
        else if (g->beta != 0) r = nnc_vadd(r, nnc_vmul(vb, nnc_vloadp(cj, nc)));
        if (last) {
            if (bias) r = nnc_vadd(r, nnc_vloadp(bias + j * NNC_VLEN, nc));
            r = NNC_FN(vact)(r, g->act);
        }
        nnc_vstorep(cj, r, nc);
    }
}

// Stores a rows x NR tile (rows a compile-time constant after inlining).
// Full-width tiles: the products straight from registers (unrolled), plus
// the bias on the last slice, then the activation over the tile just
// written.  The operations and their order are gemm_store_row's (c is stored
// exactly and 1*c == c), so both give bitwise the same C.
NNC_INLINE void NNC_FN(gemm_store_tile)(NNC_T *c, nnc_ssize ldc, nnc_v (*acc)[NNC_GEMM_NV], int rows,
                                        nnc_ssize ncols, int first, int last, const NNC_FN(gemm_args) *g,
                                        const NNC_T *bias)
{
    if (ncols < GEMM_NR) {  // (through a copy, so that acc stays in registers)
        nnc_v t[NNC_GEMM_MR][NNC_GEMM_NV];
        NNC_UNROLL_TILE for (int i = 0; i < rows; ++i)
            for (int j = 0; j < NNC_GEMM_NV; ++j) t[i][j] = acc[i][j];
        for (int i = 0; i < rows; ++i) NNC_FN(gemm_store_row)(c + i * ldc, t[i], ncols, first, last, g, bias);
        return;
    }
    const nnc_v va = nnc_vset1(g->alpha);
    nnc_v vbias[NNC_GEMM_NV];
    const int add_bias = last && bias;
    for (int j = 0; j < NNC_GEMM_NV; ++j) vbias[j] = add_bias ? nnc_vload(bias + j * NNC_VLEN) : nnc_vzero();
    if (first && g->beta == 0) {
        NNC_UNROLL_TILE for (int i = 0; i < rows; ++i)
            for (int j = 0; j < NNC_GEMM_NV; ++j) {
                nnc_v r = nnc_vmul(va, acc[i][j]);
                nnc_vstore(c + i * ldc + j * NNC_VLEN, add_bias ? nnc_vadd(r, vbias[j]) : r);
            }
    } else {
        const nnc_v vb = nnc_vset1(first ? g->beta : (NNC_T)1);
        NNC_UNROLL_TILE for (int i = 0; i < rows; ++i)
            for (int j = 0; j < NNC_GEMM_NV; ++j) {
                NNC_T *cij = c + i * ldc + j * NNC_VLEN;
                nnc_v r = nnc_vadd(nnc_vmul(va, acc[i][j]), nnc_vmul(vb, nnc_vload(cij)));
                nnc_vstore(cij, add_bias ? nnc_vadd(r, vbias[j]) : r);
            }
    }
    if (last && g->act != NNC_ACT_LINEAR)
        for (int i = 0; i < rows; ++i)
            for (int j = 0; j < NNC_GEMM_NV; ++j) {
                NNC_T *cij = c + i * ldc + j * NNC_VLEN;
                nnc_vstore(cij, NNC_FN(vact)(nnc_vload(cij), g->act));
            }
}

// The micro-kernel for mr rows (1..MR, a compile-time constant at each
// instance): acc (mr x NR) = A panel (kc x MR, only the first mr rows used)
// times B panel (kc x NR, rows bs apart: NR when packed, ldb when read in
// place), then stored to the C tile at c (rows ldc apart, ncols valid).
NNC_INLINE void NNC_FN(gemm_ukr)(nnc_ssize kc, const NNC_T *NNC_RESTRICT a, const NNC_T *NNC_RESTRICT b,
                                 nnc_ssize bs, NNC_T *c, nnc_ssize ldc, nnc_ssize ncols, int first, int last,
                                 const NNC_FN(gemm_args) *g, const NNC_T *bias, const int mr)
{
    nnc_v acc[NNC_GEMM_MR][NNC_GEMM_NV];
    NNC_UNROLL_TILE for (int i = 0; i < mr; ++i)
        for (int j = 0; j < NNC_GEMM_NV; ++j) acc[i][j] = nnc_vzero();
    for (int i = 0; i < mr; ++i) {  // C tile rows, read/written after the loop
        __builtin_prefetch(c + i * ldc, 1);
        __builtin_prefetch(c + i * ldc + GEMM_NR - 1, 1);
    }
    for (nnc_ssize p = 0; p < kc; ++p) {
        nnc_v bv[NNC_GEMM_NV];
        for (int j = 0; j < NNC_GEMM_NV; ++j) bv[j] = nnc_vload(b + p * bs + j * NNC_VLEN);
        NNC_UNROLL_TILE for (int i = 0; i < mr; ++i) {
            nnc_v av = nnc_vset1(a[p * NNC_GEMM_MR + i]);
            for (int j = 0; j < NNC_GEMM_NV; ++j) acc[i][j] = nnc_vfma(av, bv[j], acc[i][j]);
        }
    }
    NNC_FN(gemm_store_tile)(c, ldc, acc, mr, ncols, first, last, g, bias);
}

// The instances, one per row count up to MR: gemm_ukr_<rows>.
#define GEMM_UKR_PARAMS                                                                                    \
    nnc_ssize kc, const NNC_T *NNC_RESTRICT a, const NNC_T *NNC_RESTRICT b, nnc_ssize bs, NNC_T *c,      \
        nnc_ssize ldc, nnc_ssize ncols, int first, int last, const NNC_FN(gemm_args) *g, const NNC_T *bias
#define GEMM_UKR_ARGS kc, a, b, bs, c, ldc, ncols, first, last, g, bias
static void NNC_FN(gemm_ukr_1)(GEMM_UKR_PARAMS) { NNC_FN(gemm_ukr)(GEMM_UKR_ARGS, 1); }
static void NNC_FN(gemm_ukr_2)(GEMM_UKR_PARAMS) { NNC_FN(gemm_ukr)(GEMM_UKR_ARGS, 2); }
static void NNC_FN(gemm_ukr_3)(GEMM_UKR_PARAMS) { NNC_FN(gemm_ukr)(GEMM_UKR_ARGS, 3); }
static void NNC_FN(gemm_ukr_4)(GEMM_UKR_PARAMS) { NNC_FN(gemm_ukr)(GEMM_UKR_ARGS, 4); }
#if NNC_GEMM_MR > 4
static void NNC_FN(gemm_ukr_5)(GEMM_UKR_PARAMS) { NNC_FN(gemm_ukr)(GEMM_UKR_ARGS, 5); }
static void NNC_FN(gemm_ukr_6)(GEMM_UKR_PARAMS) { NNC_FN(gemm_ukr)(GEMM_UKR_ARGS, 6); }
#endif
#if NNC_GEMM_MR > 6
static void NNC_FN(gemm_ukr_7)(GEMM_UKR_PARAMS) { NNC_FN(gemm_ukr)(GEMM_UKR_ARGS, 7); }
static void NNC_FN(gemm_ukr_8)(GEMM_UKR_PARAMS) { NNC_FN(gemm_ukr)(GEMM_UKR_ARGS, 8); }
static void NNC_FN(gemm_ukr_9)(GEMM_UKR_PARAMS) { NNC_FN(gemm_ukr)(GEMM_UKR_ARGS, 9); }
static void NNC_FN(gemm_ukr_10)(GEMM_UKR_PARAMS) { NNC_FN(gemm_ukr)(GEMM_UKR_ARGS, 10); }
static void NNC_FN(gemm_ukr_11)(GEMM_UKR_PARAMS) { NNC_FN(gemm_ukr)(GEMM_UKR_ARGS, 11); }
static void NNC_FN(gemm_ukr_12)(GEMM_UKR_PARAMS) { NNC_FN(gemm_ukr)(GEMM_UKR_ARGS, 12); }
#endif

typedef void (*NNC_FN(gemm_ukr_fn))(GEMM_UKR_PARAMS);
#undef GEMM_UKR_PARAMS
#undef GEMM_UKR_ARGS

// gemm_ukrs[rows]: the micro-kernel for a tile of `rows` rows.
static const NNC_FN(gemm_ukr_fn) NNC_FN(gemm_ukrs)[NNC_GEMM_MR + 1] = {
    NULL, NNC_FN(gemm_ukr_1), NNC_FN(gemm_ukr_2), NNC_FN(gemm_ukr_3), NNC_FN(gemm_ukr_4),
#if NNC_GEMM_MR > 4
    NNC_FN(gemm_ukr_5), NNC_FN(gemm_ukr_6),
#endif
#if NNC_GEMM_MR > 6
    NNC_FN(gemm_ukr_7), NNC_FN(gemm_ukr_8), NNC_FN(gemm_ukr_9), NNC_FN(gemm_ukr_10),
    NNC_FN(gemm_ukr_11), NNC_FN(gemm_ukr_12),
#endif
};

// A few rows (1-3) of A against `panels` consecutive B panels (pstride
// apart, rows bs apart): the per-element FMA chain of gemm_ukr_<rows>, with
// `panels` times the independent chains, so that a product of 1-3 rows
// (batch 1-3, GEMV-shaped) is not bound by the FMA latency.  A's element
// (i, p) is a[p * as + i * ar]: packed (as = MR, ar = 1) or read in place.
// rows and panels are compile-time constants at each instance; ncols counts
// from the first panel's first column.
NNC_INLINE void NNC_FN(gemm_ukr_group)(nnc_ssize kc, const NNC_T *NNC_RESTRICT a, nnc_ssize as, nnc_ssize ar,
                                       const NNC_T *NNC_RESTRICT b, nnc_ssize pstride, nnc_ssize bs, NNC_T *c,
                                       nnc_ssize ldc, nnc_ssize ncols, int first, int last,
                                       const NNC_FN(gemm_args) *g, const NNC_T *bias, const int rows,
                                       const int panels)
{
    nnc_v acc[4][3][NNC_GEMM_NV];
    NNC_UNROLL_TILE for (int q = 0; q < panels; ++q)
        NNC_UNROLL_TILE for (int i = 0; i < rows; ++i)
            for (int j = 0; j < NNC_GEMM_NV; ++j) acc[q][i][j] = nnc_vzero();
    for (nnc_ssize p = 0; p < kc; ++p) {
        NNC_UNROLL_TILE for (int q = 0; q < panels; ++q) {
            nnc_v bv[NNC_GEMM_NV];
            for (int j = 0; j < NNC_GEMM_NV; ++j) bv[j] = nnc_vload(b + q * pstride + p * bs + j * NNC_VLEN);
            NNC_UNROLL_TILE for (int i = 0; i < rows; ++i) {
                const nnc_v av = nnc_vset1(a[p * as + i * ar]);
                for (int j = 0; j < NNC_GEMM_NV; ++j) acc[q][i][j] = nnc_vfma(av, bv[j], acc[q][i][j]);
            }
        }
    }
    for (int q = 0; q < panels; ++q)
        NNC_FN(gemm_store_tile)(c + q * GEMM_NR, ldc, acc[q], rows, NNC_MIN(GEMM_NR, ncols - q * GEMM_NR), first,
                                last, g, bias ? bias + q * GEMM_NR : NULL);
}

// The instances (rows x panels), and the one for m rows.
#define GEMM_GROUP_PARAMS                                                                                  \
    nnc_ssize kc, const NNC_T *NNC_RESTRICT a, nnc_ssize as, nnc_ssize ar, const NNC_T *NNC_RESTRICT b,     \
        nnc_ssize pstride, nnc_ssize bs, NNC_T *c, nnc_ssize ldc, nnc_ssize ncols, int first, int last,      \
        const NNC_FN(gemm_args) *g, const NNC_T *bias
#define GEMM_GROUP_ARGS kc, a, as, ar, b, pstride, bs, c, ldc, ncols, first, last, g, bias
static void NNC_FN(gemm_ukr_1x4)(GEMM_GROUP_PARAMS) { NNC_FN(gemm_ukr_group)(GEMM_GROUP_ARGS, 1, 4); }
static void NNC_FN(gemm_ukr_2x4)(GEMM_GROUP_PARAMS) { NNC_FN(gemm_ukr_group)(GEMM_GROUP_ARGS, 2, 4); }
static void NNC_FN(gemm_ukr_2x2)(GEMM_GROUP_PARAMS) { NNC_FN(gemm_ukr_group)(GEMM_GROUP_ARGS, 2, 2); }
static void NNC_FN(gemm_ukr_3x2)(GEMM_GROUP_PARAMS) { NNC_FN(gemm_ukr_group)(GEMM_GROUP_ARGS, 3, 2); }
typedef void (*NNC_FN(gemm_group_fn))(GEMM_GROUP_PARAMS);
#undef GEMM_GROUP_PARAMS
#undef GEMM_GROUP_ARGS

// The group kernel for a product of m rows and its panel count: 4 panels
// (1-2 rows) or 2 (2-3 rows), as many as NNC_GEMM_GROUP_ACC accumulators
// allow; NULL (panels 1) when not even two fit.
static NNC_FN(gemm_group_fn) NNC_FN(gemm_group_kernel)(nnc_ssize m, nnc_ssize *panels)
{
    const int fit = m >= 1 && m <= 3 ? NNC_GEMM_GROUP_ACC / ((int)m * NNC_GEMM_NV) : 0;
    *panels = 4;
    if (m <= 2 && fit >= 4) return m == 1 ? NNC_FN(gemm_ukr_1x4) : NNC_FN(gemm_ukr_2x4);
    *panels = 2;
    if (m >= 2 && fit >= 2) return m == 2 ? NNC_FN(gemm_ukr_2x2) : NNC_FN(gemm_ukr_3x2);
    *panels = 1;
    return NULL;
}
