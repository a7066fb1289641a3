// kernels/conv/ukernels.h - the tap list, the store of a register tile and
// the register-tile micro-kernels of the general (not depthwise) conv.

// A tap: input element offset (for the job's pixel 0, channel 0), index of
// its first weight row, number of reduction channels it covers.
typedef struct {
    nnc_ssize off, widx, len;
} NNC_FN(conv_tap);

// The signature of a forward / dx micro-kernel (conv_ukr_fn) and its argument list:
//   x + xsh + tp[t].off + r*ics + c   input of pixel r, tap t, channel c
//   w + tp[t].widx*wst                the tap's packed weights, a row of wst per channel
//   y + r*ocs                         output pixel r (nch channels); res likewise (or NULL)
//   bias (or NULL), act               added, then applied, before res
#define CONV_UKR_PARAMS                                                                              \
    const NNC_FN(conv_tap) *tp, nnc_ssize ntap, const NNC_T *x, nnc_ssize xsh, nnc_ssize ics,        \
        const NNC_T *w, nnc_ssize wst, NNC_T *y, const NNC_T *res, nnc_ssize ocs, nnc_ssize nch,     \
        const NNC_T *bias, int act
#define CONV_UKR_ARGS tp, ntap, x, xsh, ics, w, wst, y, res, ocs, nch, bias, act
typedef void (*NNC_FN(conv_ukr_fn))(CONV_UKR_PARAMS);

// Stores a finished tile: rw pixels (stride ocs) x nv vectors, nch valid
// channels: act(acc + bias) (+ res, when res is not NULL: the same pixels of
// an array laid out like y, or y itself to accumulate; then max(0, .) when
// act carries NNC_CONV_RES_RELU).  Out of line, so the
// activation's constants do not take registers from the accumulators of the
// tap loop.
static __attribute__((noinline)) void NNC_FN(conv_store)(NNC_T *y, const NNC_T *res, nnc_ssize ocs,
                                                         const nnc_v *acc, int rw, int nv, nnc_ssize nch,
                                                         const NNC_T *bias, int act)
{
    for (int r = 0; r < rw; ++r)
        for (int j = 0; j < nv; ++j) {
            const nnc_ssize nc = nch - (nnc_ssize)j * NNC_VLEN;
            NNC_T *yp = y + r * ocs + j * NNC_VLEN;
            nnc_v v = acc[r * nv + j];
            if (bias) v = nnc_vadd(v, nnc_vloadp(bias + j * NNC_VLEN, nc));
            v = NNC_FN(vact)(v, act & ~NNC_CONV_RES_RELU);
            if (res) v = nnc_vadd(v, nnc_vloadp(res + r * ocs + j * NNC_VLEN, nc));
            if (act & NNC_CONV_RES_RELU) v = nnc_vmax(nnc_vzero(), v);
            nnc_vstorep(yp, v, nc);
        }
}

// One pass storing the register tile acc[rw][nv] with what varies known at
// compile time where the caller can: full (every vector whole: full-width
// loads and stores, no lane counts), a bias.  The activations are
// nnc_vmax(lo, v) before res is added and nnc_vmax(lo_res, v) after: 0 for
// a ReLU, -inf for none, which gives v itself (NaN and -0 included).
// conv_store's operations, so the same results.
NNC_INLINE void NNC_FN(conv_store_pass)(const int rw, const int nv, const int full, const int has_bias,
                                        nnc_v acc[][NNC_CONV_NV], NNC_T *y, const NNC_T *res, nnc_ssize ocs,
                                        nnc_ssize nch, const NNC_T *bias, nnc_v lo, nnc_v lo_res)
{
    nnc_v bv[NNC_CONV_NV];
    for (int j = 0; j < nv; ++j)
        bv[j] = !has_bias ? nnc_vzero()
                : full    ? nnc_vload(bias + j * NNC_VLEN)
                          : nnc_vloadp(bias + j * NNC_VLEN, nch - j * NNC_VLEN);
    NNC_UNROLL_TILE for (int r = 0; r < rw; ++r)
        for (int j = 0; j < nv; ++j) {
            const nnc_ssize nc = nch - (nnc_ssize)j * NNC_VLEN;
            nnc_v v = acc[r][j];
            if (has_bias) v = nnc_vadd(v, bv[j]);
            v = nnc_vmax(lo, v);
            if (res) {
                const NNC_T *rp = res + r * ocs + j * NNC_VLEN;
                v = nnc_vmax(lo_res, nnc_vadd(v, full ? nnc_vload(rp) : nnc_vloadp(rp, nc)));
            }
            if (full) nnc_vstore(y + r * ocs + j * NNC_VLEN, v);
            else nnc_vstorep(y + r * ocs + j * NNC_VLEN, v, nc);
        }
}

