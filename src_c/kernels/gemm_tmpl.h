// kernels/gemm_tmpl.h - the GEMM engine (template; see nnc_internal.h).
//
//   C (m, n) = act(alpha * op(A) op(B) + beta * C + bias)     row-major
//   op(A) (m, k): A[i*lda + p], or A[p*lda + i] when transposed
//   op(B) (k, n): B[p*ldb + j], or B[j*ldb + p] when transposed
//   bias (n) or NULL, act an nnc_act (not softmax); beta == 0 never reads C.
//
// BLIS structure: B is packed into NR-column panels (k-major inside a panel),
// A into MR-row panels; an MR x NR register-blocked micro-kernel runs over
// KC-deep slices.  A B operand can also be packed once (gemm_pack_b) and
// reused across calls: the weights of a dense, recurrent or conv layer.
//
// Determinism (API contract; tests/test_gemm.py checks it bitwise): every
// element C[i][j] is, per KC slice [pc, pc+kc) in increasing pc, the FMA
// chain acc = fma(A[i][p], B[p][j], acc) over p in order from acc = 0, then
// c = alpha*acc (+ beta*C on the first slice, + c on later ones), bias and
// activation on the last.  KC is a per-(ISA) constant, never derived from
// m, n or the thread count.  Everything else may vary without changing a
// bit: the tile an element falls in (rows of a partial tile run a kernel
// specialised for fewer rows; one row may run gemm_ukr_1x4, four panels at
// once), the path (small-m or blocked), whether B is packed per call,
// prepacked (gemm_pack_b) or read in place, and which thread owns a tile.
// So predict() gives bitwise the same rows for any batch size, and results
// are the same for any thread count.  Across ISAs results differ (FMA width
// and KC are per ISA).
//
// Paths and threads (each thread owns the C tiles it writes; no atomics):
// - m <= MC, the layer shapes (gemm_small): thread t owns a contiguous run
//   of B panels; it packs A (all m rows) once per KC slice and packs each of
//   its B panel slices into an L1 buffer right before using it.  nt == 1
//   runs without an OpenMP team.
// - m > MC (gemm_blocked): one parallel region; per KC slice an omp-for
//   packs the shared B block, then an omp-for runs (row block x column
//   chunk) items, each packing its own A block into per-thread scratch.
// Packing transposes with NNC_TB x NNC_TB register blocks (nnc_vtransp).

#define GEMM_NR (NNC_GEMM_NV * NNC_VLEN)
// KC 256: a KC x NR B micro-panel (reused by every MR-row tile of a block)
// is 16-32 KiB, L1/L2-resident; KC = 128 for AVX-512 f32 (16 KiB) measured
// ~3% slower on Zen 4.  The A block (MC x KC) stays in L2.
#define GEMM_KC 256
#define GEMM_MC (264 / NNC_GEMM_MR * NNC_GEMM_MR)
#define GEMM_NC (128 * GEMM_NR)
// Elements of packed A the small-m path keeps (all KC slices it can): 256 KiB.
#define GEMM_ABUDGET (262144 / (nnc_ssize)sizeof(NNC_T))

typedef struct {
    int ta;
    nnc_ssize m, n, k;
    NNC_T alpha, beta;
    const NNC_T *A;
    nnc_ssize lda;
    int tb;                // B operand: unpacked ...
    const NNC_T *B;
    nnc_ssize ldb;
    const NNC_T *Bp;       // ... or packed by gemm_pack_b (then B is unused)
    NNC_T *C;
    nnc_ssize ldc;
    const NNC_T *bias;
    int act;
} NNC_FN(gemm_args);

