// kernels/conv/ukernels_narrow.h - micro-kernels for few output channels per
// group: the narrow register tiles (half-width vectors) and conv_dot.

// Narrow micro-kernels (few output channels, Cog <= NNC_VHLEN, e.g. 8 on
// AVX-512 float32): rw pixels x one half-width vector, which runs at the
// FMA rate of a full one on Zen 4 and wastes no lanes on a K = 8 conv.
// Mixed ones (nf = 1: NNC_VLEN < Cog <= NNC_VLEN + NNC_VHLEN, e.g. 24):
// one full plus one half-width vector.  Weights packed in half-width units
// (wst = nf*NNC_VLEN + NNC_VHLEN).  Same chains as the wide kernels.
#if NNC_VLEN > 1
#define CONV_HAS_NARROW 1
_Static_assert((NNC_CONV_RWH == 12 || NNC_CONV_RWH == 16) && (NNC_CONV_RWM == 6 || NNC_CONV_RWM == 12),
               "conv: the narrow kernel instances below cover 12 or 16 (ukrh) and 6 or 12 (ukrm) pixels");
_Static_assert(NNC_CONV_RWM <= NNC_CONV_RWH && NNC_CONV_NV >= 2 && NNC_CONV_RWH <= NNC_CONV_RW * NNC_CONV_NV &&
                   2 * NNC_CONV_RWM <= NNC_CONV_RW * NNC_CONV_NV,
               "conv: conv_store_tile holds a narrow tile");

NNC_INLINE void NNC_FN(conv_tile_narrow)(const int rw, const int nf, CONV_UKR_PARAMS)
{
    nnc_vh acc[NNC_CONV_RWH];
    nnc_v accf[NNC_CONV_RWH];
    NNC_UNROLL_TILE for (int r = 0; r < rw; ++r) {
        acc[r] = nnc_vhzero();
        accf[r] = nnc_vzero();
    }
    for (nnc_ssize t = 0; t < ntap; ++t) {
        const NNC_T *NNC_RESTRICT xs = x + (tp[t].off + xsh);
        const NNC_T *NNC_RESTRICT ws = w + tp[t].widx * wst;
        const nnc_ssize len = tp[t].len;
        for (nnc_ssize c = 0; c < len; ++c) {
            const nnc_vh wv = nnc_vhload(ws + c * wst + nf * NNC_VLEN);
            const nnc_v wf = nf ? nnc_vload(ws + c * wst) : nnc_vzero();
            NNC_UNROLL_TILE for (int r = 0; r < rw; ++r) {
                if (nf) accf[r] = nnc_vfma(nnc_vset1(xs[r * ics + c]), wf, accf[r]);
                acc[r] = nnc_vhfma(nnc_vhset1(xs[r * ics + c]), wv, acc[r]);
            }
        }
    }
    nnc_v wide[NNC_CONV_RWH][NNC_CONV_NV];
    NNC_UNROLL_TILE for (int r = 0; r < rw; ++r) {
        if (nf) wide[r][0] = accf[r];
        wide[r][nf] = nnc_vhwiden(acc[r]);
    }
    NNC_FN(conv_store_tile)(rw, nf + 1, wide, y, res, ocs, nch, bias, act);
}

// conv_ukrh_<pixels>: one half-width vector, pixels 1..NNC_CONV_RWH.
static void NNC_FN(conv_ukrh_1)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(1, 0, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrh_2)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(2, 0, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrh_3)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(3, 0, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrh_4)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(4, 0, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrh_5)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(5, 0, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrh_6)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(6, 0, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrh_7)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(7, 0, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrh_8)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(8, 0, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrh_9)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(9, 0, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrh_10)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(10, 0, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrh_11)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(11, 0, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrh_12)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(12, 0, CONV_UKR_ARGS); }
#if NNC_CONV_RWH == 16
static void NNC_FN(conv_ukrh_13)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(13, 0, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrh_14)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(14, 0, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrh_15)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(15, 0, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrh_16)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(16, 0, CONV_UKR_ARGS); }
#endif
// conv_ukrm_<pixels>: a full and a half-width vector, pixels 1..NNC_CONV_RWM.
static void NNC_FN(conv_ukrm_1)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(1, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrm_2)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(2, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrm_3)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(3, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrm_4)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(4, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrm_5)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(5, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrm_6)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(6, 1, CONV_UKR_ARGS); }
#if NNC_CONV_RWM == 12
static void NNC_FN(conv_ukrm_7)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(7, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrm_8)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(8, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrm_9)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(9, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrm_10)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(10, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrm_11)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(11, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_ukrm_12)(CONV_UKR_PARAMS) { NNC_FN(conv_tile_narrow)(12, 1, CONV_UKR_ARGS); }
#endif

