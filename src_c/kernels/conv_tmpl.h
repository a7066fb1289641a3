// kernels/conv_tmpl.h - 2-D convolution, NHWC activations, HWIO weights
// (template; see nnc_internal.h).  Geometry: nnc_conv_params (nnc_conv.h).
//
//   y[n,oh,ow,k] = act(b[k] + sum_{kh,kw,c} x[n, oh*sh-pt+kh*dh, ow*sw-pl+kw*dw, c] W[kh,kw,c,k])
//
// Paths (chosen from the geometry only, never from N or the thread count):
// - 1x1, stride 1, no padding, groups 1: the NHWC buffer is a (N*H*W, C)
//   matrix, so forward, dx and dW are single calls of the GEMM engine.
// - everything else: a direct convolution.  One "row job" computes one row
//   of output pixels; its micro-kernel keeps RW pixels x NV vectors of output
//   channels in registers and runs broadcast-FMAs over a list of taps
//   (kernel offsets that fall inside the input), each tap a run of `len`
//   reduction channels.  Weights are packed per call into output-channel
//   blocks [group][block][kh][kw][c][NB] (per-thread scratch; a pass over W).
//   Forward with dil_w == 1 and a dense input (ldx == C, groups 1) merges
//   the KW taps of a kernel row into one run of KW*C channels, so a short
//   reduction (C = 3 in a first layer) still streams FMAs.
//   dx is the same engine run backwards (transposed convolution as a
//   gather): each dx pixel collects dz * W^T over the taps that reach it;
//   with stride s the dx columns split into s residue classes, each of which
//   reads consecutive dz pixels.  Every thread owns the dx rows it writes.
//   Depthwise (C/G == K/G == 1) has its own micro-kernel: channels in the
//   vector lanes of both x and W.  Few output channels per group (< VLEN/2,
//   e.g. dx of a first layer with 3 input channels) use conv_dot instead:
//   reduction channels in the lanes, one horizontal sum per output.
//   Workspace, per thread: 2*KH*KW taps, plus the packed weights (about |W|
//   rounded up to whole vectors) on the calling thread; nothing grows with N.
// - dW (general case): a direct kernel with the GEMM micro-kernel's shape:
//   a register tile of CONV_RW input channels x CONV_NV vectors of output
//   channels per tap, FMA chains along each output row (x broadcast, dz
//   vectors), added into dW row after row.  Threads own dW tiles and read
//   every row, so no workspace at all.  Depthwise dW: the same with channels
//   in the lanes of both operands.
//   db: column sums of dz over the pixels in order.
//
// Determinism: each output element is one FMA chain over its taps in
// (kh, kw, c) order, whatever tile, edge path or thread computes it; dW and
// db add the output rows (images, then rows) in order.  So results are bitwise
// identical for any thread count and, for y and dx, any batch split.

#if NNC_ISA_ID == 0
#define CONV_RW 4
#define CONV_NV 4
#elif NNC_ISA_ID == 1
#define CONV_RW 6
#define CONV_NV 2
#else
#define CONV_RW 6
#define CONV_NV 4
#endif
#define CONV_NB (CONV_NV * NNC_VLEN)

// A tap: input element offset (for the job's pixel 0, channel 0), index of
// its first weight row, number of reduction channels it covers.
typedef struct {
    nnc_ssize off, widx, len;
} NNC_FN(conv_tap);

// Stores a finished tile: rw pixels (stride ocs) x nv vectors, nch valid
// channels: act(acc + bias), or y + acc when act is NNC_CONV_ACCUMULATE.
// Out of line, so the activation's constants do not take registers from the
// accumulators of the tap loop.
static __attribute__((noinline)) void NNC_FN(conv_store)(NNC_T *y, nnc_ssize ocs, const nnc_v *acc, int rw,
                                                         int nv, nnc_ssize nch, const NNC_T *bias, int act)
{
    for (int r = 0; r < rw; ++r)
        for (int j = 0; j < nv; ++j) {
            const nnc_ssize nc = nch - (nnc_ssize)j * NNC_VLEN;
            const int full = nc >= NNC_VLEN;
            NNC_T *yp = y + r * ocs + j * NNC_VLEN;
            nnc_v v = acc[r * nv + j];
            if (act == NNC_CONV_ACCUMULATE) {
                v = vadd(full ? vload(yp) : vloadn(yp, nc), v);
            } else {
                if (bias) v = vadd(v, full ? vload(bias + j * NNC_VLEN) : vloadn(bias + j * NNC_VLEN, nc));
                v = NNC_FN(vact)(v, act);
            }
            if (full) vstore(yp, v);
            else vstoren(yp, v, nc);
        }
}

// dw[r*ldw + j-th vector] += acc[r][j] (nch valid channels); out of line.
static __attribute__((noinline)) void NNC_FN(conv_acc_store)(NNC_T *dw, nnc_ssize ldw, const nnc_v *acc, int rw,
                                                             int nv, nnc_ssize nch)
{
    for (int r = 0; r < rw; ++r)
        for (int j = 0; j < nv; ++j) {
            const nnc_ssize nc = nch - (nnc_ssize)j * NNC_VLEN;
            NNC_T *o = dw + r * ldw + j * NNC_VLEN;
            if (nc >= NNC_VLEN) vstore(o, vadd(vload(o), acc[r * nv + j]));
            else vstoren(o, vadd(vloadn(o, nc), acc[r * nv + j]), nc);
        }
}

