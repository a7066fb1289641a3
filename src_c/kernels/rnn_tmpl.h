// kernels/rnn_tmpl.h - SimpleRNN, LSTM, GRU over whole sequences, and
// gradient clipping (template; see nnc_internal.h).
//
// Forward (one call per sequence):
//   1. input projection for every timestep: a (n*t, GH) = x Wx^T + bias, the
//      same GEMM elements however it is cut (one GEMM, a step's rows of a
//      batch block, or a thread's columns);
//   2. W_h packed once per call (gemm_pack_b layout);
//   3. the time loop, in C: each thread owns a fixed block of batch rows for
//      the whole sequence (rows are independent) and (blocks of >= 4 rows)
//      runs 1. for its rows step by step, each step's rows right before the
//      step (they are still in cache when the step adds to them), so there
//      is one parallel region per call and no barrier at all; a step is one
//      recurrent GEMM (beta = 1 onto the step's rows of a, or into q for GRU
//      reset_after) plus one fused pass computing every gate and the new
//      state.
//   Small batches with a big step (batch 1) instead cut the hidden units into
//   slices (rnn_fwd_split): each thread owns a fixed block of slices (all
//   gates of those units), sets it up itself (packs its part of W_h, which
//   then stays in its own L2, and runs 1. for its columns) and claims its own
//   slices first each step, then any slice nobody has claimed yet; steps are
//   separated by a spin-then-yield wait on a counter.  A descheduled thread
//   (a loaded core) therefore never holds back work it has not started, and
//   a stall (a partner descheduled while holding a slice, or late at the
//   join) makes the waiting thread finish alone and tells the library's
//   stall guard (nnc_stall_note), which sends the next calls to one thread
//   for a while.
//   One row (batch 1) runs the recurrent product as rnn_gemv: the GEMM's
//   per-element FMA chain over the packed gate blocks, four gate streams at
//   a time, no packing of h and no per-call set-up.
// Backward: per step (reverse) one fused pass gives the gate gradients da_t,
// dh_{t-1} goes through the recurrent GEMM with W_h (packed once); at the end
// dWx, dWh, dx and the bias gradients are large GEMMs / column sums over all
// n*t rows.
//
// Determinism: a row's result never depends on which thread, batch block or
// slice computes it (the GEMM and rnn_gemv give every element the same FMA
// chain whatever m and the tile; the gate passes are element-wise), and the
// final reductions run over the n*t rows in a fixed order.  So outputs and
// gradients are bitwise identical for any thread count and any batch split.

#if defined(__unix__) || defined(__APPLE__)
#include <sched.h>
#endif

#define RNN_LD(p, m) ((m) == NNC_VLEN ? nnc_vload(p) : nnc_vloadn((p), (m)))
#define RNN_ST(p, v, m)                     \
    do {                                    \
        if ((m) == NNC_VLEN) nnc_vstore((p), (v)); \
        else nnc_vstoren((p), (v), (m));        \
    } while (0)
// Load from an optional row (NULL = zeros).
#define RNN_LDZ(p, m) ((p) ? RNN_LD((p), (m)) : nnc_vzero())

// ---- fused gate passes (rows x h; any producer of the pre-activations) ----

// LSTM step: i,f,o = sigma, c~ = tanh; C = f*C_prev + i*c~; h = o*tanh(C).
// Forward passes work on W units whose gate blocks are H (>= W) apart, so a
// thread may run a slice of the units.
static void NNC_FN(lstm_rows_fwd)(nnc_ssize rows, nnc_ssize W, nnc_ssize H, NNC_T *a, nnc_ssize lda,
                                  const NNC_T *cp, nnc_ssize ldcp, NNC_T *c, nnc_ssize ldc, NNC_T *h, nnc_ssize ldh,
                                  int save)
{
    for (nnc_ssize r = 0; r < rows; ++r) {
        NNC_T *ar = a + r * lda, *cr = c + r * ldc, *hr = h + r * ldh;
        const NNC_T *cpr = cp ? cp + r * ldcp : NULL;
        for (nnc_ssize j = 0; j < W; j += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, W - j);
            nnc_v i = nnc_vsigmoid(RNN_LD(ar + j, m));
            nnc_v f = nnc_vsigmoid(RNN_LD(ar + H + j, m));
            nnc_v g = nnc_vtanh(RNN_LD(ar + 2 * H + j, m));
            nnc_v o = nnc_vsigmoid(RNN_LD(ar + 3 * H + j, m));
            nnc_v cn = nnc_vadd(nnc_vmul(f, RNN_LDZ(cpr ? cpr + j : NULL, m)), nnc_vmul(i, g));
            RNN_ST(cr + j, cn, m);
            RNN_ST(hr + j, nnc_vmul(o, nnc_vtanh(cn)), m);
            if (save) {
                RNN_ST(ar + j, i, m);
                RNN_ST(ar + H + j, f, m);
                RNN_ST(ar + 2 * H + j, g, m);
                RNN_ST(ar + 3 * H + j, o, m);
            }
        }
    }
}

