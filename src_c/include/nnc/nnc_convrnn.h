// nnc_convrnn.h - ConvRNN2D and ConvLSTM2D: parameter structs and constants.
#ifndef NNC_CONVRNN_H
#define NNC_CONVRNN_H

#endif
