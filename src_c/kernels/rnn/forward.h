// kernels/rnn/forward.h - the whole-sequence forward of SimpleRNN, LSTM and GRU
// (template; see nnc_internal.h and the overview in rnn/context.h): the
// choice of a time-loop schedule (rnn_fwd_choose), the three schedules, the
// workspace, and the op rnn_fwd.  The steps themselves are rnn/step.h.
#include "runtime/claim.h"
#include "runtime/workspace.h"

// Column split: below this many flops per step a team is not worth a sync.
#define RNN_SPLIT_WORK 2.5e5
// Flops per byte of W_h a thread's rows must do for batch blocks to beat
// slices when W_h is larger than L2 (rnn_fwd_choose): about one core's FMA
// peak over its L3 read bandwidth (Zen 4/5, Xeon: 117-258 GFLOP/s over
// 20-50 GB/s).
#define RNN_ROWS_MIN_INTENSITY 8.0
// Claim-board stages of the column split: the set-up of every thread's block
// of slices, then one stage per (step, phase).
#define RNN_SETUP_STAGE 0
#define RNN_FIRST_STEP_STAGE 1

#ifndef NNC_RNN_FWD_PATH
#define NNC_RNN_FWD_PATH
// The time-loop schedules of the forward.
enum rnn_fwd_path {
    RNN_FWD_ROWS,           // batch blocks of >= 4 rows per thread, the input projection step by step
    RNN_FWD_SLICES,         // slices of hidden units claimed by a team (small batch, big step)
    RNN_FWD_PROJECT_FIRST,  // the input projection as one GEMM, then the time loop on one thread
};
#endif

typedef struct {
    enum rnn_fwd_path path;
    int team;                // threads of the time loop
    int projection_threads;  // RNN_FWD_PROJECT_FIRST: threads of the projection GEMM
    nnc_ssize slice_width;   // RNN_FWD_SLICES: hidden units per slice (whole GEMM panels)
    int slices;              // RNN_FWD_SLICES: slices per (step, phase)
} NNC_FN(rnn_fwd_plan);

// The schedule for a call.  Batch blocks of >= 4 rows per thread when the
// batch allows two and the step is not bound by reading W_h (below), else
// (small batch, big step) slices of the hidden units, else one thread.
// The cost model of rows against slices: under batch blocks every thread
// reads all of W_h each step, under slices only its share, which may then
// stay in its L2.  When W_h is larger than a core's L2 (the CPU row's) and a
// thread's rows do fewer than RNN_ROWS_MIN_INTENSITY flops per byte of W_h,
// a step by rows is bound by every thread streaming all of W_h from L3, so
// the slices run it faster.  The input projection (1.) runs in the time loop, a step
// at a time, for batches of >= 4 rows, unless one thread runs the loop and
// the projection outweighs it; else one GEMM over every step first, on
// threads only if it outweighs the (one-thread) time loop: a parallel region
// exposes the call to a descheduled thread's join (a loaded core) for a
// small gain.  After a stall nnc_threads_for gives one thread for a while.
static NNC_FN(rnn_fwd_plan) NNC_FN(rnn_fwd_choose)(const nnc_rnn_desc *d, nnc_ssize nr)
{
    const nnc_ssize N = d->n, T = d->t, H = d->h, G = NNC_FN(rnn_gates)(d), GH = G * H;
    NNC_FN(rnn_fwd_plan) plan = {RNN_FWD_ROWS, 1, 1, 0, 0};
    const double step_flops = 2.0 * (double)N * (double)GH * (double)H;
    const int threads = nnc_threads_for(step_flops * (double)T);
    const int row_threads = (int)NNC_MIN((nnc_ssize)threads, N / 4);
    // Slices: whole panels giving at least four GEMV streams (2*VLEN columns
    // of one gate each), at most NNC_CLAIM_MAX_ITEMS slices.
    const nnc_ssize panels = NNC_CEILDIV(H, nr), streams_per_panel = G * (nr / (2 * NNC_VLEN));
    plan.slice_width = NNC_MAX(NNC_CEILDIV(4, streams_per_panel), NNC_CEILDIV(panels, NNC_CLAIM_MAX_ITEMS)) * nr;
    plan.slices = (int)NNC_CEILDIV(H, plan.slice_width);
    const double wh_bytes = (double)GH * (double)H * (double)sizeof(NNC_T);
    const int wh_bound = row_threads >= 2 && wh_bytes > 1024.0 * nnc_cpu()->l2_kib &&
                         step_flops / row_threads < RNN_ROWS_MIN_INTENSITY * wh_bytes;
    if ((row_threads < 2 || wh_bound) && threads > 1 && step_flops >= RNN_SPLIT_WORK && plan.slices >= 2) {
        plan.path = RNN_FWD_SLICES;
        plan.team = threads;
        return plan;
    }
    const double projection_flops = 2.0 * (double)(N * T) * (double)GH * (double)d->f;
    const int big_projection = projection_flops > step_flops * (double)T;
    plan.team = NNC_MAX(1, row_threads);
    if (row_threads >= 2 || (row_threads == 1 && !big_projection)) return plan;
    plan.path = RNN_FWD_PROJECT_FIRST;
    plan.projection_threads = big_projection ? nnc_threads_for(projection_flops) : 1;
    return plan;
}

