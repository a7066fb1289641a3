// kernels/pool_tmpl.h - 2-D max and average pooling on NHWC (template; see
// nnc_internal.h).  The problem and its checks: nnc/nnc_pool.h.
//
// One pass over memory, SIMD over channels: for every output pixel and every
// NNC_VLEN-channel slice, the window's cells inside the input are read in
// row-major order (padded cells are skipped, never read).
//   max: m starts at the window's first cell; a later cell v replaces it when
//        v > m, or when v is NaN and m is not.  Ties keep the first maximum
//        and the first NaN wins, so NaN propagates.  In training the winning
//        cell number i*kw + j is written to idx, as a value of NNC_T (exact:
//        windows have at most NNC_POOL_MAX_CELLS cells).
//   avg: the sum of the cells inside the input, in row-major order, divided
//        by their count.
// Forward: threads own output rows (n, oh).  Backward: threads own bands of
// input rows of one image; a band's dx rows are zeroed just before the first
// window reaches them, and every window touching the band adds its share in
// (oh, ow) order.  So each dx element is summed in the same order for any
// thread count or band split (bitwise-identical results).
// Both passes are the same for every ISA except the vector width: max is
// exact, avg differs only in the order lanes are added (none: one lane per
// channel), so every ISA gives bitwise the same result.

#define POOL_AVG 0
#define POOL_MAX 1
#define POOL_MAXIDX 2
#define POOL_LD(ptr) (full ? nnc_vload(ptr) : nnc_vloadn((ptr), nl))
#define POOL_ST(ptr, v) do { if (full) nnc_vstore((ptr), (v)); else nnc_vstoren((ptr), (v), nl); } while (0)

// Checks p (see nnc_pool.h); max_cells: also require kh*kw <= NNC_POOL_MAX_CELLS.
static int NNC_FN(pool_check)(const nnc_pool2d *p, int max_cells)
{
    nnc_ssize hp, wp, cells, t;
    if (p->n < 0 || p->c < 0 || p->h < 1 || p->w < 1 || p->kh < 1 || p->kw < 1 || p->sh < 1 ||
        p->sw < 1 || p->ph < 0 || p->pw < 0 || p->ph > p->kh / 2 || p->pw > p->kw / 2)
        return NNC_EINVAL;
    if (__builtin_add_overflow(p->h, 2 * p->ph, &hp) || __builtin_add_overflow(p->w, 2 * p->pw, &wp) ||
        !nnc_mul_ok(p->kh, p->kw, &cells))
        return NNC_EOVERFLOW;
    if (hp < p->kh || wp < p->kw || p->oh != (hp - p->kh) / p->sh + 1 || p->ow != (wp - p->kw) / p->sw + 1 ||
        (max_cells && cells > NNC_POOL_MAX_CELLS))
        return NNC_EINVAL;
    if (!nnc_mul_ok(p->n, p->h, &t) || !nnc_mul_ok(t, p->w, &t) || !nnc_mul_ok(t, p->c, &t) ||
        !nnc_mul_ok(p->n, p->oh, &t) || !nnc_mul_ok(t, p->ow, &t) || !nnc_mul_ok(t, p->c, &t))
        return NNC_EOVERFLOW;
    return NNC_OK;
}

// The window of output index o along one axis: it starts at input index
// *start; its cells [*lo, *hi) lie inside the input [0, in).
NNC_INLINE void NNC_FN(pool_span)(nnc_ssize o, nnc_ssize s, nnc_ssize pad, nnc_ssize k, nnc_ssize in,
                                  nnc_ssize *start, nnc_ssize *lo, nnc_ssize *hi)
{
    nnc_ssize a = o * s - pad;
    *start = a;
    *lo = a < 0 ? -a : 0;
    *hi = NNC_MIN(k, in - a);
}

// The first NaN cell (cell number; cell0 where none) of each lane of one
// channel slice of a window: the rare path of windows holding NaN.
NNC_INLINE nnc_v NNC_FN(pool_first_nan)(const NNC_T *xb, nnc_ssize rs, nnc_ssize cs, nnc_ssize ni, nnc_ssize nj,
                                        nnc_ssize cell0, nnc_ssize kw, int nl, const int full)
{
    nnc_v idn = nnc_vset1((NNC_T)cell0);
    for (nnc_ssize i = ni - 1; i >= 0; --i)
        for (nnc_ssize j = nj - 1; j >= 0; --j) {
            nnc_v v = POOL_LD(xb + i * rs + j * cs);
            idn = nnc_vsel_eq(v, v, idn, nnc_vset1((NNC_T)(cell0 + i * kw + j)));
        }
    return idn;
}

