// kernels/gemm/driver.h - the GEMM's loops around the micro-kernels (part of
// kernels/gemm/gemm.h): the empty-product case, the blocked path (m > MC),
// the small-m path (m <= MC), their threads, and the ops gemm / gemm_packed
// with the in-template entry gemm_run.

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

// One register tile: rows [ic + ir, ic + ir + MR) (fewer at the block's
// end) x columns [j, j + NR) of C, over a KC slice of packed A (abuf, the
// block's rows from ic) and the B panel bp (rows bs apart).
NNC_INLINE void NNC_FN(gemm_tile)(const NNC_FN(gemm_args) *g, nnc_ssize kc, const NNC_T *abuf, nnc_ssize ir,
                                  nnc_ssize mc, const NNC_T *bp, nnc_ssize bs, nnc_ssize ic, nnc_ssize j, int first,
                                  int last)
{
    NNC_FN(gemm_ukrs)[NNC_MIN(NNC_GEMM_MR, mc - ir)](kc, abuf + ir * kc, bp, bs, g->C + (ic + ir) * g->ldc + j,
                                                     g->ldc, NNC_MIN(GEMM_NR, g->n - j), first, last, g,
                                                     g->bias ? g->bias + j : NULL);
}

// The order of a block's tiles.  Panels outer (each KC x NR B panel stays in
// L1 while every row tile of the block passes it) unless the block's B
// panels together fit in a quarter of L2: then rows outer, so that C is
// written row by row, a whole line at a time, instead of in NR-wide strips
// down the block (strips of rows a power of two apart thrash the caches'
// sets, and a short KC leaves nothing to hide the stores behind).  The
// order changes no result.
NNC_INLINE int NNC_FN(gemm_rows_outer)(nnc_ssize kc, nnc_ssize panels)
{
    return (double)kc * (double)(panels * GEMM_NR) * sizeof(NNC_T) <= (double)nnc_cpu()->l2_kib * 256.0;
}

// The big path: the thread team (or the calling thread alone, nt == 1, the
// worksharing loops then being orphaned) runs every macro-tile.  bbuf is the
// shared packed B block (unused when g->Bp), abuf this thread's A block.
static void NNC_FN(gemm_blocked)(const NNC_FN(gemm_args) *g, const NNC_FN(gemm_blocks) *blk, NNC_T *bbuf,
                                 NNC_T *abuf, int nt)
{
    const nnc_ssize m = g->m, n = g->n, k = g->k, kcb = blk->kc;
    // Row blocks of as equal a number of MR-row tiles as can be (block ib:
    // tiles [tiles*ib/n_ib, tiles*(ib+1)/n_ib)), so threads get equal items.
    const nnc_ssize n_ib = NNC_CEILDIV(m, blk->mc), tiles = NNC_CEILDIV(m, NNC_GEMM_MR);
    for (nnc_ssize jc = 0; jc < n; jc += blk->nc) {
        const nnc_ssize nc = NNC_MIN(blk->nc, n - jc);
        const nnc_ssize np = NNC_CEILDIV(nc, GEMM_NR);
        // Column chunks (in panels) so that few row blocks still split, and
        // the items (row block x chunk) a multiple of the threads if np allows.
        nnc_ssize n_jb = nt > 1 ? NNC_MIN(np, NNC_MAX(1, NNC_CEILDIV(4 * nt, n_ib))) : 1;
        while (nt > 1 && n_jb < np && (n_ib * n_jb) % nt) ++n_jb;
        const nnc_ssize pchunk = NNC_CEILDIV(np, n_jb);
        n_jb = NNC_CEILDIV(np, pchunk);
        for (nnc_ssize pc = 0; pc < k; pc += kcb) {
            const nnc_ssize kc = NNC_MIN(kcb, k - pc);
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
            // Each thread runs a contiguous run of items (static), row block
            // major: consecutive items of one row block share its packed A.
            nnc_ssize packed_ib = -1;
            #pragma omp for schedule(static)
            for (nnc_ssize item = 0; item < n_ib * n_jb; ++item) {
                if (!abuf) continue;
                const nnc_ssize ib = item / n_jb, jb = item % n_jb;
                const nnc_ssize ic = tiles * ib / n_ib * NNC_GEMM_MR;
                const nnc_ssize mc = NNC_MIN(m, tiles * (ib + 1) / n_ib * NNC_GEMM_MR) - ic;
                if (ib != packed_ib) NNC_FN(gemm_pack_a)(abuf, g, ic, mc, pc, kc);
                packed_ib = ib;
                const nnc_ssize jp0 = jb * pchunk, jp1 = NNC_MIN(np, (jb + 1) * pchunk);
                if (NNC_FN(gemm_rows_outer)(kc, jp1 - jp0)) {
                    for (nnc_ssize ir = 0; ir < mc; ir += NNC_GEMM_MR)
                        for (nnc_ssize jp = jp0; jp < jp1; ++jp)
                            NNC_FN(gemm_tile)(g, kc, abuf, ir, mc, bp + jp * pstride, GEMM_NR, ic, jc + jp * GEMM_NR,
                                              first, last);
                } else {
                    for (nnc_ssize jp = jp0; jp < jp1; ++jp)
                        for (nnc_ssize ir = 0; ir < mc; ir += NNC_GEMM_MR)
                            NNC_FN(gemm_tile)(g, kc, abuf, ir, mc, bp + jp * pstride, GEMM_NR, ic, jc + jp * GEMM_NR,
                                              first, last);
                }
            }
        }
    }
}