// LSTM step backward (see rnn.def, lstm_cell_bwd).
static void NNC_FN(lstm_rows_bwd)(nnc_ssize rows, nnc_ssize H, const NNC_T *g, nnc_ssize ldg, const NNC_T *cp,
                                  nnc_ssize ldcp, const NNC_T *c, nnc_ssize ldc, const NNC_T *dhe, nnc_ssize lde,
                                  const NNC_T *dhr, nnc_ssize ldr, NNC_T *dc, nnc_ssize lddc, NNC_T *da,
                                  nnc_ssize ldda)
{
    const nnc_v one = nnc_vset1(1);
    for (nnc_ssize r = 0; r < rows; ++r) {
        const NNC_T *gr = g + r * ldg, *cr = c + r * ldc;
        const NNC_T *cpr = cp ? cp + r * ldcp : NULL;
        const NNC_T *der = dhe ? dhe + r * lde : NULL, *drr = dhr ? dhr + r * ldr : NULL;
        NNC_T *dcr = dc + r * lddc, *dar = da + r * ldda;
        for (nnc_ssize j = 0; j < H; j += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, H - j);
            nnc_v i = RNN_LD(gr + j, m), f = RNN_LD(gr + H + j, m);
            nnc_v gg = RNN_LD(gr + 2 * H + j, m), o = RNN_LD(gr + 3 * H + j, m);
            nnc_v dh = nnc_vadd(RNN_LDZ(der ? der + j : NULL, m), RNN_LDZ(drr ? drr + j : NULL, m));
            nnc_v tc = nnc_vtanh(RNN_LD(cr + j, m));
            nnc_v dct = nnc_vadd(RNN_LD(dcr + j, m), nnc_vmul(nnc_vmul(dh, o), nnc_vsub(one, nnc_vmul(tc, tc))));
            nnc_v cprev = RNN_LDZ(cpr ? cpr + j : NULL, m);
            RNN_ST(dcr + j, nnc_vmul(dct, f), m);
            RNN_ST(dar + j, nnc_vmul(nnc_vmul(dct, gg), nnc_vmul(i, nnc_vsub(one, i))), m);
            RNN_ST(dar + H + j, nnc_vmul(nnc_vmul(dct, cprev), nnc_vmul(f, nnc_vsub(one, f))), m);
            RNN_ST(dar + 2 * H + j, nnc_vmul(nnc_vmul(dct, i), nnc_vsub(one, nnc_vmul(gg, gg))), m);
            RNN_ST(dar + 3 * H + j, nnc_vmul(nnc_vmul(dh, tc), nnc_vmul(o, nnc_vsub(one, o))), m);
        }
    }
}

// Simple RNN step backward: da = act'(h) * (dh_ext + dh_rec).
static void NNC_FN(rnn_rows_bwd)(nnc_ssize rows, nnc_ssize H, const NNC_T *h, nnc_ssize ldh, const NNC_T *dhe,
                                 nnc_ssize lde, const NNC_T *dhr, nnc_ssize ldr, NNC_T *da, nnc_ssize ldda,
                                 int act)
{
    for (nnc_ssize r = 0; r < rows; ++r) {
        const NNC_T *hr = h + r * ldh;
        const NNC_T *der = dhe ? dhe + r * lde : NULL, *drr = dhr ? dhr + r * ldr : NULL;
        NNC_T *dar = da + r * ldda;
        for (nnc_ssize j = 0; j < H; j += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, H - j);
            nnc_v dh = nnc_vadd(RNN_LDZ(der ? der + j : NULL, m), RNN_LDZ(drr ? drr + j : NULL, m));
            RNN_ST(dar + j, NNC_FN(vact_grad)(RNN_LD(hr + j, m), dh, act), m);
        }
    }
}

// GRU, reset_after = 0, first pass: r,u = sigma(a_r, a_u) in place (a holds
// x and h terms and both biases); rh = r * h_prev.
static void NNC_FN(gru_rows_gates)(nnc_ssize rows, nnc_ssize W, nnc_ssize H, NNC_T *a, nnc_ssize lda,
                                   const NNC_T *hp, nnc_ssize ldhp, NNC_T *rh, nnc_ssize ldrh)
{
    for (nnc_ssize r = 0; r < rows; ++r) {
        NNC_T *ar = a + r * lda, *rhr = rh + r * ldrh;
        const NNC_T *hpr = hp ? hp + r * ldhp : NULL;
        for (nnc_ssize j = 0; j < W; j += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, W - j);
            nnc_v rr = nnc_vsigmoid(RNN_LD(ar + j, m));
            RNN_ST(ar + j, rr, m);
            RNN_ST(ar + H + j, nnc_vsigmoid(RNN_LD(ar + H + j, m)), m);
            RNN_ST(rhr + j, nnc_vmul(rr, RNN_LDZ(hpr ? hpr + j : NULL, m)), m);
        }
    }
}

