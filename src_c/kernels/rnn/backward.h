// kernels/rnn/backward.h - backpropagation through time of SimpleRNN, LSTM and
// GRU (template; see nnc_internal.h and the overview in rnn/context.h).

#include "runtime/workspace.h"

// The backward's workspace, in this order: da (n*t, GH), dq (n*t, GH) for GRU
// reset_after = 1 (else dq is da), h_prev (n*t, h) the state each step
// started from, and W_h packed (see rnn_pack_bwd); with lengths also the
// packed rows' x (n*t, f), r*h_{t-1} (n*t, h; GRU reset_after = 0) and the
// first packed row of every step (t + 1 nnc_ssize).  Sizes in elements
// (the last in bytes); returns 0 on overflow.
#define RNN_BWD_PIECES 7
static int NNC_FN(rnn_bwd_ws_counts)(const nnc_rnn_desc *d, nnc_ssize counts[RNN_BWD_PIECES])
{
    const nnc_ssize H = d->h, GH = NNC_FN(rnn_gates)(d) * H;
    const int two_products = NNC_FN(rnn_phases)(d) == 2, packed = d->lengths != NULL;
    const nnc_ssize wh1 = NNC_FN(gemm_packed_b_size)(H, two_products ? 2 * H : GH);
    const nnc_ssize wh2 = two_products ? NNC_FN(gemm_packed_b_size)(H, H) : 0;
    nnc_ssize rows = 0;
    for (int i = 0; i < RNN_BWD_PIECES; ++i) counts[i] = 0;
    return d->n >= 0 && d->t >= 0 && H >= 0 && d->f >= 0 && wh1 >= 0 && wh2 >= 0 &&
           nnc_mul_ok(d->n, d->t, &rows) && nnc_mul_ok(rows, GH, &counts[0]) && nnc_mul_ok(rows, H, &counts[2]) &&
           !__builtin_add_overflow(wh1, wh2, &counts[3]) &&
           (d->cell != NNC_RNN_GRU || !d->reset_after || nnc_mul_ok(rows, GH, &counts[1])) &&
           (!packed || (nnc_mul_ok(rows, d->f, &counts[4]) && (!two_products || nnc_mul_ok(rows, H, &counts[5])) &&
                        nnc_mul_ok(d->t + 1, (nnc_ssize)sizeof(nnc_ssize), &counts[6])));
}

// Elements of the workspace rnn_bwd needs; -1 on overflow.
static nnc_ssize NNC_FN(rnn_bwd_workspace_size)(const nnc_rnn_desc *d)
{
    nnc_ssize counts[RNN_BWD_PIECES], bytes = NNC_WS_ALIGN;
    const nnc_ssize el = (nnc_ssize)sizeof(NNC_T);
    if (!NNC_FN(rnn_bwd_ws_counts)(d, counts))
        return -1;
    for (int i = 0; i < RNN_BWD_PIECES; ++i)
        if (!nnc_ws_reserve(&bytes, counts[i], i == RNN_BWD_PIECES - 1 ? 1 : el)) return -1;
    return nnc_ws_elements(bytes, el);
}

// Where the backward keeps its own per-step rows (da, dq, h_prev and, with
// lengths, the rows of x and r*h_{t-1} the weight gradients need): in the
// forward's layout (row r of step t at r*t + t), or with lengths packed
// step after step (row r of step t at start[t] + r: the rows that ran step
// t, a prefix, are adjacent), so the weight gradients are GEMMs over the
// steps that ran, padding excluded.
typedef struct {
    const nnc_ssize *start;  // NULL: the forward's layout
    NNC_T *da, *dq, *hprev, *xp, *auxp;
} NNC_FN(rnn_bwd_rows_ws);

// Packs W_h for the backward into buf, op(B) = W_h (GH, h) (GRU reset_after
// = 0: rows r,u and rows c apart, two products).
static void NNC_FN(rnn_pack_bwd)(NNC_FN(rnn_ctx) *cx, const NNC_T *Wh, NNC_T *buf)
{
    const nnc_ssize H = cx->d->h;
    const int split = NNC_FN(rnn_phases)(cx->d) == 2;
    const nnc_ssize gh1 = split ? 2 * H : cx->G * H;
    const nnc_ssize s1 = NNC_FN(gemm_packed_b_size)(H, gh1);
    NNC_FN(gemm_pack_b)(buf, 0, H, gh1, Wh, H);
    if (split) NNC_FN(gemm_pack_b)(buf + s1, 0, H, H, Wh + 2 * H * H, H);
    cx->Wb1 = buf;
    cx->Wb2 = split ? buf + s1 : NULL;
}

