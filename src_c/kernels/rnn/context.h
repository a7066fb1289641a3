// kernels/rnn/context.h - the per-call context shared by the recurrent forward
// and backward, and the gate and phase counts of a cell (overview: rnn/rnn.h).

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