// The small-m path's tiles in rows-outer order (gemm_rows_outer) for one KC
// slice (k <= KC) with B prepacked or row-major and read in place (only a
// partial last panel is packed, into pbuf): panels [jp0, jp1), all m rows
// of packed A (a).
static void NNC_FN(gemm_small_rows)(const NNC_FN(gemm_args) *g, const NNC_T *a, NNC_T *pbuf, nnc_ssize jp0,
                                    nnc_ssize jp1)
{
    const nnc_ssize k = g->k, n = g->n;
    const int partial = !g->Bp && jp1 > jp0 && jp1 * GEMM_NR > n;
    if (partial) NNC_FN(gemm_pack_b_panel)(pbuf, 0, g->B, g->ldb, n, (jp1 - 1) * GEMM_NR, 0, k);
    for (nnc_ssize ir = 0; ir < g->m; ir += NNC_GEMM_MR)
        for (nnc_ssize jp = jp0; jp < jp1; ++jp) {
            const nnc_ssize j = jp * GEMM_NR;
            if (g->Bp) NNC_FN(gemm_tile)(g, k, a, ir, g->m, g->Bp + jp * k * GEMM_NR, GEMM_NR, 0, j, 1, 1);
            else if (partial && jp == jp1 - 1) NNC_FN(gemm_tile)(g, k, a, ir, g->m, pbuf, GEMM_NR, 0, j, 1, 1);
            else NNC_FN(gemm_tile)(g, k, a, ir, g->m, g->B + j, g->ldb, 0, j, 1, 1);
        }
}