// The reverse time loop for batch rows [r0, r1): da (and dq), h_prev rows,
// and dh0/dc0.  With lengths a row joins at its last step (its dh and dC
// zero: nothing flows back from padded steps).
static int NNC_FN(rnn_bwd_rows)(const NNC_FN(rnn_ctx) *cx, nnc_ssize r0, nnc_ssize r1, const NNC_T *h0,
                                const NNC_T *c0, const NNC_T *hs, const NNC_T *cs, const NNC_T *gates,
                                const NNC_T *aux, const NNC_T *dhs, const NNC_FN(rnn_bwd_rows_ws) *w, NNC_T *dh0,
                                NNC_T *dc0)
{
    const nnc_rnn_desc *d = cx->d;
    const nnc_ssize T = d->t, F = d->f, H = d->h, GH = cx->G * H, rows = r1 - r0;
    const nnc_ssize lda = T * GH, ldh = T * H;
    const nnc_ssize rs = w->start ? 1 : T, ldw = rs * GH;  // the backward's own rows: row stride
    NNC_T *da = w->da, *dq = w->dq, *hprev = w->hprev;
    const int ra = d->cell == NNC_RNN_GRU && d->reset_after;
    int failed = 0;
    // Per thread: dh (the gradient w.r.t. h_{t-1} being built), dc or drh,
    // and with d->order the step's rows of dhs.
    const int gather = d->order != NULL;
    NNC_T *dh = nnc_tls_scratch(NNC_SCRATCH_WORK, sizeof(NNC_T) * (size_t)rows * (size_t)H * (size_t)(2 + gather));
    if (!dh) return NNC_ENOMEM;
    NNC_T *dc = dh + rows * H;  // LSTM: dC; GRU reset_after = 0: drh
    NNC_T *dhg = dc + rows * H;
    if (d->cell == NNC_RNN_LSTM) memset(dc, 0, sizeof(NNC_T) * (size_t)rows * (size_t)H);
    if (d->lengths) memset(dh, 0, sizeof(NNC_T) * (size_t)rows * (size_t)H);
    for (nnc_ssize t = T - 1; t >= 0 && !failed; --t) {
        const nnc_ssize active = NNC_FN(lengths_active_end)(d->lengths, r0, r1, t) - r0;  // rows r0.. that ran step t
        if (active == 0) continue;
        const NNC_T *hp = t ? hs + (r0 * T + t - 1) * H : (h0 ? h0 + r0 * H : NULL);
        const nnc_ssize ldhp = t ? ldh : H;
        const nnc_ssize off = (r0 * T + t), woff = w->start ? w->start[t] + r0 : off;
        const NNC_T *dhr = t == T - 1 && !d->lengths ? NULL : dh;  // dh_rec from step t+1
        const NNC_T *dht = gather ? dhg : dhs + off * H;  // dh_ext, rows lde apart
        const nnc_ssize lde = gather ? H : ldh;
        NNC_T *dat = da + woff * GH;
        for (nnc_ssize r = 0; r < active; ++r) {
            NNC_T *dst = hprev + (woff + r * rs) * H;
            if (hp) memcpy(dst, hp + r * ldhp, sizeof(NNC_T) * (size_t)H);
            else memset(dst, 0, sizeof(NNC_T) * (size_t)H);
            if (w->xp)
                memcpy(w->xp + (woff + r) * F, cx->x + (NNC_FN(rnn_x_row)(d, r0 + r) * T + t) * F,
                       sizeof(NNC_T) * (size_t)F);
            if (w->auxp) memcpy(w->auxp + (woff + r) * H, aux + (off + r * T) * H, sizeof(NNC_T) * (size_t)H);
            if (gather) memcpy(dhg + r * H, dhs + (d->order[r0 + r] * T + t) * H, sizeof(NNC_T) * (size_t)H);
        }
        switch (d->cell) {
        case NNC_RNN_SIMPLE:
            NNC_FN(rnn_rows_bwd)(active, H, hs + off * H, ldh, dht, lde, dhr, H, dat, ldw, d->act);
            NNC_FN(rnn_gemm)(active, H, GH, dat, ldw, cx->Wb1, 0, dh, H, NULL, &failed);
            break;
        case NNC_RNN_LSTM: {
            const NNC_T *cp = t ? cs + (off - 1) * H : (c0 ? c0 + r0 * H : NULL);
            NNC_FN(lstm_rows_bwd)(active, H, gates + off * GH, lda, cp, t ? ldh : H, cs + off * H, ldh,
                                  dht, lde, dhr, H, dc, H, dat, ldw);
            NNC_FN(rnn_gemm)(active, H, GH, dat, ldw, cx->Wb1, 0, dh, H, NULL, &failed);
            break;
        }
        default:
            if (ra) {
                NNC_T *dqt = dq + woff * GH;
                NNC_FN(gru_rows_bwd)(active, H, gates + off * GH, lda, aux + off * H, ldh, hp, ldhp, dht,
                                     lde, dhr, H, dat, ldw, dqt, ldw, dh, H);
                NNC_FN(rnn_gemm)(active, H, GH, dqt, ldw, cx->Wb1, 1, dh, H, NULL, &failed);
            } else {
                NNC_FN(gru_rows_bwd)(active, H, gates + off * GH, lda, NULL, 0, hp, ldhp, dht, lde, dhr,
                                     H, dat, ldw, NULL, 0, dh, H);
                NNC_FN(rnn_gemm)(active, H, H, dat + 2 * H, ldw, cx->Wb2, 0, dc, H, NULL, &failed);
                NNC_FN(gru_rows_bwd_r)(active, H, gates + off * GH, lda, hp, ldhp, dc, H, dat, ldw, dh, H);
                NNC_FN(rnn_gemm)(active, H, 2 * H, dat, ldw, cx->Wb1, 1, dh, H, NULL, &failed);
            }
        }
    }
    if (dh0) memcpy(dh0 + r0 * H, dh, sizeof(NNC_T) * (size_t)rows * (size_t)H);
    if (dc0) memcpy(dc0 + r0 * H, dc, sizeof(NNC_T) * (size_t)rows * (size_t)H);
    return failed ? NNC_ENOMEM : NNC_OK;
}