// GRU step, both variants: h = (1-u)*h_prev + u*c~.  reset_after = 0: r,u
// already activated in a, c~ = tanh(a_c).  reset_after = 1: q (rows, 3h) =
// W_h h_prev + b_h; r,u = sigma(a + q), c~ = tanh(a_c + r*q_c); q_c is kept in
// qsave.  With save, a holds r, u, c~ afterwards.
static void NNC_FN(gru_rows_fwd)(nnc_ssize rows, nnc_ssize W, nnc_ssize H, NNC_T *a, nnc_ssize lda,
                                 const NNC_T *q, nnc_ssize ldq, const NNC_T *hp, nnc_ssize ldhp, NNC_T *h,
                                 nnc_ssize ldh, NNC_T *qsave, nnc_ssize ldqs, int save)
{
    const nnc_v one = nnc_vset1(1);
    for (nnc_ssize r = 0; r < rows; ++r) {
        NNC_T *ar = a + r * lda, *hr = h + r * ldh;
        const NNC_T *hpr = hp ? hp + r * ldhp : NULL, *qr = q ? q + r * ldq : NULL;
        for (nnc_ssize j = 0; j < W; j += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, W - j);
            nnc_v rr, u, cand;
            if (qr) {
                nnc_v qc = RNN_LD(qr + 2 * H + j, m);
                rr = nnc_vsigmoid(nnc_vadd(RNN_LD(ar + j, m), RNN_LD(qr + j, m)));
                u = nnc_vsigmoid(nnc_vadd(RNN_LD(ar + H + j, m), RNN_LD(qr + H + j, m)));
                cand = nnc_vtanh(nnc_vadd(RNN_LD(ar + 2 * H + j, m), nnc_vmul(rr, qc)));
                if (qsave) RNN_ST(qsave + r * ldqs + j, qc, m);
                if (save) {
                    RNN_ST(ar + j, rr, m);
                    RNN_ST(ar + H + j, u, m);
                }
            } else {
                u = RNN_LD(ar + H + j, m);
                cand = nnc_vtanh(RNN_LD(ar + 2 * H + j, m));
            }
            if (save) RNN_ST(ar + 2 * H + j, cand, m);
            nnc_v hprev = RNN_LDZ(hpr ? hpr + j : NULL, m);
            RNN_ST(hr + j, nnc_vadd(nnc_vmul(nnc_vsub(one, u), hprev), nnc_vmul(u, cand)), m);
        }
    }
}

// GRU step backward, shared part: dh = dh_ext + dh_rec; da_u, da_c (the
// gradient w.r.t. the candidate's pre-activation) and dhp = dh * (1-u).
// reset_after = 1 (qc != NULL): also da_r, and dq (rows, 3h) = the gradient
// w.r.t. W_h h + b_h (dq_c = da_c * r).  reset_after = 0: da_r is left to
// gru_rows_bwd_r.
static void NNC_FN(gru_rows_bwd)(nnc_ssize rows, nnc_ssize H, const NNC_T *g, nnc_ssize ldg, const NNC_T *qc,
                                 nnc_ssize ldqc, const NNC_T *hp, nnc_ssize ldhp, const NNC_T *dhe, nnc_ssize lde,
                                 const NNC_T *dhr, nnc_ssize ldr, NNC_T *da, nnc_ssize ldda, NNC_T *dq,
                                 nnc_ssize lddq, NNC_T *dhp, nnc_ssize lddhp)
{
    const nnc_v one = nnc_vset1(1);
    for (nnc_ssize r = 0; r < rows; ++r) {
        const NNC_T *gr = g + r * ldg, *hpr = hp ? hp + r * ldhp : NULL;
        const NNC_T *der = dhe ? dhe + r * lde : NULL, *drr = dhr ? dhr + r * ldr : NULL;
        NNC_T *dar = da + r * ldda, *dhpr = dhp + r * lddhp;
        for (nnc_ssize j = 0; j < H; j += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, H - j);
            nnc_v u = RNN_LD(gr + H + j, m), cand = RNN_LD(gr + 2 * H + j, m);
            nnc_v dh = nnc_vadd(RNN_LDZ(der ? der + j : NULL, m), RNN_LDZ(drr ? drr + j : NULL, m));
            nnc_v hprev = RNN_LDZ(hpr ? hpr + j : NULL, m);
            nnc_v dac = nnc_vmul(nnc_vmul(dh, u), nnc_vsub(one, nnc_vmul(cand, cand)));
            nnc_v dau = nnc_vmul(nnc_vmul(dh, nnc_vsub(cand, hprev)), nnc_vmul(u, nnc_vsub(one, u)));
            RNN_ST(dar + H + j, dau, m);
            RNN_ST(dar + 2 * H + j, dac, m);
            RNN_ST(dhpr + j, nnc_vmul(dh, nnc_vsub(one, u)), m);
            if (qc) {
                nnc_v rr = RNN_LD(gr + j, m);
                nnc_v dar_ = nnc_vmul(nnc_vmul(dac, RNN_LD(qc + r * ldqc + j, m)), nnc_vmul(rr, nnc_vsub(one, rr)));
                NNC_T *dqr = dq + r * lddq;
                RNN_ST(dar + j, dar_, m);
                RNN_ST(dqr + j, dar_, m);
                RNN_ST(dqr + H + j, dau, m);
                RNN_ST(dqr + 2 * H + j, nnc_vmul(dac, rr), m);
            }
        }
    }
}