// The forward's workspace, in this order: q (n, GH) (GRU reset_after = 1),
// b_x + b_h (GRU reset_after = 0), the claim board (RNN_FWD_SLICES), the
// packed W_h (every gate block apart), the packed W_x (RNN_FWD_ROWS).  The
// small per-step buffers come first (q behind the packed weights, a few KiB
// into a page, measures ~5% slower for the batch-1 GRU).
typedef struct {
    NNC_T *wh_packed, *wx_packed, *bias_sum, *q;
    nnc_claim_board *board;
} NNC_FN(rnn_fwd_ws);

// The pieces' sizes: elements (NNC_T) for all but the claim board (bytes),
// counts[0..4] = W_h packed, W_x packed, board, b_x + b_h, q.  Returns 0 on
// overflow.
static int NNC_FN(rnn_fwd_ws_counts)(const nnc_rnn_desc *d, nnc_ssize counts[5])
{
    const nnc_ssize H = d->h, G = NNC_FN(rnn_gates)(d), GH = G * H;
    const int gru = d->cell == NNC_RNN_GRU;
    const nnc_ssize wh = NNC_FN(gemm_packed_b_size)(H, H), wx = NNC_FN(gemm_packed_b_size)(GH, d->f);
    const nnc_ssize board = nnc_claim_board_bytes(d->t * NNC_FN(rnn_phases)(d) + RNN_FIRST_STEP_STAGE);
    counts[0] = 0;
    counts[1] = NNC_MAX(1, wx);
    counts[2] = board;
    counts[3] = gru && !d->reset_after ? GH : 0;
    counts[4] = 0;
    return wh >= 0 && wx >= 0 && board >= 0 && nnc_mul_ok(wh, G, &counts[0]) &&
           (!gru || !d->reset_after || nnc_mul_ok(d->n, GH, &counts[4]));
}

// Elements of the workspace rnn_fwd needs; -1 on overflow.
static nnc_ssize NNC_FN(rnn_fwd_workspace_size)(const nnc_rnn_desc *d)
{
    nnc_ssize counts[5], bytes = NNC_WS_ALIGN;
    const nnc_ssize el = (nnc_ssize)sizeof(NNC_T);
    if (d->n < 0 || d->t < 0 || d->f < 0 || d->h < 0 || !NNC_FN(rnn_fwd_ws_counts)(d, counts) ||
        !nnc_ws_reserve(&bytes, counts[0], el) || !nnc_ws_reserve(&bytes, counts[1], el) ||
        !nnc_ws_reserve(&bytes, counts[2], 1) || !nnc_ws_reserve(&bytes, counts[3], el) ||
        !nnc_ws_reserve(&bytes, counts[4], el))
        return -1;
    return nnc_ws_elements(bytes, el);
}