// dx from its packed rows dxp (with lengths): each step's rows in place (in
// the caller's order with d->order), zeros past every row's length.
static void NNC_FN(rnn_unpack_dx)(const nnc_rnn_desc *d, const nnc_ssize *start, const NNC_T *dxp, NNC_T *dx)
{
    const nnc_ssize T = d->t, F = d->f;
    for (nnc_ssize t = 0; t < T; ++t)
        for (nnc_ssize r = 0; r < start[t + 1] - start[t]; ++r)
            memcpy(dx + (NNC_FN(rnn_x_row)(d, r) * T + t) * F, dxp + (start[t] + r) * F, sizeof(NNC_T) * (size_t)F);
    NNC_FN(rnn_zero_padding)(d, dx, F, 0, d->n, d->order);
}

// The op (see ops/rnn.def): the reverse time loop by batch blocks (>= 4 rows
// per thread; each thread owns its rows' da, dq, h_prev and dh0/dc0), then
// the weight, input and bias gradients over all n*t rows.
static int NNC_FN(rnn_bwd)(const nnc_rnn_desc *d, const NNC_T *x, const NNC_T *Wx, const NNC_T *Wh,
                           const NNC_T *h0, const NNC_T *c0, const NNC_T *hs, const NNC_T *cs, const NNC_T *gates,
                           const NNC_T *aux, const NNC_T *dhs, NNC_T *dx, NNC_T *dWx, NNC_T *dWh, NNC_T *dbx,
                           NNC_T *dbh, NNC_T *dh0, NNC_T *dc0, NNC_T *work)
{
    const nnc_ssize N = d->n, T = d->t, F = d->f, H = d->h, G = NNC_FN(rnn_gates)(d), GH = G * H;
    const int ra = d->cell == NNC_RNN_GRU && d->reset_after;
    if (NNC_FN(rnn_bwd_workspace_size)(d) < 0) return NNC_EOVERFLOW;
    if (!NNC_FN(lengths_ok)(d->lengths, d->n, d->t) || !NNC_FN(rnn_order_ok)(d)) return NNC_EINVAL;
    if (H <= 0) return NNC_OK;
    const nnc_ssize NT = N * T;
    nnc_ssize counts[RNN_BWD_PIECES];
    NNC_FN(rnn_bwd_ws_counts)(d, counts);
    char *cursor = (char *)work;
    NNC_FN(rnn_bwd_rows_ws) w;
    w.da = nnc_ws_take(&cursor, counts[0], sizeof(NNC_T));
    w.dq = ra ? nnc_ws_take(&cursor, counts[1], sizeof(NNC_T)) : w.da;
    w.hprev = nnc_ws_take(&cursor, counts[2], sizeof(NNC_T));
    NNC_T *wh_packed = nnc_ws_take(&cursor, counts[3], sizeof(NNC_T));
    w.xp = d->lengths && F > 0 ? nnc_ws_take(&cursor, counts[4], sizeof(NNC_T)) : NULL;
    w.auxp = counts[5] ? nnc_ws_take(&cursor, counts[5], sizeof(NNC_T)) : NULL;
    nnc_ssize *start = d->lengths ? nnc_ws_take(&cursor, counts[6], 1) : NULL;
    w.start = start;
    nnc_ssize M = NT;  // rows of the weight gradients: every step, or the steps that ran
    if (start) {
        start[0] = 0;
        for (nnc_ssize t = 0; t < T; ++t) start[t + 1] = start[t] + NNC_FN(lengths_active_end)(d->lengths, 0, N, t);
        M = start[T];
    }
    const NNC_T *xr = start ? w.xp : x, *auxr = start ? w.auxp : aux;
    NNC_T *da = w.da, *dq = w.dq, *hprev = w.hprev;
    int failed = 0;
    if (NT > 0) {
        NNC_FN(rnn_ctx) cx = {.d = d, .G = G, .h0 = h0, .c0 = c0, .x = x};
        NNC_FN(rnn_pack_bwd)(&cx, Wh, wh_packed);
        const int nt = (int)NNC_MAX(1, NNC_MIN((nnc_ssize)nnc_threads_for(2.0 * (double)NT * (double)GH * (double)H),
                                               N / 4));
        #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static, 1)
        for (int b = 0; b < nt; ++b) {
            const nnc_ssize r0 = NNC_FN(rnn_block_start)(d, nt, b), r1 = NNC_FN(rnn_block_start)(d, nt, b + 1);
            if (r0 < r1 && NNC_FN(rnn_bwd_rows)(&cx, r0, r1, h0, c0, hs, cs, gates, aux, dhs, &w, dh0, dc0) !=
                               NNC_OK) {
                #pragma omp atomic write
                failed = 1;
            }
        }
        if (failed) return NNC_ENOMEM;
    }
    // Weight and input gradients: large GEMMs over the M rows of the steps
    // that ran (with lengths, dx goes through the packed x's buffer).
    int st = NNC_OK;
    if (F > 0) {
        st |= NNC_FN(gemm)(1, 0, GH, F, M, 1, da, GH, xr, F, 0, dWx, F, NULL, NNC_ACT_LINEAR);
        st |= NNC_FN(gemm)(0, 0, M, F, GH, 1, da, GH, Wx, F, 0, start ? w.xp : dx, F, NULL, NNC_ACT_LINEAR);
        if (start) NNC_FN(rnn_unpack_dx)(d, start, w.xp, dx);
    }
    if (d->cell == NNC_RNN_GRU && !d->reset_after) {
        st |= NNC_FN(gemm)(1, 0, 2 * H, H, M, 1, da, GH, hprev, H, 0, dWh, H, NULL, NNC_ACT_LINEAR);
        st |= NNC_FN(gemm)(1, 0, H, H, M, 1, da + 2 * H, GH, auxr, H, 0, dWh + 2 * H * H, H, NULL,
                           NNC_ACT_LINEAR);
    } else {
        st |= NNC_FN(gemm)(1, 0, GH, H, M, 1, dq, GH, hprev, H, 0, dWh, H, NULL, NNC_ACT_LINEAR);
    }
    NNC_FN(colsum)(dbx, da, M, GH);
    if (dbh) NNC_FN(colsum)(dbh, dq, M, GH);
    if (NT == 0) {
        if (dh0) memset(dh0, 0, sizeof(NNC_T) * (size_t)(N * H));
        if (dc0) memset(dc0, 0, sizeof(NNC_T) * (size_t)(N * H));
    }
    return st ? NNC_ENOMEM : NNC_OK;
}

#undef RNN_BWD_PIECES