// GRU reset_after = 0, second backward pass: drh = the gradient w.r.t. r*h_prev;
// da_r = drh * h_prev * r(1-r); dhp += drh * r.
static void NNC_FN(gru_rows_bwd_r)(nnc_ssize rows, nnc_ssize H, const NNC_T *g, nnc_ssize ldg, const NNC_T *hp,
                                   nnc_ssize ldhp, const NNC_T *drh, nnc_ssize lddrh, NNC_T *da, nnc_ssize ldda,
                                   NNC_T *dhp, nnc_ssize lddhp)
{
    const nnc_v one = nnc_vset1(1);
    for (nnc_ssize r = 0; r < rows; ++r) {
        const NNC_T *gr = g + r * ldg, *hpr = hp ? hp + r * ldhp : NULL, *dr = drh + r * lddrh;
        NNC_T *dar = da + r * ldda, *dhpr = dhp + r * lddhp;
        for (nnc_ssize j = 0; j < H; j += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, H - j);
            nnc_v rr = RNN_LD(gr + j, m), d = RNN_LD(dr + j, m);
            nnc_v hprev = RNN_LDZ(hpr ? hpr + j : NULL, m);
            RNN_ST(dar + j, nnc_vmul(nnc_vmul(d, hprev), nnc_vmul(rr, nnc_vsub(one, rr))), m);
            RNN_ST(dhpr + j, nnc_vadd(RNN_LD(dhpr + j, m), nnc_vmul(d, rr)), m);
        }
    }
}

// ---- sequence driver ---------------------------------------------------

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

typedef struct {
    const nnc_rnn_desc *d;
    nnc_ssize G, NR;
    const NNC_T *Wp[4];      // forward: gate block g of W_h packed as op(B) = W_h[g]^T
    const NNC_T *Wb1, *Wb2;  // backward: W_h (GRU reset_after = 0: rows r,u and c apart)
    const NNC_T *bh, *h0, *c0;
    NNC_T *hs, *cs, *a, *aux, *q;
    const NNC_T *x, *Wx, *bias;  // input projection (bias: b_x, or b_x + b_h)
    const NNC_T *Wh;             // W_h, for packing slices in rnn_fwd_split
    NNC_T *Wbuf;                 // the packed gate blocks (Wp[g] = Wbuf + g * Wgs)
    nnc_ssize Wgs;
} NNC_FN(rnn_ctx);

// C (rows, n) = A (rows, k) B + beta C + bias with B packed, on the calling
// thread (one row: the GEMM's GEMV-shaped kernel, bitwise the same row).
NNC_INLINE void NNC_FN(rnn_gemm)(nnc_ssize rows, nnc_ssize n, nnc_ssize k, const NNC_T *A, nnc_ssize lda,
                                 const NNC_T *Bp, NNC_T beta, NNC_T *C, nnc_ssize ldc, const NNC_T *bias,
                                 int *failed)
{
    NNC_FN(gemm_args) g = {0, rows, n, k, 1, beta, A, lda, 0, NULL, 0, Bp, C, ldc, bias, NNC_ACT_LINEAR};
    if (NNC_FN(gemm_run)(&g, 1) != NNC_OK) __atomic_store_n(failed, 1, __ATOMIC_RELAXED);
}

// One row (batch 1) times packed W_h: NQ "streams", each 2*NNC_VLEN
// columns of one packed panel (rows nr apart) into its own output row
// segment, c = h W (+ beta c + bias).  Per element this is exactly the
// GEMM's chain (gemm_ukr_1: from 0, acc = fma(h[p], B[p][j], acc) over p in
// order within each KC slice, stored by gemm_store_row), so the row is
// bitwise the one the GEMM gives the same row in a batch.  The GEMM's own
// one-row kernel (gemm_ukr_1x4) needs four adjacent panels written to
// adjacent columns; here the streams are the gate blocks of one slice of
// hidden units (H apart in the output), which gives 2*NQ independent chains
// with no packing of h and no per-call set-up.
typedef struct {
    const NNC_T *b;     // packed panel + column offset of the block
    NNC_T *c;           // output, first column of the block
    const NNC_T *bias;  // bias of that column, or NULL
    nnc_ssize ncols;    // 1 .. 2*NNC_VLEN
} NNC_FN(rnn_strm);