// Micro-kernels for RW_ pixels x NV_ vectors.
//   x + xsh + tap.off + r*ics + c      input of pixel r, tap channel c
//   general:   w + (tap.widx + c)*wst  NV_ vectors of packed weights
//   depthwise: w + tap.widx*wst        NV_ vectors (channels); x likewise
//   y + r*ocs                          output pixel r (nch channels)
#define CONV_UKR(RW_, NV_)                                                                          \
    static void NNC_FN(conv_ukr_##RW_##_##NV_)(const NNC_FN(conv_tap) *tp, nnc_ssize ntap,          \
                                               const NNC_T *x, nnc_ssize xsh, nnc_ssize ics,       \
                                               const NNC_T *w, nnc_ssize wst, NNC_T *y,            \
                                               nnc_ssize ocs, nnc_ssize nch, const NNC_T *bias,    \
                                               int act)                                            \
    {                                                                                               \
        nnc_v acc[RW_][NV_];                                                                        \
        for (int r = 0; r < RW_; ++r)                                                               \
            for (int j = 0; j < NV_; ++j) acc[r][j] = vzero();                                      \
        for (nnc_ssize t = 0; t < ntap; ++t) {                                                      \
            const NNC_T *NNC_RESTRICT xs = x + (tp[t].off + xsh);                                   \
            const NNC_T *NNC_RESTRICT ws = w + tp[t].widx * wst;                                    \
            const nnc_ssize len = tp[t].len;                                                        \
            for (nnc_ssize c = 0; c < len; ++c) {                                                   \
                nnc_v wv[NV_];                                                                      \
                for (int j = 0; j < NV_; ++j) wv[j] = vload(ws + c * wst + j * NNC_VLEN);           \
                for (int r = 0; r < RW_; ++r) {                                                     \
                    const nnc_v xb = vset1(xs[r * ics + c]);                                        \
                    for (int j = 0; j < NV_; ++j) acc[r][j] = vfma(xb, wv[j], acc[r][j]);           \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
        CONV_STORE_(RW_, NV_)                                                                       \
    }                                                                                               \
    static void NNC_FN(dwk_ukr_##RW_##_##NV_)(const NNC_T *x, nnc_ssize xps, const NNC_T *z, nnc_ssize zps, \
                                              nnc_ssize npx, NNC_T *dw, nnc_ssize ldw, nnc_ssize nch)  \
    {                                                                                               \
        nnc_v acc[RW_][NV_];                                                                        \
        const nnc_ssize last = nch - (NV_ - 1) * NNC_VLEN;                                          \
        for (int r = 0; r < RW_; ++r)                                                               \
            for (int j = 0; j < NV_; ++j) acc[r][j] = vzero();                                      \
        if (last >= NNC_VLEN)                                                                       \
            CONV_DWK_BODY_(RW_, NV_, vload(p_))                                                     \
        else                                                                                        \
            CONV_DWK_BODY_(RW_, NV_, (j < NV_ - 1 ? vload(p_) : vloadn(p_, last)))                  \
        NNC_FN(conv_acc_store)(dw, ldw, &acc[0][0], RW_, NV_, nch);                                 \
    }                                                                                               \
    static void NNC_FN(dw_ukr_##RW_##_##NV_)(const NNC_FN(conv_tap) *tp, nnc_ssize ntap,            \
                                             const NNC_T *x, nnc_ssize xsh, nnc_ssize ics,         \
                                             const NNC_T *w, nnc_ssize wst, NNC_T *y, nnc_ssize ocs, \
                                             nnc_ssize nch, const NNC_T *bias, int act)            \
    {                                                                                               \
        nnc_v acc[RW_][NV_];                                                                        \
        const nnc_ssize last = nch - (NV_ - 1) * NNC_VLEN;                                          \
        for (int r = 0; r < RW_; ++r)                                                               \
            for (int j = 0; j < NV_; ++j) acc[r][j] = vzero();                                      \
        if (last >= NNC_VLEN)                                                                       \
            CONV_DW_BODY_(RW_, NV_, vload(p_))                                                      \
        else                                                                                        \
            CONV_DW_BODY_(RW_, NV_, (j < NV_ - 1 ? vload(p_) : vloadn(p_, last)))                   \
        CONV_STORE_(RW_, NV_)                                                                       \
    }

#define CONV_STORE_(RW_, NV_) NNC_FN(conv_store)(y, ocs, &acc[0][0], RW_, NV_, nch, bias, act);

// The dW pixel loop: acc[r][j] += x[p, r] * dz[p, j-th vector], p < npx.
#define CONV_DWK_BODY_(RW_, NV_, LD_)                                                               \
    for (nnc_ssize q = 0; q < npx; ++q) {                                                           \
        const NNC_T *NNC_RESTRICT xq = x + q * xps;                                                 \
        nnc_v zv[NV_];                                                                              \
        for (int j = 0; j < NV_; ++j) {                                                             \
            const NNC_T *p_ = z + q * zps + j * NNC_VLEN;                                           \
            zv[j] = LD_;                                                                            \
        }                                                                                           \
        for (int r = 0; r < RW_; ++r) {                                                             \
            const nnc_v xb = vset1(xq[r]);                                                          \
            for (int j = 0; j < NV_; ++j) acc[r][j] = vfma(xb, zv[j], acc[r][j]);                   \
        }                                                                                           \
    }

// The depthwise tap loop; LD_ loads the vector at p_ (masked for a partial
// last vector), kept out of the full-vector loop so acc stays in registers.
#define CONV_DW_BODY_(RW_, NV_, LD_)                                                                \
    for (nnc_ssize t = 0; t < ntap; ++t) {                                                          \
        const NNC_T *NNC_RESTRICT xs = x + (tp[t].off + xsh);                                       \
        const NNC_T *NNC_RESTRICT ws = w + tp[t].widx * wst;                                        \
        for (int j = 0; j < NV_; ++j) {                                                             \
            const NNC_T *p_ = ws + j * NNC_VLEN;                                                    \
            const nnc_v wv = LD_;                                                                   \
            for (int r = 0; r < RW_; ++r) {                                                         \
                p_ = xs + r * ics + j * NNC_VLEN;                                                   \
                acc[r][j] = vfma(LD_, wv, acc[r][j]);                                               \
            }                                                                                       \
        }                                                                                           \
    }

#if CONV_NV == 4
#define CONV_UKR34_(RW_) CONV_UKR(RW_, 3) CONV_UKR(RW_, 4)
#define CONV_ROW34_(k, RW_) , NNC_FN(k##_ukr_##RW_##_3), NNC_FN(k##_ukr_##RW_##_4)
#else
#define CONV_UKR34_(RW_)
#define CONV_ROW34_(k, RW_)
#endif
#define CONV_UKRS_(RW_) CONV_UKR(RW_, 1) CONV_UKR(RW_, 2) CONV_UKR34_(RW_)
#define CONV_ROW_(k, RW_) {NNC_FN(k##_ukr_##RW_##_1), NNC_FN(k##_ukr_##RW_##_2) CONV_ROW34_(k, RW_)}
CONV_UKRS_(1)
CONV_UKRS_(2)
CONV_UKRS_(3)
CONV_UKRS_(4)
#if CONV_RW == 6
CONV_UKRS_(5)
CONV_UKRS_(6)
#define CONV_TABLE_(k)                                                                              \
    {CONV_ROW_(k, 1), CONV_ROW_(k, 2), CONV_ROW_(k, 3), CONV_ROW_(k, 4), CONV_ROW_(k, 5), CONV_ROW_(k, 6)}
#else
#define CONV_TABLE_(k) {CONV_ROW_(k, 1), CONV_ROW_(k, 2), CONV_ROW_(k, 3), CONV_ROW_(k, 4)}
#endif

typedef void (*NNC_FN(conv_ukr_fn))(const NNC_FN(conv_tap) *, nnc_ssize, const NNC_T *, nnc_ssize,
                                    nnc_ssize, const NNC_T *, nnc_ssize, NNC_T *, nnc_ssize, nnc_ssize,
                                    const NNC_T *, int);
// [rw - 1][nv - 1]
static const NNC_FN(conv_ukr_fn) NNC_FN(conv_ukrs)[CONV_RW][CONV_NV] = CONV_TABLE_(conv);
static const NNC_FN(conv_ukr_fn) NNC_FN(dw_ukrs)[CONV_RW][CONV_NV] = CONV_TABLE_(dw);
typedef void (*NNC_FN(dwk_ukr_fn))(const NNC_T *, nnc_ssize, const NNC_T *, nnc_ssize, nnc_ssize, NNC_T *,
                                   nnc_ssize, nnc_ssize);
static const NNC_FN(dwk_ukr_fn) NNC_FN(dwk_ukrs)[CONV_RW][CONV_NV] = CONV_TABLE_(dwk);
#undef CONV_UKR
#undef CONV_DW_BODY_
#undef CONV_DWK_BODY_
#undef CONV_STORE_
#undef CONV_UKR34_
#undef CONV_ROW34_
#undef CONV_UKRS_
#undef CONV_ROW_
#undef CONV_TABLE_

// The direct engine: "in" is read, "out" written.  Forward: in = x, out = y,
// in row = out row*sh - pt + kh*dh.  Backward (bwd): in = dz, out = dx,
// in row = (out row + pt - kh*dh) / sh where divisible; columns likewise.
typedef struct {
    const NNC_T *in;
    nnc_ssize ild, IH, IW;
    NNC_T *out;
    nnc_ssize old, OHo, OWo;
    nnc_ssize KH, KW, sh, sw, dh, dw, pt, pl;
    int bwd, depthwise, merge;
    int dot;                 // few output channels: reduction in the lanes (conv_dot)
    nnc_ssize Cr;            // reduction channels per tap (general)
    nnc_ssize ngrp, Cog;     // groups; output channels per group (depthwise: all, ngrp 1)
    nnc_ssize xg;            // input channel offset per group
    const NNC_T *wp;         // packed weights (depthwise: W itself)
    nnc_ssize wgs, wbs;      // packed weights per group / per block
    const NNC_T *bias;
    int act;
} NNC_FN(dconv);

// Per-thread scratch of a row job: 2*KH*KW taps and 2*(KH+KW) indices.
static int NNC_FN(dconv_scratch_bytes)(const NNC_FN(dconv) *d, size_t *bytes)
{
    nnc_ssize t, a, b;
    if (!nnc_mul_ok(d->KH, d->KW, &t) || !nnc_mul_ok(2 * t, (nnc_ssize)sizeof(NNC_FN(conv_tap)), &a) ||
        !nnc_mul_ok(2 * (d->KH + d->KW), (nnc_ssize)sizeof(nnc_ssize), &b))
        return 0;
    *bytes = (size_t)a + (size_t)b;
    return 1;
}

// Few output channels (Cog < NNC_VLEN/2, e.g. dx of a first layer with 3
// input channels): the reduction channels go in the vector lanes.  Per pixel
// and 4 outputs: lane-wise FMA chains over the taps and their channels, then
// a horizontal sum in a fixed lane order.  Weights [tap][o (4-padded)][r
// (wst, zero-padded to whole vectors)].
static void NNC_FN(conv_dot)(const NNC_FN(conv_tap) *tp, nnc_ssize ntap, const NNC_T *x, nnc_ssize xsh,
                             const NNC_T *w, nnc_ssize wst, NNC_T *y, nnc_ssize nout, const NNC_T *bias, int act)
{
    for (nnc_ssize o0 = 0; o0 < nout; o0 += 4) {
        nnc_v acc[4] = {vzero(), vzero(), vzero(), vzero()};
        for (nnc_ssize t = 0; t < ntap; ++t) {
            const NNC_T *NNC_RESTRICT xs = x + (tp[t].off + xsh);
            const NNC_T *NNC_RESTRICT ws = w + (tp[t].widx + o0) * wst;
            const nnc_ssize len = tp[t].len;
            nnc_ssize c = 0;
            for (; c + NNC_VLEN <= len; c += NNC_VLEN) {
                const nnc_v xv = vload(xs + c);
                for (int o = 0; o < 4; ++o) acc[o] = vfma(xv, vload(ws + o * wst + c), acc[o]);
            }
            if (c < len) {
                const nnc_v xv = vloadn(xs + c, len - c);
                for (int o = 0; o < 4; ++o) acc[o] = vfma(xv, vload(ws + o * wst + c), acc[o]);
            }
        }
        NNC_T r[NNC_VLEN];
        for (int o = 0; o < NNC_VLEN; ++o) r[o] = o < 4 ? vhsum(acc[o]) : 0;
        const nnc_ssize n = NNC_MIN(4, nout - o0);
        nnc_v v = vloadn(r, n);
        if (act == NNC_CONV_ACCUMULATE) {
            v = vadd(vloadn(y + o0, n), v);
        } else {
            if (bias) v = vadd(v, vloadn(bias + o0, n));
            v = NNC_FN(vact)(v, act);
        }
        vstoren(y + o0, v, n);
    }
}

// Calls the micro-kernels for pixels [j0, j1) of the job's column class with
// one tap list, over every (group, channel block).
static void NNC_FN(dconv_run_px)(const NNC_FN(dconv) *d, const NNC_FN(conv_tap) *taps, nnc_ssize ntap,
                                 nnc_ssize j0, nnc_ssize j1, nnc_ssize cs, NNC_T *orow, nnc_ssize ostep)
{
    if (d->dot) {
        for (nnc_ssize g = 0; g < d->ngrp; ++g)
            for (nnc_ssize j = j0; j < j1; ++j)
                NNC_FN(conv_dot)(taps, ntap, d->in, j * cs * d->ild + g * d->xg, d->wp + g * d->wgs, d->wbs,
                                 orow + (j * ostep) * d->old + g * d->Cog, d->Cog,
                                 d->bias ? d->bias + g * d->Cog : NULL, d->act);
        return;
    }
    const nnc_ssize nblk = NNC_CEILDIV(d->Cog, CONV_NB);
    for (nnc_ssize g = 0; g < d->ngrp; ++g) {
        for (nnc_ssize b = 0; b < nblk; ++b) {
            const nnc_ssize c0 = b * CONV_NB, nch = NNC_MIN(CONV_NB, d->Cog - c0);
            const int nv = (int)NNC_CEILDIV(nch, NNC_VLEN);
            const nnc_ssize yo = g * d->Cog + c0;
            const NNC_T *bias = d->bias ? d->bias + yo : NULL;
            const NNC_T *w;
            nnc_ssize wst, xo;
            if (d->depthwise) {
                w = d->wp + c0;
                wst = d->Cog;
                xo = c0;
            } else {
                w = d->wp + g * d->wgs + b * d->wbs;
                wst = (nnc_ssize)nv * NNC_VLEN;
                xo = g * d->xg;
            }
            for (nnc_ssize j = j0; j < j1; j += CONV_RW) {
                const int rw = (int)NNC_MIN(CONV_RW, j1 - j);
                NNC_FN(conv_ukr_fn) f = d->depthwise ? NNC_FN(dw_ukrs)[rw - 1][nv - 1]
                                                     : NNC_FN(conv_ukrs)[rw - 1][nv - 1];
                f(taps, ntap, d->in, j * cs * d->ild + xo, cs * d->ild, w, wst, orow + (j * ostep) * d->old + yo,
                  ostep * d->old, nch, bias, d->act);
            }
        }
    }
}

// One row job: output row `orow` of image n, column class rho (forward: 0;
// backward: dx columns rho, rho + sw, ...).
static void NNC_FN(dconv_row)(const NNC_FN(dconv) *d, nnc_ssize n, nnc_ssize orow, nnc_ssize rho, void *scratch)
{
    NNC_FN(conv_tap) *taps = scratch, *etaps = taps + d->KH * d->KW;
    nnc_ssize *khs = (nnc_ssize *)(etaps + d->KH * d->KW), *kws = khs + 2 * d->KH;
    const nnc_ssize wunit = d->depthwise ? 1 : d->dot ? NNC_CEILDIV(d->Cog, 4) * 4 : d->Cr;
    nnc_ssize nkh = 0, nkw = 0;
    for (nnc_ssize kh = 0; kh < d->KH; ++kh) {
        nnc_ssize ir;
        if (!d->bwd) {
            ir = orow * d->sh - d->pt + kh * d->dh;
        } else {
            const nnc_ssize num = orow + d->pt - kh * d->dh;
            if (num % d->sh) continue;
            ir = num / d->sh;
        }
        if (ir < 0 || ir >= d->IH) continue;
        khs[2 * nkh] = kh;
        khs[2 * nkh + 1] = (n * d->IH + ir) * d->IW;  // pixel index of the input row
        ++nkh;
    }
    const nnc_ssize ostep = d->bwd ? d->sw : 1, cs = d->bwd ? 1 : d->sw;
    const nnc_ssize nj = NNC_CEILDIV(d->OWo - rho, ostep);
    nnc_ssize J0 = 0, J1 = nj;
    for (nnc_ssize kw = 0; kw < d->KW; ++kw) {
        nnc_ssize bcol;  // input column of pixel j: j*cs + bcol
        if (!d->bwd) {
            bcol = kw * d->dw - d->pl;
        } else {
            const nnc_ssize num = rho + d->pl - kw * d->dw;
            if (num % d->sw) continue;
            bcol = num / d->sw;
        }
        const nnc_ssize jlo = bcol >= 0 ? 0 : NNC_CEILDIV(-bcol, cs);
        const nnc_ssize jhi = d->IW - bcol <= 0 ? 0 : (d->IW - bcol - 1) / cs + 1;
        J0 = NNC_MAX(J0, jlo);
        J1 = NNC_MIN(J1, jhi);
        kws[2 * nkw] = kw;
        kws[2 * nkw + 1] = bcol;
        ++nkw;
    }
    if (nkh == 0 || nkw == 0) {  // no tap reaches this row: act(bias) (or 0)
        J0 = 0;
        J1 = nj;
        nkh = 0;
    }
    J0 = NNC_MIN(J0, nj);
    J1 = NNC_MAX(J1, J0);
    NNC_T *orow_p = d->out + ((n * d->OHo + orow) * d->OWo + rho) * d->old;

    // Interior: every tap is valid for every pixel.
    nnc_ssize nt = 0;
    if (d->merge && nkw == d->KW) {
        for (nnc_ssize a = 0; a < nkh; ++a)
            taps[nt++] = (NNC_FN(conv_tap)){(khs[2 * a + 1] + kws[1]) * d->ild, khs[2 * a] * d->KW * d->Cr,
                                            d->KW * d->Cr};
    } else {
        for (nnc_ssize a = 0; a < nkh; ++a)
            for (nnc_ssize c = 0; c < nkw; ++c)
                taps[nt++] = (NNC_FN(conv_tap)){(khs[2 * a + 1] + kws[2 * c + 1]) * d->ild,
                                                (khs[2 * a] * d->KW + kws[2 * c]) * wunit, d->Cr};
    }
    if (J1 > J0) NNC_FN(dconv_run_px)(d, taps, nt, J0, J1, cs, orow_p, ostep);

    // Edge pixels: only the taps inside the input, in the same order.
    for (nnc_ssize j = 0; j < nj; ++j) {
        if (j == J0) j = J1;
        if (j >= nj) break;
        nnc_ssize ne = 0;
        for (nnc_ssize a = 0; a < nkh; ++a)
            for (nnc_ssize c = 0; c < nkw; ++c) {
                const nnc_ssize col = j * cs + kws[2 * c + 1];
                if (col < 0 || col >= d->IW) continue;
                etaps[ne++] = (NNC_FN(conv_tap)){(khs[2 * a + 1] + kws[2 * c + 1]) * d->ild,
                                                 (khs[2 * a] * d->KW + kws[2 * c]) * wunit, d->Cr};
            }
        NNC_FN(dconv_run_px)(d, etaps, ne, j, j + 1, cs, orow_p, ostep);
    }
}

// Runs every row job of d over N images on nt threads.
static int NNC_FN(dconv_run)(const NNC_FN(dconv) *d, nnc_ssize N, int nt)
{
    size_t bytes;
    if (!NNC_FN(dconv_scratch_bytes)(d, &bytes)) return NNC_EOVERFLOW;
    const nnc_ssize ncls = d->bwd ? NNC_MIN(d->sw, d->OWo) : 1;
    const nnc_ssize items = N * d->OHo * ncls;
    int failed = 0;
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        void *scratch = nnc_tls_scratch(2, bytes);
        if (!scratch) {
            #pragma omp atomic write
            failed = 1;
        }
        // static: each thread runs one contiguous block of rows, so the
        // input rows it reads and the output lines it writes are its own.
        // (dynamic, 1 interleaved the rows and cost up to 2x on small convs.)
        // Results do not depend on who runs a row.
        #pragma omp for schedule(static)
        for (nnc_ssize it = 0; it < items; ++it) {
            if (!scratch) continue;
            const nnc_ssize rho = it % ncls, row = it / ncls;
            NNC_FN(dconv_row)(d, row / d->OHo, row % d->OHo, rho, scratch);
        }
    }
    return failed ? NNC_ENOMEM : NNC_OK;
}

// Packs W (KH, KW, C/G, K) into output-channel blocks for the engine:
// dst[g][b][tap][r][wcs_b], r the reduction channel, zero-padded to whole
// vectors.  Forward: reduction c < C/G, outputs k < K/G.  Backward (dx):
// reduction k < K/G, outputs c < C/G (W transposed per tap).
static void NNC_FN(conv_pack)(NNC_T *NNC_RESTRICT dst, const NNC_T *NNC_RESTRICT W, nnc_ssize taps,
                              nnc_ssize Cg, nnc_ssize K, nnc_ssize G, int bwd)
{
    const nnc_ssize Kg = K / G, red = bwd ? Kg : Cg, outc = bwd ? Cg : Kg;
    const nnc_ssize nblk = NNC_CEILDIV(outc, CONV_NB), wbs = taps * red * CONV_NB;
    const nnc_ssize items = G * nblk;
    int nt = nnc_threads_for((double)taps * (double)Cg * (double)K);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize it = 0; it < items; ++it) {
        const nnc_ssize g = it / nblk, b = it % nblk;
        const nnc_ssize nch = NNC_MIN(CONV_NB, outc - b * CONV_NB);
        const nnc_ssize wcs = NNC_CEILDIV(nch, NNC_VLEN) * NNC_VLEN;
        NNC_T *dd = dst + it * wbs;
        for (nnc_ssize t = 0; t < taps; ++t)
            for (nnc_ssize r = 0; r < red; ++r) {
                NNC_T *o = dd + (t * red + r) * wcs;
                for (nnc_ssize l = 0; l < wcs; ++l) {
                    const nnc_ssize oc = b * CONV_NB + l;
                    if (l >= nch) o[l] = 0;
                    else if (!bwd) o[l] = W[(t * Cg + r) * K + g * Kg + oc];
                    else o[l] = W[(t * Cg + oc) * K + g * Kg + r];
                }
            }
    }
}

// Packs W for conv_dot: dst[g][tap][o][r], o padded to 4 outputs and r to
// rpad (a whole number of vectors), zeros in the padding.
static void NNC_FN(conv_pack_dot)(NNC_T *NNC_RESTRICT dst, const NNC_T *NNC_RESTRICT W, nnc_ssize taps,
                                  nnc_ssize Cg, nnc_ssize K, nnc_ssize G, int bwd, nnc_ssize rpad)
{
    const nnc_ssize Kg = K / G, red = bwd ? Kg : Cg, outc = bwd ? Cg : Kg, opad = NNC_CEILDIV(outc, 4) * 4;
    for (nnc_ssize g = 0; g < G; ++g)
        for (nnc_ssize t = 0; t < taps; ++t)
            for (nnc_ssize o = 0; o < opad; ++o) {
                NNC_T *d = dst + ((g * taps + t) * opad + o) * rpad;
                for (nnc_ssize r = 0; r < rpad; ++r) {
                    if (o >= outc || r >= red) d[r] = 0;
                    else if (!bwd) d[r] = W[(t * Cg + r) * K + g * Kg + o];
                    else d[r] = W[(t * Cg + o) * K + g * Kg + r];
                }
            }
}

// Fields check (Python validates; this keeps the C core memory-safe).
static int NNC_FN(conv_check)(const nnc_conv_params *p)
{
    if (p->N < 0 || p->H < 1 || p->W < 1 || p->C < 1 || p->K < 1 || p->KH < 1 || p->KW < 1 ||
        p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 || p->dil_w < 1 || p->pad_top < 0 ||
        p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0 || p->groups < 1 || p->C % p->groups ||
        p->K % p->groups || p->ldx < p->C || p->ldy < p->K)
        return NNC_EINVAL;
    const nnc_ssize eh = p->H + p->pad_top + p->pad_bottom - p->dil_h * (p->KH - 1) - 1;
    const nnc_ssize ew = p->W + p->pad_left + p->pad_right - p->dil_w * (p->KW - 1) - 1;
    if (eh < 0 || ew < 0 || p->OH != eh / p->stride_h + 1 || p->OW != ew / p->stride_w + 1) return NNC_EINVAL;
    nnc_ssize a, b;
    if (!nnc_mul_ok(p->N, p->H, &a) || !nnc_mul_ok(a, p->W, &a) || !nnc_mul_ok(a, p->ldx, &a) ||
        !nnc_mul_ok(p->N, p->OH, &b) || !nnc_mul_ok(b, p->OW, &b) || !nnc_mul_ok(b, p->ldy, &b) ||
        !nnc_mul_ok(p->KH * p->KW, p->C, &a) || !nnc_mul_ok(a, p->K, &a))
        return NNC_EOVERFLOW;
    return NNC_OK;
}

static int NNC_FN(conv_is_gemm)(const nnc_conv_params *p)
{
    return p->KH == 1 && p->KW == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
           p->pad_bottom == 0 && p->pad_left == 0 && p->pad_right == 0 && p->groups == 1;
}

static int NNC_FN(conv_is_depthwise)(const nnc_conv_params *p)
{
    return p->groups > 1 && p->C == p->groups && p->K == p->groups;
}

static double NNC_FN(conv_flops)(const nnc_conv_params *p)
{
    return 2.0 * (double)p->N * (double)p->OH * (double)p->OW * (double)p->K * (double)(p->KH * p->KW) *
           (double)(p->C / p->groups);
}

// Sets up the engine for forward (bwd 0: in = x, out = y) or dx (bwd 1:
// in = dz, out = dx), packing the weights into the calling thread's scratch
// slot 3.
static int NNC_FN(conv_engine)(NNC_FN(dconv) *d, const nnc_conv_params *p, const NNC_T *W, int bwd,
                               const NNC_T *in, NNC_T *out)
{
    const nnc_ssize G = p->groups, Cg = p->C / G, Kg = p->K / G, taps = p->KH * p->KW;
    *d = (NNC_FN(dconv)){0};
    d->KH = p->KH;
    d->KW = p->KW;
    d->sh = p->stride_h;
    d->sw = p->stride_w;
    d->dh = p->dil_h;
    d->dw = p->dil_w;
    d->pt = p->pad_top;
    d->pl = p->pad_left;
    d->bwd = bwd;
    d->in = in;
    d->out = out;
    d->ild = bwd ? p->ldy : p->ldx;
    d->old = bwd ? p->ldx : p->ldy;
    d->IH = bwd ? p->OH : p->H;
    d->IW = bwd ? p->OW : p->W;
    d->OHo = bwd ? p->H : p->OH;
    d->OWo = bwd ? p->W : p->OW;
    d->act = NNC_ACT_LINEAR;
    if (NNC_FN(conv_is_depthwise)(p)) {
        d->depthwise = 1;
        d->ngrp = 1;
        d->Cog = p->C;
        d->Cr = 1;
        d->wp = W;
        return NNC_OK;
    }
    const nnc_ssize red = bwd ? Kg : Cg, outc = bwd ? Cg : Kg;
    d->ngrp = G;
    d->Cog = outc;
    d->Cr = red;
    d->xg = red;
    d->dot = NNC_VLEN >= 4 && 2 * outc <= NNC_VLEN && red >= NNC_VLEN;
    nnc_ssize wbs, wgs, total;
    if (d->dot) {  // [g][tap][o (4-padded)][r (vector-padded)]
        wbs = NNC_CEILDIV(red, NNC_VLEN) * NNC_VLEN;
        if (!nnc_mul_ok(taps * NNC_CEILDIV(outc, 4) * 4, wbs, &wgs)) return NNC_EOVERFLOW;
    } else if (!nnc_mul_ok(taps * red, CONV_NB, &wbs) || !nnc_mul_ok(NNC_CEILDIV(outc, CONV_NB), wbs, &wgs)) {
        return NNC_EOVERFLOW;
    }
    if (!nnc_mul_ok(G, wgs, &total) || !nnc_mul_ok(total, (nnc_ssize)sizeof(NNC_T), &total)) return NNC_EOVERFLOW;
    NNC_T *wp = nnc_tls_scratch(3, (size_t)total);
    if (!wp) return NNC_ENOMEM;
    if (d->dot) NNC_FN(conv_pack_dot)(wp, W, taps, Cg, p->K, G, bwd, wbs);
    else NNC_FN(conv_pack)(wp, W, taps, Cg, p->K, G, bwd);
    d->wp = wp;
    d->wbs = wbs;
    d->wgs = wgs;
    return NNC_OK;
}

static int NNC_FN(conv_fwd)(const nnc_conv_params *p, const NNC_T *x, const NNC_T *W, const NNC_T *bias, int act,
                            NNC_T *y)
{
    int st = NNC_FN(conv_check)(p);
    if (st != NNC_OK) return st;
    if (act == NNC_ACT_SOFTMAX || (act == NNC_CONV_ACCUMULATE && bias)) return NNC_EINVAL;
    if (p->N == 0) return NNC_OK;
    const int nt = nnc_threads_for(NNC_FN(conv_flops)(p));
    if (NNC_FN(conv_is_gemm)(p)) {
        const int acc = act == NNC_CONV_ACCUMULATE;   // y += x W: beta = 1
        NNC_FN(gemm_args) g = {0, p->N * p->H * p->W, p->K, p->C, 1, acc, x, p->ldx, 0, W, p->K, NULL, y, p->ldy,
                               bias, acc ? NNC_ACT_LINEAR : act};
        return NNC_FN(gemm_run)(&g, nt);
    }
    NNC_FN(dconv) d;
    st = NNC_FN(conv_engine)(&d, p, W, 0, x, y);
    if (st != NNC_OK) return st;
    d.bias = bias;
    d.act = act;
    d.merge = !d.depthwise && !d.dot && p->dil_w == 1 && p->groups == 1 && p->ldx == p->C;
    return NNC_FN(dconv_run)(&d, p->N, nt);
}

static int NNC_FN(conv_bwd_data)(const nnc_conv_params *p, const NNC_T *dz, const NNC_T *W, NNC_T *dx,
                                 int accumulate)
{
    int st = NNC_FN(conv_check)(p);
    if (st != NNC_OK) return st;
    if (p->N == 0) return NNC_OK;
    const int nt = nnc_threads_for(NNC_FN(conv_flops)(p));
    if (NNC_FN(conv_is_gemm)(p)) {
        NNC_FN(gemm_args) g = {0, p->N * p->H * p->W, p->C, p->K, 1, accumulate ? 1 : 0, dz, p->ldy, 1, W, p->K,
                               NULL, dx, p->ldx, NULL, NNC_ACT_LINEAR};
        return NNC_FN(gemm_run)(&g, nt);
    }
    NNC_FN(dconv) d;
    st = NNC_FN(conv_engine)(&d, p, W, 1, dz, dx);
    if (st != NNC_OK) return st;
    if (accumulate) d.act = NNC_CONV_ACCUMULATE;
    return NNC_FN(dconv_run)(&d, p->N, nt);
}

// db[k] = sum over the P pixels (in order) of dz[pixel, k]; pixel stride ld.
static void NNC_FN(conv_bias_grad)(NNC_T *NNC_RESTRICT db, const NNC_T *NNC_RESTRICT dz, nnc_ssize P,
                                   nnc_ssize K, nnc_ssize ld)
{
    const nnc_ssize nb = NNC_CEILDIV(K, NNC_VLEN);
    int nt = nnc_threads_for((double)P * (double)K);
    nt = (int)NNC_MIN(nt, nb);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize b = 0; b < nb; ++b) {
        const nnc_ssize c0 = b * NNC_VLEN, nc = NNC_MIN(NNC_VLEN, K - c0);
        nnc_v acc = vzero();
        if (nc == NNC_VLEN)
            for (nnc_ssize q = 0; q < P; ++q) acc = vadd(acc, vload(dz + q * ld + c0));
        else
            for (nnc_ssize q = 0; q < P; ++q) acc = vadd(acc, vloadn(dz + q * ld + c0, nc));
        if (nc == NNC_VLEN) vstore(db + c0, acc);
        else vstoren(db + c0, acc, nc);
    }
}