// The pieces of a workspace of rnn_fwd_workspace_size(d) elements.
static NNC_FN(rnn_fwd_ws) NNC_FN(rnn_fwd_ws_carve)(const nnc_rnn_desc *d, NNC_T *workspace)
{
    nnc_ssize counts[5];
    const nnc_ssize el = (nnc_ssize)sizeof(NNC_T);
    NNC_FN(rnn_fwd_ws_counts)(d, counts);
    char *cursor = (char *)workspace;
    NNC_FN(rnn_fwd_ws) ws;
    ws.q = nnc_ws_take(&cursor, counts[4], el);
    ws.bias_sum = nnc_ws_take(&cursor, counts[3], el);
    ws.board = nnc_ws_take(&cursor, counts[2], 1);
    ws.wh_packed = nnc_ws_take(&cursor, counts[0], el);
    ws.wx_packed = nnc_ws_take(&cursor, counts[1], el);
    return ws;
}

// Points the context at the forward weights in buf (every gate block of W_h
// apart, each packed as op(B) = W_h[g]^T) and packs them unless `pack` is 0
// (rnn_slice_setup does).  With whole (rnn_whole_ok), W_h as one op(B) of
// G*H columns instead (cx->Wall): a gate's last panel is not padded, and a
// step's product over every gate is one GEMM.
static void NNC_FN(rnn_pack_fwd)(NNC_FN(rnn_ctx) *cx, const NNC_T *Wh, NNC_T *buf, int pack, int whole)
{
    const nnc_ssize H = cx->d->h, s1 = NNC_FN(gemm_packed_b_size)(H, H);
    cx->Wh = Wh;
    cx->Wbuf = buf;
    cx->Wgs = s1;
    cx->Wall = whole ? buf : NULL;
    for (nnc_ssize g = 0; g < cx->G; ++g) cx->Wp[g] = whole ? NULL : buf + g * s1;
    if (whole) {
        NNC_FN(gemm_pack_b)(buf, 1, cx->G * H, H, Wh, H);
    } else if (pack) {
        // Every panel of every gate block in one parallel loop (W_h is
        // usually cold here: the previous call streamed its sequence through
        // the caches).
        const nnc_ssize np = NNC_CEILDIV(H, cx->NR), G = cx->G;
        const int nt = NNC_FN(gemm_pack_threads)((double)G * (double)H * (double)H);
        #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (nnc_ssize q = 0; q < G * np; ++q)
            NNC_FN(gemm_pack_b_one)(buf + q / np * s1, 1, H, H, Wh + q / np * H * H, H, q % np);
    }
}

// Whether the row schedules pack W_h whole (rnn_pack_fwd): when H is not a
// multiple of the panel width, every product spans the gates from gate 0
// (not GRU reset_after = 0, whose second phase is gate 2's) and has two rows
// or more (no lengths, whose last rows may run alone: the GEMV streams read
// the gate blocks).
static int NNC_FN(rnn_whole_ok)(const NNC_FN(rnn_ctx) *cx)
{
    const nnc_rnn_desc *d = cx->d;
    return d->h % cx->NR != 0 && cx->G > 1 && (d->cell != NNC_RNN_GRU || d->reset_after) && !d->lengths &&
           d->n >= 2;
}

// The input projection g (set up over all n*t rows: A = x, C = a) of batch
// rows [r0, r1): one GEMM, or with lengths one per row over its own steps
// (the same elements; x's rows through d->order).
static int NNC_FN(rnn_project)(const nnc_rnn_desc *d, NNC_FN(gemm_args) g, nnc_ssize r0, nnc_ssize r1, int threads)
{
    const NNC_T *A = g.A;
    NNC_T *C = g.C;
    if (!d->lengths) {
        g.m = (r1 - r0) * d->t;
        g.A = A + r0 * d->t * g.lda;
        g.C = C + r0 * d->t * g.ldc;
        return NNC_FN(gemm_run)(&g, threads);
    }
    int st = NNC_OK;
    for (nnc_ssize r = r0; r < r1; ++r) {
        g.m = d->lengths[r];
        g.A = A + NNC_FN(rnn_x_row)(d, r) * d->t * g.lda;
        g.C = C + r * d->t * g.ldc;
        st |= NNC_FN(gemm_run)(&g, threads);
    }
    return st;
}

