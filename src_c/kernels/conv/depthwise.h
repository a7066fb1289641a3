// kernels/conv/depthwise.h - depthwise conv (one input and one output channel
// per group): the register-tile kernels of forward / dx, and dW.

// The depthwise tap loop: acc[r][j] += x[pixel r, tap, vector j] * w[tap,
// vector j], channels in the lanes of both.  full: every vector whole; else
// the last one has `last` lanes (masked loads, in a loop of their own so
// that acc stays in registers in the full-vector one).
NNC_INLINE void NNC_FN(conv_dw_taps)(const int rw, const int nv, const int full, nnc_v acc[][NNC_CONV_NV],
                                     const NNC_FN(conv_tap) *tp, nnc_ssize ntap, const NNC_T *x,
                                     nnc_ssize xsh, nnc_ssize ics, const NNC_T *w, nnc_ssize wst,
                                     nnc_ssize last)
{
    const nnc_vmask lanes = nnc_vmaskn(full ? 0 : last);   // made once, outside the tap loop
    for (nnc_ssize t = 0; t < ntap; ++t) {
        const NNC_T *NNC_RESTRICT xs = x + (tp[t].off + xsh);
        const NNC_T *NNC_RESTRICT ws = w + tp[t].widx * wst;
        NNC_UNROLL_TILE for (int j = 0; j < nv; ++j) {
            const int whole = full || j < nv - 1;
            const NNC_T *wp = ws + j * NNC_VLEN;
            const nnc_v wv = whole ? nnc_vload(wp) : nnc_vloadm(wp, lanes);
            NNC_UNROLL_TILE for (int r = 0; r < rw; ++r) {
                const NNC_T *xp = xs + r * ics + j * NNC_VLEN;
                acc[r][j] = nnc_vfma(whole ? nnc_vload(xp) : nnc_vloadm(xp, lanes), wv, acc[r][j]);
            }
        }
    }
}

// The depthwise register tile, rw pixels x nv vectors of channels (nch of
// them valid), one FMA chain per element over the taps in order; stored
// like the general tile.
NNC_INLINE void NNC_FN(conv_dw_tile)(const int rw, const int nv, CONV_UKR_PARAMS)
{
    nnc_v acc[NNC_CONV_RWX][NNC_CONV_NV];
    const nnc_ssize last = nch - (nv - 1) * NNC_VLEN;
    NNC_UNROLL_TILE for (int r = 0; r < rw; ++r)
        for (int j = 0; j < nv; ++j) acc[r][j] = nnc_vzero();
    if (last >= NNC_VLEN) NNC_FN(conv_dw_taps)(rw, nv, 1, acc, tp, ntap, x, xsh, ics, w, wst, last);
    else NNC_FN(conv_dw_taps)(rw, nv, 0, acc, tp, ntap, x, xsh, ics, w, wst, last);
    NNC_FN(conv_store_tile)(rw, nv, acc, y, res, ocs, nch, bias, act);
}

// conv_dw_filter_row for a layer of at most one vector of channels (nch =
// channels <= NNC_VLEN, all lanes valid when full): four chains over the
// output columns (j mod 4,
// the last j % 4 columns on chain 0), added (0 + 1) + (2 + 3) into dw, so
// the FMA latency does not bound a depthwise dW with few channels.
NNC_INLINE void NNC_FN(conv_dw_filter_row1)(const int full, const NNC_T *xp, nnc_ssize xs, const NNC_T *zp,
                                            nnc_ssize zs, nnc_ssize cols, NNC_T *o, nnc_ssize nch)
{
    const nnc_vmask lanes = nnc_vmaskn(full ? 0 : nch);
    nnc_v acc[4] = {nnc_vzero(), nnc_vzero(), nnc_vzero(), nnc_vzero()};
    nnc_ssize j = 0;
    for (; j + 4 <= cols; j += 4, xp += 4 * xs, zp += 4 * zs)
        NNC_UNROLL_TILE for (int u = 0; u < 4; ++u)
            acc[u] = nnc_vfma(full ? nnc_vload(xp + u * xs) : nnc_vloadm(xp + u * xs, lanes),
                              full ? nnc_vload(zp + u * zs) : nnc_vloadm(zp + u * zs, lanes), acc[u]);
    for (; j < cols; ++j, xp += xs, zp += zs)
        acc[0] = nnc_vfma(full ? nnc_vload(xp) : nnc_vloadm(xp, lanes),
                          full ? nnc_vload(zp) : nnc_vloadm(zp, lanes), acc[0]);
    const nnc_v sum = nnc_vadd(nnc_vadd(acc[0], acc[1]), nnc_vadd(acc[2], acc[3]));
    nnc_vstorep(o, nnc_vadd(nnc_vloadp(o, nch), sum), nch);
}