// Depthwise dW[kh,kw,0,c] = sum_{n,oh} (sum_ow x * dz): each thread owns
// blocks of channels; per output row a register chain over ow, added in order.
static void NNC_FN(conv_dw_filter)(const nnc_conv_params *p, const NNC_T *x, const NNC_T *dz, NNC_T *dW)
{
    const nnc_ssize C = p->C, taps = p->KH * p->KW;
    for (nnc_ssize i = 0; i < taps * C; ++i) dW[i] = 0;
    int nt = nnc_threads_for(NNC_FN(conv_flops)(p));
    const nnc_ssize bw = NNC_CEILDIV(C, CONV_NB) >= nt ? CONV_NB : NNC_VLEN;
    const nnc_ssize nb = NNC_CEILDIV(C, bw);
    nt = (int)NNC_MIN(nt, nb);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize b = 0; b < nb; ++b) {
        const nnc_ssize c1 = NNC_MIN(C, (b + 1) * bw);
        for (nnc_ssize n = 0; n < p->N; ++n)
            for (nnc_ssize oh = 0; oh < p->OH; ++oh)
                for (nnc_ssize kh = 0; kh < p->KH; ++kh) {
                    const nnc_ssize ih = oh * p->stride_h - p->pad_top + kh * p->dil_h;
                    if (ih < 0 || ih >= p->H) continue;
                    const NNC_T *zr = dz + (n * p->OH + oh) * p->OW * p->ldy;
                    const NNC_T *xr = x + (n * p->H + ih) * p->W * p->ldx;
                    for (nnc_ssize kw = 0; kw < p->KW; ++kw) {
                        const nnc_ssize bcol = kw * p->dil_w - p->pad_left;
                        const nnc_ssize jlo = bcol >= 0 ? 0 : NNC_CEILDIV(-bcol, p->stride_w);
                        const nnc_ssize jhi =
                            NNC_MIN(p->OW, p->W - bcol <= 0 ? 0 : (p->W - bcol - 1) / p->stride_w + 1);
                        NNC_T *dw = dW + (kh * p->KW + kw) * C;
                        for (nnc_ssize c = b * bw; c < c1; c += CONV_NB) {
                            // CONV_NV independent chains (vectors of channels) along ow
                            const nnc_ssize nch = NNC_MIN(CONV_NB, c1 - c);
                            nnc_v acc[CONV_NV];
                            for (int v = 0; v < CONV_NV; ++v) acc[v] = vzero();
                            if (nch == CONV_NB) {
                                for (nnc_ssize j = jlo; j < jhi; ++j) {
                                    const NNC_T *xp = xr + (j * p->stride_w + bcol) * p->ldx + c;
                                    const NNC_T *zp = zr + j * p->ldy + c;
                                    for (int v = 0; v < CONV_NV; ++v)
                                        acc[v] = vfma(vload(xp + v * NNC_VLEN), vload(zp + v * NNC_VLEN), acc[v]);
                                }
                            } else {
                                for (nnc_ssize j = jlo; j < jhi; ++j) {
                                    const NNC_T *xp = xr + (j * p->stride_w + bcol) * p->ldx + c;
                                    const NNC_T *zp = zr + j * p->ldy + c;
                                    for (int v = 0; v < CONV_NV; ++v) {
                                        const nnc_ssize nc = nch - (nnc_ssize)v * NNC_VLEN;
                                        if (nc <= 0) break;
                                        acc[v] = vfma(vloadn(xp + v * NNC_VLEN, NNC_MIN(nc, NNC_VLEN)),
                                                      vloadn(zp + v * NNC_VLEN, NNC_MIN(nc, NNC_VLEN)), acc[v]);
                                    }
                                }
                            }
                            for (int v = 0; v < CONV_NV; ++v) {
                                const nnc_ssize nc = nch - (nnc_ssize)v * NNC_VLEN;
                                if (nc <= 0) break;
                                NNC_T *o = dw + c + v * NNC_VLEN;
                                if (nc >= NNC_VLEN) vstore(o, vadd(vload(o), acc[v]));
                                else vstoren(o, vadd(vloadn(o, nc), acc[v]), nc);
                            }
                        }
                    }
                }
    }
}

