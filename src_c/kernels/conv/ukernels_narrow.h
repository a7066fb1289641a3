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
    nnc_v wide[NNC_MAX(NNC_CONV_RWH, 2 * NNC_CONV_RWM)];   // rw*(nf + 1) at most
    NNC_UNROLL_TILE for (int r = 0; r < rw; ++r) {
        if (nf) wide[r * (nf + 1)] = accf[r];
        wide[r * (nf + 1) + nf] = nnc_vhwiden(acc[r]);
    }
    NNC_FN(conv_store)(y, res, ocs, wide, rw, nf + 1, nch, bias, act);
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
