// isa/avx2/isa.c - AVX2 + FMA instance of every kernel, chosen at run time.
#if defined(__x86_64__) || defined(_M_X64)
#define NNC_ISA avx2
#include "isa/avx2/config.h"
#define NNC_ISA_SIMD_H "isa/avx2/simd.h"
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include "isa/instantiate.h"
#pragma GCC pop_options
#endif