#define RNN_GEMV(NQ)                                                                                        \
    static void NNC_FN(rnn_gemv_##NQ)(const NNC_FN(rnn_strm) *s, const NNC_T *NNC_RESTRICT h, nnc_ssize k,  \
                                      nnc_ssize nr, const NNC_FN(gemm_args) *g)                             \
    {                                                                                                       \
        const nnc_ssize kcs = NNC_FN(gemm_kc)();                                            \
        for (nnc_ssize pc = 0; pc < k; pc += kcs) {                                                         \
            const nnc_ssize kc = NNC_MIN(kcs, k - pc);                                                      \
            nnc_v acc[NQ][2];                                                                               \
            const NNC_T *b[NQ];                                                                             \
            NNC_UNROLL_TILE for (int q = 0; q < NQ; ++q) {                                                  \
                acc[q][0] = acc[q][1] = nnc_vzero();                                                            \
                b[q] = s[q].b + pc * nr;                                                                    \
            }                                                                                               \
            for (nnc_ssize p = 0; p < kc; ++p) {                                                            \
                const nnc_v av = nnc_vset1(h[pc + p]);                                                          \
                NNC_UNROLL_TILE for (int q = 0; q < NQ; ++q) {                                              \
                    acc[q][0] = nnc_vfma(av, nnc_vload(b[q] + p * nr), acc[q][0]);                                  \
                    acc[q][1] = nnc_vfma(av, nnc_vload(b[q] + p * nr + NNC_VLEN), acc[q][1]);                       \
                }                                                                                           \
            }                                                                                               \
            NNC_UNROLL_TILE for (int q = 0; q < NQ; ++q) {                                                  \
                /* a copy (acc stays in registers); store_row indexes up to NNC_GEMM_NV (<= 4) vectors */       \
                const nnc_v o[4] = {acc[q][0], acc[q][1], nnc_vzero(), nnc_vzero()};                                \
                NNC_FN(gemm_store_row)(s[q].c, o, s[q].ncols, pc == 0, pc + kc == k, g, s[q].bias);         \
            }                                                                                               \
        }                                                                                                   \
    }
RNN_GEMV(1)
RNN_GEMV(2)
RNN_GEMV(3)
RNN_GEMV(4)
#undef RNN_GEMV

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

static nnc_ssize NNC_FN(rnn_gates)(const nnc_rnn_desc *d)
{
    return d->cell == NNC_RNN_LSTM ? 4 : d->cell == NNC_RNN_GRU ? 3 : 1;
}

