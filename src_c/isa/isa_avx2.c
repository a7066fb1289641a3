// isa_avx2.c - AVX2 + FMA instance of every kernel, chosen at run time.
#if defined(__x86_64__) || defined(_M_X64)
#define NNC_ISA avx2
#define NNC_ISA_ID 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include "isa/instantiate.h"
#pragma GCC pop_options
#endif
