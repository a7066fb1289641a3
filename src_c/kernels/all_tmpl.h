// kernels/all_tmpl.h - every kernel template, in dependency order (later
// families may call earlier ones, e.g. conv and rnn call the GEMM).
#include "kernels/act_tmpl.h"
#include "kernels/gemm_tmpl.h"
#include "kernels/gemm_nt_tmpl.h"
#include "kernels/conv_tmpl.h"
#include "kernels/pool_tmpl.h"
#include "kernels/rnn_tmpl.h"
#include "kernels/convrnn_tmpl.h"
#include "kernels/train_tmpl.h"
#include "kernels/dropout/dropout.h"
