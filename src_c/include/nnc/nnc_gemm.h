// nnc_gemm.h - GEMM engine: parameter structs and constants.
#ifndef NNC_GEMM_H
#define NNC_GEMM_H

#endif