// Stores the register tile acc[rw][nv] (rw, nv constants; the last vector
// partial when nch < nv*NNC_VLEN): in line for a linear or ReLU activation
// with NNC_CONV_RES_RELU or not (no call and no pass of acc through memory;
// a whole tile with a bias, the usual case, without lane counts or a test of
// the bias per vector), else conv_store through a copy (acc never has its
// address taken, so it stays in registers).
NNC_INLINE void NNC_FN(conv_store_tile)(const int rw, const int nv, nnc_v acc[][NNC_CONV_NV], NNC_T *y,
                                        const NNC_T *res, nnc_ssize ocs, nnc_ssize nch, const NNC_T *bias,
                                        int act)
{
    const int base = act & ~NNC_CONV_RES_RELU, res_relu = act & NNC_CONV_RES_RELU;
    if (base == NNC_ACT_LINEAR || base == NNC_ACT_RELU) {
        // without res, a ReLU after it is one on act's result
        const nnc_v lo = base == NNC_ACT_RELU || (res_relu && !res) ? nnc_vzero() : nnc_vset1(-INFINITY);
        const nnc_v lo_res = res_relu ? nnc_vzero() : nnc_vset1(-INFINITY);
        if (bias && nch == (nnc_ssize)nv * NNC_VLEN)
            NNC_FN(conv_store_pass)(rw, nv, 1, 1, acc, y, res, ocs, nch, bias, lo, lo_res);
        else
            NNC_FN(conv_store_pass)(rw, nv, 0, bias != NULL, acc, y, res, ocs, nch, bias, lo, lo_res);
    } else {
        nnc_v out[NNC_CONV_RW * NNC_CONV_NV];   // rw*nv at most (ukernel_table.h, ukernels_narrow.h)
        NNC_UNROLL_TILE for (int r = 0; r < rw; ++r)
            for (int j = 0; j < nv; ++j) out[r * nv + j] = acc[r][j];
        NNC_FN(conv_store)(y, res, ocs, out, rw, nv, nch, bias, act);
    }
}

// The general register tile, rw pixels x nv vectors of output channels:
// acc[r][j] = sum over the taps t and their channels c (in order) of
// x[pixel r, tap t, c] * w[tap t, c, vector j], one FMA chain per element.
NNC_INLINE void NNC_FN(conv_tile)(const int rw, const int nv, CONV_UKR_PARAMS)
{
    nnc_v acc[NNC_CONV_RWX][NNC_CONV_NV];
    NNC_UNROLL_TILE for (int r = 0; r < rw; ++r)
        for (int j = 0; j < nv; ++j) acc[r][j] = nnc_vzero();
    for (nnc_ssize t = 0; t < ntap; ++t) {
        const NNC_T *NNC_RESTRICT xs = x + (tp[t].off + xsh);
        const NNC_T *NNC_RESTRICT ws = w + tp[t].widx * wst;
        const nnc_ssize len = tp[t].len;
        for (nnc_ssize c = 0; c < len; ++c) {
            nnc_v wv[NNC_CONV_NV];
            for (int j = 0; j < nv; ++j) wv[j] = nnc_vload(ws + c * wst + j * NNC_VLEN);
            NNC_UNROLL_TILE for (int r = 0; r < rw; ++r) {
                const nnc_v xb = nnc_vset1(xs[r * ics + c]);
                for (int j = 0; j < nv; ++j) acc[r][j] = nnc_vfma(xb, wv[j], acc[r][j]);
            }
        }
    }
    NNC_FN(conv_store_tile)(rw, nv, acc, y, res, ocs, nch, bias, act);
}
