// kernels/act/act.h - activations and the dense layer's helpers (template;
// see nnc_internal.h).
//
// Forward y = g(z) element-wise (softmax: over each row), and backward
// dz = dy * g'(z) computed from the saved output y (sigma' = y(1-y),
// tanh' = 1-y^2, relu' = [y > 0], sign' = 0; softmax: y * (dy - <dy, y>));
// leaky ReLU (slope alpha) from the saved input z: [z > 0] + alpha [z <= 0].
//
// Parts:
//   vact.h   vact / vact_grad on one vector: also the epilogue of the GEMM
//            and the conv kernels, so fused and unfused paths round identically;
//            vact_a / vact_grad_a add leaky ReLU's slope for the ops
//   apply.h  the ops act_fwd / act_bwd over rows, softmax rows
//   dense.h  colsum (bias gradients) and the perceptron rule
#include "kernels/act/vact.h"
#include "kernels/act/apply.h"
#include "kernels/act/dense.h"
