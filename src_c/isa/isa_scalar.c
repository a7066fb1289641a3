// isa_scalar.c - the portable baseline instance of every kernel (no target
// attributes: SSE2 on x86-64, NEON on aarch64, plain C elsewhere).
#define NNC_ISA scalar
#define NNC_ISA_ID 0
#include "isa/instantiate.h"