// Phases per step: GRU reset_after = 0 needs all of r*h_{t-1} before the
// candidate's product.
static int NNC_FN(rnn_phases)(const nnc_rnn_desc *d)
{
    return d->cell == NNC_RNN_GRU && !d->reset_after ? 2 : 1;
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

// Backward workspace: da (n*t, GH), dq (n*t, GH) for GRU reset_after, and
// h_prev (n*t, h), the state each step started from.
static nnc_ssize NNC_FN(rnn_backward_workspace_size)(const nnc_rnn_desc *d)
{
    const nnc_ssize G = NNC_FN(rnn_gates)(d);
    nnc_ssize nt_rows, per_row, tot;
    const nnc_ssize mult = (d->cell == NNC_RNN_GRU && d->reset_after) ? 2 : 1;
    if (d->n < 0 || d->t < 0 || d->h < 0 || !nnc_mul_ok(d->n, d->t, &nt_rows) ||
        !nnc_mul_ok(G * mult + 1, d->h, &per_row) || !nnc_mul_ok(nt_rows, per_row, &tot))
        return -1;
    return tot;
}

// Packs W_h for the backward, op(B) = W_h (GH, h) (GRU reset_after = 0:
// rows r,u and rows c apart).  Returns the buffer or NULL.
static NNC_T *NNC_FN(rnn_pack_bwd)(NNC_FN(rnn_ctx) *cx, const NNC_T *Wh)
{
    const nnc_ssize H = cx->d->h;
    const int split = NNC_FN(rnn_phases)(cx->d) == 2;
    const nnc_ssize gh1 = split ? 2 * H : cx->G * H;
    const nnc_ssize s1 = NNC_FN(gemm_packed_b_size)(H, gh1), s2 = split ? NNC_FN(gemm_packed_b_size)(H, H) : 0;
    nnc_ssize tot;
    if (s1 < 0 || s2 < 0 || !nnc_mul_ok(s1 + s2, (nnc_ssize)sizeof(NNC_T), &tot)) return NULL;
    NNC_T *buf = nnc_aligned_alloc((size_t)tot);
    if (!buf) return NULL;
    NNC_FN(gemm_pack_b)(buf, 0, H, gh1, Wh, H);
    if (split) NNC_FN(gemm_pack_b)(buf + s1, 0, H, H, Wh + 2 * H * H, H);
    cx->Wb1 = buf;
    cx->Wb2 = split ? buf + s1 : NULL;
    return buf;
}

// The reverse time loop for batch rows [r0, r1): da (and dq), h_prev rows,
// and dh0/dc0.
static int NNC_FN(rnn_bwd_rows)(const NNC_FN(rnn_ctx) *cx, nnc_ssize r0, nnc_ssize r1, const NNC_T *h0,
                                const NNC_T *c0, const NNC_T *hs, const NNC_T *cs, const NNC_T *gates,
                                const NNC_T *aux, const NNC_T *dhs, NNC_T *da, NNC_T *dq, NNC_T *hprev,
                                NNC_T *dh0, NNC_T *dc0)
{
    const nnc_rnn_desc *d = cx->d;
    const nnc_ssize T = d->t, H = d->h, GH = cx->G * H, rows = r1 - r0;
    const nnc_ssize lda = T * GH, ldh = T * H;
    const int ra = d->cell == NNC_RNN_GRU && d->reset_after;
    int failed = 0;
    // Per thread: dh (the gradient w.r.t. h_{t-1} being built), dc or drh.
    NNC_T *dh = nnc_tls_scratch(NNC_SCRATCH_WORK, sizeof(NNC_T) * (size_t)rows * (size_t)H * 2);
    if (!dh) return NNC_ENOMEM;
    NNC_T *dc = dh + rows * H;  // LSTM: dC; GRU reset_after = 0: drh
    if (d->cell == NNC_RNN_LSTM) memset(dc, 0, sizeof(NNC_T) * (size_t)rows * (size_t)H);
    for (nnc_ssize t = T - 1; t >= 0 && !failed; --t) {
        const NNC_T *hp = t ? hs + (r0 * T + t - 1) * H : (h0 ? h0 + r0 * H : NULL);
        const nnc_ssize ldhp = t ? ldh : H;
        const nnc_ssize off = (r0 * T + t);
        const NNC_T *dhr = t == T - 1 ? NULL : dh;  // dh_rec from step t+1
        NNC_T *dat = da + off * GH;
        for (nnc_ssize r = 0; r < rows; ++r) {
            NNC_T *dst = hprev + (off + r * T) * H;
            if (hp) memcpy(dst, hp + r * ldhp, sizeof(NNC_T) * (size_t)H);
            else memset(dst, 0, sizeof(NNC_T) * (size_t)H);
        }
        switch (d->cell) {
        case NNC_RNN_SIMPLE:
            NNC_FN(rnn_rows_bwd)(rows, H, hs + off * H, ldh, dhs + off * H, ldh, dhr, H, dat, lda, d->act);
            NNC_FN(rnn_gemm)(rows, H, GH, dat, lda, cx->Wb1, 0, dh, H, NULL, &failed);
            break;
        case NNC_RNN_LSTM: {
            const NNC_T *cp = t ? cs + (off - 1) * H : (c0 ? c0 + r0 * H : NULL);
            NNC_FN(lstm_rows_bwd)(rows, H, gates + off * GH, lda, cp, t ? ldh : H, cs + off * H, ldh,
                                  dhs + off * H, ldh, dhr, H, dc, H, dat, lda);
            NNC_FN(rnn_gemm)(rows, H, GH, dat, lda, cx->Wb1, 0, dh, H, NULL, &failed);
            break;
        }
        default:
            if (ra) {
                NNC_T *dqt = dq + off * GH;
                NNC_FN(gru_rows_bwd)(rows, H, gates + off * GH, lda, aux + off * H, ldh, hp, ldhp, dhs + off * H,
                                     ldh, dhr, H, dat, lda, dqt, lda, dh, H);
                NNC_FN(rnn_gemm)(rows, H, GH, dqt, lda, cx->Wb1, 1, dh, H, NULL, &failed);
            } else {
                NNC_FN(gru_rows_bwd)(rows, H, gates + off * GH, lda, NULL, 0, hp, ldhp, dhs + off * H, ldh, dhr,
                                     H, dat, lda, NULL, 0, dh, H);
                NNC_FN(rnn_gemm)(rows, H, H, dat + 2 * H, lda, cx->Wb2, 0, dc, H, NULL, &failed);
                NNC_FN(gru_rows_bwd_r)(rows, H, gates + off * GH, lda, hp, ldhp, dc, H, dat, lda, dh, H);
                NNC_FN(rnn_gemm)(rows, H, 2 * H, dat, lda, cx->Wb1, 1, dh, H, NULL, &failed);
            }
        }
    }
    if (dh0) memcpy(dh0 + r0 * H, dh, sizeof(NNC_T) * (size_t)rows * (size_t)H);
    if (dc0) memcpy(dc0 + r0 * H, dc, sizeof(NNC_T) * (size_t)rows * (size_t)H);
    return failed ? NNC_ENOMEM : NNC_OK;
}

static int NNC_FN(rnn_backward)(const nnc_rnn_desc *d, const NNC_T *x, const NNC_T *Wx, const NNC_T *Wh,
                                const NNC_T *h0, const NNC_T *c0, const NNC_T *hs, const NNC_T *cs,
                                const NNC_T *gates, const NNC_T *aux, const NNC_T *dhs, NNC_T *dx, NNC_T *dWx,
                                NNC_T *dWh, NNC_T *dbx, NNC_T *dbh, NNC_T *dh0, NNC_T *dc0, NNC_T *work)
{
    const nnc_ssize N = d->n, T = d->t, F = d->f, H = d->h, G = NNC_FN(rnn_gates)(d), GH = G * H;
    const int ra = d->cell == NNC_RNN_GRU && d->reset_after;
    if (NNC_FN(rnn_backward_workspace_size)(d) < 0) return NNC_EOVERFLOW;
    if (H <= 0) return NNC_OK;
    const nnc_ssize NT = N * T;
    NNC_T *da = work, *dq = work, *hprev = work;
    if (NT > 0) {
        dq = ra ? work + NT * GH : work;
        hprev = work + NT * GH * (ra ? 2 : 1);
    }
    int failed = 0;
    if (NT > 0) {
        NNC_FN(rnn_ctx) cx = {.d = d, .G = G, .h0 = h0, .c0 = c0};
        NNC_T *wbuf = NNC_FN(rnn_pack_bwd)(&cx, Wh);
        if (!wbuf) return NNC_ENOMEM;
        const int nt = (int)NNC_MAX(1, NNC_MIN((nnc_ssize)nnc_threads_for(2.0 * (double)NT * (double)GH * (double)H),
                                               N / 4));
        const nnc_ssize chunk = NNC_CEILDIV(N, nt);
        #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static, 1)
        for (int b = 0; b < nt; ++b) {
            nnc_ssize r0 = b * chunk, r1 = NNC_MIN(N, r0 + chunk);
            if (r0 < r1 && NNC_FN(rnn_bwd_rows)(&cx, r0, r1, h0, c0, hs, cs, gates, aux, dhs, da, dq, hprev, dh0,
                                                dc0) != NNC_OK) {
                #pragma omp atomic write
                failed = 1;
            }
        }
        nnc_aligned_free(wbuf);
        if (failed) return NNC_ENOMEM;
    }
    // Weight and input gradients: large GEMMs over all n*t rows.
    int st = NNC_OK;
    if (F > 0) {
        st |= NNC_FN(gemm)(0, 0, NT, F, GH, 1, da, GH, Wx, F, 0, dx, F, NULL, NNC_ACT_LINEAR);
        st |= NNC_FN(gemm)(1, 0, GH, F, NT, 1, da, GH, x, F, 0, dWx, F, NULL, NNC_ACT_LINEAR);
    }
    if (d->cell == NNC_RNN_GRU && !d->reset_after) {
        st |= NNC_FN(gemm)(1, 0, 2 * H, H, NT, 1, da, GH, hprev, H, 0, dWh, H, NULL, NNC_ACT_LINEAR);
        st |= NNC_FN(gemm)(1, 0, H, H, NT, 1, da + 2 * H, GH, aux, H, 0, dWh + 2 * H * H, H, NULL,
                           NNC_ACT_LINEAR);
    } else {
        st |= NNC_FN(gemm)(1, 0, GH, H, NT, 1, dq, GH, hprev, H, 0, dWh, H, NULL, NNC_ACT_LINEAR);
    }
    NNC_FN(colsum)(dbx, da, NT, GH);
    if (dbh) NNC_FN(colsum)(dbh, dq, NT, GH);
    if (NT == 0) {
        if (dh0) memset(dh0, 0, sizeof(NNC_T) * (size_t)(N * H));
        if (dc0) memset(dc0, 0, sizeof(NNC_T) * (size_t)(N * H));
    }
    return st ? NNC_ENOMEM : NNC_OK;
}

// ---- exposed gate passes (threads over rows) ------------------------------

static int NNC_FN(lstm_cell_fwd)(nnc_ssize rows, nnc_ssize h, NNC_T *a, nnc_ssize lda, const NNC_T *c_prev,
                                 nnc_ssize ldcp, NNC_T *c, nnc_ssize ldc, NNC_T *hout, nnc_ssize ldh, int save)
{
    if (rows <= 0 || h <= 0) return NNC_OK;
    int nt = nnc_threads_for(60.0 * (double)rows * (double)h);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize r = 0; r < rows; ++r)
        NNC_FN(lstm_rows_fwd)(1, h, h, a + r * lda, lda, c_prev ? c_prev + r * ldcp : NULL, ldcp, c + r * ldc, ldc,
                              hout + r * ldh, ldh, save);
    return NNC_OK;
}

