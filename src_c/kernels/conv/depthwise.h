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

// One output row's share of a depthwise dW: for the channels [c, c + nch)
// (nch <= CONV_NB), NNC_CONV_NV independent chains (vectors of channels)
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

// A thread's share of a depthwise dW: channels [c_begin, c_end), every
// (image, output row, tap) in order, so each element adds one chain per
// output row in a fixed order.
static void NNC_FN(conv_dw_filter_block)(const nnc_conv_desc *p, const NNC_T *x, const NNC_T *dz, NNC_T *dW,
                                         nnc_ssize c_begin, nnc_ssize c_end)
{
    for (nnc_ssize n = 0; n < p->n; ++n)
        for (nnc_ssize oh = 0; oh < p->oh; ++oh)
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
                    for (nnc_ssize c = c_begin; c < c_end; c += CONV_NB)
                        NNC_FN(conv_dw_filter_row)(p, x_row, dz_row, bcol, jlo, jhi, dw, c,
                                                   NNC_MIN(CONV_NB, c_end - c));
                }
            }
}

// Depthwise dW[kh,kw,0,c] = sum_{n,oh} (sum_ow x * dz), overwritten: each
// thread owns blocks of channels.
static void NNC_FN(conv_dw_filter)(const nnc_conv_desc *p, const NNC_T *x, const NNC_T *dz, NNC_T *dW)
{
    const nnc_ssize channels = p->c, taps = p->kh * p->kw;
    for (nnc_ssize i = 0; i < taps * channels; ++i) dW[i] = 0;
    int nt = NNC_FN(conv_threads)(p);
    const nnc_ssize block = NNC_CEILDIV(channels, CONV_NB) >= nt ? CONV_NB : NNC_VLEN;
    const nnc_ssize nblock = NNC_CEILDIV(channels, block);
    nt = (int)NNC_MIN(nt, nblock);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize b = 0; b < nblock; ++b)
        NNC_FN(conv_dw_filter_block)(p, x, dz, dW, b * block, NNC_MIN(channels, (b + 1) * block));
}
