// isa/instantiate.h - compiles every kernel template for float32 and float64
// in the current ISA translation unit and defines the two functions that fill
// the ops tables:  nnc_fill_ops_f32__<isa>(), nnc_fill_ops_f64__<isa>().
// The includer defines NNC_ISA (a token: scalar, avx2, avx512) and NNC_ISA_ID.
#include "nnc_internal.h"
#include "ops_table.h"

#define NNC_T float
#define NNC_SFX f32
#define NNC_IS_F32 1
#include "simd/simd.h"
#include "kernels/all_tmpl.h"
#define NNC_OP(ret, name, params, args) ops->name = NNC_FN(name);
void NNC_FN(fill_ops)(nnc_ops_f32 *ops)
{
#include "nnc/ops.def"
}
#undef NNC_OP
#include "simd/simd_undef.h"
#undef NNC_T
#undef NNC_SFX
#undef NNC_IS_F32

#define NNC_T double
#define NNC_SFX f64
#define NNC_IS_F32 0
#include "simd/simd.h"
#include "kernels/all_tmpl.h"
#define NNC_OP(ret, name, params, args) ops->name = NNC_FN(name);
void NNC_FN(fill_ops)(nnc_ops_f64 *ops)
{
#include "nnc/ops.def"
}
#undef NNC_OP
#include "simd/simd_undef.h"
#undef NNC_T
#undef NNC_SFX
#undef NNC_IS_F32
