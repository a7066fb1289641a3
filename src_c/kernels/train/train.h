// kernels/train/train.h - losses, optimisers and element-wise training
// helpers (template; see nnc_internal.h).
//
// Losses are fused forward + backward: one pass writes the gradient w.r.t. the
// prediction and the summed loss.  Reductions are deterministic: the input is
// cut into fixed blocks (NNC_TRAIN_BLOCK elements, or rows for the softmax
// cross-entropy) whose partial sums are added in block order, so the result
// does not depend on the thread count.  Optimiser steps and `add` are purely
// element-wise.
//
// Parts:
//   loss.h   softmax_xent, mse, bce
//   steps.h  sgd_step, adam_step, add
#include "kernels/train/loss.h"
#include "kernels/train/steps.h"
#include "kernels/train/clip.h"