// One output row's share of a depthwise dW: for the channels [c, c + nch)
// (nch <= CONV_NB), NNC_CONV_NV independent chains (vectors of channels;
// a layer of at most one vector of channels runs conv_dw_filter_row1)
// over the output columns [jlo, jhi) of x[input column j*sw + bcol] * dz[j],
// then added into dw (the tap's dW row).  x_row, dz_row: the rows' pixel 0.
static inline void NNC_FN(conv_dw_filter_row)(const nnc_conv_desc *p, const NNC_T *x_row, const NNC_T *dz_row,
                                              nnc_ssize bcol, nnc_ssize jlo, nnc_ssize jhi, NNC_T *dw,
                                              nnc_ssize c, nnc_ssize nch)
{
    nnc_v acc[NNC_CONV_NV];
    for (int v = 0; v < NNC_CONV_NV; ++v) acc[v] = nnc_vzero();
    // A full block as straight-line code; otherwise whole vectors unmasked
    // and a partial last one through a lane mask made once (masked-off
    // lanes read as 0: the same chain either way).
    const int whole = (int)(nch / NNC_VLEN);
    const nnc_vmask tail = nnc_vmaskn(nch % NNC_VLEN);
    const nnc_ssize xs = p->stride_w * p->ldx, zs = p->ldy;
    const NNC_T *xp = x_row + (jlo * p->stride_w + bcol) * p->ldx + c, *zp = dz_row + jlo * zs + c;
    if (whole == NNC_CONV_NV) {
        for (nnc_ssize j = jlo; j < jhi; ++j, xp += xs, zp += zs)
            NNC_UNROLL_TILE for (int v = 0; v < NNC_CONV_NV; ++v)
                acc[v] = nnc_vfma(nnc_vload(xp + v * NNC_VLEN), nnc_vload(zp + v * NNC_VLEN), acc[v]);
    } else {
        for (nnc_ssize j = jlo; j < jhi; ++j, xp += xs, zp += zs)
            NNC_UNROLL_TILE for (int v = 0; v < NNC_CONV_NV; ++v) {
                if (v < whole)
                    acc[v] = nnc_vfma(nnc_vload(xp + v * NNC_VLEN), nnc_vload(zp + v * NNC_VLEN), acc[v]);
                else if (v == whole && nch % NNC_VLEN)
                    acc[v] = nnc_vfma(nnc_vloadm(xp + v * NNC_VLEN, tail), nnc_vloadm(zp + v * NNC_VLEN, tail),
                                      acc[v]);
            }
    }
    for (int v = 0; v < NNC_CONV_NV; ++v) {
        const nnc_ssize nc = nch - (nnc_ssize)v * NNC_VLEN;
        if (nc <= 0) break;
        NNC_T *o = dw + c + v * NNC_VLEN;
        nnc_vstorep(o, nnc_vadd(nnc_vloadp(o, nc), acc[v]), nc);
    }
}

