// isa/avx2/simd.h - AVX2 + FMA (256-bit):
// vector wrappers for float32 and float64 (NNC_IS_F32 picks), so every kernel
// template is written once.  Included once per dtype by isa/instantiate.h;
// isa/simd_undef.h removes everything again.  Every ISA's simd.h defines:
//
//   nnc_v, NNC_VLEN                  vector type and lanes
//   nnc_vzero() nnc_vset1(x)         constants
//   nnc_vload(p) nnc_vstore(p, v)    unaligned full-vector load/store
//   nnc_vloadn(p, n) nnc_vstoren(p, v, n)
//                                    first n < NNC_VLEN lanes (others read as 0,
//                                    never touched in memory: no out-of-bounds access)
//   nnc_vmask nnc_vmaskn(n) nnc_vloadm(p, m)
//                                    the mask of the first n < NNC_VLEN lanes, made once
//                                    (outside a loop) for nnc_vloadm: nnc_vloadn's load
//   nnc_vloadp(p, n) nnc_vstorep(p, v, n)
//                                    n lanes, whole or partial: the full-vector
//                                    instruction when n >= NNC_VLEN, else the masked one
//   nnc_vadd vsub vmul vdiv          arithmetic; nnc_vfma(a, b, c) = a*b + c, fused
//                                    wherever the ISA has FMA (so only use it where
//                                    the rounding is the same for every caller)
//   nnc_vmax(a, b) nnc_vmin(a, b)    a > b ? a : b (resp. <): b wins when either is
//                                    NaN, so nnc_vmax(zero, x) keeps a NaN x
//   nnc_vsel_gt(a, b, x, y)          a > b ? x : y per lane (NaN compares false)
//   nnc_vsel_ge / nnc_vsel_eq        a >= b, a == b likewise
//   nnc_vhsum(v)                     horizontal sum in a fixed lane order
//   nnc_vhsums(v, out)               out[i] = nnc_vhsum(v[i]) for NNC_VLEN vectors, bitwise,
//                                    by one transposing network (the same lane pairings)
//   nnc_vsqrt(v)
//   nnc_vh, NNC_VHLEN                half-width vector; nnc_vhzero() nnc_vhset1(x)
//                                    nnc_vhload(p) nnc_vhfma(a, b, c) as above, and
//                                    nnc_vhwiden(v): the nnc_v with v in its low lanes, 0 above
//   nnc_vtransp(dst, ldd, src, lds)  NNC_TB x NNC_TB block transpose: dst[j*ldd+i] = src[i*lds+j]
//   NNC_SIMD_POLY_MATH               1: float32 exp/tanh/sigmoid by polynomials (isa/simd_math.h)
#include <immintrin.h>
#define NNC_SIMD_POLY_MATH 1

#if NNC_IS_F32
#define nnc_v __m256
#define NNC_VLEN 8
#define nnc_vzero() _mm256_setzero_ps()
#define nnc_vset1(x) _mm256_set1_ps(x)
#define nnc_vload(p) _mm256_loadu_ps(p)
#define nnc_vstore(p, v) _mm256_storeu_ps((p), (v))
#define nnc_mask_(n) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define nnc_vloadn(p, n) _mm256_maskload_ps((p), nnc_mask_(n))
#define nnc_vmask __m256i
#define nnc_vmaskn(n) nnc_mask_(n)
#define nnc_vloadm(p, m) _mm256_maskload_ps((p), (m))
#define nnc_vstoren(p, v, n) _mm256_maskstore_ps((p), nnc_mask_(n), (v))
#define nnc_vadd _mm256_add_ps
#define nnc_vsub _mm256_sub_ps
#define nnc_vmul _mm256_mul_ps
#define nnc_vdiv _mm256_div_ps
#define nnc_vfma _mm256_fmadd_ps
#define nnc_vmax _mm256_max_ps
#define nnc_vmin _mm256_min_ps
#define nnc_vsel_gt(a, b, x, y) _mm256_blendv_ps((y), (x), _mm256_cmp_ps((a), (b), _CMP_GT_OQ))
#define nnc_vsel_ge(a, b, x, y) _mm256_blendv_ps((y), (x), _mm256_cmp_ps((a), (b), _CMP_GE_OQ))
#define nnc_vsel_eq(a, b, x, y) _mm256_blendv_ps((y), (x), _mm256_cmp_ps((a), (b), _CMP_EQ_OQ))
#define nnc_vsqrt _mm256_sqrt_ps
#define nnc_vh __m128
#define NNC_VHLEN 4
#define nnc_vhzero() _mm_setzero_ps()
#define nnc_vhset1(x) _mm_set1_ps(x)
#define nnc_vhload(p) _mm_loadu_ps(p)
#define nnc_vhfma _mm_fmadd_ps
#define nnc_vhwiden _mm256_zextps128_ps256
#define nnc_vround_(v) _mm256_round_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define nnc_vpow2i_(n) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#else
#define nnc_v __m256d
#define NNC_VLEN 4
#define nnc_vzero() _mm256_setzero_pd()
#define nnc_vset1(x) _mm256_set1_pd(x)
#define nnc_vload(p) _mm256_loadu_pd(p)
#define nnc_vstore(p, v) _mm256_storeu_pd((p), (v))
#define nnc_mask_(n) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(n)), _mm256_setr_epi64x(0, 1, 2, 3))
#define nnc_vloadn(p, n) _mm256_maskload_pd((p), nnc_mask_(n))
#define nnc_vmask __m256i
#define nnc_vmaskn(n) nnc_mask_(n)
#define nnc_vloadm(p, m) _mm256_maskload_pd((p), (m))
#define nnc_vstoren(p, v, n) _mm256_maskstore_pd((p), nnc_mask_(n), (v))
#define nnc_vadd _mm256_add_pd
#define nnc_vsub _mm256_sub_pd
#define nnc_vmul _mm256_mul_pd
#define nnc_vdiv _mm256_div_pd
#define nnc_vfma _mm256_fmadd_pd
#define nnc_vmax _mm256_max_pd
#define nnc_vmin _mm256_min_pd
#define nnc_vsel_gt(a, b, x, y) _mm256_blendv_pd((y), (x), _mm256_cmp_pd((a), (b), _CMP_GT_OQ))
#define nnc_vsel_ge(a, b, x, y) _mm256_blendv_pd((y), (x), _mm256_cmp_pd((a), (b), _CMP_GE_OQ))
#define nnc_vsel_eq(a, b, x, y) _mm256_blendv_pd((y), (x), _mm256_cmp_pd((a), (b), _CMP_EQ_OQ))
#define nnc_vsqrt _mm256_sqrt_pd
#define nnc_vh __m128d
#define NNC_VHLEN 2
#define nnc_vhzero() _mm_setzero_pd()
#define nnc_vhset1(x) _mm_set1_pd(x)
#define nnc_vhload(p) _mm_loadu_pd(p)
#define nnc_vhfma _mm_fmadd_pd
#define nnc_vhwiden _mm256_zextpd128_pd256
#endif
#include "isa/avx2/hsum.h"
#define nnc_vhsum NNC_FN(vhsum256)
#define nnc_vhsums NNC_FN(vhsums256)
#include "isa/avx2/transpose.h"