// Writes one row of a finished (or partial-K) tile:  c = alpha*acc (+ beta*c
// on the first slice, + c on later ones), then bias and activation on the last.
NNC_INLINE void NNC_FN(gemm_store_row)(NNC_T *c, const nnc_v *acc, nnc_ssize ncols, int first, int last,
                                       const NNC_FN(gemm_args) *g, const NNC_T *bias)
{
    nnc_v va = nnc_vset1(g->alpha), vb = nnc_vset1(g->beta);
    for (int j = 0; j < NNC_GEMM_NV; ++j) {
        nnc_ssize nc = ncols - (nnc_ssize)j * NNC_VLEN;
        if (nc <= 0) break;
        int full = nc >= NNC_VLEN;
        NNC_T *cj = c + j * NNC_VLEN;
        nnc_v r = nnc_vmul(va, acc[j]);
        if (!first) r = nnc_vadd(r, full ? nnc_vload(cj) : nnc_vloadn(cj, nc));
        else if (g->beta != 0) r = nnc_vadd(r, nnc_vmul(vb, full ? nnc_vload(cj) : nnc_vloadn(cj, nc)));
        if (last) {
            if (bias) r = nnc_vadd(r, full ? nnc_vload(bias + j * NNC_VLEN) : nnc_vloadn(bias + j * NNC_VLEN, nc));
            r = NNC_FN(vact)(r, g->act);
        }
        if (full) nnc_vstore(cj, r);
        else nnc_vstoren(cj, r, nc);
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

// The micro-kernel for MR_ (compile-time) rows: acc = A panel (kc x MR, only
// the first MR_ rows used) times B panel (kc x NR, rows bs apart: NR when
// packed, ldb when read in place), then stored.
#define NNC_GEMM_UKR(MR_)                                                                         \
    static void NNC_FN(gemm_ukr_##MR_)(nnc_ssize kc, const NNC_T *NNC_RESTRICT a,                \
                                       const NNC_T *NNC_RESTRICT b, nnc_ssize bs, NNC_T *c,        \
                                       nnc_ssize ldc, nnc_ssize ncols, int first, int last,       \
                                       const NNC_FN(gemm_args) *g, const NNC_T *bias)             \
    {                                                                                             \
        nnc_v acc[MR_][NNC_GEMM_NV];                                                                  \
        NNC_UNROLL_TILE for (int i = 0; i < MR_; ++i)                                             \
            for (int j = 0; j < NNC_GEMM_NV; ++j) acc[i][j] = nnc_vzero();                                \
        for (int i = 0; i < MR_; ++i) { /* C tile rows, read/written after the loop */           \
            __builtin_prefetch(c + i * ldc, 1);                                                   \
            __builtin_prefetch(c + i * ldc + GEMM_NR - 1, 1);                                     \
        }                                                                                         \
        for (nnc_ssize p = 0; p < kc; ++p) {                                                      \
            nnc_v bv[NNC_GEMM_NV];                                                                    \
            for (int j = 0; j < NNC_GEMM_NV; ++j) bv[j] = nnc_vload(b + p * bs + j * NNC_VLEN);          \
            NNC_UNROLL_TILE for (int i = 0; i < MR_; ++i) {                                       \
                nnc_v av = nnc_vset1(a[p * NNC_GEMM_MR + i]);                                             \
                for (int j = 0; j < NNC_GEMM_NV; ++j) acc[i][j] = nnc_vfma(av, bv[j], acc[i][j]);         \
            }                                                                                     \
        }                                                                                         \
        NNC_FN(gemm_store_tile)(c, ldc, acc, MR_, ncols, first, last, g, bias);                  \
    }
NNC_GEMM_UKR(1)
NNC_GEMM_UKR(2)
NNC_GEMM_UKR(3)
NNC_GEMM_UKR(4)
#if NNC_GEMM_MR > 4
NNC_GEMM_UKR(5)
NNC_GEMM_UKR(6)
#endif
#if NNC_GEMM_MR > 6
NNC_GEMM_UKR(7)
NNC_GEMM_UKR(8)
NNC_GEMM_UKR(9)
NNC_GEMM_UKR(10)
NNC_GEMM_UKR(11)
NNC_GEMM_UKR(12)
#endif
#undef NNC_GEMM_UKR

typedef void (*NNC_FN(gemm_ukr_fn))(nnc_ssize, const NNC_T *, const NNC_T *, nnc_ssize, NNC_T *, nnc_ssize,
                                    nnc_ssize, int, int, const NNC_FN(gemm_args) *, const NNC_T *);

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

// One row of A against four consecutive B panels (pstride apart, rows bs
// apart): the
// per-element FMA chain of gemm_ukr_1, with 4x the independent chains so a
// single row (batch 1, GEMV-shaped) is not latency-bound.  ncols counts from
// the first panel's first column.
static void NNC_FN(gemm_ukr_1x4)(nnc_ssize kc, const NNC_T *NNC_RESTRICT a, const NNC_T *NNC_RESTRICT b,
                                 nnc_ssize pstride, nnc_ssize bs, NNC_T *c, nnc_ssize ncols, int first, int last,
                                 const NNC_FN(gemm_args) *g, const NNC_T *bias)
{
    nnc_v acc[4][NNC_GEMM_NV];
    for (int q = 0; q < 4; ++q)
        for (int j = 0; j < NNC_GEMM_NV; ++j) acc[q][j] = nnc_vzero();
    for (nnc_ssize p = 0; p < kc; ++p) {
        nnc_v av = nnc_vset1(a[p * NNC_GEMM_MR]);
        for (int q = 0; q < 4; ++q)
            for (int j = 0; j < NNC_GEMM_NV; ++j)
                acc[q][j] = nnc_vfma(av, nnc_vload(b + q * pstride + p * bs + j * NNC_VLEN), acc[q][j]);
    }
    for (int q = 0; q < 4; ++q)
        NNC_FN(gemm_store_tile)(c + q * GEMM_NR, 0, &acc[q], 1, NNC_MIN(GEMM_NR, ncols - q * GEMM_NR), first, last,
                                g, bias ? bias + q * GEMM_NR : NULL);
}

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

// The KC slice depth: a GEMV-shaped caller (kernels/rnn_tmpl.h) that reads
// packed panels itself restarts its FMA chains at the same slice boundaries.
static nnc_ssize NNC_FN(gemm_kc)(void) { return GEMM_KC; }

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

// Packs all of op(B) (k, n) into dst (gemm_packed_b_size elements).
static int NNC_FN(gemm_pack_b)(NNC_T *dst, int tb, nnc_ssize n, nnc_ssize k, const NNC_T *B, nnc_ssize ldb)
{
    nnc_ssize np = NNC_CEILDIV(n, GEMM_NR);
    int nt = NNC_FN(gemm_pack_threads)((double)n * (double)k);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize jp = 0; jp < np; ++jp) NNC_FN(gemm_pack_b_one)(dst, tb, n, k, B, ldb, jp);
    return NNC_OK;
}

// C = act(beta*C + bias) where the product is empty (k == 0 or alpha == 0).
static void NNC_FN(gemm_scale_only)(const NNC_FN(gemm_args) *g)
{
    nnc_v zero[NNC_GEMM_NV];
    for (int j = 0; j < NNC_GEMM_NV; ++j) zero[j] = nnc_vzero();
    for (nnc_ssize i = 0; i < g->m; ++i)
        for (nnc_ssize j0 = 0; j0 < g->n; j0 += GEMM_NR)
            NNC_FN(gemm_store_row)(g->C + i * g->ldc + j0, zero, NNC_MIN(GEMM_NR, g->n - j0), 1, 1, g,
                                   g->bias ? g->bias + j0 : NULL);
}

// The big path: the thread team (or the calling thread alone, nt == 1, the
// worksharing loops then being orphaned) runs every macro-tile.  bbuf is the
// shared packed B block (unused when g->Bp), abuf this thread's A block.
static void NNC_FN(gemm_blocked)(const NNC_FN(gemm_args) *g, NNC_T *bbuf, NNC_T *abuf, int nt)
{
    const nnc_ssize m = g->m, n = g->n, k = g->k;
    // Row blocks of equal size (a multiple of MR), so threads get equal items.
    const nnc_ssize n_ib = NNC_CEILDIV(m, GEMM_MC);
    const nnc_ssize mcb = NNC_CEILDIV(NNC_CEILDIV(m, n_ib), NNC_GEMM_MR) * NNC_GEMM_MR;
    for (nnc_ssize jc = 0; jc < n; jc += GEMM_NC) {
        const nnc_ssize nc = NNC_MIN(GEMM_NC, n - jc);
        const nnc_ssize np = NNC_CEILDIV(nc, GEMM_NR);
        // Column chunks (in panels) so that few row blocks still split.
        nnc_ssize n_jb = nt > 1 ? NNC_MIN(np, NNC_MAX(1, NNC_CEILDIV(4 * nt, n_ib))) : 1;
        const nnc_ssize pchunk = NNC_CEILDIV(np, n_jb);
        n_jb = NNC_CEILDIV(np, pchunk);
        for (nnc_ssize pc = 0; pc < k; pc += GEMM_KC) {
            const nnc_ssize kc = NNC_MIN(GEMM_KC, k - pc);
            const int first = pc == 0, last = pc + kc == k;
            const NNC_T *bp;
            nnc_ssize pstride;
            if (g->Bp) {
                bp = g->Bp + (jc / GEMM_NR) * k * GEMM_NR + pc * GEMM_NR;
                pstride = k * GEMM_NR;
            } else {
                #pragma omp for schedule(static)
                for (nnc_ssize jp = 0; jp < np; ++jp)
                    NNC_FN(gemm_pack_b_panel)(bbuf + jp * kc * GEMM_NR, g->tb, g->B, g->ldb, n,
                                              jc + jp * GEMM_NR, pc, kc);
                bp = bbuf;
                pstride = kc * GEMM_NR;
            }
            #pragma omp for schedule(static)
            for (nnc_ssize item = 0; item < n_ib * n_jb; ++item) {
                if (!abuf) continue;
                const nnc_ssize ib = item / n_jb, jb = item % n_jb;
                const nnc_ssize ic = ib * mcb, mc = NNC_MIN(mcb, m - ic);
                NNC_FN(gemm_pack_a)(abuf, g, ic, mc, pc, kc);
                const nnc_ssize jp1 = NNC_MIN(np, (jb + 1) * pchunk);
                for (nnc_ssize jp = jb * pchunk; jp < jp1; ++jp) {
                    const nnc_ssize j = jc + jp * GEMM_NR, ncols = NNC_MIN(GEMM_NR, n - j);
                    const NNC_T *bias = g->bias ? g->bias + j : NULL;
                    for (nnc_ssize ir = 0; ir < mc; ir += NNC_GEMM_MR) {
                        const nnc_ssize rows = NNC_MIN(NNC_GEMM_MR, mc - ir);
                        NNC_FN(gemm_ukrs)[rows](kc, abuf + ir * kc, bp + jp * pstride, GEMM_NR,
                                                g->C + (ic + ir) * g->ldc + j, g->ldc, ncols, first,
                                                last, g, bias);
                    }
                }
            }
        }
    }
}

// The small-m path (m <= MC, one row block): thread t owns a contiguous run
// of B panels.  It packs all m rows of A for as many KC slices as fit in
// GEMM_ABUDGET (usually all of k), then walks its panels, each through every
// slice, packing a panel slice (unless prepacked, or row-major and used by
// one tile) into an L1 buffer and consuming it at once.  Same micro-kernels
// and KC slices as the big path, so bitwise the same rows; no shared buffer,
// no barrier.
static int NNC_FN(gemm_small_part)(const NNC_FN(gemm_args) *g, int t, int nt)
{
    const nnc_ssize m = g->m, n = g->n, k = g->k;
    const nnc_ssize np = NNC_CEILDIV(n, GEMM_NR), mp = NNC_CEILDIV(m, NNC_GEMM_MR) * NNC_GEMM_MR;
    const nnc_ssize kb = NNC_MIN(NNC_MAX(1, GEMM_ABUDGET / mp / GEMM_KC) * GEMM_KC, k);
    const nnc_ssize kc_max = NNC_MIN(GEMM_KC, k);
    NNC_T *abuf = nnc_tls_scratch(NNC_SCRATCH_GEMM_A, sizeof(NNC_T) * (size_t)(mp * kb));
    // One row: four panels at a time, for enough independent FMA chains.
    const nnc_ssize group = m == 1 ? 4 : 1;
    NNC_T *pbuf = g->Bp ? NULL : nnc_tls_scratch(NNC_SCRATCH_GEMM_B, sizeof(NNC_T) * (size_t)(GEMM_NR * kc_max * group));
    if (!abuf || (!g->Bp && !pbuf)) return NNC_ENOMEM;
    const nnc_ssize jp0 = np * t / nt, jp1 = np * (t + 1) / nt;
    for (nnc_ssize k0 = 0; k0 < k; k0 += kb) {
        const nnc_ssize k1 = NNC_MIN(k, k0 + kb);
        for (nnc_ssize pc = k0; pc < k1; pc += GEMM_KC)
            NNC_FN(gemm_pack_a)(abuf + mp * (pc - k0), g, 0, m, pc, NNC_MIN(GEMM_KC, k - pc));
        for (nnc_ssize jp = jp0; jp < jp1; jp += group) {
            const nnc_ssize gp = NNC_MIN(group, jp1 - jp), j = jp * GEMM_NR;
            for (nnc_ssize pc = k0; pc < k1; pc += GEMM_KC) {
                const nnc_ssize kc = NNC_MIN(GEMM_KC, k - pc);
                const int first = pc == 0, last = pc + kc == k;
                const NNC_T *a = abuf + mp * (pc - k0), *bp;
                nnc_ssize pstride, bs = GEMM_NR;
                if (g->Bp) {
                    bp = g->Bp + jp * k * GEMM_NR + pc * GEMM_NR;
                    pstride = k * GEMM_NR;
                } else if (!g->tb && (jp + gp) * GEMM_NR <= n &&
                           (m <= NNC_GEMM_MR || kc * g->ldb <= 16384 / (nnc_ssize)sizeof(NNC_T))) {
                    // Full panels of a row-major B, used by one tile or spanning
                    // at most 16 KiB (no L1 set conflicts): read in place.
                    bp = g->B + pc * g->ldb + j;
                    pstride = GEMM_NR;
                    bs = g->ldb;
                } else {
                    for (nnc_ssize q = 0; q < gp; ++q)
                        NNC_FN(gemm_pack_b_panel)(pbuf + q * kc * GEMM_NR, g->tb, g->B, g->ldb, n,
                                                  (jp + q) * GEMM_NR, pc, kc);
                    bp = pbuf;
                    pstride = kc * GEMM_NR;
                }
                if (gp == 4) {
                    NNC_FN(gemm_ukr_1x4)(kc, a, bp, pstride, bs, g->C + j, n - j, first, last, g,
                                         g->bias ? g->bias + j : NULL);
                    continue;
                }
                for (nnc_ssize q = 0; q < gp; ++q) {
                    const nnc_ssize jq = j + q * GEMM_NR, ncols = NNC_MIN(GEMM_NR, n - jq);
                    const NNC_T *bias = g->bias ? g->bias + jq : NULL;
                    for (nnc_ssize ir = 0; ir < m; ir += NNC_GEMM_MR)
                        NNC_FN(gemm_ukrs)[NNC_MIN(NNC_GEMM_MR, m - ir)](kc, a + ir * kc, bp + q * pstride, bs,
                                                                    g->C + ir * g->ldc + jq, g->ldc, ncols,
                                                                    first, last, g, bias);
                }
            }
        }
    }
    return NNC_OK;
}

static int NNC_FN(gemm_small)(const NNC_FN(gemm_args) *g, int nt)
{
    const nnc_ssize np = NNC_CEILDIV(g->n, GEMM_NR);
    if (nt > np) nt = (int)np;
    if (nt <= 1) return NNC_FN(gemm_small_part)(g, 0, 1);
    int failed = 0;
    #pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int t = 0; t < nt; ++t)
        if (NNC_FN(gemm_small_part)(g, t, nt)) {
            #pragma omp atomic write
            failed = 1;
        }
    return failed ? NNC_ENOMEM : NNC_OK;
}

// Runs the GEMM described by g on nt threads (1 inside another parallel region).
static int NNC_FN(gemm_run)(const NNC_FN(gemm_args) *g, int nt)
{
    const nnc_ssize m = g->m, n = g->n, k = g->k;
    if (m <= 0 || n <= 0) return NNC_OK;
    if (k <= 0 || g->alpha == 0) {
        NNC_FN(gemm_scale_only)(g);
        return NNC_OK;
    }
    if (m <= GEMM_MC) return NNC_FN(gemm_small)(g, nt);
    NNC_T *bbuf = NULL;
    nnc_ssize ncb = NNC_MIN(GEMM_NC, NNC_CEILDIV(n, GEMM_NR) * GEMM_NR);
    if (!g->Bp) {
        bbuf = nnc_tls_scratch(NNC_SCRATCH_GEMM_B, sizeof(NNC_T) * (size_t)GEMM_KC * (size_t)ncb);
        if (!bbuf) return NNC_ENOMEM;
    }
    const size_t abytes = sizeof(NNC_T) * (size_t)GEMM_MC * GEMM_KC;
    int failed = 0;
    // Always a region of its own, even of one thread: gemm_blocked's omp-for
    // loops must bind to this team, never to a caller's parallel region (an
    // RNN's time loop calls gemm_run(g, 1) from its threads).
    #pragma omp parallel num_threads(nt)
    {
        NNC_T *abuf = nnc_tls_scratch(NNC_SCRATCH_GEMM_A, abytes);
        if (!abuf) {
            #pragma omp atomic write
            failed = 1;
        }
        NNC_FN(gemm_blocked)(g, bbuf, abuf, nt);
    }
    return failed ? NNC_ENOMEM : NNC_OK;
}

static int NNC_FN(gemm)(int ta, int tb, nnc_ssize m, nnc_ssize n, nnc_ssize k, NNC_T alpha, const NNC_T *A,
                        nnc_ssize lda, const NNC_T *B, nnc_ssize ldb, NNC_T beta, NNC_T *C, nnc_ssize ldc,
                        const NNC_T *bias, int act)
{
    NNC_FN(gemm_args) g = {ta, m, n, k, alpha, beta, A, lda, tb, B, ldb, NULL, C, ldc, bias, act};
    return NNC_FN(gemm_run)(&g, nnc_threads_for(2.0 * (double)m * (double)n * (double)k));
}

static int NNC_FN(gemm_packed)(int ta, nnc_ssize m, nnc_ssize n, nnc_ssize k, NNC_T alpha, const NNC_T *A,
                               nnc_ssize lda, const NNC_T *Bp, NNC_T beta, NNC_T *C, nnc_ssize ldc,
                               const NNC_T *bias, int act)
{
    NNC_FN(gemm_args) g = {ta, m, n, k, alpha, beta, A, lda, 0, NULL, 0, Bp, C, ldc, bias, act};
    return NNC_FN(gemm_run)(&g, nnc_threads_for(2.0 * (double)m * (double)n * (double)k));
}

#undef GEMM_NR
#undef GEMM_KC
#undef GEMM_MC
#undef GEMM_NC
#undef GEMM_ABUDGET