// dW[kh,kw,c,k] = sum_{n,oh} (sum_ow x[n, ih, iw, c] dz[n, oh, ow, k]) for
// a general (not depthwise) conv.  Items (group, tap, CONV_RW input
// channels, CONV_NB output channels) are split over the threads; each
// thread runs over every output row in order and, per row, adds a register
// chain over ow into its dW items.  No unrolled copy of x.
static void NNC_FN(conv_w_filter)(const nnc_conv_params *p, const NNC_T *x, const NNC_T *dz, NNC_T *dW, int nt)
{
    const nnc_ssize G = p->groups, Cg = p->C / G, Kg = p->K / G, taps = p->KH * p->KW;
    const nnc_ssize rcb = NNC_CEILDIV(Cg, CONV_RW), cob = NNC_CEILDIV(Kg, CONV_NB);
    const nnc_ssize items = G * taps * rcb * cob;
    for (nnc_ssize i = 0; i < taps * Cg * p->K; ++i) dW[i] = 0;
    nt = (int)NNC_MIN(nt, items);
    const nnc_ssize per = NNC_CEILDIV(items, nt);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize slot = 0; slot < nt; ++slot) {
        const nnc_ssize i0 = slot * per, i1 = NNC_MIN(items, i0 + per);
        for (nnc_ssize n = 0; n < p->N; ++n)
            for (nnc_ssize oh = 0; oh < p->OH; ++oh)
                for (nnc_ssize it = i0; it < i1; ++it) {
                    const nnc_ssize cb = it % cob, rb = (it / cob) % rcb, tap = (it / (cob * rcb)) % taps;
                    const nnc_ssize g = it / (cob * rcb * taps);
                    const nnc_ssize kh = tap / p->KW, kw = tap % p->KW;
                    const nnc_ssize ih = oh * p->stride_h - p->pad_top + kh * p->dil_h;
                    if (ih < 0 || ih >= p->H) continue;
                    const nnc_ssize bcol = kw * p->dil_w - p->pad_left;
                    const nnc_ssize jlo = bcol >= 0 ? 0 : NNC_CEILDIV(-bcol, p->stride_w);
                    const nnc_ssize jhi = NNC_MIN(p->OW, p->W - bcol <= 0 ? 0 : (p->W - bcol - 1) / p->stride_w + 1);
                    if (jhi <= jlo) continue;
                    const nnc_ssize ci0 = rb * CONV_RW, rc = NNC_MIN(CONV_RW, Cg - ci0);
                    const nnc_ssize co0 = cb * CONV_NB, nch = NNC_MIN(CONV_NB, Kg - co0);
                    const nnc_ssize nv = NNC_CEILDIV(nch, NNC_VLEN);
                    NNC_FN(dwk_ukrs)[rc - 1][nv - 1](
                        x + ((n * p->H + ih) * p->W + jlo * p->stride_w + bcol) * p->ldx + g * Cg + ci0,
                        p->stride_w * p->ldx, dz + ((n * p->OH + oh) * p->OW + jlo) * p->ldy + g * Kg + co0,
                        p->ldy, jhi - jlo, dW + (tap * Cg + ci0) * p->K + g * Kg + co0, p->K, nch);
                }
    }
}

