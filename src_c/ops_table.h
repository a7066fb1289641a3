// ops_table.h - the per-dtype tables of function pointers, generated from
// nnc/ops.def.  Filled once per ISA (isa/instantiate.h); runtime/dispatch.c keeps
// the active pair and defines the public nnc_<op>_<f32|f64> entry points.
#ifndef NNC_OPS_TABLE_H
#define NNC_OPS_TABLE_H
#include "nnc/nnc.h"

#define NNC_OP(ret, name, params, args) ret(*name) params;
#define NNC_T float
typedef struct nnc_ops_f32 {
#include "nnc/ops.def"
} nnc_ops_f32;
#undef NNC_T
#define NNC_T double
typedef struct nnc_ops_f64 {
#include "nnc/ops.def"
} nnc_ops_f64;
#undef NNC_T
#undef NNC_OP

void nnc_fill_ops_f32__scalar(nnc_ops_f32 *);
void nnc_fill_ops_f64__scalar(nnc_ops_f64 *);
#if defined(__x86_64__) || defined(_M_X64)
#define NNC_HAVE_X86 1
void nnc_fill_ops_f32__avx2(nnc_ops_f32 *);
void nnc_fill_ops_f64__avx2(nnc_ops_f64 *);
void nnc_fill_ops_f32__avx512(nnc_ops_f32 *);
void nnc_fill_ops_f64__avx512(nnc_ops_f64 *);
#endif
#endif
