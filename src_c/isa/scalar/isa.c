// isa/scalar/isa.c - the portable baseline instance of every kernel (no target
// attributes: SSE2 on x86-64, NEON on aarch64, plain C elsewhere).
#define NNC_ISA scalar
#include "isa/scalar/config.h"
#define NNC_ISA_SIMD_H "isa/scalar/simd.h"
#include "isa/instantiate.h"
