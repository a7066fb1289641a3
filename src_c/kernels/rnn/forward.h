// kernels/rnn/forward.h - the whole-sequence forward of SimpleRNN, LSTM and GRU
// (template; see nnc_internal.h and the overview in rnn/context.h).

#if defined(__unix__) || defined(__APPLE__)
#include <sched.h>
#endif


// Column split: below this many flops per step a team is not worth a sync.
#define RNN_SPLIT_WORK 2.5e5
#define RNN_OFS(p, j) ((p) ? (p) + (j) : NULL)

// Per (step, phase) slice claims (a bit per slice) and completions, a cache
// line each.
typedef struct {
    unsigned long long claim;
    int done;
    char pad[52];
} NNC_FN(rnn_sync);

// The recurrent product of gates [g0, g0+ng) for hidden units [j0, j1) (j0 a
// multiple of NR) and `rows` rows of A (lda apart):
// C[:, g*H + j] = A W_h[g]^T + beta C (+ bias[g*H + j]).  One row: the GEMV
// streams above; more rows: the GEMM on the packed blocks.
static void NNC_FN(rnn_rec)(const NNC_FN(rnn_ctx) *cx, nnc_ssize rows, const NNC_T *A, nnc_ssize lda, int g0,
                            int ng, NNC_T *C, nnc_ssize ldc, NNC_T beta, const NNC_T *bias, nnc_ssize j0,
                            nnc_ssize j1, int *failed)
{
    const nnc_ssize H = cx->d->h, NR = cx->NR, cw = 2 * NNC_VLEN;
    if (rows != 1 && j0 == 0 && j1 == H && H % NR == 0) {  // adjacent panels: one product, A packed once
        NNC_FN(rnn_gemm)(rows, ng * H, H, A, lda, cx->Wp[g0], beta, C + g0 * H, ldc, RNN_OFS(bias, g0 * H), failed);
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
    const nnc_ssize lda = T * GH, ldh = T * H, off = r0 * T + t;
    const NNC_T *hp = t ? cx->hs + (off - 1) * H : RNN_OFS(cx->h0, r0 * H);
    const nnc_ssize ldhp = t ? ldh : H;
    NNC_T *at = cx->a + off * GH, *ht = cx->hs + off * H + j0;
    switch (d->cell) {
    case NNC_RNN_SIMPLE:  // a is hs itself
        if (hp) NNC_FN(rnn_rec)(cx, rows, hp, ldhp, 0, 1, at, lda, 1, NULL, j0, j1, failed);
        for (nnc_ssize r = 0; r < rows; ++r) NNC_FN(act_apply)(at + r * lda + j0, at + r * lda + j0, w, d->act);
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

// Busy-wait step: pause, and after a while give the core away (the thread
// we wait for may be descheduled on this very core).
NNC_INLINE void NNC_FN(rnn_spin_wait)(unsigned spins)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
#if defined(__unix__) || defined(__APPLE__)
    if (spins > 2000) sched_yield();
#endif
}

// The set-up of hidden units [j0, j1) (a thread's block of slices, stage -1
// of rnn_fwd_split): pack their columns of every gate block of W_h (a
// thread's own slices then sit in its cache) and their columns of the input
// projection of every step (the same GEMM elements as the one-GEMM
// projection, so bitwise that result).
static void NNC_FN(rnn_slice_setup)(const NNC_FN(rnn_ctx) *cx, nnc_ssize j0, nnc_ssize j1, int *failed)
{
    const nnc_rnn_desc *d = cx->d;
    const nnc_ssize H = d->h, GH = cx->G * H, F = d->f, NR = cx->NR;
    for (nnc_ssize g = 0; g < cx->G; ++g) {
        for (nnc_ssize j = j0; j < j1; j += NR)
            NNC_FN(gemm_pack_b_one)(cx->Wbuf + g * cx->Wgs, 1, H, H, cx->Wh + g * H * H, H, j / NR);
        NNC_FN(gemm_args) ga = {0, d->n * d->t, j1 - j0, F, 1, 0, cx->x, F, 1, cx->Wx + (g * H + j0) * F, F, NULL,
                                cx->a + g * H + j0, GH, cx->bias + g * H + j0, NNC_ACT_LINEAR};
        if (NNC_FN(gemm_run)(&ga, 1) != NNC_OK) __atomic_store_n(failed, 1, __ATOMIC_RELAXED);
    }
}

// Column-split time loop (small batches): every (step, phase) is cut into
// `nch` slices of hidden units (all gates of those units).  Each thread owns
// a fixed block of slices for the whole sequence, so its part of W_h stays
// in its own cache; it claims its own slices first (a bit each), then any
// slice nobody has claimed yet, so a thread that is descheduled (a loaded
// core) never holds back work it has not started: the other thread takes it
// over.  A slice's result does not depend on which thread computes it.  A
// thread that waits longer than the stall threshold (stall_ns; 0: never)
// for a claimed slice becomes the lead
// (sync[-2].done = its slot + 1): the others stop after the slice they hold,
// and it finishes the sequence alone.  sync[-2].claim: when the first thread
// got through the last step.
static void NNC_FN(rnn_fwd_split)(const NNC_FN(rnn_ctx) *cx, NNC_FN(rnn_sync) *sync, nnc_ssize chunk, int nch,
                                  int nt, long long stall_ns, int *failed)
{
    const nnc_rnn_desc *d = cx->d;
    const int ph = NNC_FN(rnn_phases)(d);
    const nnc_ssize H = d->h;
    int *lead = &sync[-2].done;
    unsigned long long mine = 0;
    int me = 0;
    #pragma omp for schedule(static) nowait
    for (int k = 0; k < nt; ++k) {
        me = k;
        for (int c = nch * k / nt; c < nch * (k + 1) / nt; ++c) mine |= 1ull << c;
    }
    // Stage -1 (sync[-1]): the set-up of each thread's block of slices (one
    // claim per block: one projection GEMM per gate); then the steps.
    const int units = NNC_MIN(nt, nch);
    for (nnc_ssize st = -1; st < d->t * ph; ++st) {
        NNC_FN(rnn_sync) *s = sync + st;
        const int n = st < 0 ? units : nch;
        const unsigned long long own = st >= 0 ? mine : me < units ? 1ull << me : 0;
        // Own work in order, then the others' from the far end.
        for (int i = 0; i < 2 * n; ++i) {
            const int c = i < n ? i : 2 * n - 1 - i;
            const unsigned long long bit = 1ull << c;
            if (!(own & bit) != (i >= n)) continue;
            const int l = __atomic_load_n(lead, __ATOMIC_RELAXED);
            if (l && l != me + 1) return;
            if ((__atomic_load_n(&s->claim, __ATOMIC_RELAXED) & bit) ||
                (__atomic_fetch_or(&s->claim, bit, __ATOMIC_RELAXED) & bit))
                continue;
            if (st < 0)
                NNC_FN(rnn_slice_setup)(cx, nch * c / units * chunk, NNC_MIN(H, nch * (c + 1) / units * chunk),
                                        failed);
            else
                NNC_FN(rnn_fwd_piece)(cx, st / ph, (int)(st % ph), 0, d->n, c * chunk, NNC_MIN(H, (c + 1) * chunk),
                                      failed);
            __atomic_fetch_add(&s->done, 1, __ATOMIC_RELEASE);
        }
        long long t0 = 0;
        for (unsigned spins = 0; __atomic_load_n(&s->done, __ATOMIC_ACQUIRE) < n; ++spins) {
            NNC_FN(rnn_spin_wait)(spins);
            if ((spins & 255) != 255) continue;
            const int l = __atomic_load_n(lead, __ATOMIC_RELAXED);
            if (l && l != me + 1) return;  // nothing claimed here: the lead finishes
            const long long now = nnc_now_ns();
            if (!t0) t0 = now;
            else if (stall_ns > 0 && now - t0 > stall_ns && !l) {
                int z = 0;
                __atomic_compare_exchange_n(lead, &z, me + 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
            }
        }
    }
    unsigned long long z = 0;  // the first thread through the last step: when all was done
    __atomic_compare_exchange_n(&sync[-2].claim, &z, (unsigned long long)nnc_now_ns(), 0,
                                __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

// Allocates the forward weights (every gate block of W_h apart, each packed
// as op(B) = W_h[g]^T) and packs them unless `pack` is 0 (rnn_slice_setup
// does).  Returns the buffer (free with nnc_aligned_free) or NULL.
static NNC_T *NNC_FN(rnn_pack_fwd)(NNC_FN(rnn_ctx) *cx, const NNC_T *Wh, int pack)
{
    const nnc_ssize H = cx->d->h, s1 = NNC_FN(gemm_packed_b_size)(H, H);
    nnc_ssize tot;
    if (s1 < 0 || !nnc_mul_ok(s1 * cx->G, (nnc_ssize)sizeof(NNC_T), &tot)) return NULL;
    NNC_T *buf = nnc_aligned_alloc((size_t)tot);
    if (!buf) return NULL;
    cx->Wh = Wh;
    cx->Wbuf = buf;
    cx->Wgs = s1;
    for (nnc_ssize g = 0; g < cx->G; ++g) cx->Wp[g] = buf + g * s1;
    if (pack) {
        // Every panel of every gate block in one parallel loop (W_h is
        // usually cold here: the previous call streamed its sequence through
        // the caches).
        const nnc_ssize np = NNC_CEILDIV(H, cx->NR), G = cx->G;
        const int nt = NNC_FN(gemm_pack_threads)((double)G * (double)H * (double)H);
        #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (nnc_ssize q = 0; q < G * np; ++q)
            NNC_FN(gemm_pack_b_one)(buf + q / np * s1, 1, H, H, Wh + q / np * H * H, H, q % np);
    }
    return buf;
}

static int NNC_FN(rnn_forward)(const nnc_rnn_desc *d, const NNC_T *x, const NNC_T *Wx, const NNC_T *Wh,
                               const NNC_T *bx, const NNC_T *bh, const NNC_T *h0, const NNC_T *c0, NNC_T *hs,
                               NNC_T *cs, NNC_T *gates, NNC_T *aux)
{
    const nnc_ssize N = d->n, T = d->t, F = d->f, H = d->h, G = NNC_FN(rnn_gates)(d), GH = G * H;
    nnc_ssize nt_rows, tmp;
    if (N <= 0 || T <= 0 || H <= 0) return NNC_OK;
    if (!nnc_mul_ok(N, T, &nt_rows) || !nnc_mul_ok(nt_rows, GH, &tmp) || !nnc_mul_ok(nt_rows, F, &tmp))
        return NNC_EOVERFLOW;
    NNC_FN(rnn_ctx) cx = {.d = d, .G = G, .NR = NNC_FN(gemm_packed_b_size)(1, 1), .bh = bh, .h0 = h0, .c0 = c0,
                          .hs = hs, .cs = cs, .a = d->cell == NNC_RNN_SIMPLE ? hs : gates, .aux = aux, .x = x,
                          .Wx = Wx, .bias = bx};
    // The time loop: batch blocks of >= 4 rows per thread, else (small batch,
    // big step) slices of the hidden units, else one thread.
    const double step_work = 2.0 * (double)N * (double)GH * (double)H;
    int nt = nnc_threads_for(step_work * (double)T);
    const int row_nt = (int)NNC_MIN((nnc_ssize)nt, N / 4);
    // Split slices: whole panels giving at least four GEMV streams (2*VLEN
    // columns of one gate each), at most 64 slices (a claim bit each).
    const nnc_ssize panels = NNC_CEILDIV(H, cx.NR), per_panel = G * (cx.NR / (2 * NNC_VLEN));
    const nnc_ssize chunk = NNC_MAX(NNC_CEILDIV(4, per_panel), NNC_CEILDIV(panels, 64)) * cx.NR;
    const int nch = (int)NNC_CEILDIV(H, chunk);
    // (One thread for a while after a stall: nnc_threads_for gave nt = 1.)
    const int split = row_nt < 2 && nt > 1 && step_work >= RNN_SPLIT_WORK && nch >= 2;
    // GRU reset_after = 0 adds b_h to the input projection's bias.
    NNC_T *bsum = NULL;
    if (d->cell == NNC_RNN_GRU && !d->reset_after) {
        bsum = nnc_aligned_alloc(sizeof(NNC_T) * (size_t)GH);
        if (!bsum) return NNC_ENOMEM;
        for (nnc_ssize j = 0; j < GH; ++j) bsum[j] = bx[j] + bh[j];
        cx.bias = bsum;
    }
    int failed = 0;
    // 1. input projection: in the time loop, a step at a time, for batches
    // of >= 4 rows (W_x packed once), unless one thread runs the loop and
    // the projection outweighs it; else one GEMM over every step first, on
    // threads only if it outweighs the (one-thread) time loop: a parallel
    // region exposes the call to a descheduled thread's join (a loaded core)
    // for a small gain.
    const double pw = 2.0 * (double)nt_rows * (double)GH * (double)F;
    const int big_proj = pw > step_work * (double)T;
    const int stepwise = !split && (row_nt >= 2 || (row_nt == 1 && !big_proj));
    if (!split && !stepwise) {
        NNC_FN(gemm_args) g = {0, nt_rows, GH, F, 1, 0, x, F, 1, Wx, F, NULL, cx.a, GH, cx.bias, NNC_ACT_LINEAR};
        failed = NNC_FN(gemm_run)(&g, big_proj ? nnc_threads_for(pw) : 1) != NNC_OK;
    }
    // 2. W_h packed once (by slices in rnn_fwd_split); scratch.
    NNC_T *wbuf = NNC_FN(rnn_pack_fwd)(&cx, Wh, !split);
    NNC_T *xbuf = NULL;
    if (stepwise) {
        const nnc_ssize sx = NNC_FN(gemm_packed_b_size)(GH, F);
        if (sx < 0 || !(xbuf = nnc_aligned_alloc(sizeof(NNC_T) * (size_t)NNC_MAX(1, sx)))) failed = 1;
        else NNC_FN(gemm_pack_b)(xbuf, 1, GH, F, Wx, F);
    }
    NNC_T *qbuf = NULL;
    if (d->cell == NNC_RNN_GRU && d->reset_after) qbuf = cx.q = nnc_aligned_alloc(sizeof(NNC_T) * (size_t)(N * GH));
    NNC_FN(rnn_sync) *sync = NULL;
    if (split) {
        // Two more lines first: the lead and the set-up (see rnn_fwd_split).
        size_t ns = (size_t)(T * NNC_FN(rnn_phases)(d) + 2);
        sync = nnc_aligned_alloc(sizeof(*sync) * ns);
        if (sync) memset(sync, 0, sizeof(*sync) * ns);
    } else {
        nt = NNC_MAX(1, row_nt);
    }
    if (failed || !wbuf || (d->cell == NNC_RNN_GRU && d->reset_after && !qbuf) || (split && !sync)) {
        failed = 1;
    } else if (split) {  // 1. (by slices) and 3. in one parallel region
        const long long stall_ns = nnc_stall_threshold_ns(-1);
        #pragma omp parallel num_threads(nt) if (nt > 1)
        NNC_FN(rnn_fwd_split)(&cx, sync + 2, chunk, nch, nt, stall_ns, &failed);
        // A lead, or a partner descheduled at the end of the region (the
        // join waits for it): a stall.
        if (nt > 1)
            nnc_stall_note(sync[0].done ||
                           (sync[0].claim && nnc_now_ns() - (long long)sync[0].claim > stall_ns));
    } else {  // 3. by row blocks (stepwise: each thread runs 1. for its rows step by step)
        const nnc_ssize rchunk = NNC_CEILDIV(N, nt);
        const int ph = NNC_FN(rnn_phases)(d);
        // A block on a descheduled thread holds up the call (its rows cannot
        // move): the stall guard hears of it, as of a conv's region.
        nnc_region_clock clk;
        nnc_region_begin(&clk, nt);
        #pragma omp parallel num_threads(nt) if (nt > 1)
        {
            nnc_region_started(&clk);
            #pragma omp for schedule(static, 1) nowait
            for (int b = 0; b < nt; ++b) {
                nnc_ssize r0 = b * rchunk, r1 = NNC_MIN(N, r0 + rchunk);
                for (nnc_ssize t = 0; t < T && r0 < r1; ++t) {
                    // 1. for step t of the block's rows right before the
                    // step reads it (so it is still in cache): the same GEMM
                    // elements as one GEMM over every row
                    NNC_FN(gemm_args) g = {0, r1 - r0, GH, F, 1, 0, x + (r0 * T + t) * F, T * F, 0, NULL, 0,
                                           xbuf, cx.a + (r0 * T + t) * GH, T * GH, cx.bias, NNC_ACT_LINEAR};
                    if (xbuf && NNC_FN(gemm_run)(&g, 1) != NNC_OK) {
                        #pragma omp atomic write
                        failed = 1;
                    }
                    for (int p = 0; p < ph; ++p) NNC_FN(rnn_fwd_piece)(&cx, t, p, r0, r1, 0, H, &failed);
                }
            }
            nnc_region_master_done(&clk);
        }
        nnc_region_end(&clk);
    }
    nnc_aligned_free(bsum);
    nnc_aligned_free(sync);
    nnc_aligned_free(qbuf);
    nnc_aligned_free(wbuf);
    nnc_aligned_free(xbuf);
    return failed ? NNC_ENOMEM : NNC_OK;
}

#undef RNN_SPLIT_WORK
#undef RNN_OFS
