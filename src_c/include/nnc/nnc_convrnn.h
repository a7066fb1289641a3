// nnc_convrnn.h - ConvRNN2D and ConvLSTM2D: parameter structs and constants.
#ifndef NNC_CONVRNN_H
#define NNC_CONVRNN_H

// One convolutional recurrent layer call.  Every activation buffer is
// time-major, (T, N, H, W, C), so that each step is a contiguous batch of N
// images and the all-timestep convolutions are one batch of T*N images.
// G = 1 (ConvRNN2D: cell NNC_RNN_SIMPLE) or 4 (ConvLSTM2D: NNC_RNN_LSTM,
// gates i, f, c, o).  Convolutions are "same", stride 1, kernel (kh, kw).
typedef struct {
    int cell;          // NNC_RNN_SIMPLE or NNC_RNN_LSTM (nnc_rnn.h)
    int act;           // ConvRNN2D hidden activation (nnc_act)
    int training;      // keep activated gates and every C_t for backward
    int keep_h;        // keep every h_t (hist has t+1 slots), else 2 slots
    nnc_ssize n, t, h, w, cin, ch, kh, kw;
    // Steps of each image sequence (n), non-increasing, each in [1, t];
    // NULL: t for every one.  Steps past a length are skipped (see ops/convrnn.def).
    const nnc_ssize *lengths;
} nnc_convrnn_desc;

#endif
