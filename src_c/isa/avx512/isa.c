// isa/avx512/isa.c - AVX-512 (F, VL, BW, DQ) + FMA instance of every kernel,
// chosen at run time.
#if defined(__x86_64__) || defined(_M_X64)
#define NNC_ISA avx512
#include "isa/avx512/config.h"
#define NNC_ISA_SIMD_H "isa/avx512/simd.h"
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
#include "isa/instantiate.h"
#pragma GCC pop_options
#endif