static int NNC_FN(lstm_cell_bwd)(nnc_ssize rows, nnc_ssize h, const NNC_T *g, nnc_ssize ldg, const NNC_T *c_prev,
                                 nnc_ssize ldcp, const NNC_T *c, nnc_ssize ldc, const NNC_T *dh_ext, nnc_ssize lde,
                                 const NNC_T *dh_rec, nnc_ssize ldr, NNC_T *dc, nnc_ssize lddc, NNC_T *da,
                                 nnc_ssize ldda)
{
    if (rows <= 0 || h <= 0) return NNC_OK;
    int nt = nnc_threads_for(40.0 * (double)rows * (double)h);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize r = 0; r < rows; ++r)
        NNC_FN(lstm_rows_bwd)(1, h, g + r * ldg, ldg, c_prev ? c_prev + r * ldcp : NULL, ldcp, c + r * ldc, ldc,
                              dh_ext ? dh_ext + r * lde : NULL, lde, dh_rec ? dh_rec + r * ldr : NULL, ldr,
                              dc + r * lddc, lddc, da + r * ldda, ldda);
    return NNC_OK;
}

static int NNC_FN(rnn_cell_bwd)(nnc_ssize rows, nnc_ssize h, const NNC_T *hout, nnc_ssize ldh,
                                const NNC_T *dh_ext, nnc_ssize lde, const NNC_T *dh_rec, nnc_ssize ldr, NNC_T *da,
                                nnc_ssize ldda, int act)
{
    if (rows <= 0 || h <= 0) return NNC_OK;
    int nt = nnc_threads_for(4.0 * (double)rows * (double)h);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize r = 0; r < rows; ++r)
        NNC_FN(rnn_rows_bwd)(1, h, hout + r * ldh, ldh, dh_ext ? dh_ext + r * lde : NULL, lde,
                             dh_rec ? dh_rec + r * ldr : NULL, ldr, da + r * ldda, ldda, act);
    return NNC_OK;
}

