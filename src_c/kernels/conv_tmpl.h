// kernels/conv_tmpl.h - 2-D convolution, NHWC activations, HWIO weights
// (template; see nnc_internal.h).  Geometry: nnc_conv_params (nnc_conv.h).
//
//   y[n,oh,ow,k] = act(b[k] + sum_{kh,kw,c} x[n, oh*sh-pt+kh*dh, ow*sw-pl+kw*dw, c] W[kh,kw,c,k])
//
// Paths (chosen from the geometry only, never from N or the thread count):
// - 1x1, stride 1, no padding, groups 1: the NHWC buffer is a (N*H*W, C)
//   matrix, so forward, dx and dW are single calls of the GEMM engine.
// - everything else: a direct convolution.  A job computes a block of up
//   to 8 output rows of one image; its micro-kernel keeps RW pixels x NV
//   vectors of output channels in registers (up to 12 pixels when the
//   channels fill at most half the tile, e.g. K = 32 on AVX-512) and runs
//   broadcast-FMAs over a list of taps (kernel offsets that fall inside the
//   input), each tap a run of `len` reduction channels.  Interior pixels run
//   along each row; the pixels of an edge column (some taps outside the
//   input) run down the job's rows as a vertical tile, so they stream FMAs
//   too.  Weights are packed per call into output-channel blocks
//   [group][block][kh][kw][c][NB] (per-thread scratch; a pass over W).
//   Forward with dil_w == 1 and a dense input (ldx == C, groups 1) merges
//   the KW taps of a kernel row into one run of KW*C channels, so a short
//   reduction (C = 3 in a first layer) still streams FMAs.
//   dx is the same engine run backwards (transposed convolution as a
//   gather): each dx pixel collects dz * W^T over the taps that reach it;
//   with stride s the dx columns split into s residue classes, each of which
//   reads consecutive dz pixels.  Every thread owns the dx rows it writes.
//   Depthwise (C/G == K/G == 1) has its own micro-kernel: channels in the
//   vector lanes of both x and W.  Few output channels per group: at most a
//   quarter vector (e.g. dx of a first layer with 3 input channels) with a
//   reduction of whole vectors uses conv_dot (reduction channels in the
//   lanes, one horizontal sum per output); otherwise up to a half-width
//   vector (K = 8 on AVX-512 float32) uses the narrow kernels: up to 16
//   pixels x one half-width vector, at the full FMA rate on Zen 4 (and
//   one vector and a half, e.g. 24 channels, a full plus a half-width one).
//   Workspace, per thread: 2*KH*KW taps, plus the packed weights (about |W|
//   rounded up to whole vectors) on the calling thread; nothing grows with N.
// - dW (general case): a direct kernel with the GEMM micro-kernel's shape:
//   a register tile of up to NNC_CONV_RW(X) broadcast channels x NNC_CONV_NV vectors
//   per tap, one FMA chain over the pixels of a block of 8 output rows,
//   added into dW block after block.  The vectors hold dz's output channels,
//   or x's input channels when those fill the lanes better (K = 8 from 16
//   inputs; then into a transposed copy, scratch slot 3).  Threads own dW
//   tiles and read every row.  db in the same pass.  Depthwise dW: channels
//   in the lanes of both operands, a chain per output row.
//
// Determinism: each output element is one FMA chain over its taps in
// (kh, kw, c) order, whatever tile, edge path or thread computes it; dW and
// db add the blocks of output rows (images, then rows) in order.  So results
// are bitwise identical for any thread count and, for y and dx, any batch
// split.  Threads: from about 1 MFLOP (conv_threads).

// NNC_CONV_RW x NNC_CONV_NV vectors: the register tile; a narrow tile (nv <=
// NNC_CONV_NVH vectors, e.g. 32 channels on AVX-512) runs up to NNC_CONV_RWX pixels,
// so a small channel count still streams enough FMAs per load.
#define CONV_NB (NNC_CONV_NV * NNC_VLEN)
// Most rows of a tile with nv vectors.
#define CONV_RWMAX(nv) ((nv) <= NNC_CONV_NVH ? NNC_CONV_RWX : NNC_CONV_RW)

// A tap: input element offset (for the job's pixel 0, channel 0), index of
// its first weight row, number of reduction channels it covers.
typedef struct {
    nnc_ssize off, widx, len;
} NNC_FN(conv_tap);

