// kernels/conv/pack.h - the weight layouts of the direct engine: W packed into
// output-channel blocks for the register tiles, or per output for conv_dot.

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
