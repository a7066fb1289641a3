// isa/instantiate.h - compiles every kernel template for float32 and float64
// in the current ISA translation unit and defines the two functions that fill
// the ops tables:  nnc_fill_ops_f32__<isa>(), nnc_fill_ops_f64__<isa>().
// The includer (isa/<isa>/isa.c) defines NNC_ISA (a token: scalar, avx2,
// avx512), includes isa/<isa>/config.h (the tile constants) and names its
// vector wrappers in NNC_ISA_SIMD_H.
#if !defined(NNC_ISA) || !defined(NNC_ISA_CONFIG) || !defined(NNC_ISA_SIMD_H)
#error "isa/instantiate.h: include it from isa/<isa>/isa.c after isa/<isa>/config.h"
#endif
#include "nnc_internal.h"
#include "ops_table.h"

#define NNC_T float
#define NNC_SFX f32
#define NNC_IS_F32 1
#include NNC_ISA_SIMD_H
#include "isa/simd_math.h"
#include "kernels/all.h"
#define NNC_OP(ret, name, params, args) ops->name = NNC_FN(name);
void NNC_FN(fill_ops)(nnc_ops_f32 *ops)
{
#include "nnc/ops.def"
}
#undef NNC_OP
#include "isa/simd_undef.h"
#undef NNC_T
#undef NNC_SFX
#undef NNC_IS_F32

#define NNC_T double
#define NNC_SFX f64
#define NNC_IS_F32 0
#include NNC_ISA_SIMD_H
#include "isa/simd_math.h"
#include "kernels/all.h"
#define NNC_OP(ret, name, params, args) ops->name = NNC_FN(name);
void NNC_FN(fill_ops)(nnc_ops_f64 *ops)
{
#include "nnc/ops.def"
}
#undef NNC_OP
#include "isa/simd_undef.h"
#undef NNC_T
#undef NNC_SFX
#undef NNC_IS_F32
