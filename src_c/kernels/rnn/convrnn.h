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
// Lengths (d->lengths, sequences sorted longest first by the layer): the
// images that run step t are a prefix of the step's batch (convrnn_running),
// so the input convolution runs step by step over them, and each step's
// recurrent convolution and cell pass over them only; the weight gradients
// stay single convolutions over all t*n images, the padded ones with zero
// gradients.

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

// The images of step t that run it: a prefix of the batch (all n without
// lengths; none past the last step).
static nnc_ssize NNC_FN(convrnn_running)(const nnc_convrnn_desc *d, nnc_ssize t)
{
    return t < d->t ? NNC_FN(lengths_active_end)(d->lengths, 0, d->n, t) : 0;
}

// The input convolution of every step: forward gates = W_x ⋆ x + b (bwd = 0),
// backward dxt = the input gradient of da = gates (bwd = 1).  One
// convolution over all t*n images, or with lengths one per step over the
// images that run it (the forward leaves the other gates unwritten, the
// backward zeroes their dx).
static int NNC_FN(convrnn_input)(const nnc_convrnn_desc *d, nnc_ssize G, int bwd, const NNC_T *xt,
                                 const NNC_T *Wx, const NNC_T *b, NNC_T *gates, NNC_T *dxt)
{
    const nnc_ssize hw = d->h * d->w, images = d->lengths ? d->n : d->t * d->n;   // per call
    const nnc_ssize xs = images * hw * d->cin, gs = images * hw * G * d->ch;
    for (nnc_ssize t = 0; t < (d->lengths ? d->t : 1); ++t) {
        const nnc_ssize run = d->lengths ? NNC_FN(convrnn_running)(d, t) : images;
        const nnc_conv_desc p = NNC_FN(convrnn_geo)(d, run, d->cin, G * d->ch);
        int st = NNC_OK;
        if (run > 0)
            st = bwd ? NNC_FN(conv_bwd_data)(&p, gates + t * gs, Wx, dxt + t * xs, 0)
                     : NNC_FN(conv_fwd)(&p, xt + t * xs, Wx, b, NNC_ACT_LINEAR, NULL, gates + t * gs);
        if (st) return st;
        if (bwd) memset(dxt + t * xs + run * hw * d->cin, 0, sizeof(NNC_T) * (size_t)((images - run) * hw * d->cin));
    }
    return NNC_OK;
}

// The forward op (see ops/convrnn.def): the input convolution of every step
// into gates, then step by step the recurrent convolution added into the
// step's gates and the cell pass writing hist (and chist) slots, over the
// images that run the step.
static int NNC_FN(convrnn_fwd)(const nnc_convrnn_desc *d, const NNC_T *xt, const NNC_T *Wx, const NNC_T *Wh,
                               const NNC_T *b, const NNC_T *h0, const NNC_T *c0, NNC_T *gates, NNC_T *hist,
                               NNC_T *chist)
{
    const int lstm = d->cell == NNC_RNN_LSTM;
    const nnc_ssize G = lstm ? 4 : 1, hw = d->h * d->w, is = hw * d->ch;   // is: one image's state
    const nnc_ssize gs = d->n * hw * G * d->ch, ss = d->n * is;             // per-step sizes
    if (!NNC_FN(lengths_ok)(d->lengths, d->n, d->t)) return NNC_EINVAL;
    if (ss == 0) return NNC_OK;
    int st = NNC_FN(convrnn_input)(d, G, 0, xt, Wx, b, gates, NULL);
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
        const nnc_ssize run = NNC_FN(convrnn_running)(d, t), rows = run * hw;
        const nnc_conv_desc ph = NNC_FN(convrnn_geo)(d, run, d->ch, G * d->ch);
        NNC_T *a = gates + t * gs;
        if (d->keep_h)   // the outputs past a length are zero
            memset(hist + hn * ss + rows * d->ch, 0, sizeof(NNC_T) * (size_t)((d->n - run) * is));
        if (run == 0) continue;
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
// gradient pass (gates becomes da, zero past the lengths) and dh_{t-1} =
// conv_bwd_data(da, W_h) (carried in dh0) over the images that ran the step;
// then dW_h, dW_x, db over all T*N images and dx (convrnn_input).
static int NNC_FN(convrnn_bwd)(const nnc_convrnn_desc *d, const NNC_T *xt, const NNC_T *Wx, const NNC_T *Wh,
                               const NNC_T *hist, const NNC_T *chist, NNC_T *gates, const NNC_T *dhs, NNC_T *dxt,
                               NNC_T *dWx, NNC_T *dWh, NNC_T *db, NNC_T *dh0, NNC_T *dc0)
{
    const int lstm = d->cell == NNC_RNN_LSTM;
    const nnc_ssize G = lstm ? 4 : 1, hw = d->h * d->w, is = hw * d->ch, ig = hw * G * d->ch;   // per image
    const nnc_ssize gs = d->n * ig, ss = d->n * is;
    nnc_conv_desc px = NNC_FN(convrnn_geo)(d, d->t * d->n, d->cin, G * d->ch);
    nnc_conv_desc phall = NNC_FN(convrnn_geo)(d, d->t * d->n, d->ch, G * d->ch);
    int st;
    if (!NNC_FN(lengths_ok)(d->lengths, d->n, d->t)) return NNC_EINVAL;
    if (ss > 0) {
        // dh0 carries dh_{t-1} from step to step; dc0 carries dC.
        if (lstm) memset(dc0, 0, sizeof(NNC_T) * (size_t)ss);
        for (nnc_ssize t = d->t - 1; t >= 0; --t) {
            const nnc_ssize run = NNC_FN(convrnn_running)(d, t), later = NNC_FN(convrnn_running)(d, t + 1);
            const nnc_ssize rows = run * hw;
            const nnc_conv_desc ph = NNC_FN(convrnn_geo)(d, run, d->ch, G * d->ch);
            NNC_T *da = gates + t * gs;
            memset(da + run * ig, 0, sizeof(NNC_T) * (size_t)((d->n - run) * ig));   // no gradient past a length
            if (run == 0) continue;
            // the images whose last step is t take no dh from later steps
            if (later > 0) memset(dh0 + later * is, 0, sizeof(NNC_T) * (size_t)((run - later) * is));
            const NNC_T *dh_rec = later > 0 ? dh0 : NULL;
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
    // Weight gradients as convolutions over all T*N images at once.
    st = NNC_FN(conv_bwd_filter)(&phall, hist, gates, dWh, NULL);
    if (st) return st;
    st = NNC_FN(conv_bwd_filter)(&px, xt, gates, dWx, db);
    if (st) return st;
    return ss > 0 ? NNC_FN(convrnn_input)(d, G, 1, xt, Wx, NULL, gates, dxt) : NNC_OK;
}