// Stores a finished tile: rw pixels (stride ocs) x nv vectors, nch valid
// channels: act(acc + bias) (+ res, when res is not NULL: the same pixels of
// an array laid out like y, or y itself to accumulate).  Out of line, so the
// activation's constants do not take registers from the accumulators of the
// tap loop.
static __attribute__((noinline)) void NNC_FN(conv_store)(NNC_T *y, const NNC_T *res, nnc_ssize ocs,
                                                         const nnc_v *acc, int rw, int nv, nnc_ssize nch,
                                                         const NNC_T *bias, int act)
{
    for (int r = 0; r < rw; ++r)
        for (int j = 0; j < nv; ++j) {
            const nnc_ssize nc = nch - (nnc_ssize)j * NNC_VLEN;
            const int full = nc >= NNC_VLEN;
            NNC_T *yp = y + r * ocs + j * NNC_VLEN;
            nnc_v v = acc[r * nv + j];
            if (bias) v = nnc_vadd(v, full ? nnc_vload(bias + j * NNC_VLEN) : nnc_vloadn(bias + j * NNC_VLEN, nc));
            v = NNC_FN(vact)(v, act);
            if (res) {
                const NNC_T *rp = res + r * ocs + j * NNC_VLEN;
                v = nnc_vadd(v, full ? nnc_vload(rp) : nnc_vloadn(rp, nc));
            }
            if (full) nnc_vstore(yp, v);
            else nnc_vstoren(yp, v, nc);
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
                                               const NNC_T *res, nnc_ssize ocs, nnc_ssize nch,     \
                                               const NNC_T *bias, int act)                         \
    {                                                                                               \
        nnc_v acc[RW_][NV_];                                                                        \
        NNC_UNROLL_TILE for (int r = 0; r < RW_; ++r)                                               \
            for (int j = 0; j < NV_; ++j) acc[r][j] = nnc_vzero();                                      \
        for (nnc_ssize t = 0; t < ntap; ++t) {                                                      \
            const NNC_T *NNC_RESTRICT xs = x + (tp[t].off + xsh);                                   \
            const NNC_T *NNC_RESTRICT ws = w + tp[t].widx * wst;                                    \
            const nnc_ssize len = tp[t].len;                                                        \
            for (nnc_ssize c = 0; c < len; ++c) {                                                   \
                nnc_v wv[NV_];                                                                      \
                for (int j = 0; j < NV_; ++j) wv[j] = nnc_vload(ws + c * wst + j * NNC_VLEN);           \
                NNC_UNROLL_TILE for (int r = 0; r < RW_; ++r) {                                     \
                    const nnc_v xb = nnc_vset1(xs[r * ics + c]);                                        \
                    for (int j = 0; j < NV_; ++j) acc[r][j] = nnc_vfma(xb, wv[j], acc[r][j]);           \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
        CONV_STORE_(RW_, NV_)                                                                       \
    }                                                                                               \
    static void NNC_FN(dwk_ukr_##RW_##_##NV_)(const NNC_T *x, nnc_ssize xps, nnc_ssize xrs, const NNC_T *z, \
                                              nnc_ssize zps, nnc_ssize zrs, nnc_ssize nrow, nnc_ssize npx, \
                                              NNC_T *dw, nnc_ssize ldw, nnc_ssize nch, int zfull)   \
    {                                                                                               \
        const nnc_ssize last = nch - (NV_ - 1) * NNC_VLEN;                                          \
        if (last >= NNC_VLEN)                                                                       \
            CONV_DWK_BODY_(RW_, NV_, 1, 1)                                                          \
        else if (zfull)                                                                             \
            CONV_DWK_BODY_(RW_, NV_, 1, 0)                                                          \
        else                                                                                        \
            CONV_DWK_BODY_(RW_, NV_, 0, 0)                                                          \
    }                                                                                               \
    static void NNC_FN(dw_ukr_##RW_##_##NV_)(const NNC_FN(conv_tap) *tp, nnc_ssize ntap,            \
                                             const NNC_T *x, nnc_ssize xsh, nnc_ssize ics,         \
                                             const NNC_T *w, nnc_ssize wst, NNC_T *y,              \
                                             const NNC_T *res, nnc_ssize ocs, nnc_ssize nch,       \
                                             const NNC_T *bias, int act)                           \
    {                                                                                               \
        nnc_v acc[RW_][NV_];                                                                        \
        const nnc_ssize last = nch - (NV_ - 1) * NNC_VLEN;                                          \
        NNC_UNROLL_TILE for (int r = 0; r < RW_; ++r)                                               \
            for (int j = 0; j < NV_; ++j) acc[r][j] = nnc_vzero();                                      \
        if (last >= NNC_VLEN)                                                                       \
            CONV_DW_BODY_(RW_, NV_, nnc_vload(p_))                                                      \
        else                                                                                        \
            CONV_DW_BODY_(RW_, NV_, (j < NV_ - 1 ? nnc_vload(p_) : nnc_vloadn(p_, last)))                   \
        CONV_STORE_(RW_, NV_)                                                                       \
    }

// Stores the tile: in line for whole vectors and a linear or ReLU
// activation (conv_store's operations, so the same results; no call and no
// pass of acc through memory), else conv_store through a copy (acc never has
// its address taken, so it stays in registers).
#define CONV_STORE_(RW_, NV_)                                                                       \
    if ((act == NNC_ACT_LINEAR || act == NNC_ACT_RELU) && nch == NV_ * NNC_VLEN) {                  \
        NNC_UNROLL_TILE for (int r = 0; r < RW_; ++r)                                               \
            for (int j = 0; j < NV_; ++j) {                                                         \
                nnc_v v = acc[r][j];                                                                \
                if (bias) v = nnc_vadd(v, nnc_vload(bias + j * NNC_VLEN));                                  \
                if (act == NNC_ACT_RELU) v = nnc_vmax(nnc_vzero(), v);                                      \
                if (res) v = nnc_vadd(v, nnc_vload(res + r * ocs + j * NNC_VLEN));                          \
                nnc_vstore(y + r * ocs + j * NNC_VLEN, v);                                              \
            }                                                                                       \
    } else {                                                                                        \
        nnc_v out_[RW_ * NV_];                                                                      \
        NNC_UNROLL_TILE for (int r = 0; r < RW_; ++r)                                               \
            for (int j = 0; j < NV_; ++j) out_[r * NV_ + j] = acc[r][j];                            \
        NNC_FN(conv_store)(y, res, ocs, out_, RW_, NV_, nch, bias, act);                            \
    }

// The dW pixel loop: acc[r][j] += x[p, r] * dz[p, j-th vector] over nrow
// rows of npx pixels (row strides xrs, zrs; pixel strides xps, zps), then
// dw[r*ldw + j-th vector] += acc[r][j].  SF_ 0: the last vector has
// `last` < NNC_VLEN channels (masked store).  LF_ 1 loads it whole all the
// same (zfull: the caller checked that every such read stays inside the
// buffer; the extra lanes are never stored): GCC 12 keeps acc in memory in
// a loop with masked loads, which costs 2-3x.
#define CONV_DWK_BODY_(RW_, NV_, LF_, SF_)                                                          \
    {                                                                                               \
        nnc_v acc[RW_][NV_];                                                                        \
        NNC_UNROLL_TILE for (int r = 0; r < RW_; ++r)                                               \
            for (int j = 0; j < NV_; ++j) acc[r][j] = nnc_vzero();                                      \
        for (nnc_ssize rq = 0; rq < nrow * npx; ++rq) {                                             \
            const nnc_ssize ro = rq / npx, q = rq - ro * npx;                                       \
            const NNC_T *NNC_RESTRICT xq = x + ro * xrs + q * xps;                                  \
            const NNC_T *zq = z + ro * zrs + q * zps;                                               \
            nnc_v zv[NV_];                                                                          \
            for (int j = 0; j < NV_; ++j)                                                           \
                zv[j] = LF_ || j < NV_ - 1 ? nnc_vload(zq + j * NNC_VLEN)                               \
                                                  : nnc_vloadn(zq + j * NNC_VLEN, last);                \
            NNC_UNROLL_TILE for (int r = 0; r < RW_; ++r) {                                         \
                const nnc_v xb = nnc_vset1(xq[r]);                                                      \
                for (int j = 0; j < NV_; ++j) acc[r][j] = nnc_vfma(xb, zv[j], acc[r][j]);               \
            }                                                                                       \
        }                                                                                           \
        NNC_UNROLL_TILE for (int r = 0; r < RW_; ++r)                                               \
            for (int j = 0; j < NV_; ++j) {                                                         \
                NNC_T *o = dw + r * ldw + j * NNC_VLEN;                                             \
                if (SF_ || j < NV_ - 1) nnc_vstore(o, nnc_vadd(nnc_vload(o), acc[r][j]));                       \
                else nnc_vstoren(o, nnc_vadd(nnc_vloadn(o, last), acc[r][j]), last);                            \
            }                                                                                       \
    }

// The depthwise tap loop; LD_ loads the vector at p_ (masked for a partial
// last vector), kept out of the full-vector loop so acc stays in registers.
#define CONV_DW_BODY_(RW_, NV_, LD_)                                                                \
    for (nnc_ssize t = 0; t < ntap; ++t) {                                                          \
        const NNC_T *NNC_RESTRICT xs = x + (tp[t].off + xsh);                                       \
        const NNC_T *NNC_RESTRICT ws = w + tp[t].widx * wst;                                        \
        NNC_UNROLL_TILE for (int j = 0; j < NV_; ++j) {                                             \
            const NNC_T *p_ = ws + j * NNC_VLEN;                                                    \
            const nnc_v wv = LD_;                                                                   \
            NNC_UNROLL_TILE for (int r = 0; r < RW_; ++r) {                                         \
                p_ = xs + r * ics + j * NNC_VLEN;                                                   \
                acc[r][j] = nnc_vfma(LD_, wv, acc[r][j]);                                               \
            }                                                                                       \
        }                                                                                           \
    }

#if NNC_CONV_NV == 4
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
#if NNC_CONV_RW == 6
CONV_UKRS_(5)
CONV_UKRS_(6)
// narrow rows 7..12: nv <= NNC_CONV_NVH only (NULL beyond)
#if NNC_CONV_NVH == 2
#define CONV_UKRN_(RW_) CONV_UKR(RW_, 1) CONV_UKR(RW_, 2)
#define CONV_ROWN_(k, RW_) {NNC_FN(k##_ukr_##RW_##_1), NNC_FN(k##_ukr_##RW_##_2)}
#else
#define CONV_UKRN_(RW_) CONV_UKR(RW_, 1)
#define CONV_ROWN_(k, RW_) {NNC_FN(k##_ukr_##RW_##_1)}
#endif
CONV_UKRN_(7)
CONV_UKRN_(8)
CONV_UKRN_(9)
CONV_UKRN_(10)
CONV_UKRN_(11)
CONV_UKRN_(12)
#define CONV_TABLE_(k)                                                                              \
    {CONV_ROW_(k, 1),  CONV_ROW_(k, 2),  CONV_ROW_(k, 3),  CONV_ROW_(k, 4),                         \
     CONV_ROW_(k, 5),  CONV_ROW_(k, 6),  CONV_ROWN_(k, 7), CONV_ROWN_(k, 8),                        \
     CONV_ROWN_(k, 9), CONV_ROWN_(k, 10), CONV_ROWN_(k, 11), CONV_ROWN_(k, 12)}
#else
#define CONV_TABLE_(k) {CONV_ROW_(k, 1), CONV_ROW_(k, 2), CONV_ROW_(k, 3), CONV_ROW_(k, 4)}
#endif

typedef void (*NNC_FN(conv_ukr_fn))(const NNC_FN(conv_tap) *, nnc_ssize, const NNC_T *, nnc_ssize,
                                    nnc_ssize, const NNC_T *, nnc_ssize, NNC_T *, const NNC_T *, nnc_ssize,
                                    nnc_ssize, const NNC_T *, int);
// [rw - 1][nv - 1], rw <= CONV_RWMAX(nv)
static const NNC_FN(conv_ukr_fn) NNC_FN(conv_ukrs)[NNC_CONV_RWX][NNC_CONV_NV] = CONV_TABLE_(conv);
static const NNC_FN(conv_ukr_fn) NNC_FN(dw_ukrs)[NNC_CONV_RWX][NNC_CONV_NV] = CONV_TABLE_(dw);
typedef void (*NNC_FN(dwk_ukr_fn))(const NNC_T *, nnc_ssize, nnc_ssize, const NNC_T *, nnc_ssize, nnc_ssize,
                                   nnc_ssize, nnc_ssize, NNC_T *, nnc_ssize, nnc_ssize, int);
static const NNC_FN(dwk_ukr_fn) NNC_FN(dwk_ukrs)[NNC_CONV_RWX][NNC_CONV_NV] = CONV_TABLE_(dwk);

// Narrow micro-kernels (few output channels, Cog <= NNC_VHLEN, e.g. 8 on
// AVX-512 float32): RW_ pixels x one half-width vector, which runs at the
// FMA rate of a full one on Zen 4 and wastes no lanes on a K = 8 conv.
// Mixed ones (NF_ = 1: NNC_VLEN < Cog <= NNC_VLEN + NNC_VHLEN, e.g. 24):
// one full plus one half-width vector.  Weights packed in half-width units
// (wst = NF_*NNC_VLEN + NNC_VHLEN).  Same chains as the wide kernels.
#if NNC_VLEN > 1
#define CONV_HAS_NARROW 1
#define CONV_UKRH(RW_, NF_, NAME_)                                                                  \
    static void NNC_FN(NAME_##_##RW_)(const NNC_FN(conv_tap) *tp, nnc_ssize ntap, const NNC_T *x,    \
                                      nnc_ssize xsh, nnc_ssize ics, const NNC_T *w, nnc_ssize wst,   \
                                      NNC_T *y, const NNC_T *res, nnc_ssize ocs, nnc_ssize nch,       \
                                      const NNC_T *bias, int act)                                     \
    {                                                                                               \
        nnc_vh acc[RW_];                                                                            \
        nnc_v accf[RW_];                                                                            \
        NNC_UNROLL_TILE for (int r = 0; r < RW_; ++r) {                                             \
            acc[r] = nnc_vhzero();                                                                      \
            accf[r] = nnc_vzero();                                                                      \
        }                                                                                           \
        for (nnc_ssize t = 0; t < ntap; ++t) {                                                      \
            const NNC_T *NNC_RESTRICT xs = x + (tp[t].off + xsh);                                   \
            const NNC_T *NNC_RESTRICT ws = w + tp[t].widx * wst;                                    \
            const nnc_ssize len = tp[t].len;                                                        \
            for (nnc_ssize c = 0; c < len; ++c) {                                                   \
                const nnc_vh wv = nnc_vhload(ws + c * wst + NF_ * NNC_VLEN);                            \
                const nnc_v wf = NF_ ? nnc_vload(ws + c * wst) : nnc_vzero();                               \
                NNC_UNROLL_TILE for (int r = 0; r < RW_; ++r) {                                     \
                    if (NF_) accf[r] = nnc_vfma(nnc_vset1(xs[r * ics + c]), wf, accf[r]);                   \
                    acc[r] = nnc_vhfma(nnc_vhset1(xs[r * ics + c]), wv, acc[r]);                            \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
        nnc_v wide[RW_ * (NF_ + 1)];                                                                \
        NNC_UNROLL_TILE for (int r = 0; r < RW_; ++r) {                                             \
            if (NF_) wide[r * (NF_ + 1)] = accf[r];                                                 \
            wide[r * (NF_ + 1) + NF_] = nnc_vhwiden(acc[r]);                                            \
        }                                                                                           \
        NNC_FN(conv_store)(y, res, ocs, wide, RW_, NF_ + 1, nch, bias, act);                        \
    }
#define CONV_UKRHM_(RW_) CONV_UKRH(RW_, 0, conv_ukrh) CONV_UKRH(RW_, 1, conv_ukrm)
CONV_UKRHM_(1) CONV_UKRHM_(2) CONV_UKRHM_(3) CONV_UKRHM_(4) CONV_UKRHM_(5) CONV_UKRHM_(6)
CONV_UKRH(7, 0, conv_ukrh) CONV_UKRH(8, 0, conv_ukrh) CONV_UKRH(9, 0, conv_ukrh)
CONV_UKRH(10, 0, conv_ukrh) CONV_UKRH(11, 0, conv_ukrh) CONV_UKRH(12, 0, conv_ukrh)
#if NNC_CONV_RWH == 16
CONV_UKRH(13, 0, conv_ukrh) CONV_UKRH(14, 0, conv_ukrh) CONV_UKRH(15, 0, conv_ukrh) CONV_UKRH(16, 0, conv_ukrh)
CONV_UKRH(7, 1, conv_ukrm) CONV_UKRH(8, 1, conv_ukrm) CONV_UKRH(9, 1, conv_ukrm)
CONV_UKRH(10, 1, conv_ukrm) CONV_UKRH(11, 1, conv_ukrm) CONV_UKRH(12, 1, conv_ukrm)
#define CONV_UKRH_X_ , NNC_FN(conv_ukrh_13), NNC_FN(conv_ukrh_14), NNC_FN(conv_ukrh_15), NNC_FN(conv_ukrh_16)
#define CONV_UKRM_X_                                                                                \
    , NNC_FN(conv_ukrm_7), NNC_FN(conv_ukrm_8), NNC_FN(conv_ukrm_9), NNC_FN(conv_ukrm_10),          \
        NNC_FN(conv_ukrm_11), NNC_FN(conv_ukrm_12)
#else
#define CONV_UKRH_X_
#define CONV_UKRM_X_
#endif
// [rw - 1]
static const NNC_FN(conv_ukr_fn) NNC_FN(conv_ukrhs)[NNC_CONV_RWH] = {
    NNC_FN(conv_ukrh_1), NNC_FN(conv_ukrh_2), NNC_FN(conv_ukrh_3),  NNC_FN(conv_ukrh_4),
    NNC_FN(conv_ukrh_5), NNC_FN(conv_ukrh_6), NNC_FN(conv_ukrh_7),  NNC_FN(conv_ukrh_8),
    NNC_FN(conv_ukrh_9), NNC_FN(conv_ukrh_10), NNC_FN(conv_ukrh_11), NNC_FN(conv_ukrh_12) CONV_UKRH_X_};
static const NNC_FN(conv_ukr_fn) NNC_FN(conv_ukrms)[NNC_CONV_RWM] = {
    NNC_FN(conv_ukrm_1), NNC_FN(conv_ukrm_2), NNC_FN(conv_ukrm_3),
    NNC_FN(conv_ukrm_4), NNC_FN(conv_ukrm_5), NNC_FN(conv_ukrm_6) CONV_UKRM_X_};
#undef CONV_UKRH
#undef CONV_UKRHM_
#undef CONV_UKRH_X_
#undef CONV_UKRM_X_
#else
#define CONV_HAS_NARROW 0
#endif

#undef CONV_UKR
#undef CONV_DW_BODY_
#undef CONV_DWK_BODY_
#undef CONV_STORE_
#undef CONV_UKR34_
#undef CONV_ROW34_
#undef CONV_UKRS_
#undef CONV_ROW_
#undef CONV_TABLE_
#undef CONV_UKRN_
#undef CONV_ROWN_

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
    int narrow;              // Cog <= NNC_VHLEN: half-width vector kernels (2: a full one too)
    nnc_ssize Cr;            // reduction channels per tap (general)
    nnc_ssize ngrp, Cog;     // groups; output channels per group (depthwise: all, ngrp 1)
    nnc_ssize xg;            // input channel offset per group
    const NNC_T *wp;         // packed weights (depthwise: W itself)
    nnc_ssize wgs, wbs;      // packed weights per group / per block
    const NNC_T *bias;
    int act;
    const NNC_T *res;        // NULL, or added after act: laid out like out (may be out)
} NNC_FN(dconv);

// Per-thread scratch of a job: 2*KH*KW taps and 4*KH + 2*KW indices.
static int NNC_FN(dconv_scratch_bytes)(const NNC_FN(dconv) *d, size_t *bytes)
{
    nnc_ssize t, a, b;
    if (!nnc_mul_ok(d->KH, d->KW, &t) || !nnc_mul_ok(2 * t, (nnc_ssize)sizeof(NNC_FN(conv_tap)), &a) ||
        !nnc_mul_ok(4 * d->KH + 2 * d->KW, (nnc_ssize)sizeof(nnc_ssize), &b))
        return 0;
    *bytes = (size_t)a + (size_t)b;
    return 1;
}

// Very few output channels (Cog <= NNC_VLEN/4, e.g. dx of a first layer with 3
// input channels): the reduction channels go in the vector lanes.  Per pixel
// and 4 outputs: lane-wise FMA chains over the taps and their channels, then
// a horizontal sum in a fixed lane order.  Weights [tap][o (4-padded)][r
// (wst, zero-padded to whole vectors)].
static void NNC_FN(conv_dot)(const NNC_FN(conv_tap) *tp, nnc_ssize ntap, const NNC_T *x, nnc_ssize xsh,
                             const NNC_T *w, nnc_ssize wst, NNC_T *y, const NNC_T *res, nnc_ssize nout,
                             const NNC_T *bias, int act)
{
    for (nnc_ssize o0 = 0; o0 < nout; o0 += 4) {
        nnc_v acc[4] = {nnc_vzero(), nnc_vzero(), nnc_vzero(), nnc_vzero()};
        for (nnc_ssize t = 0; t < ntap; ++t) {
            const NNC_T *NNC_RESTRICT xs = x + (tp[t].off + xsh);
            const NNC_T *NNC_RESTRICT ws = w + (tp[t].widx + o0) * wst;
            const nnc_ssize len = tp[t].len;
            nnc_ssize c = 0;
            for (; c + NNC_VLEN <= len; c += NNC_VLEN) {
                const nnc_v xv = nnc_vload(xs + c);
                for (int o = 0; o < 4; ++o) acc[o] = nnc_vfma(xv, nnc_vload(ws + o * wst + c), acc[o]);
            }
            if (c < len) {
                const nnc_v xv = nnc_vloadn(xs + c, len - c);
                for (int o = 0; o < 4; ++o) acc[o] = nnc_vfma(xv, nnc_vload(ws + o * wst + c), acc[o]);
            }
        }
        NNC_T r[NNC_VLEN];
        for (int o = 0; o < NNC_VLEN; ++o) r[o] = o < 4 ? nnc_vhsum(acc[o]) : 0;
        const nnc_ssize n = NNC_MIN(4, nout - o0);
        nnc_v v = nnc_vloadn(r, n);
        if (bias) v = nnc_vadd(v, nnc_vloadn(bias + o0, n));
        v = NNC_FN(vact)(v, act);
        if (res) v = nnc_vadd(v, nnc_vloadn(res + o0, n));
        nnc_vstoren(y + o0, v, n);
    }
}

// Width of tile t when npx pixels are cut into tiles of at most rwmax: as
// few tiles as possible, their widths differing by at most one (109 pixels
// at 6: 14 x 6 + 5 x 5, not 18 x 6 + 1, whose 1-pixel tile loads as many
// weights per FMA as a whole one and runs at a quarter of the speed).
static inline nnc_ssize NNC_FN(conv_tile_width)(nnc_ssize npx, nnc_ssize rwmax, nnc_ssize t)
{
    const nnc_ssize ntile = NNC_CEILDIV(npx, rwmax);
    return npx / ntile + (t < npx % ntile);
}

// Calls the micro-kernels for npx output pixels with one tap list, over
// every (group, channel block): pixel i reads the input at element offset
// xoff + i*ics (plus the tap offsets) and writes out + i*ocs.  The pixels
// are a run along a row, or (edges) one column down several rows.
static void NNC_FN(dconv_run_px)(const NNC_FN(dconv) *d, const NNC_FN(conv_tap) *taps, nnc_ssize ntap,
                                 nnc_ssize npx, nnc_ssize xoff, nnc_ssize ics, NNC_T *out, nnc_ssize ocs)
{
    const NNC_T *res = d->res ? d->res + (out - d->out) : NULL;   // the same pixels of res
    if (d->dot) {
        for (nnc_ssize g = 0; g < d->ngrp; ++g)
            for (nnc_ssize i = 0; i < npx; ++i) {
                const nnc_ssize yo = i * ocs + g * d->Cog;
                NNC_FN(conv_dot)(taps, ntap, d->in, xoff + i * ics + g * d->xg, d->wp + g * d->wgs, d->wbs,
                                 out + yo, res ? res + yo : NULL, d->Cog, d->bias ? d->bias + g * d->Cog : NULL,
                                 d->act);
            }
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
                wst = d->narrow ? (d->narrow - 1) * NNC_VLEN + NNC_VHLEN : (nnc_ssize)nv * NNC_VLEN;
                xo = g * d->xg;
            }
#if CONV_HAS_NARROW
            if (d->narrow) {
                const nnc_ssize rwn = d->narrow == 1 ? NNC_CONV_RWH : NNC_CONV_RWM;
                for (nnc_ssize t = 0, i = 0, rw; i < npx; ++t, i += rw) {
                    rw = NNC_FN(conv_tile_width)(npx, rwn, t);
                    // each table indexed on its own (UBSan's object-size check
                    // misjudges an index into `cond ? table1 : table2`)
                    NNC_FN(conv_ukr_fn) f = d->narrow == 1 ? NNC_FN(conv_ukrhs)[rw - 1] : NNC_FN(conv_ukrms)[rw - 1];
                    f(taps, ntap, d->in, xoff + i * ics + xo, ics, w, wst, out + i * ocs + yo,
                      res ? res + i * ocs + yo : NULL, ocs, nch, bias, d->act);
                }
                continue;
            }
#endif
            const nnc_ssize rwmax = CONV_RWMAX(nv);
            for (nnc_ssize t = 0, i = 0, rw; i < npx; ++t, i += rw) {
                rw = NNC_FN(conv_tile_width)(npx, rwmax, t);
                NNC_FN(conv_ukr_fn) f = d->depthwise ? NNC_FN(dw_ukrs)[rw - 1][nv - 1]
                                                     : NNC_FN(conv_ukrs)[rw - 1][nv - 1];
                f(taps, ntap, d->in, xoff + i * ics + xo, ics, w, wst, out + i * ocs + yo,
                  res ? res + i * ocs + yo : NULL, ocs, nch, bias, d->act);
            }
        }
    }
}

// The kernel rows that reach output row orow of image n: khs[2a] = kh,
// khs[2a + 1] = pixel index of its input row.  Returns their number.
static nnc_ssize NNC_FN(dconv_khs)(const NNC_FN(dconv) *d, nnc_ssize n, nnc_ssize orow, nnc_ssize *khs)
{
    nnc_ssize nkh = 0;
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
        khs[2 * nkh + 1] = (n * d->IH + ir) * d->IW;
        ++nkh;
    }
    return nkh;
}

// One job: output rows [r0, r1) of image n, column class rho (forward: 0;
// backward: dx columns rho, rho + sw, ...).  The interior pixels (every
// kernel column inside the input) run along each row; an edge column runs
// down the rows whose kernel rows are the same and step uniformly through
// the input (a vertical tile), so edges stream FMAs like the interior.
static void NNC_FN(dconv_rows)(const NNC_FN(dconv) *d, nnc_ssize n, nnc_ssize r0, nnc_ssize r1, nnc_ssize rho,
                               void *scratch)
{
    NNC_FN(conv_tap) *taps = scratch, *etaps = taps + d->KH * d->KW;
    nnc_ssize *khs = (nnc_ssize *)(etaps + d->KH * d->KW), *kh2 = khs + 2 * d->KH, *kws = kh2 + 2 * d->KH;
    const nnc_ssize wunit = d->depthwise ? 1 : d->dot ? NNC_CEILDIV(d->Cog, 4) * 4 : d->Cr;
    const nnc_ssize ostep = d->bwd ? d->sw : 1, cs = d->bwd ? 1 : d->sw;
    const nnc_ssize nj = NNC_CEILDIV(d->OWo - rho, ostep);
    nnc_ssize J0 = 0, J1 = nj, nkw = 0;
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
    J0 = NNC_MIN(J0, nj);
    J1 = NNC_MAX(J1, J0);
    const nnc_ssize orl = d->OWo * d->old;  // output row length
    NNC_T *out0 = d->out + ((n * d->OHo) * d->OWo + rho) * d->old;
    const nnc_ssize xs = cs * d->ild, ys = ostep * d->old;

    for (nnc_ssize orow = r0; orow < r1; ++orow) {
        nnc_ssize nkh = NNC_FN(dconv_khs)(d, n, orow, khs), nt = 0;
        NNC_T *op = out0 + orow * orl;
        if (nkh == 0 || nkw == 0) {  // no tap reaches this row: act(bias) (or 0)
            NNC_FN(dconv_run_px)(d, taps, 0, nj, 0, xs, op, ys);
            continue;
        }
        if (J1 <= J0) continue;
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
        NNC_FN(dconv_run_px)(d, taps, nt, J1 - J0, J0 * xs, xs, op + J0 * ys, ys);
    }
    if (nkw == 0) return;

    // Edge columns: only the taps inside the input, in the same order.
    for (nnc_ssize j = 0; j < nj; ++j) {
        if (j == J0) j = J1;
        if (j >= nj) break;
        for (nnc_ssize r = r0; r < r1;) {
            const nnc_ssize nkh = NNC_FN(dconv_khs)(d, n, r, khs);
            if (nkh == 0) {
                ++r;
                continue;
            }
            // rows r .. r+g-1: the same kernel rows, input rows D pixels apart
            nnc_ssize g = 1, D = 0;
            for (; r + g < r1; ++g) {
                if (NNC_FN(dconv_khs)(d, n, r + g, kh2) != nkh) break;
                if (g == 1) D = kh2[1] - khs[1];
                nnc_ssize a = 0;
                while (a < nkh && kh2[2 * a] == khs[2 * a] && kh2[2 * a + 1] - khs[2 * a + 1] == g * D) ++a;
                if (a < nkh) break;
            }
            nnc_ssize ne = 0;
            for (nnc_ssize a = 0; a < nkh; ++a)
                for (nnc_ssize c = 0; c < nkw; ++c) {
                    const nnc_ssize col = j * cs + kws[2 * c + 1];
                    if (col < 0 || col >= d->IW) continue;
                    etaps[ne++] = (NNC_FN(conv_tap)){(khs[2 * a + 1] + kws[2 * c + 1]) * d->ild,
                                                     (khs[2 * a] * d->KW + kws[2 * c]) * wunit, d->Cr};
                }
            NNC_FN(dconv_run_px)(d, etaps, ne, g, j * xs, D * d->ild, out0 + r * orl + j * ys, orl);
            r += g;
        }
    }
}

// Runs every job of d over N images on nt threads.  A job is a block of up
// to 8 output rows of one image (fewer when that leaves a thread idle); the
// results do not depend on the blocking.
static int NNC_FN(dconv_run)(const NNC_FN(dconv) *d, nnc_ssize N, int nt)
{
    size_t bytes;
    if (!NNC_FN(dconv_scratch_bytes)(d, &bytes)) return NNC_EOVERFLOW;
    const nnc_ssize ncls = d->bwd ? NNC_MIN(d->sw, d->OWo) : 1;
    const nnc_ssize rb = NNC_MAX(1, NNC_MIN(8, NNC_CEILDIV(N * d->OHo * ncls, nt) / (N * ncls)));
    const nnc_ssize nrb = NNC_CEILDIV(d->OHo, rb), items = N * nrb * ncls;
    int failed = 0;
    nnc_region_clock clk;
    nnc_region_begin(&clk, nt);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        nnc_region_started(&clk);
        void *scratch = nnc_tls_scratch(NNC_SCRATCH_WORK, bytes);
        if (!scratch) {
            #pragma omp atomic write
            failed = 1;
        }
        // static: each thread runs one contiguous block of jobs, so the
        // input rows it reads and the output lines it writes are its own.
        // (dynamic, 1 interleaved the rows and cost up to 2x on small convs.)
        #pragma omp for schedule(static) nowait
        for (nnc_ssize it = 0; it < items; ++it) {
            if (!scratch) continue;
            const nnc_ssize rho = it % ncls, blk = it / ncls, r0 = (blk % nrb) * rb;
            NNC_FN(dconv_rows)(d, blk / nrb, r0, NNC_MIN(d->OHo, r0 + rb), rho, scratch);
        }
        nnc_region_master_done(&clk);
    }
    nnc_region_end(&clk);
    return failed ? NNC_ENOMEM : NNC_OK;
}

// Packs W (KH, KW, C/G, K) into output-channel blocks for the engine:
// dst[g][b][tap][r][wcs_b], r the reduction channel, zero-padded to whole
// vectors of `lanes` (NNC_VLEN, or NNC_VHLEN for the narrow kernels).
// Forward: reduction c < C/G, outputs k < K/G.  Backward (dx):
// reduction k < K/G, outputs c < C/G (W transposed per tap).
static void NNC_FN(conv_pack)(NNC_T *NNC_RESTRICT dst, const NNC_T *NNC_RESTRICT W, nnc_ssize taps,
                              nnc_ssize Cg, nnc_ssize K, nnc_ssize G, int bwd, nnc_ssize lanes)
{
    const nnc_ssize Kg = K / G, red = bwd ? Kg : Cg, outc = bwd ? Cg : Kg;
    const nnc_ssize nblk = NNC_CEILDIV(outc, CONV_NB), wbs = taps * red * CONV_NB;
    const nnc_ssize items = G * nblk;
    int nt = nnc_threads_for((double)taps * (double)Cg * (double)K);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize it = 0; it < items; ++it) {
        const nnc_ssize g = it / nblk, b = it % nblk;
        const nnc_ssize nch = NNC_MIN(CONV_NB, outc - b * CONV_NB);
        const nnc_ssize wcs = NNC_CEILDIV(nch, lanes) * lanes;
        NNC_T *dd = dst + it * wbs;
        for (nnc_ssize t = 0; t < taps; ++t)
            for (nnc_ssize r = 0; r < red; ++r) {
                NNC_T *o = dd + (t * red + r) * wcs;
                if (!bwd) {   // a run of one W row
                    memcpy(o, W + (t * Cg + r) * K + g * Kg + b * CONV_NB, sizeof(NNC_T) * (size_t)nch);
                } else {      // a column of W
                    const NNC_T *src = W + (t * Cg + b * CONV_NB) * K + g * Kg + r;
                    for (nnc_ssize l = 0; l < nch; ++l) o[l] = src[l * K];
                }
                for (nnc_ssize l = nch; l < wcs; ++l) o[l] = 0;
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
                nnc_ssize r = 0;
                if (o < outc && !bwd) {   // a column of W
                    const NNC_T *src = W + t * Cg * K + g * Kg + o;
                    for (; r < red; ++r) d[r] = src[r * K];
                } else if (o < outc) {    // a run of one W row
                    memcpy(d, W + (t * Cg + o) * K + g * Kg, sizeof(NNC_T) * (size_t)red);
                    r = red;
                }
                for (; r < rpad; ++r) d[r] = 0;
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

// Threads for a conv: the direct kernels run near the FMA peak even on
// small problems, so a team pays off from about 4 us of single-core work
// (0.4 MFLOP; the demo CNN's batch-1 forward 116 -> 103 us at 2 threads
// against 1 MFLOP).
static int NNC_FN(conv_threads)(const nnc_conv_params *p)
{
    return nnc_threads_for(5.0 * NNC_FN(conv_flops)(p));
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
    // conv_dot when at most a quarter of a vector of outputs would be used
    // and the reduction fills whole vectors; else the narrow kernels when
    // the outputs fit a half-width vector (1) or a full plus a half (2).
    d->dot = NNC_VLEN >= 4 && 4 * outc <= NNC_VLEN && red >= NNC_VLEN;
    d->narrow = 0;
    if (CONV_HAS_NARROW && !d->dot && outc <= NNC_VHLEN) d->narrow = 1;
    if (CONV_HAS_NARROW && outc > NNC_VLEN && outc <= NNC_VLEN + NNC_VHLEN) d->narrow = 2;
    nnc_ssize wbs, wgs, total;
    if (d->dot) {  // [g][tap][o (4-padded)][r (vector-padded)]
        wbs = NNC_CEILDIV(red, NNC_VLEN) * NNC_VLEN;
        if (!nnc_mul_ok(taps * NNC_CEILDIV(outc, 4) * 4, wbs, &wgs)) return NNC_EOVERFLOW;
    } else if (!nnc_mul_ok(taps * red, CONV_NB, &wbs) || !nnc_mul_ok(NNC_CEILDIV(outc, CONV_NB), wbs, &wgs)) {
        return NNC_EOVERFLOW;
    }
    if (!nnc_mul_ok(G, wgs, &total) || !nnc_mul_ok(total, (nnc_ssize)sizeof(NNC_T), &total)) return NNC_EOVERFLOW;
    d->wbs = wbs;
    d->wgs = wgs;
    // Forward, one group, one block whose channel count needs no padding
    // (e.g. K = 8, 16, 24, 32, 64 on AVX-512 float32): W (KH, KW, C, K) is
    // already that layout, [tap][c][K]; the kernels read it in place.
    const nnc_ssize lanes = d->narrow ? NNC_VHLEN : NNC_VLEN;
    if (!d->dot && !bwd && G == 1 && outc <= CONV_NB && outc % lanes == 0) {
        d->wp = W;
        return NNC_OK;
    }
    NNC_T *wp = nnc_tls_scratch(NNC_SCRATCH_WEIGHTS, (size_t)total);
    if (!wp) return NNC_ENOMEM;
    if (d->dot) NNC_FN(conv_pack_dot)(wp, W, taps, Cg, p->K, G, bwd, wbs);
    else NNC_FN(conv_pack)(wp, W, taps, Cg, p->K, G, bwd, lanes);
    d->wp = wp;
    return NNC_OK;
}

static int NNC_FN(conv_fwd)(const nnc_conv_params *p, const NNC_T *x, const NNC_T *W, const NNC_T *bias, int act,
                            const NNC_T *res, NNC_T *y)
{
    int st = NNC_FN(conv_check)(p);
    if (st != NNC_OK) return st;
    if (act < 0 || act >= NNC_ACT_SOFTMAX) return NNC_EINVAL;
    if (p->N == 0) return NNC_OK;
    const int nt = NNC_FN(conv_threads)(p);
    // The GEMM path adds a residual only as y += x W (beta = 1): the same
    // operations as the store of the direct engine when there is no bias.
    const int acc = res == y && !bias && act == NNC_ACT_LINEAR;
    if (NNC_FN(conv_is_gemm)(p) && (!res || acc)) {
        NNC_FN(gemm_args) g = {0, p->N * p->H * p->W, p->K, p->C, 1, acc, x, p->ldx, 0, W, p->K, NULL, y, p->ldy,
                               bias, act};
        return NNC_FN(gemm_run)(&g, nt);
    }
    NNC_FN(dconv) d;
    st = NNC_FN(conv_engine)(&d, p, W, 0, x, y);
    if (st != NNC_OK) return st;
    d.bias = bias;
    d.act = act;
    d.res = res;
    d.merge = !d.depthwise && !d.dot && p->dil_w == 1 && p->groups == 1 && p->ldx == p->C;
    return NNC_FN(dconv_run)(&d, p->N, nt);
}

static int NNC_FN(conv_bwd_data)(const nnc_conv_params *p, const NNC_T *dz, const NNC_T *W, NNC_T *dx,
                                 int accumulate)
{
    int st = NNC_FN(conv_check)(p);
    if (st != NNC_OK) return st;
    if (p->N == 0) return NNC_OK;
    const int nt = NNC_FN(conv_threads)(p);
    if (NNC_FN(conv_is_gemm)(p)) {
        NNC_FN(gemm_args) g = {0, p->N * p->H * p->W, p->C, p->K, 1, accumulate ? 1 : 0, dz, p->ldy, 1, W, p->K,
                               NULL, dx, p->ldx, NULL, NNC_ACT_LINEAR};
        return NNC_FN(gemm_run)(&g, nt);
    }
    NNC_FN(dconv) d;
    st = NNC_FN(conv_engine)(&d, p, W, 1, dz, dx);
    if (st != NNC_OK) return st;
    if (accumulate) d.res = dx;
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
        nnc_v acc = nnc_vzero();
        if (nc == NNC_VLEN)
            for (nnc_ssize q = 0; q < P; ++q) acc = nnc_vadd(acc, nnc_vload(dz + q * ld + c0));
        else
            for (nnc_ssize q = 0; q < P; ++q) acc = nnc_vadd(acc, nnc_vloadn(dz + q * ld + c0, nc));
        if (nc == NNC_VLEN) nnc_vstore(db + c0, acc);
        else nnc_vstoren(db + c0, acc, nc);
    }
}

// Depthwise dW[kh,kw,0,c] = sum_{n,oh} (sum_ow x * dz): each thread owns
// blocks of channels; per output row a register chain over ow, added in order.
static void NNC_FN(conv_dw_filter)(const nnc_conv_params *p, const NNC_T *x, const NNC_T *dz, NNC_T *dW)
{
    const nnc_ssize C = p->C, taps = p->KH * p->KW;
    for (nnc_ssize i = 0; i < taps * C; ++i) dW[i] = 0;
    int nt = NNC_FN(conv_threads)(p);
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
                            // NNC_CONV_NV independent chains (vectors of channels) along ow
                            const nnc_ssize nch = NNC_MIN(CONV_NB, c1 - c);
                            nnc_v acc[NNC_CONV_NV];
                            for (int v = 0; v < NNC_CONV_NV; ++v) acc[v] = nnc_vzero();
                            if (nch == CONV_NB) {
                                for (nnc_ssize j = jlo; j < jhi; ++j) {
                                    const NNC_T *xp = xr + (j * p->stride_w + bcol) * p->ldx + c;
                                    const NNC_T *zp = zr + j * p->ldy + c;
                                    for (int v = 0; v < NNC_CONV_NV; ++v)
                                        acc[v] = nnc_vfma(nnc_vload(xp + v * NNC_VLEN), nnc_vload(zp + v * NNC_VLEN), acc[v]);
                                }
                            } else {
                                for (nnc_ssize j = jlo; j < jhi; ++j) {
                                    const NNC_T *xp = xr + (j * p->stride_w + bcol) * p->ldx + c;
                                    const NNC_T *zp = zr + j * p->ldy + c;
                                    for (int v = 0; v < NNC_CONV_NV; ++v) {
                                        const nnc_ssize nc = nch - (nnc_ssize)v * NNC_VLEN;
                                        if (nc <= 0) break;
                                        acc[v] = nnc_vfma(nnc_vloadn(xp + v * NNC_VLEN, NNC_MIN(nc, NNC_VLEN)),
                                                      nnc_vloadn(zp + v * NNC_VLEN, NNC_MIN(nc, NNC_VLEN)), acc[v]);
                                    }
                                }
                            }
                            for (int v = 0; v < NNC_CONV_NV; ++v) {
                                const nnc_ssize nc = nch - (nnc_ssize)v * NNC_VLEN;
                                if (nc <= 0) break;
                                NNC_T *o = dw + c + v * NNC_VLEN;
                                if (nc >= NNC_VLEN) nnc_vstore(o, nnc_vadd(nnc_vload(o), acc[v]));
                                else nnc_vstoren(o, nnc_vadd(nnc_vloadn(o, nc), acc[v]), nc);
                            }
                        }
                    }
                }
    }
}

