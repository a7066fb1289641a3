// isa/avx512/config.h - every tile constant of AVX-512 F/VL/BW/DQ + FMA: 32 zmm registers.
// A kernel template uses these names only; an ISA whose config.h lacks one is
// a compile error, never a silent default.
#define NNC_ISA_CONFIG avx512
#define NNC_GEMM_MR 12  // GEMM micro-tile rows (packed A panel height)
#define NNC_GEMM_NV 2   // GEMM micro-tile width in vectors (NR = NV * NNC_VLEN)
#define NNC_GEMM_NT_DC 6   // one-row-of-B GEMM (gemm_nt) B rows per register block (4 x DC accumulators)
#define NNC_GEMM_GROUP_ACC 16  // GEMM kernels for 1-3 rows: most accumulators (rows x panels x NV)
#define NNC_CONV_RW 6   // conv micro-kernel: most output pixels per tile of up to CONV_NV vectors
#define NNC_CONV_NV 4   // conv micro-kernel: most channel vectors per tile
#define NNC_CONV_RWX 12  // conv micro-kernel: most pixels per tile of up to CONV_NVH vectors
#define NNC_CONV_NVH 2   // conv micro-kernel: vectors per tile that allow CONV_RWX pixels
#define NNC_CONV_RWH 16  // conv narrow-channel kernels (fewer channels than a vector): most pixels
#define NNC_CONV_RWM 12  // conv narrow-channel kernels with one extra vector: most pixels
#define NNC_CONV_RWD 6   // conv_dot (reduction in the lanes): most pixels per tile of up to 4 outputs
#define NNC_CONV_DOT_PCT 67  // conv_dot when it takes under this % of the FMAs of the lane kernels
#define NNC_POOL_U 4   // pooling: channel vectors per output pixel kept in registers