// The time loop by batch blocks (RNN_FWD_ROWS, RNN_FWD_PROJECT_FIRST): thread
// b of `team` owns rows [b*rb, (b+1)*rb) for the whole sequence and runs every
// step of them; with wx_packed (W_x packed) it first runs 1. for each step's
// rows right before the step reads them (so they are still in cache), or
// with lengths for each of its rows over that row's steps before the time
// loop (a step's rows thin out towards the end, and a GEMM of few rows
// streams all of W_x for little work): the same GEMM elements as one GEMM
// over every row either way.  One parallel region, no
// barrier.  A block on a descheduled thread holds up the call (its rows
// cannot move): the stall guard hears of it, as of a conv's region.
static int NNC_FN(rnn_fwd_rows)(const NNC_FN(rnn_ctx) *cx, int team, const NNC_T *wx_packed)
{
    const nnc_rnn_desc *d = cx->d;
    const nnc_ssize T = d->t, F = d->f, GH = cx->G * d->h;
    const int phases = NNC_FN(rnn_phases)(d);
    int failed = 0;
    nnc_region_clock clk;
    nnc_region_begin(&clk, team);
    #pragma omp parallel num_threads(team) if (team > 1)
    {
        nnc_region_started(&clk);
        #pragma omp for schedule(static, 1) nowait
        for (int b = 0; b < team; ++b) {
            const nnc_ssize r0 = NNC_FN(rnn_block_start)(d, team, b), r1 = NNC_FN(rnn_block_start)(d, team, b + 1);
            NNC_FN(gemm_args) pg = {0, 0, GH, F, 1, 0, cx->x, F, 0, NULL, 0, wx_packed, cx->a, GH, cx->bias,
                                    NNC_ACT_LINEAR};
            if (wx_packed && d->lengths && NNC_FN(rnn_project)(d, pg, r0, r1, 1) != NNC_OK) {
                #pragma omp atomic write
                failed = 1;
            }
            for (nnc_ssize t = 0; t < T; ++t) {
                const nnc_ssize re = NNC_FN(lengths_active_end)(d->lengths, r0, r1, t);  // rows [r0, re) run step t
                if (re <= r0) break;
                NNC_FN(gemm_args) g = {0, re - r0, GH, F, 1, 0, cx->x + (r0 * T + t) * F, T * F, 0, NULL, 0,
                                       wx_packed, cx->a + (r0 * T + t) * GH, T * GH, cx->bias, NNC_ACT_LINEAR};
                if (wx_packed && !d->lengths && NNC_FN(gemm_run)(&g, 1) != NNC_OK) {
                    #pragma omp atomic write
                    failed = 1;
                }
                for (int p = 0; p < phases; ++p) NNC_FN(rnn_fwd_piece)(cx, t, p, r0, re, 0, d->h, &failed);
            }
            NNC_FN(rnn_finish_rows)(cx, r0, r1);
        }
        nnc_region_master_done(&clk);
    }
    nnc_region_end(&clk);
    return failed ? NNC_ENOMEM : NNC_OK;
}

// The set-up of hidden units [j0, j1) (a thread's block of slices, stage
// RNN_SETUP_STAGE of rnn_fwd_slices): pack their columns of every gate block
// of W_h (a thread's own slices then sit in its cache) and their columns of
// the input projection of every step (the same GEMM elements as the one-GEMM
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
        if (NNC_FN(rnn_project)(d, ga, 0, d->n, 1) != NNC_OK) __atomic_store_n(failed, 1, __ATOMIC_RELAXED);
    }
}