// [rw - 1]
static const NNC_FN(conv_ukr_fn) NNC_FN(conv_ukrhs)[NNC_CONV_RWH] = {
    NNC_FN(conv_ukrh_1), NNC_FN(conv_ukrh_2),  NNC_FN(conv_ukrh_3),  NNC_FN(conv_ukrh_4),
    NNC_FN(conv_ukrh_5), NNC_FN(conv_ukrh_6),  NNC_FN(conv_ukrh_7),  NNC_FN(conv_ukrh_8),
    NNC_FN(conv_ukrh_9), NNC_FN(conv_ukrh_10), NNC_FN(conv_ukrh_11), NNC_FN(conv_ukrh_12),
#if NNC_CONV_RWH == 16
    NNC_FN(conv_ukrh_13), NNC_FN(conv_ukrh_14), NNC_FN(conv_ukrh_15), NNC_FN(conv_ukrh_16),
#endif
};
static const NNC_FN(conv_ukr_fn) NNC_FN(conv_ukrms)[NNC_CONV_RWM] = {
    NNC_FN(conv_ukrm_1), NNC_FN(conv_ukrm_2), NNC_FN(conv_ukrm_3),
    NNC_FN(conv_ukrm_4), NNC_FN(conv_ukrm_5), NNC_FN(conv_ukrm_6),
#if NNC_CONV_RWM == 12
    NNC_FN(conv_ukrm_7),  NNC_FN(conv_ukrm_8),  NNC_FN(conv_ukrm_9),
    NNC_FN(conv_ukrm_10), NNC_FN(conv_ukrm_11), NNC_FN(conv_ukrm_12),
#endif
};
#else
#define CONV_HAS_NARROW 0
#endif

// Few output channels with a long reduction (setup.h weighs it against the
// lane kernels, e.g. K = 6 from C = 108, or dx of a first layer with 3 input
// channels): the reduction channels go in the vector lanes.  A tile of rw
// pixels x no outputs (no <= 4): per reduction vector, one input load per
// pixel and one weight load per output feed rw*no lane-wise FMA chains over
// the taps and their channels; then a horizontal sum per (pixel, output) in a
// fixed lane order.  Weights [tap][o (4-padded)][r (wst, zero-padded to whole
// vectors)], w at the tile's first output.  Every element's operations are
// the same whatever rw and no.
_Static_assert(NNC_CONV_RWD == 2 || NNC_CONV_RWD == 6, "conv: the conv_dot instances below cover 2 or 6 pixels");
// The horizontal sums of a tile: rw*no rounded up to whole vectors.
#define CONV_DOT_SUMS (NNC_CEILDIV(NNC_CONV_RWD * 4, NNC_VLEN) * NNC_VLEN)

