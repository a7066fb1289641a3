// nnc_train.h - losses, optimisers and element-wise training helpers: parameter structs and constants.
#ifndef NNC_TRAIN_H
#define NNC_TRAIN_H

// Loss reductions sum fixed blocks of this many elements (rows for the
// softmax cross-entropy), then the blocks in order: thread-count independent.
#define NNC_TRAIN_BLOCK 4096
// BinaryCrossEntropy on probabilities: logs clamped at this value (PyTorch),
// and the gradient's denominator p(1-p) at least NNC_BCE_EPS.
#define NNC_BCE_LOG_MIN (-100.0)
#define NNC_BCE_EPS 1e-12

#endif