// One output pixel, U channel slices (U compile-time; nl lanes in a single
// partial slice when !full).  xb is the window's first cell inside the input,
// cell number cell0; ni x nj cells inside, rows rs and columns cs elements
// apart.  The slices are independent chains the CPU overlaps.
NNC_INLINE void NNC_FN(pool_fwd_vec)(NNC_T *y, NNC_T *idx, const NNC_T *xb, nnc_ssize rs, nnc_ssize cs,
                                     nnc_ssize ni, nnc_ssize nj, nnc_ssize cell0, nnc_ssize kw, int nl,
                                     const int U, const int full, const int mode)
{
    // max: m = nnc_vmax(v, m) from -inf keeps the first of equal values and
    // ignores a NaN v, id moves only to a strictly larger value, and nan is
    // NaN in the lanes that met one (then the first NaN wins).  avg: 0 + cells.
    nnc_v m[NNC_POOL_U], nan[NNC_POOL_U], id[NNC_POOL_U];
    for (int u = 0; u < U; ++u) {
        m[u] = mode == POOL_AVG ? nnc_vzero() : nnc_vset1(-(NNC_T)INFINITY);
        nan[u] = nnc_vzero();
        id[u] = nnc_vset1((NNC_T)cell0);
    }
    for (nnc_ssize i = 0; i < ni; ++i) {
        const NNC_T *xc = xb + i * rs;
        nnc_ssize cell = cell0 + i * kw;
        for (nnc_ssize j = 0; j < nj; ++j, xc += cs, ++cell) {
            nnc_v cf = nnc_vset1((NNC_T)cell);
            for (int u = 0; u < U; ++u) {
                nnc_v v = POOL_LD(xc + u * NNC_VLEN);
                if (mode == POOL_AVG) {
                    m[u] = nnc_vadd(m[u], v);
                } else {
                    if (mode == POOL_MAXIDX) id[u] = nnc_vsel_gt(v, m[u], cf, id[u]);
                    m[u] = nnc_vsel_gt(v, m[u], v, m[u]);   // nnc_vmax(v, m), sharing id's compare
                    nan[u] = nnc_vsel_eq(v, v, nan[u], v);
                }
            }
        }
    }
    if (mode == POOL_MAXIDX) {
        nnc_v any = nan[0];
        for (int u = 1; u < U; ++u) any = nnc_vadd(any, nan[u]);
        NNC_T t = nnc_vhsum(any);
        if (t != t)
            for (int u = 0; u < U; ++u)
                id[u] = nnc_vsel_eq(nan[u], nan[u], id[u],
                                NNC_FN(pool_first_nan)(xb + u * NNC_VLEN, rs, cs, ni, nj, cell0, kw, nl, full));
    }
    for (int u = 0; u < U; ++u) {
        nnc_v r = m[u];
        if (mode == POOL_AVG) {
            r = nnc_vdiv(r, nnc_vset1((NNC_T)(ni * nj)));
        } else {
            r = nnc_vsel_eq(nan[u], nan[u], r, nan[u]);
            if (mode == POOL_MAXIDX) POOL_ST(idx + u * NNC_VLEN, id[u]);
        }
        POOL_ST(y + u * NNC_VLEN, r);
    }
}

// Output row oh of image n: y row (ow, c) and, for POOL_MAXIDX, idx row.
NNC_INLINE void NNC_FN(pool_fwd_row)(NNC_T *yr, NNC_T *ir, const NNC_T *x, const nnc_pool2d *p, nnc_ssize n,
                                     nnc_ssize oh, const int mode)
{
    nnc_ssize C = p->c, rs = p->w * C, hs, i0, i1;
    NNC_FN(pool_span)(oh, p->sh, p->ph, p->kh, p->h, &hs, &i0, &i1);
    const NNC_T *xr = x + ((n * p->h + hs + i0) * p->w) * C;
    for (nnc_ssize ow = 0; ow < p->ow; ++ow) {
        nnc_ssize ws, j0, j1;
        NNC_FN(pool_span)(ow, p->sw, p->pw, p->kw, p->w, &ws, &j0, &j1);
        const NNC_T *xb = xr + (ws + j0) * C;
        nnc_ssize cell0 = i0 * p->kw + j0, ni = i1 - i0, nj = j1 - j0, o = ow * C, c = 0;
        NNC_T *yo = yr + o, *io = mode == POOL_MAXIDX ? ir + o : NULL;
        for (; c + NNC_POOL_U * NNC_VLEN <= C; c += NNC_POOL_U * NNC_VLEN)
            NNC_FN(pool_fwd_vec)(yo + c, io ? io + c : NULL, xb + c, rs, C, ni, nj, cell0, p->kw, NNC_VLEN,
                                 NNC_POOL_U, 1, mode);
        for (; c + NNC_VLEN <= C; c += NNC_VLEN)
            NNC_FN(pool_fwd_vec)(yo + c, io ? io + c : NULL, xb + c, rs, C, ni, nj, cell0, p->kw, NNC_VLEN, 1,
                                 1, mode);
        if (c < C)
            NNC_FN(pool_fwd_vec)(yo + c, io ? io + c : NULL, xb + c, rs, C, ni, nj, cell0, p->kw, (int)(C - c),
                                 1, 0, mode);
    }
}

