// nnc_train.h - losses, optimisers and element-wise training helpers: parameter structs and constants.
#ifndef NNC_TRAIN_H
#define NNC_TRAIN_H

#endif
