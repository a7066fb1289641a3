// kernels/rnn/context.h - SimpleRNN, LSTM, GRU over whole sequences (template;
// see nnc_internal.h): the per-call context shared by forward and backward,
// and the gate and phase counts of a cell.  The family's files:
//   rnn/gates.h     fused gate passes (element-wise, any rows) and the cell ops
//   rnn/context.h   this overview, the context
//   rnn/gemv.h      the recurrent product on one thread (GEMM, batch-1 streams)
//   rnn/step.h      one step of the forward for a row block and a unit slice
//   rnn/forward.h   the forward's schedules, workspace and op (rnn_fwd)
//   rnn/backward.h  backpropagation through time (rnn_bwd)
//   rnn/convrnn.h   ConvRNN2D / ConvLSTM2D, from the conv kernels and gates.h
// The column split's claim board is runtime/claim.h.
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
//   slices (rnn_fwd_slices): each thread owns a fixed block of slices (all
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

// What the steps of one call read and write: the descriptor, the gate count
// G, the GEMM's panel width NR, the weights (packed by rnn_pack_fwd or
// rnn_pack_bwd) and the caller's buffers (a: the pre-activations, hs itself
// for SimpleRNN; q: GRU reset_after's recurrent product, one step's rows).
typedef struct {
    const nnc_rnn_desc *d;
    nnc_ssize G, NR;
    const NNC_T *Wp[4];      // forward: gate block g of W_h packed as op(B) = W_h[g]^T
    const NNC_T *Wb1, *Wb2;  // backward: W_h (GRU reset_after = 0: rows r,u and c apart)
    const NNC_T *bh, *h0, *c0;
    NNC_T *hs, *cs, *a, *aux, *q;
    const NNC_T *x, *Wx, *bias;  // input projection (bias: b_x, or b_x + b_h)
    const NNC_T *Wh;             // W_h, for packing slices in rnn_slice_setup
    NNC_T *Wbuf;                 // the packed gate blocks (Wp[g] = Wbuf + g * Wgs)
    nnc_ssize Wgs;
} NNC_FN(rnn_ctx);

// Gates per hidden unit: 1, 4, 3 (SimpleRNN, LSTM, GRU).
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