static int NNC_FN(conv_bwd_filter)(const nnc_conv_params *p, const NNC_T *x, const NNC_T *dz, NNC_T *dW,
                                   NNC_T *db)
{
    int st = NNC_FN(conv_check)(p);
    if (st != NNC_OK) return st;
    const nnc_ssize M = p->KH * p->KW * (p->C / p->groups), P = p->N * p->OH * p->OW;
    if (p->N == 0) {
        for (nnc_ssize i = 0; i < M * p->K; ++i) dW[i] = 0;
        if (db)
            for (nnc_ssize i = 0; i < p->K; ++i) db[i] = 0;
        return NNC_OK;
    }
    if (db) NNC_FN(conv_bias_grad)(db, dz, P, p->K, p->ldy);
    const int nt = nnc_threads_for(NNC_FN(conv_flops)(p));
    if (NNC_FN(conv_is_gemm)(p)) {
        NNC_FN(gemm_args) g = {1, p->C, p->K, P, 1, 0, x, p->ldx, 0, dz, p->ldy, NULL, dW, p->K, NULL,
                               NNC_ACT_LINEAR};
        return NNC_FN(gemm_run)(&g, nt);
    }
    if (NNC_FN(conv_is_depthwise)(p)) {
        NNC_FN(conv_dw_filter)(p, x, dz, dW);
        return NNC_OK;
    }
    NNC_FN(conv_w_filter)(p, x, dz, dW, nt);
    return NNC_OK;
}

#undef CONV_RW
#undef CONV_NV
#undef CONV_NB