// dW[kh,kw,c,k] = sum_{n,oh} (sum_ow x[n, ih, iw, c] dz[n, oh, ow, k]) for
// a general (not depthwise) conv.  Items (group, tap, a block of broadcast
// channels, CONV_NB vector channels) are split over the threads; each
// thread runs over the output rows in order, in blocks of CONV_DWK_ROWS
// rows of one image, and per block adds a register chain over the block's
// (row, ow) pixels into its dW items.  The vector operand is dz (output
// channels) unless x's channels fill the lanes better (few output channels,
// e.g. K = 8 from 16 inputs): then x is the vector, dz the broadcast, and
// the sums go to a transposed copy dWT[g][tap][k][c] (scratch slot 3) that
// is written out at the end.  The same FMA chains either way.
//   db (if not NULL), in the same pass while the dz rows are in cache: each
// thread owns a range of its vectors and adds, block after block, the chain
// over the block's pixels.
#define CONV_DWK_ROWS 8  // output rows per dW chain (geometry only)
static int NNC_FN(conv_w_filter)(const nnc_conv_params *p, const NNC_T *x, const NNC_T *dz, NNC_T *dW, NNC_T *db,
                                 int nt)
{
    const nnc_ssize G = p->groups, Cg = p->C / G, Kg = p->K / G, taps = p->KH * p->KW, nw = taps * Cg * p->K;
    const int swap = Cg * (NNC_CEILDIV(Kg, NNC_VLEN) * NNC_VLEN) > Kg * (NNC_CEILDIV(Cg, NNC_VLEN) * NNC_VLEN);
    const nnc_ssize A = swap ? Kg : Cg, B = swap ? Cg : Kg;  // broadcast / vector channels
    // swapped: one vector per item, so a partial vector is an item of its own
    const nnc_ssize vb = swap ? NNC_VLEN : CONV_NB;
    const nnc_ssize rwx = CONV_RWMAX(NNC_CEILDIV(NNC_MIN(B, vb), NNC_VLEN));
    const nnc_ssize rcb = NNC_CEILDIV(A, rwx), cob = NNC_CEILDIV(B, vb);
    const nnc_ssize items = G * taps * rcb * cob;
    // element offsets one past the last channel of x / dz a kernel may read
    const nnc_ssize xlim = (p->N * p->H * p->W - 1) * p->ldx + p->C;
    const nnc_ssize zlim = (p->N * p->OH * p->OW - 1) * p->ldy + p->K;
    NNC_T *dst = dW;
    if (swap) {
        dst = nnc_tls_scratch(NNC_SCRATCH_WEIGHTS, (size_t)nw * sizeof(NNC_T));
        if (!dst) return NNC_ENOMEM;
    }
    for (nnc_ssize i = 0; i < nw; ++i) dst[i] = 0;
    if (db)
        for (nnc_ssize i = 0; i < p->K; ++i) db[i] = 0;
    nt = (int)NNC_MIN(nt, items);
    const nnc_ssize per = NNC_CEILDIV(items, nt), nbv = NNC_CEILDIV(p->K, NNC_VLEN);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize slot = 0; slot < nt; ++slot) {
        const nnc_ssize i0 = slot * per, i1 = NNC_MIN(items, i0 + per);
        const nnc_ssize v0 = db ? slot * nbv / nt : 0, v1 = db ? (slot + 1) * nbv / nt : 0;
        for (nnc_ssize n = 0; n < p->N; ++n)
            for (nnc_ssize oh0 = 0; oh0 < p->OH; oh0 += CONV_DWK_ROWS) {
                const nnc_ssize oh1 = NNC_MIN(p->OH, oh0 + CONV_DWK_ROWS);
                const NNC_T *zr = dz + (n * p->OH + oh0) * p->OW * p->ldy;
                const nnc_ssize zn = (oh1 - oh0) * p->OW;  // the block's pixels, consecutive
                for (nnc_ssize v = v0; v < v1; ++v) {
                    const nnc_ssize c0 = v * NNC_VLEN, nc = NNC_MIN(NNC_VLEN, p->K - c0);
                    nnc_v acc = nnc_vzero();
                    if (nc == NNC_VLEN) {
                        for (nnc_ssize q = 0; q < zn; ++q) acc = nnc_vadd(acc, nnc_vload(zr + q * p->ldy + c0));
                        nnc_vstore(db + c0, nnc_vadd(nnc_vload(db + c0), acc));
                    } else {
                        for (nnc_ssize q = 0; q < zn; ++q) acc = nnc_vadd(acc, nnc_vloadn(zr + q * p->ldy + c0, nc));
                        nnc_vstoren(db + c0, nnc_vadd(nnc_vloadn(db + c0, nc), acc), nc);
                    }
                }
                for (nnc_ssize it = i0; it < i1; ++it) {
                    const nnc_ssize cb = it % cob, rb = (it / cob) % rcb, tap = (it / (cob * rcb)) % taps;
                    const nnc_ssize g = it / (cob * rcb * taps);
                    const nnc_ssize kh = tap / p->KW, kw = tap % p->KW;
                    // rows oh of the block whose input row oh*sh + base is inside
                    const nnc_ssize base = kh * p->dil_h - p->pad_top;
                    const nnc_ssize lo = NNC_MAX(oh0, base >= 0 ? 0 : NNC_CEILDIV(-base, p->stride_h));
                    const nnc_ssize hi = NNC_MIN(oh1, p->H - base <= 0 ? 0 : (p->H - base - 1) / p->stride_h + 1);
                    if (hi <= lo) continue;
                    const nnc_ssize bcol = kw * p->dil_w - p->pad_left;
                    const nnc_ssize jlo = bcol >= 0 ? 0 : NNC_CEILDIV(-bcol, p->stride_w);
                    const nnc_ssize jhi = NNC_MIN(p->OW, p->W - bcol <= 0 ? 0 : (p->W - bcol - 1) / p->stride_w + 1);
                    if (jhi <= jlo) continue;
                    const nnc_ssize a0 = rb * rwx, ra = NNC_MIN(rwx, A - a0);
                    const nnc_ssize b0 = cb * vb, nch = NNC_MIN(vb, B - b0);
                    const nnc_ssize nv = NNC_CEILDIV(nch, NNC_VLEN), nrow = hi - lo, npx = jhi - jlo;
                    const nnc_ssize xpix = (n * p->H + lo * p->stride_h + base) * p->W + jlo * p->stride_w + bcol;
                    const nnc_ssize zpix = (n * p->OH + lo) * p->OW + jlo;
                    const nnc_ssize xps = p->stride_w * p->ldx, xrs = p->stride_h * p->W * p->ldx;
                    const nnc_ssize zrs = p->OW * p->ldy;
                    const NNC_T *xp = x + xpix * p->ldx + g * Cg, *zp = dz + zpix * p->ldy + g * Kg;
                    // whole vectors readable at the block's last vector-operand pixel
                    const nnc_ssize vend = nv * NNC_VLEN + b0;
                    const int zfull =
                        swap ? xpix * p->ldx + (nrow - 1) * xrs + (npx - 1) * xps + g * Cg + vend <= xlim
                             : (zpix + (nrow - 1) * p->OW + npx - 1) * p->ldy + g * Kg + vend <= zlim;
                    if (!swap)
                        NNC_FN(dwk_ukrs)[ra - 1][nv - 1](xp + a0, xps, xrs, zp + b0, p->ldy, zrs, nrow, npx,
                                                         dW + (tap * Cg + a0) * p->K + g * Kg + b0, p->K, nch,
                                                         zfull);
                    else
                        NNC_FN(dwk_ukrs)[ra - 1][nv - 1](zp + a0, p->ldy, zrs, xp + b0, xps, xrs, nrow, npx,
                                                         dst + ((g * taps + tap) * Kg + a0) * Cg + b0, Cg, nch,
                                                         zfull);
                }
            }
    }
    if (swap)
        for (nnc_ssize g = 0; g < G; ++g)
            for (nnc_ssize t = 0; t < taps; ++t)
                for (nnc_ssize k = 0; k < Kg; ++k)
                    for (nnc_ssize c = 0; c < Cg; ++c)
                        dW[(t * Cg + c) * p->K + g * Kg + k] = dst[((g * taps + t) * Kg + k) * Cg + c];
    return NNC_OK;
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
    const int nt = NNC_FN(conv_threads)(p);
    if (!NNC_FN(conv_is_gemm)(p) && !NNC_FN(conv_is_depthwise)(p)) return NNC_FN(conv_w_filter)(p, x, dz, dW, db, nt);
    if (db) NNC_FN(conv_bias_grad)(db, dz, P, p->K, p->ldy);
    if (NNC_FN(conv_is_gemm)(p)) {
        NNC_FN(gemm_args) g = {1, p->C, p->K, P, 1, 0, x, p->ldx, 0, dz, p->ldy, NULL, dW, p->K, NULL,
                               NNC_ACT_LINEAR};
        return NNC_FN(gemm_run)(&g, nt);
    }
    NNC_FN(conv_dw_filter)(p, x, dz, dW);
    return NNC_OK;
}

#undef CONV_NB
#undef CONV_RWMAX
#undef CONV_DWK_ROWS
#undef CONV_HAS_NARROW
