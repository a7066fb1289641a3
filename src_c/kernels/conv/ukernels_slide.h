// kernels/conv/ukernels_slide.h - forward micro-kernels for one vector of
// output channels (Cog <= NNC_VLEN, e.g. K = 16 on AVX-512 float32) and a
// kernel row of 3 columns sliding along the output row (stride 1, a dense
// input: the merged-tap runs of the engine).
//
// The general tile of one vector broadcasts one input element per FMA, so
// it issues about as many loads as FMAs and runs at ~75% of the FMA peak on
// Zen 5 (2 vectors: ~97%).  Here the three weight vectors of a kernel row
// and channel stay in registers while the rw + 2 input pixels the tile
// reads pass by, each broadcast once for the up to three output pixels it
// reaches: rw + 5 loads for 3*rw FMAs.
//
// Each output element is one FMA chain over the kernel rows in order, and
// within a row over the channels, each channel's three columns in order:
// (kh, c, kw), where the other tiles take (kh, kw, c).  Which pixels run
// here (the interior of each output row) depends on the geometry only, so
// results stay bitwise the same for any thread count and batch split.

_Static_assert(NNC_CONV_RWX == 4 || NNC_CONV_RWX == 6 || NNC_CONV_RWX == 12,
               "conv: the sliding kernel instances below cover 4, 6 or 12 pixels");

NNC_INLINE void NNC_FN(conv_slide_tile)(const int rw, CONV_UKR_PARAMS)
{
    nnc_v acc[NNC_CONV_RWX][NNC_CONV_NV];
    NNC_UNROLL_TILE for (int r = 0; r < rw; ++r) acc[r][0] = nnc_vzero();
    for (nnc_ssize t = 0; t < ntap; ++t) {
        const NNC_T *NNC_RESTRICT xs = x + (tp[t].off + xsh);
        const NNC_T *NNC_RESTRICT ws = w + tp[t].widx * wst;
        const nnc_ssize C = tp[t].len / 3;   // the run: 3 pixels of C channels
        for (nnc_ssize c = 0; c < C; ++c) {
            const nnc_v w0 = nnc_vload(ws + c * wst), w1 = nnc_vload(ws + (C + c) * wst),
                        w2 = nnc_vload(ws + (2 * C + c) * wst);
            NNC_UNROLL_TILE for (int q = 0; q < rw + 2; ++q) {   // input pixel q reaches outputs q, q-1, q-2
                const nnc_v xb = nnc_vset1(xs[q * ics + c]);
                if (q < rw) acc[q][0] = nnc_vfma(xb, w0, acc[q][0]);
                if (q >= 1 && q <= rw) acc[q - 1][0] = nnc_vfma(xb, w1, acc[q - 1][0]);
                if (q >= 2) acc[q - 2][0] = nnc_vfma(xb, w2, acc[q - 2][0]);
            }
        }
    }
    NNC_FN(conv_store_tile)(rw, 1, acc, y, res, ocs, nch, bias, act);
}

// conv_slide_<pixels>: pixels 1..NNC_CONV_RWX.
static void NNC_FN(conv_slide_1)(CONV_UKR_PARAMS) { NNC_FN(conv_slide_tile)(1, CONV_UKR_ARGS); }
static void NNC_FN(conv_slide_2)(CONV_UKR_PARAMS) { NNC_FN(conv_slide_tile)(2, CONV_UKR_ARGS); }
static void NNC_FN(conv_slide_3)(CONV_UKR_PARAMS) { NNC_FN(conv_slide_tile)(3, CONV_UKR_ARGS); }
static void NNC_FN(conv_slide_4)(CONV_UKR_PARAMS) { NNC_FN(conv_slide_tile)(4, CONV_UKR_ARGS); }
#if NNC_CONV_RWX >= 6
static void NNC_FN(conv_slide_5)(CONV_UKR_PARAMS) { NNC_FN(conv_slide_tile)(5, CONV_UKR_ARGS); }
static void NNC_FN(conv_slide_6)(CONV_UKR_PARAMS) { NNC_FN(conv_slide_tile)(6, CONV_UKR_ARGS); }
#endif
#if NNC_CONV_RWX == 12
static void NNC_FN(conv_slide_7)(CONV_UKR_PARAMS) { NNC_FN(conv_slide_tile)(7, CONV_UKR_ARGS); }
static void NNC_FN(conv_slide_8)(CONV_UKR_PARAMS) { NNC_FN(conv_slide_tile)(8, CONV_UKR_ARGS); }
static void NNC_FN(conv_slide_9)(CONV_UKR_PARAMS) { NNC_FN(conv_slide_tile)(9, CONV_UKR_ARGS); }
static void NNC_FN(conv_slide_10)(CONV_UKR_PARAMS) { NNC_FN(conv_slide_tile)(10, CONV_UKR_ARGS); }
static void NNC_FN(conv_slide_11)(CONV_UKR_PARAMS) { NNC_FN(conv_slide_tile)(11, CONV_UKR_ARGS); }
static void NNC_FN(conv_slide_12)(CONV_UKR_PARAMS) { NNC_FN(conv_slide_tile)(12, CONV_UKR_ARGS); }
#endif

// [rw - 1]
static const NNC_FN(conv_ukr_fn) NNC_FN(conv_slides)[NNC_CONV_RWX] = {
    NNC_FN(conv_slide_1), NNC_FN(conv_slide_2), NNC_FN(conv_slide_3), NNC_FN(conv_slide_4),
#if NNC_CONV_RWX >= 6
    NNC_FN(conv_slide_5), NNC_FN(conv_slide_6),
#endif
#if NNC_CONV_RWX == 12
    NNC_FN(conv_slide_7), NNC_FN(conv_slide_8), NNC_FN(conv_slide_9), NNC_FN(conv_slide_10),
    NNC_FN(conv_slide_11), NNC_FN(conv_slide_12),
#endif
};
