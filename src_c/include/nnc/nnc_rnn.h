// nnc_rnn.h - SimpleRNN, LSTM, GRU sequence kernels: parameter structs and constants.
#ifndef NNC_RNN_H
#define NNC_RNN_H

// Recurrent cell kinds; G = gates per hidden unit (1, 4, 3).
enum nnc_rnn_cell { NNC_RNN_SIMPLE = 0, NNC_RNN_LSTM = 1, NNC_RNN_GRU = 2 };

// One recurrent layer call: x (n, t, f) -> hidden states (n, t, h).
typedef struct {
    int cell;         // enum nnc_rnn_cell
    int act;          // SimpleRNN activation (enum nnc_act, not softmax/sign)
    int reset_after;  // GRU: reset applied after the recurrent product
    int training;     // forward keeps what backward needs
    nnc_ssize n, t, f, h;
    // Steps of each row (n), non-increasing, each in [1, t]; NULL: t for
    // every row.  Steps past a row's length are skipped (see ops/rnn.def).
    const nnc_ssize *lengths;
    // NULL, or with lengths the rows of x, dx and dhs in the caller's order:
    // row r of the kernels' order (the lengths') is their row order[r], each
    // in [0, n); every other array is in the kernels' order.
    const nnc_ssize *order;
} nnc_rnn_desc;

#endif