// ---- gradient clipping ---------------------------------------------------

#define RNN_CHUNK 4096

static int NNC_FN(clip_value)(NNC_T *x, nnc_ssize n, NNC_T v)
{
    if (n <= 0) return NNC_OK;
    int nt = nnc_threads_for(2.0 * (double)n);
    const nnc_v hi = nnc_vset1(v), lo = nnc_vset1(-v);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize s = 0; s < n; s += RNN_CHUNK) {
        nnc_ssize e = NNC_MIN(n, s + RNN_CHUNK);
        for (nnc_ssize i = s; i < e; i += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, e - i);
            RNN_ST(x + i, nnc_vmin(hi, nnc_vmax(lo, RNN_LD(x + i, m))), m);  // operand order keeps NaN
        }
    }
    return NNC_OK;
}

static int NNC_FN(scale_inplace)(NNC_T *x, nnc_ssize n, NNC_T s)
{
    if (n <= 0) return NNC_OK;
    int nt = nnc_threads_for(2.0 * (double)n);
    const nnc_v vs = nnc_vset1(s);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize c = 0; c < n; c += RNN_CHUNK) {
        nnc_ssize e = NNC_MIN(n, c + RNN_CHUNK);
        for (nnc_ssize i = c; i < e; i += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, e - i);
            RNN_ST(x + i, nnc_vmul(vs, RNN_LD(x + i, m)), m);
        }
    }
    return NNC_OK;
}

// Sum of squares: each RNN_CHUNK block is summed in vector lanes (fixed
// order), block sums are added in double in block order.
static int NNC_FN(sumsq)(const NNC_T *x, nnc_ssize n, double *out)
{
    double total = 0;
    for (nnc_ssize c = 0; c < n; c += RNN_CHUNK) {
        nnc_ssize e = NNC_MIN(n, c + RNN_CHUNK);
        nnc_v acc = nnc_vzero();
        for (nnc_ssize i = c; i < e; i += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, e - i);
            nnc_v v = RNN_LD(x + i, m);
            acc = nnc_vadd(acc, nnc_vmul(v, v));
        }
        total += (double)nnc_vhsum(acc);
    }
    *out = total;
    return NNC_OK;
}

#undef RNN_CHUNK
#undef RNN_SPLIT_WORK
#undef RNN_OFS
#undef RNN_LD
#undef RNN_ST
#undef RNN_LDZ