// One thread's share of the column-split time loop (runs inside the team's
// region): every (step, phase) is cut into `slices` slices of slice_width
// hidden units (all gates of those units), a stage of the claim board
// (runtime/claim.h).  Each thread owns a fixed block of slices for the
// whole sequence, so its part of W_h stays in its own cache; it claims its
// own slices first, then any slice nobody has claimed yet, from the far end.
// Own slices it can claim one after another run as one piece (h_{t-1} packed
// once per gate for all of them, not once per slice).  A slice's result does
// not depend on which thread computes it, nor with which others.
static void NNC_FN(rnn_fwd_split)(const NNC_FN(rnn_ctx) *cx, nnc_claim_board *board, nnc_ssize slice_width,
                                  int slices, int team, long long stall_ns, int *failed)
{
    const nnc_rnn_desc *d = cx->d;
    const int phases = NNC_FN(rnn_phases)(d);
    const nnc_ssize H = d->h;
    unsigned long long mine = 0;
    int me = 0;
    #pragma omp for schedule(static) nowait
    for (int k = 0; k < team; ++k) {
        me = k;
        for (int c = slices * k / team; c < slices * (k + 1) / team; ++c) mine |= 1ull << c;
    }
    // The set-up stage has one item per thread's block (one projection GEMM
    // per gate); then the steps.
    const int blocks = NNC_MIN(team, slices);
    for (nnc_ssize st = RNN_SETUP_STAGE; st < RNN_FIRST_STEP_STAGE + d->t * phases; ++st) {
        nnc_claim_stage *s = &board->stage[st];
        const int setup = st == RNN_SETUP_STAGE;
        const nnc_ssize step_phase = st - RNN_FIRST_STEP_STAGE;
        const int n = setup ? blocks : slices;
        const unsigned long long own = !setup ? mine : me < blocks ? 1ull << me : 0;
        // Own work in order, then the others' from the far end.
        for (int i = 0; i < 2 * n; ++i) {
            const int c = i < n ? i : 2 * n - 1 - i;
            if (!(own & (1ull << c)) != (i >= n)) continue;
            if (nnc_claim_other_leads(board, me)) return;
            if (!nnc_claim_item(s, c)) continue;
            int e = c + 1;   // [c, e): c and the own slices after it claimed with it
            if (setup) {
                NNC_FN(rnn_slice_setup)(cx, slices * c / blocks * slice_width,
                                        NNC_MIN(H, slices * (c + 1) / blocks * slice_width), failed);
            } else {
                while (i < n && e < n && (own >> e & 1) && nnc_claim_item(s, e)) ++e;
                NNC_FN(rnn_fwd_piece)(cx, step_phase / phases, (int)(step_phase % phases), 0,
                                      NNC_FN(lengths_active_end)(d->lengths, 0, d->n, step_phase / phases),
                                      c * slice_width, NNC_MIN(H, e * slice_width), failed);
            }
            for (int k = c; k < e; ++k) nnc_claim_done(s);
            i += e - c - 1;
        }
        if (!nnc_claim_wait(board, s, n, me, stall_ns)) return;
    }
    nnc_claim_finish(board);
}

// RNN_FWD_SLICES: 1. (by slices) and 3. in one parallel region.  A lead, or
// a partner descheduled at the end of the region (the join waits for it):
// a stall.
static int NNC_FN(rnn_fwd_slices)(NNC_FN(rnn_ctx) *cx, const NNC_FN(rnn_fwd_plan) *plan, const NNC_T *Wh,
                                  const NNC_FN(rnn_fwd_ws) *ws)
{
    const int team = plan->team;
    NNC_FN(rnn_pack_fwd)(cx, Wh, ws->wh_packed, 0, 0);
    nnc_claim_board_init(ws->board, cx->d->t * NNC_FN(rnn_phases)(cx->d) + RNN_FIRST_STEP_STAGE);
    int failed = 0;
    const long long stall_ns = nnc_stall_threshold_ns(-1);
    #pragma omp parallel num_threads(team) if (team > 1)
    NNC_FN(rnn_fwd_split)(cx, ws->board, plan->slice_width, plan->slices, team, stall_ns, &failed);
    if (team > 1) nnc_stall_note(nnc_claim_stalled(ws->board, stall_ns));
    NNC_FN(rnn_finish_rows)(cx, 0, cx->d->n);
    return failed ? NNC_ENOMEM : NNC_OK;
}

// RNN_FWD_ROWS: W_h and W_x packed once, then the batch blocks.
static int NNC_FN(rnn_fwd_by_rows)(NNC_FN(rnn_ctx) *cx, const NNC_FN(rnn_fwd_plan) *plan, const NNC_T *Wh,
                                   const NNC_FN(rnn_fwd_ws) *ws)
{
    const nnc_ssize GH = cx->G * cx->d->h, F = cx->d->f;
    NNC_FN(rnn_pack_fwd)(cx, Wh, ws->wh_packed, 1, NNC_FN(rnn_whole_ok)(cx));
    NNC_FN(gemm_pack_b)(ws->wx_packed, 1, GH, F, cx->Wx, F);
    return NNC_FN(rnn_fwd_rows)(cx, plan->team, ws->wx_packed);
}

