// kernels/all.h - every kernel family's entry header, in dependency order
// (later families may call earlier ones, e.g. conv and rnn call the GEMM,
// the GEMM and conv call the activations).  Included once per dtype by
// isa/instantiate.h.
#include "kernels/act/act.h"
#include "kernels/gemm/gemm.h"
#include "kernels/conv/conv.h"
#include "kernels/pool/pool.h"
#include "kernels/rnn/rnn.h"
#include "kernels/train/train.h"
#include "kernels/dropout/dropout.h"
#include "kernels/embedding/embedding.h"