NNC_INLINE void NNC_FN(pool_fwd)(NNC_T *y, NNC_T *idx, const NNC_T *x, const nnc_pool2d *p, const int mode)
{
    nnc_ssize rows = p->n * p->oh, len = p->ow * p->c;
    int nt = nnc_threads_for((double)rows * (double)len * (double)(p->kh * p->kw));
    // OpenMP outlines the loop before inlining: the switch gives one
    // specialised row loop per mode.
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize r = 0; r < rows; ++r) {
        nnc_ssize n = r / p->oh, oh = r % p->oh;
        switch (mode) {
        case POOL_AVG: NNC_FN(pool_fwd_row)(y + r * len, NULL, x, p, n, oh, POOL_AVG); break;
        case POOL_MAX: NNC_FN(pool_fwd_row)(y + r * len, NULL, x, p, n, oh, POOL_MAX); break;
        default: NNC_FN(pool_fwd_row)(y + r * len, idx + r * len, x, p, n, oh, POOL_MAXIDX); break;
        }
    }
}

// One output pixel's gradient g (one channel slice) added to its window's
// cells inside a band: db is the first such cell, cell number cell0, ni x nj
// cells.  max: only to the cell named by id.
NNC_INLINE void NNC_FN(pool_bwd_vec)(NNC_T *db, nnc_v g, nnc_v id, nnc_ssize rs, nnc_ssize cs, nnc_ssize ni,
                                     nnc_ssize nj, nnc_ssize cell0, nnc_ssize kw, int nl, const int full,
                                     const int is_max)
{
    for (nnc_ssize i = 0; i < ni; ++i)
        for (nnc_ssize j = 0; j < nj; ++j) {
            NNC_T *d = db + i * rs + j * cs;
            nnc_v add = is_max ? nnc_vsel_eq(id, nnc_vset1((NNC_T)(cell0 + i * kw + j)), g, nnc_vzero()) : g;
            POOL_ST(d, nnc_vadd(POOL_LD(d), add));
        }
}

// Input rows [r0, r1) of image n: dx overwritten with the sum of the shares
// of every window touching them, in (oh, ow) order.
NNC_INLINE void NNC_FN(pool_bwd_band)(NNC_T *dx, const NNC_T *dy, const NNC_T *idx, const nnc_pool2d *p,
                                      nnc_ssize n, nnc_ssize r0, nnc_ssize r1, const int is_max)
{
    nnc_ssize C = p->c, rowlen = p->w * C, olen = p->ow * C;
    NNC_T *dxn = dx + n * p->h * rowlen;
    // windows with oh*sh - ph + kh > r0 and oh*sh - ph < r1
    nnc_ssize t = r0 + p->ph - p->kh + 1;
    nnc_ssize oh0 = t <= 0 ? 0 : NNC_CEILDIV(t, p->sh);
    nnc_ssize oh1 = NNC_MIN(p->oh, (r1 - 1 + p->ph) / p->sh + 1);
    nnc_ssize z = r0;  // rows [r0, z) are zeroed
    for (nnc_ssize oh = oh0; oh < oh1; ++oh) {
        nnc_ssize hs, i0, i1;
        NNC_FN(pool_span)(oh, p->sh, p->ph, p->kh, p->h, &hs, &i0, &i1);
        nnc_ssize b0 = NNC_MAX(i0, r0 - hs), b1 = NNC_MIN(i1, r1 - hs);  // rows inside the band
        if (hs + b1 > z) {
            memset(dxn + z * rowlen, 0, (size_t)((hs + b1 - z) * rowlen) * sizeof(NNC_T));
            z = hs + b1;
        }
        const NNC_T *g = dy + (n * p->oh + oh) * olen;
        const NNC_T *ir = is_max ? idx + (n * p->oh + oh) * olen : NULL;
        for (nnc_ssize ow = 0; ow < p->ow; ++ow) {
            nnc_ssize ws, j0, j1;
            NNC_FN(pool_span)(ow, p->sw, p->pw, p->kw, p->w, &ws, &j0, &j1);
            NNC_T *db = dxn + (hs + b0) * rowlen + (ws + j0) * C;
            nnc_ssize cell0 = b0 * p->kw + j0, o = ow * C, c = 0;
            nnc_v cnt = nnc_vset1((NNC_T)((i1 - i0) * (j1 - j0)));
            for (; c + NNC_VLEN <= C; c += NNC_VLEN) {
                const int full = 1, nl = NNC_VLEN;
                nnc_v gv = is_max ? POOL_LD(g + o + c) : nnc_vdiv(POOL_LD(g + o + c), cnt);
                NNC_FN(pool_bwd_vec)(db + c, gv, is_max ? POOL_LD(ir + o + c) : nnc_vzero(), rowlen, C, b1 - b0,
                                     j1 - j0, cell0, p->kw, nl, full, is_max);
            }
            if (c < C) {
                const int full = 0, nl = (int)(C - c);
                nnc_v gv = is_max ? POOL_LD(g + o + c) : nnc_vdiv(POOL_LD(g + o + c), cnt);
                NNC_FN(pool_bwd_vec)(db + c, gv, is_max ? POOL_LD(ir + o + c) : nnc_vzero(), rowlen, C, b1 - b0,
                                     j1 - j0, cell0, p->kw, nl, full, is_max);
            }
        }
    }
    if (r1 > z) memset(dxn + z * rowlen, 0, (size_t)((r1 - z) * rowlen) * sizeof(NNC_T));
}

