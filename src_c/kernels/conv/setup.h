// kernels/conv/setup.h - the direct engine set up from a conv desc for the
// forward (in = x, out = y) or dx (in = dz, out = dx): geometry, kernel
// family, and the weights in their layout.

// Sets up the engine for forward (bwd 0: in = x, out = y) or dx (bwd 1:
// in = dz, out = dx), packing the weights into the calling thread's scratch
// slot 3.
static int NNC_FN(conv_engine)(NNC_FN(dconv) *d, const nnc_conv_desc *p, const NNC_T *W, int bwd,
                               const NNC_T *in, NNC_T *out)
{
    const nnc_ssize G = p->groups, Cg = p->c / G, Kg = p->k / G, taps = p->kh * p->kw;
    *d = (NNC_FN(dconv)){0};
    d->KH = p->kh;
    d->KW = p->kw;
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
    d->IH = bwd ? p->oh : p->h;
    d->IW = bwd ? p->ow : p->w;
    d->OHo = bwd ? p->h : p->oh;
    d->OWo = bwd ? p->w : p->ow;
    d->act = NNC_ACT_LINEAR;
    if (NNC_FN(conv_is_depthwise)(p)) {
        d->depthwise = 1;
        d->ngrp = 1;
        d->Cog = p->c;
        d->Cr = 1;
        d->wp = W;
        return NNC_OK;
    }
    const nnc_ssize red = bwd ? Kg : Cg, outc = bwd ? Cg : Kg;
    d->ngrp = G;
    d->Cog = outc;
    d->Cr = red;
    d->xg = red;
    // conv_dot when it takes under NNC_CONV_DOT_PCT % of the FMAs of the
    // kernels with the outputs in the lanes (its tiles issue fewer loads per
    // FMA where NNC_CONV_RWD is larger): per pixel, one per reduction vector
    // and output plus about 4 for each output's horizontal sum, against one
    // per reduction channel and vector of outputs (K = 6 from C = 108 in
    // 3x3 on AVX-512 float32: 402 against 972, where a half-width vector
    // would waste 2 lanes of 8 and run at half the rate of a full one); else
    // the narrow kernels when the outputs fit a half-width vector (1) or a
    // full plus a half (2).
    const nnc_ssize dot_fma = outc * (taps * NNC_CEILDIV(red, NNC_VLEN) + 4);
    d->dot = NNC_VLEN >= 4 && 100 * dot_fma < NNC_CONV_DOT_PCT * taps * red * NNC_CEILDIV(outc, NNC_VLEN);
    d->narrow = 0;
    if (CONV_HAS_NARROW && !d->dot && outc <= NNC_VHLEN) d->narrow = 1;
    if (CONV_HAS_NARROW && !d->dot && outc > NNC_VLEN && outc <= NNC_VLEN + NNC_VHLEN) d->narrow = 2;
    nnc_ssize wbs, wgs, total;
    if (d->dot) {  // [g][tap][o (4-padded)][r (vector-padded)]
        wbs = NNC_CEILDIV(red, NNC_VLEN) * NNC_VLEN;
        if (!nnc_mul_ok(taps * NNC_CEILDIV(outc, 4) * 4, wbs, &wgs)) return NNC_EOVERFLOW;
    } else if (!nnc_mul_ok(taps * red, CONV_NB, &wbs) || !nnc_mul_ok(NNC_CEILDIV(outc, CONV_NB), wbs, &wgs)) {
        return NNC_EOVERFLOW;
    }
    if (!nnc_mul_ok(G, wgs, &total) || !nnc_mul_ok(total, (nnc_ssize)sizeof(NNC_T), &total))
        return NNC_EOVERFLOW;
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
    if (d->dot) NNC_FN(conv_pack_dot)(wp, W, taps, Cg, p->k, G, bwd, wbs);
    else NNC_FN(conv_pack)(wp, W, taps, Cg, p->k, G, bwd, lanes);
    d->wp = wp;
    return NNC_OK;
}