// The small-m path (m <= MC, one row block): thread t owns a contiguous run
// of B panels.  It packs all m rows of A for as many KC slices as fit in
// GEMM_ABUDGET (usually all of k), then walks its panels, each through every
// slice, packing a panel slice (unless prepacked, or row-major and used by
// one tile) into an L1 buffer and consuming it at once.  Same micro-kernels
// and KC slices as the big path, so bitwise the same rows; no shared buffer,
// no barrier.
static int NNC_FN(gemm_small_part)(const NNC_FN(gemm_args) *g, nnc_ssize kcb, int t, int nt)
{
    const nnc_ssize m = g->m, n = g->n, k = g->k;
    const nnc_ssize np = NNC_CEILDIV(n, GEMM_NR), mp = NNC_CEILDIV(m, NNC_GEMM_MR) * NNC_GEMM_MR;
    const nnc_ssize kb = NNC_MIN(NNC_MAX(1, GEMM_ABUDGET / mp / kcb) * kcb, k);
    const nnc_ssize kc_max = NNC_MIN(kcb, k);
    NNC_T *abuf = nnc_tls_scratch(NNC_SCRATCH_GEMM_A, sizeof(NNC_T) * (size_t)(mp * kb));
    // 1-3 rows: several panels at a time, for enough independent FMA chains.
    nnc_ssize group;
    const NNC_FN(gemm_group_fn) grouped = NNC_FN(gemm_group_kernel)(m, &group);
    NNC_T *pbuf =
        g->Bp ? NULL : nnc_tls_scratch(NNC_SCRATCH_GEMM_B, sizeof(NNC_T) * (size_t)(GEMM_NR * kc_max * group));
    if (!abuf || (!g->Bp && !pbuf)) return NNC_ENOMEM;
    const nnc_ssize jp0 = np * t / nt, jp1 = np * (t + 1) / nt;
    // When every panel of this thread runs in a full group, A is read in
    // place (no packing of A: a recurrent step calls this once per slice).
    // The group kernels read A's (i, p) at p * as + i * ar.
    const int a_in_place = grouped && (jp1 - jp0) % group == 0;
    const nnc_ssize as = !a_in_place ? NNC_GEMM_MR : g->ta ? g->lda : 1;
    const nnc_ssize ar = !a_in_place ? 1 : g->ta ? 1 : g->lda;
    if (k <= kcb && m > NNC_GEMM_MR && (g->Bp || (!g->tb && k * g->ldb <= 16384 / (nnc_ssize)sizeof(NNC_T))) &&
        NNC_FN(gemm_rows_outer)(k, jp1 - jp0)) {
        NNC_FN(gemm_pack_a)(abuf, g, 0, m, 0, k);
        NNC_FN(gemm_small_rows)(g, abuf, pbuf, jp0, jp1);
        return NNC_OK;
    }
    for (nnc_ssize k0 = 0; k0 < k; k0 += kb) {
        const nnc_ssize k1 = NNC_MIN(k, k0 + kb);
        if (!a_in_place)
            for (nnc_ssize pc = k0; pc < k1; pc += kcb)
                NNC_FN(gemm_pack_a)(abuf + mp * (pc - k0), g, 0, m, pc, NNC_MIN(kcb, k - pc));
        for (nnc_ssize jp = jp0; jp < jp1; jp += group) {
            const nnc_ssize gp = NNC_MIN(group, jp1 - jp), j = jp * GEMM_NR;
            for (nnc_ssize pc = k0; pc < k1; pc += kcb) {
                const nnc_ssize kc = NNC_MIN(kcb, k - pc);
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
                if (grouped && gp == group) {
                    grouped(kc, a_in_place ? g->A + pc * as : a, as, ar, bp, pstride, bs, g->C + j, g->ldc, n - j,
                            first, last, g, g->bias ? g->bias + j : NULL);
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

// Rows [i0, i1) of g's product as a product of their own (A's and C's rows).
static NNC_FN(gemm_args) NNC_FN(gemm_rows_of)(const NNC_FN(gemm_args) *g, nnc_ssize i0, nnc_ssize i1)
{
    NNC_FN(gemm_args) r = *g;
    r.m = i1 - i0;
    r.A = g->ta ? g->A + i0 : g->A + i0 * g->lda;
    r.C = g->C + i0 * g->ldc;
    return r;
}

// The small-m path on up to nt threads; nt == 1 runs on the calling thread
// without an OpenMP team.  Threads split B's panels, each packing all of A,
// unless the MR-row tiles split more evenly than the panels (a 96-column B
// is 3 panels, 2 + 1; its 96 rows 8 tiles, 4 + 4): then each thread runs
// its rows as a product of their own (no A packed twice).  Either split
// gives the same bits (every row's elements are the same chains).
static int NNC_FN(gemm_small)(const NNC_FN(gemm_args) *g, nnc_ssize kcb, int nt)
{
    const nnc_ssize np = NNC_CEILDIV(g->n, GEMM_NR), tiles = NNC_CEILDIV(g->m, NNC_GEMM_MR);
    const int by_rows = nt > 1 && tiles >= nt && NNC_CEILDIV(tiles, nt) * np < NNC_CEILDIV(np, nt) * tiles;
    if (!by_rows && nt > np) nt = (int)np;
    if (nt <= 1) return NNC_FN(gemm_small_part)(g, kcb, 0, 1);
    int failed = 0;
    #pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int t = 0; t < nt; ++t) {
        int st;
        if (by_rows) {
            const nnc_ssize i0 = tiles * t / nt * NNC_GEMM_MR, i1 = NNC_MIN(g->m, tiles * (t + 1) / nt * NNC_GEMM_MR);
            const NNC_FN(gemm_args) part = NNC_FN(gemm_rows_of)(g, i0, i1);
            st = i1 > i0 ? NNC_FN(gemm_small_part)(&part, kcb, 0, 1) : NNC_OK;
        } else {
            st = NNC_FN(gemm_small_part)(g, kcb, t, nt);
        }
        if (st) {
            #pragma omp atomic write
            failed = 1;
        }
    }
    return failed ? NNC_ENOMEM : NNC_OK;
}

static int NNC_FN(gemm_run)(const NNC_FN(gemm_args) *g, int nt);

// A plain product C = alpha op(A) op(B) with fewer columns than a
// micro-tile's width and rows that would fill its lanes better (a 1x1
// convolution's dW to a few output channels: m = input channels, n = output
// channels, k = pixels) as C^T = alpha op(B)^T op(A)^T, then transposed
// into C.  Bitwise the
// same elements: each is the same FMA chain over p within the same KC
// slices (fma(a, b, c) = fma(b, a, c)).
static int NNC_FN(gemm_transposed)(const NNC_FN(gemm_args) *g, int nt)
{
    const nnc_ssize m = g->m, n = g->n;
    NNC_T *ct = nnc_aligned_alloc(sizeof(NNC_T) * (size_t)m * (size_t)n);
    if (!ct) return NNC_ENOMEM;
    NNC_FN(gemm_args) t = {!g->tb, n, m, g->k, g->alpha, 0, g->B, g->ldb, !g->ta, g->A, g->lda, NULL, ct, m,
                           NULL, NNC_ACT_LINEAR};
    const int st = NNC_FN(gemm_run)(&t, nt);
    if (st == NNC_OK)
        for (nnc_ssize i = 0; i < m; ++i)
            for (nnc_ssize j = 0; j < n; ++j) g->C[i * g->ldc + j] = ct[j * m + i];
    nnc_aligned_free(ct);
    return st;
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
    // Fewer columns than a micro-tile's width, and rows that fill its lanes better: the transpose.
    if (!g->Bp && g->beta == 0 && !g->bias && g->act == NNC_ACT_LINEAR && n < GEMM_NR &&
        m * GEMM_NR > n * (NNC_CEILDIV(m, GEMM_NR) * GEMM_NR))
        return NNC_FN(gemm_transposed)(g, nt);
    const NNC_FN(gemm_blocks) blk = NNC_FN(gemm_blocking)();
    if (m <= blk.mc) return NNC_FN(gemm_small)(g, blk.kc, nt);
    NNC_T *bbuf = NULL;
    nnc_ssize ncb = NNC_MIN(blk.nc, NNC_CEILDIV(n, GEMM_NR) * GEMM_NR);
    if (!g->Bp) {
        bbuf = nnc_tls_scratch(NNC_SCRATCH_GEMM_B, sizeof(NNC_T) * (size_t)blk.kc * (size_t)ncb);
        if (!bbuf) return NNC_ENOMEM;
    }
    const size_t abytes = sizeof(NNC_T) * (size_t)blk.mc * (size_t)blk.kc;
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
        NNC_FN(gemm_blocked)(g, &blk, bbuf, abuf, nt);
    }
    return failed ? NNC_ENOMEM : NNC_OK;
}

// C = act(alpha op(A) op(B) + beta C + bias) on the library's threads (the op).
static int NNC_FN(gemm)(int ta, int tb, nnc_ssize m, nnc_ssize n, nnc_ssize k, NNC_T alpha, const NNC_T *A,
                        nnc_ssize lda, const NNC_T *B, nnc_ssize ldb, NNC_T beta, NNC_T *C, nnc_ssize ldc,
                        const NNC_T *bias, int act)
{
    NNC_FN(gemm_args) g = {ta, m, n, k, alpha, beta, A, lda, tb, B, ldb, NULL, C, ldc, bias, act};
    return NNC_FN(gemm_run)(&g, nnc_threads_for_ns(NNC_FN(gemm_ns)(m, n, k)));
}

// The same with B prepacked by gemm_pack_b (Bp, for op(B) of shape (k, n)).
static int NNC_FN(gemm_packed)(int ta, nnc_ssize m, nnc_ssize n, nnc_ssize k, NNC_T alpha, const NNC_T *A,
                               nnc_ssize lda, const NNC_T *Bp, NNC_T beta, NNC_T *C, nnc_ssize ldc,
                               const NNC_T *bias, int act)
{
    NNC_FN(gemm_args) g = {ta, m, n, k, alpha, beta, A, lda, 0, NULL, 0, Bp, C, ldc, bias, act};
    return NNC_FN(gemm_run)(&g, nnc_threads_for_ns(NNC_FN(gemm_ns)(m, n, k)));
}

