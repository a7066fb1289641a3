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
    const NNC_T *Wall;       // ... or all of W_h as one op(B) of G*H columns (rnn_pack_fwd), else NULL
    const NNC_T *Wb1, *Wb2;  // backward: W_h (GRU reset_after = 0: rows r,u and c apart)
    const NNC_T *bh, *h0, *c0;
    NNC_T *hs, *cs, *a, *aux, *q;
    NNC_T *hs_out;               // hs in the caller's order (d->order), or NULL
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

// 1 if lengths is NULL or its n entries are non-increasing, each in [1, t]
// (the lengths of the recurrent and the conv-recurrent kernels).
static int NNC_FN(lengths_ok)(const nnc_ssize *lengths, nnc_ssize n, nnc_ssize t)
{
    if (!lengths) return 1;
    for (nnc_ssize r = 0; r < n; ++r)
        if (lengths[r] < 1 || lengths[r] > t || (r && lengths[r] > lengths[r - 1])) return 0;
    return 1;
}

// 1 if order is NULL, or given with lengths and its n entries in [0, n).
static int NNC_FN(rnn_order_ok)(const nnc_rnn_desc *d)
{
    if (!d->order) return 1;
    if (!d->lengths) return 0;
    for (nnc_ssize r = 0; r < d->n; ++r)
        if (d->order[r] < 0 || d->order[r] >= d->n) return 0;
    return 1;
}

// The row of x and dx that holds row r of the kernels' order.
NNC_INLINE nnc_ssize NNC_FN(rnn_x_row)(const nnc_rnn_desc *d, nnc_ssize r)
{
    return d->order ? d->order[r] : r;
}

// The end of the rows of [r0, r1) that run step t: with lengths (non-
// increasing) they are a prefix, found by bisection; else r1.
static nnc_ssize NNC_FN(lengths_active_end)(const nnc_ssize *lengths, nnc_ssize r0, nnc_ssize r1, nnc_ssize t)
{
    if (!lengths) return r1;
    while (r0 < r1) {
        const nnc_ssize mid = r0 + (r1 - r0) / 2;
        if (lengths[mid] > t) r0 = mid + 1;
        else r1 = mid;
    }
    return r0;
}

// The first row of batch block b of `blocks`: equal row counts, or with
// lengths equal shares of the steps to run (rows stay in order).  A row's
// result does not depend on its block.
static nnc_ssize NNC_FN(rnn_block_start)(const nnc_rnn_desc *d, int blocks, int b)
{
    if (b >= blocks) return d->n;
    if (!d->lengths) return NNC_MIN(d->n, b * NNC_CEILDIV(d->n, blocks));
    double total = 0, acc = 0;
    for (nnc_ssize r = 0; r < d->n; ++r) total += (double)d->lengths[r];
    nnc_ssize r = 0;
    while (r < d->n && acc * blocks < total * b) acc += (double)d->lengths[r++];
    return r;
}

// Zeroes rows [r0, r1) of p (n, t, width) past their lengths (with lengths);
// p's row of row r is map[r] (map NULL: r).
static void NNC_FN(rnn_zero_padding)(const nnc_rnn_desc *d, NNC_T *p, nnc_ssize width, nnc_ssize r0, nnc_ssize r1,
                                     const nnc_ssize *map)
{
    if (!d->lengths) return;
    for (nnc_ssize r = r0; r < r1; ++r)
        memset(p + ((map ? map[r] : r) * d->t + d->lengths[r]) * width, 0,
               sizeof(NNC_T) * (size_t)((d->t - d->lengths[r]) * width));
}

// Rows [r0, r1) of hs, zero past their lengths, and their copies in hs_out
// (the caller's order) when asked for.
static void NNC_FN(rnn_finish_rows)(const NNC_FN(rnn_ctx) *cx, nnc_ssize r0, nnc_ssize r1)
{
    const nnc_rnn_desc *d = cx->d;
    const nnc_ssize th = d->t * d->h;
    NNC_FN(rnn_zero_padding)(d, cx->hs, d->h, r0, r1, NULL);
    if (cx->hs_out)
        for (nnc_ssize r = r0; r < r1; ++r)
            memcpy(cx->hs_out + d->order[r] * th, cx->hs + r * th, sizeof(NNC_T) * (size_t)th);
}