// A share of a depthwise dW: every channel, the output rows [r0, r1) of
// the batch (image n's row oh is n * oh_count + oh), every (row, tap) in
// order, so each element adds one chain per output row in a fixed order.
static void NNC_FN(conv_dw_filter_block)(const nnc_conv_desc *p, const NNC_T *x, const NNC_T *dz, NNC_T *dW,
                                         nnc_ssize r0, nnc_ssize r1)
{
    for (nnc_ssize r = r0; r < r1; ++r) {
        const nnc_ssize n = r / p->oh, oh = r % p->oh;
        for (nnc_ssize kh = 0; kh < p->kh; ++kh) {
            const nnc_ssize ih = oh * p->stride_h - p->pad_top + kh * p->dil_h;
            if (ih < 0 || ih >= p->h) continue;
            const NNC_T *dz_row = dz + (n * p->oh + oh) * p->ow * p->ldy;
            const NNC_T *x_row = x + (n * p->h + ih) * p->w * p->ldx;
            for (nnc_ssize kw = 0; kw < p->kw; ++kw) {
                const nnc_ssize bcol = kw * p->dil_w - p->pad_left;
                nnc_ssize jlo, jhi;
                NNC_FN(conv_span)(bcol, p->stride_w, p->w, &jlo, &jhi);
                jhi = NNC_MIN(p->ow, jhi);
                NNC_T *dw = dW + (kh * p->kw + kw) * p->c;
                if (p->c <= NNC_VLEN) {   // one vector of channels: four chains along the row
                    const nnc_ssize xs = p->stride_w * p->ldx;
                    const NNC_T *xp = x_row + (jlo * p->stride_w + bcol) * p->ldx, *zp = dz_row + jlo * p->ldy;
                    if (p->c == NNC_VLEN) NNC_FN(conv_dw_filter_row1)(1, xp, xs, zp, p->ldy, jhi - jlo, dw, p->c);
                    else NNC_FN(conv_dw_filter_row1)(0, xp, xs, zp, p->ldy, jhi - jlo, dw, p->c);
                    continue;
                }
                for (nnc_ssize c = 0; c < p->c; c += CONV_NB)
                    NNC_FN(conv_dw_filter_row)(p, x_row, dz_row, bcol, jlo, jhi, dw, c, NNC_MIN(CONV_NB, p->c - c));
            }
        }
    }
}

// Depthwise dW[kh,kw,0,c] = sum_{n,oh} (sum_ow x * dz), overwritten.  The
// output rows of the batch are split into chunks fixed by the shape (at
// least 8 rows, at most CONV_DW_CHUNKS chunks and CONV_DW_PART_BYTES of
// partial sums): each chunk sums every channel (all vector chains of a
// block at once) into its own partial dW, and the partials are added in
// chunk order.  The threads take whole chunks, so the sums do not depend
// on the thread count, and every thread runs the full-width chains (a split
// by channels would leave a thread one vector, one latency-bound chain).
#define CONV_DW_CHUNKS 256
#define CONV_DW_PART_BYTES ((nnc_ssize)4 << 20)
static int NNC_FN(conv_dw_filter)(const nnc_conv_desc *p, const NNC_T *x, const NNC_T *dz, NNC_T *dW)
{
    const nnc_ssize size = p->kh * p->kw * p->c, rows = p->n * p->oh;
    const nnc_ssize cap = NNC_MAX(1, CONV_DW_PART_BYTES / (nnc_ssize)sizeof(NNC_T) / NNC_MAX(1, size));
    const nnc_ssize per = NNC_MAX(8, NNC_CEILDIV(rows, NNC_MIN(CONV_DW_CHUNKS, cap)));
    const nnc_ssize chunks = NNC_CEILDIV(rows, per);
    for (nnc_ssize i = 0; i < size; ++i) dW[i] = 0;
    if (chunks <= 1) {
        NNC_FN(conv_dw_filter_block)(p, x, dz, dW, 0, rows);
        return NNC_OK;
    }
    NNC_T *part = nnc_aligned_alloc(sizeof(NNC_T) * (size_t)(chunks * size));
    if (!part) return NNC_ENOMEM;
    const int nt = (int)NNC_MIN(NNC_FN(conv_threads)(p), chunks);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        #pragma omp for schedule(static)
        for (nnc_ssize q = 0; q < chunks; ++q) {
            NNC_T *pq = part + q * size;
            for (nnc_ssize i = 0; i < size; ++i) pq[i] = 0;
            NNC_FN(conv_dw_filter_block)(p, x, dz, pq, q * per, NNC_MIN(rows, (q + 1) * per));
        }
        #pragma omp for schedule(static)
        for (nnc_ssize i = 0; i < size; ++i)
            for (nnc_ssize q = 0; q < chunks; ++q) dW[i] += part[q * size + i];
    }
    nnc_aligned_free(part);
    return NNC_OK;
}
#undef CONV_DW_CHUNKS
#undef CONV_DW_PART_BYTES
