// kernels/rnn/step.h - one step (or one phase of a step) of the recurrent
// forward for a block of batch rows and a slice of hidden units (template;
// see nnc_internal.h and the overview in rnn/context.h): the recurrent
// product onto the step's pre-activations, then the cell's fused gate pass.

#define RNN_OFS(p, j) ((p) ? (p) + (j) : NULL)

// The recurrent product of gates [g0, g0+ng) for hidden units [j0, j1) (j0 a
// multiple of NR) and `rows` rows of A (lda apart):
// C[:, g*H + j] = A W_h[g]^T + beta C (+ bias[g*H + j]).  One row: the GEMV
// streams (rnn/gemv.h); more rows: the GEMM on the packed blocks, one
// product over the gates when their panels are adjacent (whole W_h packed:
// cx->Wall, g0 = 0; or H a multiple of NR).
static void NNC_FN(rnn_rec)(const NNC_FN(rnn_ctx) *cx, nnc_ssize rows, const NNC_T *A, nnc_ssize lda, int g0,
                            int ng, NNC_T *C, nnc_ssize ldc, NNC_T beta, const NNC_T *bias, nnc_ssize j0,
                            nnc_ssize j1, int *failed)
{
    const nnc_ssize H = cx->d->h, NR = cx->NR, cw = 2 * NNC_VLEN;
    if (rows != 1 && j0 == 0 && j1 == H && (cx->Wall || H % NR == 0)) {  // one product, A packed once
        NNC_FN(rnn_gemm)(rows, ng * H, H, A, lda, cx->Wall ? cx->Wall : cx->Wp[g0], beta, C + g0 * H, ldc,
                         RNN_OFS(bias, g0 * H), failed);
        return;
    }
    if (rows != 1) {
        for (int g = g0; g < g0 + ng; ++g)
            NNC_FN(rnn_gemm)(rows, j1 - j0, H, A, lda, cx->Wp[g] + (j0 / NR) * H * NR, beta, C + g * H + j0, ldc,
                             RNN_OFS(bias, g * H + j0), failed);
        return;
    }
    NNC_FN(gemm_args) ga = {0, 1, j1 - j0, H, 1, beta, A, lda, 0, NULL, 0, NULL, C, ldc, NULL, NNC_ACT_LINEAR};
    NNC_FN(rnn_strm) st[4];
    int ns = 0;
    for (nnc_ssize j = j0; j < j1; j += cw)
        for (int g = g0; g < g0 + ng; ++g) {
            st[ns].b = cx->Wp[g] + (j / NR) * H * NR + j % NR;
            st[ns].c = C + g * H + j;
            st[ns].bias = RNN_OFS(bias, g * H + j);
            st[ns].ncols = NNC_MIN(cw, j1 - j);
            if (++ns == 4) {
                NNC_FN(rnn_gemv_4)(st, A, H, NR, &ga);
                ns = 0;
            }
        }
    if (ns == 3) NNC_FN(rnn_gemv_3)(st, A, H, NR, &ga);
    else if (ns == 2) NNC_FN(rnn_gemv_2)(st, A, H, NR, &ga);
    else if (ns == 1) NNC_FN(rnn_gemv_1)(st, A, H, NR, &ga);
}

// One phase of step t for batch rows [r0, r1) and hidden units [j0, j1)
// (j0 a multiple of the GEMM's panel width).
static void NNC_FN(rnn_fwd_piece)(const NNC_FN(rnn_ctx) *cx, nnc_ssize t, int phase, nnc_ssize r0, nnc_ssize r1,
                                  nnc_ssize j0, nnc_ssize j1, int *failed)
{
    const nnc_rnn_desc *d = cx->d;
    const nnc_ssize T = d->t, H = d->h, GH = cx->G * H, rows = r1 - r0, w = j1 - j0;
    if (rows <= 0) return;  // no row runs step t (lengths)
    const nnc_ssize lda = T * GH, ldh = T * H, off = r0 * T + t;
    const NNC_T *hp = t ? cx->hs + (off - 1) * H : RNN_OFS(cx->h0, r0 * H);
    const nnc_ssize ldhp = t ? ldh : H;
    NNC_T *at = cx->a + off * GH, *ht = cx->hs + off * H + j0;
    switch (d->cell) {
    case NNC_RNN_SIMPLE:  // a is hs itself
        if (hp) NNC_FN(rnn_rec)(cx, rows, hp, ldhp, 0, 1, at, lda, 1, NULL, j0, j1, failed);
        for (nnc_ssize r = 0; r < rows; ++r) NNC_FN(act_apply)(at + r * lda + j0, at + r * lda + j0, w, d->act, 0);
        break;
    case NNC_RNN_LSTM: {
        const NNC_T *cp = t ? cx->cs + (off - 1) * H : RNN_OFS(cx->c0, r0 * H);
        if (hp) NNC_FN(rnn_rec)(cx, rows, hp, ldhp, 0, 4, at, lda, 1, NULL, j0, j1, failed);
        NNC_FN(lstm_rows_fwd)(rows, w, H, at + j0, lda, RNN_OFS(cp, j0), t ? ldh : H, cx->cs + off * H + j0, ldh,
                              ht, ldh, d->training);
        break;
    }
    default:
        if (d->reset_after) {
            NNC_T *q = cx->q + r0 * GH;
            if (hp)
                NNC_FN(rnn_rec)(cx, rows, hp, ldhp, 0, 3, q, GH, 0, cx->bh, j0, j1, failed);
            else
                for (nnc_ssize r = 0; r < rows; ++r)
                    for (int g = 0; g < 3; ++g)
                        memcpy(q + r * GH + g * H + j0, cx->bh + g * H + j0, sizeof(NNC_T) * (size_t)w);
            NNC_FN(gru_rows_fwd)(rows, w, H, at + j0, lda, q + j0, GH, RNN_OFS(hp, j0), ldhp, ht, ldh,
                                 cx->aux + off * H + j0, ldh, d->training);
        } else if (phase == 0) {
            if (hp) NNC_FN(rnn_rec)(cx, rows, hp, ldhp, 0, 2, at, lda, 1, NULL, j0, j1, failed);
            NNC_FN(gru_rows_gates)(rows, w, H, at + j0, lda, RNN_OFS(hp, j0), ldhp, cx->aux + off * H + j0, ldh);
        } else {
            if (hp) NNC_FN(rnn_rec)(cx, rows, cx->aux + off * H, ldh, 2, 1, at, lda, 1, NULL, j0, j1, failed);
            NNC_FN(gru_rows_fwd)(rows, w, H, at + j0, lda, NULL, 0, RNN_OFS(hp, j0), ldhp, ht, ldh, NULL, 0,
                                 d->training);
        }
    }
}

#undef RNN_OFS