// RNN_FWD_PROJECT_FIRST: the projection of every step as one GEMM, W_h
// packed, then the time loop on one thread.
static int NNC_FN(rnn_fwd_project_first)(NNC_FN(rnn_ctx) *cx, const NNC_FN(rnn_fwd_plan) *plan,
                                         const NNC_T *Wh, const NNC_FN(rnn_fwd_ws) *ws)
{
    const nnc_rnn_desc *d = cx->d;
    const nnc_ssize GH = cx->G * d->h, F = d->f;
    NNC_FN(gemm_args) g = {0, d->n * d->t, GH, F, 1, 0, cx->x, F, 1, cx->Wx, F, NULL, cx->a, GH, cx->bias,
                           NNC_ACT_LINEAR};
    if (NNC_FN(rnn_project)(d, g, 0, d->n, plan->projection_threads) != NNC_OK) return NNC_ENOMEM;
    NNC_FN(rnn_pack_fwd)(cx, Wh, ws->wh_packed, 1, NNC_FN(rnn_whole_ok)(cx));
    return NNC_FN(rnn_fwd_rows)(cx, 1, NULL);
}

// The op (see ops/rnn.def): the plan, the workspace's pieces, b_x + b_h for
// GRU reset_after = 0, then the plan's schedule.
static int NNC_FN(rnn_fwd)(const nnc_rnn_desc *d, const NNC_T *x, const NNC_T *Wx, const NNC_T *Wh,
                           const NNC_T *bx, const NNC_T *bh, const NNC_T *h0, const NNC_T *c0, NNC_T *hs, NNC_T *cs,
                           NNC_T *gates, NNC_T *aux, NNC_T *hs_out, NNC_T *workspace)
{
    const nnc_ssize N = d->n, T = d->t, F = d->f, H = d->h, G = NNC_FN(rnn_gates)(d), GH = G * H;
    nnc_ssize rows, product;
    if (!NNC_FN(lengths_ok)(d->lengths, d->n, d->t) || !NNC_FN(rnn_order_ok)(d) || (hs_out && !d->order))
        return NNC_EINVAL;
    if (N <= 0 || T <= 0 || H <= 0) return NNC_OK;
    if (!nnc_mul_ok(N, T, &rows) || !nnc_mul_ok(rows, GH, &product) || !nnc_mul_ok(rows, F, &product) ||
        NNC_FN(rnn_fwd_workspace_size)(d) < 0)
        return NNC_EOVERFLOW;
    NNC_FN(rnn_ctx) cx = {.d = d, .G = G, .NR = NNC_FN(gemm_packed_b_size)(1, 1), .bh = bh, .h0 = h0, .c0 = c0,
                          .hs = hs, .cs = cs, .a = d->cell == NNC_RNN_SIMPLE ? hs : gates, .aux = aux, .x = x,
                          .Wx = Wx, .bias = bx, .hs_out = hs_out};
    const NNC_FN(rnn_fwd_plan) plan = NNC_FN(rnn_fwd_choose)(d, cx.NR);
    const NNC_FN(rnn_fwd_ws) ws = NNC_FN(rnn_fwd_ws_carve)(d, workspace);
    if (d->cell == NNC_RNN_GRU && !d->reset_after) {  // b_h joins the input projection's bias
        for (nnc_ssize j = 0; j < GH; ++j) ws.bias_sum[j] = bx[j] + bh[j];
        cx.bias = ws.bias_sum;
    }
    if (d->cell == NNC_RNN_GRU && d->reset_after) cx.q = ws.q;
    switch (plan.path) {
    case RNN_FWD_SLICES: return NNC_FN(rnn_fwd_slices)(&cx, &plan, Wh, &ws);
    case RNN_FWD_ROWS: return NNC_FN(rnn_fwd_by_rows)(&cx, &plan, Wh, &ws);
    default: return NNC_FN(rnn_fwd_project_first)(&cx, &plan, Wh, &ws);
    }
}

#undef RNN_SPLIT_WORK
#undef RNN_ROWS_MIN_INTENSITY
#undef RNN_SETUP_STAGE
#undef RNN_FIRST_STEP_STAGE