NNC_INLINE void NNC_FN(conv_dot_tile)(const int rw, const int no, CONV_UKR_PARAMS)
{
    nnc_v acc[NNC_CONV_RWD][4];
    NNC_UNROLL_TILE for (int r = 0; r < rw; ++r)
        for (int o = 0; o < no; ++o) acc[r][o] = nnc_vzero();
    for (nnc_ssize t = 0; t < ntap; ++t) {
        const NNC_T *NNC_RESTRICT xs = x + (tp[t].off + xsh);
        const NNC_T *NNC_RESTRICT ws = w + tp[t].widx * wst;
        const nnc_ssize len = tp[t].len;
        nnc_ssize c = 0;
        for (; c + NNC_VLEN <= len; c += NNC_VLEN) {
            nnc_v xv[NNC_CONV_RWD];
            NNC_UNROLL_TILE for (int r = 0; r < rw; ++r) xv[r] = nnc_vload(xs + r * ics + c);
            for (int o = 0; o < no; ++o) {
                const nnc_v wv = nnc_vload(ws + o * wst + c);
                NNC_UNROLL_TILE for (int r = 0; r < rw; ++r) acc[r][o] = nnc_vfma(xv[r], wv, acc[r][o]);
            }
        }
        if (c < len) {   // the last vector, partial: masked input loads (zero-padded weights)
            nnc_v xv[NNC_CONV_RWD];
            NNC_UNROLL_TILE for (int r = 0; r < rw; ++r) xv[r] = nnc_vloadn(xs + r * ics + c, len - c);
            for (int o = 0; o < no; ++o) {
                const nnc_v wv = nnc_vload(ws + o * wst + c);
                NNC_UNROLL_TILE for (int r = 0; r < rw; ++r) acc[r][o] = nnc_vfma(xv[r], wv, acc[r][o]);
            }
        }
    }
    // the horizontal sums NNC_VLEN at a time (nnc_vhsums: bitwise nnc_vhsum's)
    nnc_v flat[CONV_DOT_SUMS];
    NNC_T sums[CONV_DOT_SUMS];
    NNC_UNROLL_TILE for (int r = 0; r < rw; ++r)
        for (int o = 0; o < no; ++o) flat[r * no + o] = acc[r][o];
    NNC_UNROLL_TILE for (int i = rw * no; i < CONV_DOT_SUMS; ++i) flat[i] = nnc_vzero();
    NNC_UNROLL_TILE for (int i = 0; i < rw * no; i += NNC_VLEN) nnc_vhsums(flat + i, sums + i);
    NNC_UNROLL_TILE for (int r = 0; r < rw; ++r) {
        nnc_v v = nnc_vloadp(sums + r * no, no);
        if (bias) v = nnc_vadd(v, nnc_vloadp(bias, no));
        v = NNC_FN(vact)(v, act & ~NNC_CONV_RES_RELU);
        if (res) v = nnc_vadd(v, nnc_vloadp(res + r * ocs, no));
        if (act & NNC_CONV_RES_RELU) v = nnc_vmax(nnc_vzero(), v);
        nnc_vstorep(y + r * ocs, v, no);
    }
}

// conv_dot_<pixels>_<outputs>: pixels 1..NNC_CONV_RWD x outputs 1..4.
static void NNC_FN(conv_dot_1_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(1, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_1_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(1, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_1_3)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(1, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_1_4)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(1, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_2_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(2, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_2_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(2, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_2_3)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(2, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_2_4)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(2, 4, CONV_UKR_ARGS); }
#if NNC_CONV_RWD == 6
static void NNC_FN(conv_dot_3_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(3, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_3_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(3, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_3_3)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(3, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_3_4)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(3, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_4_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(4, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_4_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(4, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_4_3)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(4, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_4_4)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(4, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_5_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(5, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_5_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(5, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_5_3)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(5, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_5_4)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(5, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_6_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(6, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_6_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(6, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_6_3)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(6, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_dot_6_4)(CONV_UKR_PARAMS) { NNC_FN(conv_dot_tile)(6, 4, CONV_UKR_ARGS); }
#endif

// [rw - 1][no - 1]
#define CONV_DOTS(r) \
    {NNC_FN(conv_dot_##r##_1), NNC_FN(conv_dot_##r##_2), NNC_FN(conv_dot_##r##_3), NNC_FN(conv_dot_##r##_4)}
static const NNC_FN(conv_ukr_fn) NNC_FN(conv_dots)[NNC_CONV_RWD][4] = {
    CONV_DOTS(1), CONV_DOTS(2),
#if NNC_CONV_RWD == 6
    CONV_DOTS(3), CONV_DOTS(4), CONV_DOTS(5), CONV_DOTS(6),
#endif
};
#undef CONV_DOTS
#undef CONV_DOT_SUMS
