// kernels/pool/fwd.h - pooling forward (part of kernels/pool/pool.h): y
// (n, oh, ow, c) = the max (and its cell in idx) or the mean of each window.
// Threads own output rows (n, oh).

// What pool_fwd computes; a compile-time constant in every specialised loop.
#define POOL_AVG 0
#define POOL_MAX 1
#define POOL_MAXIDX 2   // max and its cell number

// The first NaN cell (cell number; cell0 where none) of each of the nl
// lanes of one channel slice of a window: the rare path of windows holding
// NaN.
NNC_INLINE nnc_v NNC_FN(pool_first_nan)(const NNC_T *xb, nnc_ssize rs, nnc_ssize cs, nnc_ssize ni, nnc_ssize nj,
                                        nnc_ssize cell0, nnc_ssize kw, int nl)
{
    nnc_v idn = nnc_vset1((NNC_T)cell0);
    for (nnc_ssize i = ni - 1; i >= 0; --i)
        for (nnc_ssize j = nj - 1; j >= 0; --j) {
            nnc_v v = nnc_vloadp(xb + i * rs + j * cs, nl);
            idn = nnc_vsel_eq(v, v, idn, nnc_vset1((NNC_T)(cell0 + i * kw + j)));
        }
    return idn;
}

// One output pixel, U channel slices of nl lanes (U compile-time; nl the
// constant NNC_VLEN, or the lanes of a single partial slice).  xb is the
// window's first cell inside the input, cell number cell0; ni x nj cells
// inside, rows rs and columns cs elements apart.  The slices are
// independent chains the CPU overlaps.
NNC_INLINE void NNC_FN(pool_fwd_vec)(NNC_T *y, NNC_T *idx, const NNC_T *xb, nnc_ssize rs, nnc_ssize cs,
                                     nnc_ssize ni, nnc_ssize nj, nnc_ssize cell0, nnc_ssize kw, int nl,
                                     const int U, const int mode)
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
                nnc_v v = nnc_vloadp(xc + u * NNC_VLEN, nl);
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
                                    NNC_FN(pool_first_nan)(xb + u * NNC_VLEN, rs, cs, ni, nj, cell0, kw, nl));
    }
    for (int u = 0; u < U; ++u) {
        nnc_v r = m[u];
        if (mode == POOL_AVG) {
            r = nnc_vdiv(r, nnc_vset1((NNC_T)(ni * nj)));
        } else {
            r = nnc_vsel_eq(nan[u], nan[u], r, nan[u]);
            if (mode == POOL_MAXIDX) nnc_vstorep(idx + u * NNC_VLEN, id[u], nl);
        }
        nnc_vstorep(y + u * NNC_VLEN, r, nl);
    }
}

// Output row oh of image n: y row (ow, c) and, for POOL_MAXIDX, idx row.
NNC_INLINE void NNC_FN(pool_fwd_row)(NNC_T *yr, NNC_T *ir, const NNC_T *x, const nnc_pool_desc *p, nnc_ssize n,
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
                                 NNC_POOL_U, mode);
        for (; c + NNC_VLEN <= C; c += NNC_VLEN)
            NNC_FN(pool_fwd_vec)(yo + c, io ? io + c : NULL, xb + c, rs, C, ni, nj, cell0, p->kw, NNC_VLEN, 1,
                                 mode);
        if (c < C)  // the C % VLEN = C - c lanes of a partial slice (the remainder: known < VLEN)
            NNC_FN(pool_fwd_vec)(yo + c, io ? io + c : NULL, xb + c, rs, C, ni, nj, cell0, p->kw,
                                 (int)(C % NNC_VLEN), 1, mode);
    }
}

// The forward of every output row, on threads; mode a POOL_* constant.
NNC_INLINE void NNC_FN(pool_fwd)(NNC_T *y, NNC_T *idx, const NNC_T *x, const nnc_pool_desc *p, const int mode)
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

// y = window maxima; idx (or NULL) = their cell numbers (see ops/pool.def).
static int NNC_FN(maxpool2d_fwd)(NNC_T *y, NNC_T *idx, const NNC_T *x, const nnc_pool_desc *p)
{
    int st = NNC_FN(pool_check)(p, idx != NULL);
    if (st != NNC_OK || p->n == 0 || p->c == 0) return st;
    NNC_FN(pool_fwd)(y, idx, x, p, idx ? POOL_MAXIDX : POOL_MAX);
    return st;
}

// y = window means over the cells inside the input.
static int NNC_FN(avgpool2d_fwd)(NNC_T *y, const NNC_T *x, const nnc_pool_desc *p)
{
    int st = NNC_FN(pool_check)(p, 0);
    if (st == NNC_OK && p->n > 0 && p->c > 0) NNC_FN(pool_fwd)(y, NULL, x, p, POOL_AVG);
    return st;
}

#undef POOL_AVG
#undef POOL_MAX
#undef POOL_MAXIDX
