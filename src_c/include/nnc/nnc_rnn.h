// nnc_rnn.h - SimpleRNN, LSTM, GRU sequence kernels and gradient clipping: parameter structs and constants.
#ifndef NNC_RNN_H
#define NNC_RNN_H

#endif
