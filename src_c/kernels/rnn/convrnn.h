// kernels/rnn/convrnn.h - ConvRNN2D and ConvLSTM2D over a whole sequence
// (template; see nnc_internal.h).  Built from the conv kernels and the fused
// recurrent cell passes:
//   forward:  one batched convolution of every x_t (T*N images) into the gate
//             buffer; per step one recurrent convolution of h_{t-1} added
//             into the step's gates as it is stored, one fused cell pass
//             (rows = N*H*W pixels).
//   backward: per step one fused cell-gradient pass and one transposed
//             convolution (dh_{t-1}); then dW_h, dW_x, db and dx as single
//             convolutions over all T*N images, not per step.
// Memory kept for backward per timestep and pixel: G*ch gate values, ch for
// h_t and ch for C_t (LSTM); inference keeps two state slots.

// "Same", stride-1 convolution geometry over `images` NHWC images.
static nnc_conv_desc NNC_FN(convrnn_geo)(const nnc_convrnn_desc *d, nnc_ssize images, nnc_ssize cin,
                                         nnc_ssize cout)
{
    nnc_conv_desc p;
    memset(&p, 0, sizeof p);
    p.n = images;
    p.h = d->h;
    p.w = d->w;
    p.c = cin;
    p.k = cout;
    p.kh = d->kh;
    p.kw = d->kw;
    p.stride_h = p.stride_w = p.dil_h = p.dil_w = 1;
    p.pad_top = (d->kh - 1) / 2;
    p.pad_bottom = d->kh - 1 - p.pad_top;
    p.pad_left = (d->kw - 1) / 2;
    p.pad_right = d->kw - 1 - p.pad_left;
    p.groups = 1;
    p.oh = d->h;
    p.ow = d->w;
    p.ldx = cin;
    p.ldy = cout;
    return p;
}

// The forward op (see ops/convrnn.def): the input convolution of every step
// into gates, then step by step the recurrent convolution added into the
// step's gates and the cell pass writing hist (and chist) slots.
static int NNC_FN(convrnn_fwd)(const nnc_convrnn_desc *d, const NNC_T *xt, const NNC_T *Wx, const NNC_T *Wh,
                               const NNC_T *b, const NNC_T *h0, const NNC_T *c0, NNC_T *gates, NNC_T *hist,
                               NNC_T *chist)
{
    const int lstm = d->cell == NNC_RNN_LSTM;
    const nnc_ssize G = lstm ? 4 : 1, rows = d->n * d->h * d->w;
    const nnc_ssize gs = rows * G * d->ch, ss = rows * d->ch;   // per-step sizes
    if (rows == 0) return NNC_OK;
    nnc_conv_desc px = NNC_FN(convrnn_geo)(d, d->t * d->n, d->cin, G * d->ch);
    nnc_conv_desc ph = NNC_FN(convrnn_geo)(d, d->n, d->ch, G * d->ch);
    int st = NNC_FN(conv_fwd)(&px, xt, Wx, b, NNC_ACT_LINEAR, NULL, gates);
    if (st) return st;
    if (h0) memcpy(hist, h0, sizeof(NNC_T) * (size_t)ss);
    else memset(hist, 0, sizeof(NNC_T) * (size_t)ss);
    if (lstm) {
        if (c0) memcpy(chist, c0, sizeof(NNC_T) * (size_t)ss);
        else memset(chist, 0, sizeof(NNC_T) * (size_t)ss);
    }
    for (nnc_ssize t = 0; t < d->t; ++t) {
        const nnc_ssize hp = d->keep_h ? t : t % 2, hn = d->keep_h ? t + 1 : (t + 1) % 2;
        const nnc_ssize cp = d->training ? t : t % 2, cn = d->training ? t + 1 : (t + 1) % 2;
        NNC_T *a = gates + t * gs;
        if (t > 0 || h0) {   // the recurrent term vanishes for a zero initial state
            st = NNC_FN(conv_fwd)(&ph, hist + hp * ss, Wh, NULL, NNC_ACT_LINEAR, a, a);   // a += Wh * h
            if (st) return st;
        }
        if (lstm)
            st = NNC_FN(lstm_cell_fwd)(rows, d->ch, a, 4 * d->ch, chist + cp * ss, d->ch, chist + cn * ss, d->ch,
                                       hist + hn * ss, d->ch, d->training);
        else
            st = NNC_FN(act_fwd)(hist + hn * ss, d->ch, a, d->ch, rows, d->ch, d->act, 0);
        if (st) return st;
    }
    return NNC_OK;
}

// The backward op (see ops/convrnn.def): step by step in reverse, the cell
// gradient pass (gates becomes da) and dh_{t-1} = conv_bwd_data(da, W_h)
// (carried in dh0); then dW_h, dW_x, db and dx over all T*N images.
static int NNC_FN(convrnn_bwd)(const nnc_convrnn_desc *d, const NNC_T *xt, const NNC_T *Wx, const NNC_T *Wh,
                               const NNC_T *hist, const NNC_T *chist, NNC_T *gates, const NNC_T *dhs, NNC_T *dxt,
                               NNC_T *dWx, NNC_T *dWh, NNC_T *db, NNC_T *dh0, NNC_T *dc0)
{
    const int lstm = d->cell == NNC_RNN_LSTM;
    const nnc_ssize G = lstm ? 4 : 1, rows = d->n * d->h * d->w;
    const nnc_ssize gs = rows * G * d->ch, ss = rows * d->ch;
    nnc_conv_desc px = NNC_FN(convrnn_geo)(d, d->t * d->n, d->cin, G * d->ch);
    nnc_conv_desc ph = NNC_FN(convrnn_geo)(d, d->n, d->ch, G * d->ch);
    nnc_conv_desc phall = NNC_FN(convrnn_geo)(d, d->t * d->n, d->ch, G * d->ch);
    int st;
    if (rows > 0) {
        // dh0 carries dh_{t-1} from step to step; dc0 carries dC.
        if (lstm) memset(dc0, 0, sizeof(NNC_T) * (size_t)ss);
        for (nnc_ssize t = d->t - 1; t >= 0; --t) {
            NNC_T *da = gates + t * gs;
            const NNC_T *dh_rec = t == d->t - 1 ? NULL : dh0;
            if (lstm)
                st = NNC_FN(lstm_cell_bwd)(rows, d->ch, da, 4 * d->ch, chist + t * ss, d->ch, chist + (t + 1) * ss,
                                           d->ch, dhs + t * ss, d->ch, dh_rec, d->ch, dc0, d->ch, da, 4 * d->ch);
            else
                st = NNC_FN(rnn_cell_bwd)(rows, d->ch, hist + (t + 1) * ss, d->ch, dhs + t * ss, d->ch, dh_rec,
                                          d->ch, da, d->ch, d->act);
            if (st) return st;
            st = NNC_FN(conv_bwd_data)(&ph, da, Wh, dh0, 0);
            if (st) return st;
        }
    }
    // Weight gradients and dx as convolutions over all T*N images at once.
    st = NNC_FN(conv_bwd_filter)(&phall, hist, gates, dWh, NULL);
    if (st) return st;
    st = NNC_FN(conv_bwd_filter)(&px, xt, gates, dWx, db);
    if (st) return st;
    return rows > 0 ? NNC_FN(conv_bwd_data)(&px, gates, Wx, dxt, 0) : NNC_OK;
}