NNC_INLINE void NNC_FN(pool_bwd)(NNC_T *dx, const NNC_T *dy, const NNC_T *idx, const nnc_pool2d *p,
                                 const int is_max)
{
    double work = (double)p->n * (double)p->oh * (double)p->ow * (double)p->c * (double)(p->kh * p->kw) +
                  (double)p->n * (double)p->h * (double)p->w * (double)p->c;
    int nt = nnc_threads_for(work);
    // Whole images per thread when the batch feeds every thread, else bands
    // of rows (the split never changes a result, see the file head).
    nnc_ssize per = (nt == 1 || p->n >= 4 * nt) ? 1 : NNC_MIN(p->h, NNC_CEILDIV(4 * nt, p->n));
    nnc_ssize band = NNC_CEILDIV(p->h, per), nb = NNC_CEILDIV(p->h, band);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize it = 0; it < p->n * nb; ++it) {
        nnc_ssize r0 = (it % nb) * band;
        nnc_ssize r1 = NNC_MIN(p->h, r0 + band);
        if (is_max) NNC_FN(pool_bwd_band)(dx, dy, idx, p, it / nb, r0, r1, 1);   // specialised, as pool_fwd
        else NNC_FN(pool_bwd_band)(dx, dy, NULL, p, it / nb, r0, r1, 0);
    }
}

static int NNC_FN(maxpool2d_fwd)(NNC_T *y, NNC_T *idx, const NNC_T *x, const nnc_pool2d *p)
{
    int st = NNC_FN(pool_check)(p, idx != NULL);
    if (st != NNC_OK || p->n == 0 || p->c == 0) return st;
    NNC_FN(pool_fwd)(y, idx, x, p, idx ? POOL_MAXIDX : POOL_MAX);
    return st;
}

static int NNC_FN(maxpool2d_bwd)(NNC_T *dx, const NNC_T *dy, const NNC_T *idx, const nnc_pool2d *p)
{
    int st = NNC_FN(pool_check)(p, 1);
    if (st == NNC_OK && p->n > 0 && p->c > 0) NNC_FN(pool_bwd)(dx, dy, idx, p, 1);
    return st;
}

static int NNC_FN(avgpool2d_fwd)(NNC_T *y, const NNC_T *x, const nnc_pool2d *p)
{
    int st = NNC_FN(pool_check)(p, 0);
    if (st == NNC_OK && p->n > 0 && p->c > 0) NNC_FN(pool_fwd)(y, NULL, x, p, POOL_AVG);
    return st;
}

static int NNC_FN(avgpool2d_bwd)(NNC_T *dx, const NNC_T *dy, const nnc_pool2d *p)
{
    int st = NNC_FN(pool_check)(p, 0);
    if (st == NNC_OK && p->n > 0 && p->c > 0) NNC_FN(pool_bwd)(dx, dy, NULL, p, 0);
    return st;
}

#undef POOL_AVG
#undef POOL_MAX
#undef POOL_MAXIDX
#undef POOL_LD
#undef POOL_ST
