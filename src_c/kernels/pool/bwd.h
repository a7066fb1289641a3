// kernels/pool/bwd.h - pooling backward (part of kernels/pool/pool.h): dx
// (n, h, w, c) overwritten with the sum over windows of each output's
// gradient share.  Threads own bands of input rows of one image.

// One output pixel's gradient, one channel slice of nl lanes (nl the
// constant NNC_VLEN, or the lanes of a partial slice), added to its window's
// cells inside a band: db is the first such cell, cell number cell0, ni x nj
// cells, rows rs and columns cs elements apart.  max: dy at g goes to the
// cell named at id only; avg: dy / cnt to every cell (id unused).
NNC_INLINE void NNC_FN(pool_bwd_vec)(NNC_T *db, const NNC_T *g, const NNC_T *id, nnc_v cnt, nnc_ssize rs,
                                     nnc_ssize cs, nnc_ssize ni, nnc_ssize nj, nnc_ssize cell0, nnc_ssize kw,
                                     int nl, const int is_max)
{
    const nnc_v gv = is_max ? nnc_vloadp(g, nl) : nnc_vdiv(nnc_vloadp(g, nl), cnt);
    const nnc_v idv = is_max ? nnc_vloadp(id, nl) : nnc_vzero();
    for (nnc_ssize i = 0; i < ni; ++i)
        for (nnc_ssize j = 0; j < nj; ++j) {
            NNC_T *d = db + i * rs + j * cs;
            nnc_v add = is_max ? nnc_vsel_eq(idv, nnc_vset1((NNC_T)(cell0 + i * kw + j)), gv, nnc_vzero()) : gv;
            nnc_vstorep(d, nnc_vadd(nnc_vloadp(d, nl), add), nl);
        }
}

// Input rows [r0, r1) of image n: dx overwritten with the sum of the shares
// of every window touching them, in (oh, ow) order.
NNC_INLINE void NNC_FN(pool_bwd_band)(NNC_T *dx, const NNC_T *dy, const NNC_T *idx, const nnc_pool_desc *p,
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
            for (; c + NNC_VLEN <= C; c += NNC_VLEN)
                NNC_FN(pool_bwd_vec)(db + c, g + o + c, is_max ? ir + o + c : NULL, cnt, rowlen, C, b1 - b0,
                                     j1 - j0, cell0, p->kw, NNC_VLEN, is_max);
            if (c < C)  // the C % VLEN = C - c lanes of a partial slice (as pool_fwd_row)
                NNC_FN(pool_bwd_vec)(db + c, g + o + c, is_max ? ir + o + c : NULL, cnt, rowlen, C, b1 - b0,
                                     j1 - j0, cell0, p->kw, (int)(C % NNC_VLEN), is_max);
        }
    }
    if (r1 > z) memset(dxn + z * rowlen, 0, (size_t)((r1 - z) * rowlen) * sizeof(NNC_T));
}

// The backward of every band of every image, on threads.
NNC_INLINE void NNC_FN(pool_bwd)(NNC_T *dx, const NNC_T *dy, const NNC_T *idx, const nnc_pool_desc *p,
                                 const int is_max)
{
    double work = (double)p->n * (double)p->oh * (double)p->ow * (double)p->c * (double)(p->kh * p->kw) +
                  (double)p->n * (double)p->h * (double)p->w * (double)p->c;
    int nt = nnc_threads_for(work);
    // Whole images per thread when the batch feeds every thread, else bands
    // of rows (the split never changes a result, see kernels/pool/pool.h).
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

// dx = dy routed to each window's winning cell (idx from maxpool2d_fwd).
static int NNC_FN(maxpool2d_bwd)(NNC_T *dx, const NNC_T *dy, const NNC_T *idx, const nnc_pool_desc *p)
{
    int st = NNC_FN(pool_check)(p, 1);
    if (st == NNC_OK && p->n > 0 && p->c > 0) NNC_FN(pool_bwd)(dx, dy, idx, p, 1);
    return st;
}

// dx = dy shared equally among each window's cells inside the input.
static int NNC_FN(avgpool2d_bwd)(NNC_T *dx, const NNC_T *dy, const nnc_pool_desc *p)
{
    int st = NNC_FN(pool_check)(p, 0);
    if (st == NNC_OK && p->n > 0 && p->c > 0) NNC_FN(pool_bwd)(dx, dy, NULL, p, 0);
    return st;
}
