// isa/avx512/simd.h - AVX-512 F/VL/BW/DQ (512-bit):
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
#include "isa/avx2/hsum.h"

#if NNC_IS_F32
#define nnc_v __m512
#define NNC_VLEN 16
#define nnc_vzero() _mm512_setzero_ps()
#define nnc_vset1(x) _mm512_set1_ps(x)
#define nnc_vload(p) _mm512_loadu_ps(p)
#define nnc_vstore(p, v) _mm512_storeu_ps((p), (v))
#define nnc_vloadn(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1u), (p))
#define nnc_vmask __mmask16
#define nnc_vmaskn(n) ((__mmask16)((1u << (n)) - 1u))
#define nnc_vloadm(p, m) _mm512_maskz_loadu_ps((m), (p))
#define nnc_vstoren(p, v, n) _mm512_mask_storeu_ps((p), (__mmask16)((1u << (n)) - 1u), (v))
#define nnc_vadd _mm512_add_ps
#define nnc_vsub _mm512_sub_ps
#define nnc_vmul _mm512_mul_ps
#define nnc_vdiv _mm512_div_ps
#define nnc_vfma _mm512_fmadd_ps
#define nnc_vmax _mm512_max_ps
#define nnc_vmin _mm512_min_ps
#define nnc_vsel_gt(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), _CMP_GT_OQ), (y), (x))
#define nnc_vsel_ge(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), _CMP_GE_OQ), (y), (x))
#define nnc_vsel_eq(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), _CMP_EQ_OQ), (y), (x))
#define nnc_vsqrt _mm512_sqrt_ps
#define nnc_vh __m256
#define NNC_VHLEN 8
#define nnc_vhzero() _mm256_setzero_ps()
#define nnc_vhset1(x) _mm256_set1_ps(x)
#define nnc_vhload(p) _mm256_loadu_ps(p)
#define nnc_vhfma _mm256_fmadd_ps
#define nnc_vhwiden _mm512_zextps256_ps512
#define nnc_vround_(v) _mm512_roundscale_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define nnc_vpow2i_(n) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
// The two 256-bit halves added, then the AVX2 sum (isa/avx2/hsum.h).
NNC_INLINE float NNC_FN(vhsum)(__m512 v)
{
    return NNC_FN(vhsum256)(_mm256_add_ps(_mm512_castps512_ps256(v),
                                          _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}
#define nnc_vhsum NNC_FN(vhsum)
// out[i] = vhsum(v[i]), i < 16: the pairings of vhsum (lanes k and k+8, then
// k+4, k+2, k+1), sixteen vectors at a time; the sums come out with 128-bit
// lane L holding those of vectors L, L+4, L+8, L+12, put in order by one
// permute.
NNC_INLINE void NNC_FN(vhsums)(const __m512 *v, float *out)
{
    __m512 a[8], b[4], c[2];
    NNC_UNROLL_TILE for (int i = 0; i < 8; ++i)
        a[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
    NNC_UNROLL_TILE for (int i = 0; i < 4; ++i)
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xDD));
    NNC_UNROLL_TILE for (int i = 0; i < 2; ++i) {
        const __m512d lo = _mm512_castps_pd(b[2 * i]), hi = _mm512_castps_pd(b[2 * i + 1]);
        c[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(lo, hi)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(lo, hi)));
    }
    const __m512 d = _mm512_add_ps(_mm512_shuffle_ps(c[0], c[1], 0x88), _mm512_shuffle_ps(c[0], c[1], 0xDD));
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_ps(out, _mm512_permutexvar_ps(order, d));
}
#define nnc_vhsums NNC_FN(vhsums)
#else
#define nnc_v __m512d
#define NNC_VLEN 8
#define nnc_vzero() _mm512_setzero_pd()
#define nnc_vset1(x) _mm512_set1_pd(x)
#define nnc_vload(p) _mm512_loadu_pd(p)
#define nnc_vstore(p, v) _mm512_storeu_pd((p), (v))
#define nnc_vloadn(p, n) _mm512_maskz_loadu_pd((__mmask8)((1u << (n)) - 1u), (p))
#define nnc_vmask __mmask8
#define nnc_vmaskn(n) ((__mmask8)((1u << (n)) - 1u))
#define nnc_vloadm(p, m) _mm512_maskz_loadu_pd((m), (p))
#define nnc_vstoren(p, v, n) _mm512_mask_storeu_pd((p), (__mmask8)((1u << (n)) - 1u), (v))
#define nnc_vadd _mm512_add_pd
#define nnc_vsub _mm512_sub_pd
#define nnc_vmul _mm512_mul_pd
#define nnc_vdiv _mm512_div_pd
#define nnc_vfma _mm512_fmadd_pd
#define nnc_vmax _mm512_max_pd
#define nnc_vmin _mm512_min_pd
#define nnc_vsel_gt(a, b, x, y) _mm512_mask_blend_pd(_mm512_cmp_pd_mask((a), (b), _CMP_GT_OQ), (y), (x))
#define nnc_vsel_ge(a, b, x, y) _mm512_mask_blend_pd(_mm512_cmp_pd_mask((a), (b), _CMP_GE_OQ), (y), (x))
#define nnc_vsel_eq(a, b, x, y) _mm512_mask_blend_pd(_mm512_cmp_pd_mask((a), (b), _CMP_EQ_OQ), (y), (x))
#define nnc_vsqrt _mm512_sqrt_pd
#define nnc_vh __m256d
#define NNC_VHLEN 4
#define nnc_vhzero() _mm256_setzero_pd()
#define nnc_vhset1(x) _mm256_set1_pd(x)
#define nnc_vhload(p) _mm256_loadu_pd(p)
#define nnc_vhfma _mm256_fmadd_pd
#define nnc_vhwiden _mm512_zextpd256_pd512
NNC_INLINE double NNC_FN(vhsum)(__m512d v)
{
    return NNC_FN(vhsum256)(_mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1)));
}
#define nnc_vhsum NNC_FN(vhsum)
// out[i] = vhsum(v[i]), i < 8: lanes k and k+4, then k+2, k+1 paired as in
// vhsum; 128-bit lane L ends with the sums of vectors L and L+4.
NNC_INLINE void NNC_FN(vhsums)(const __m512d *v, double *out)
{
    __m512d a[4], b[2];
    NNC_UNROLL_TILE for (int i = 0; i < 4; ++i)
        a[i] = _mm512_add_pd(_mm512_shuffle_f64x2(v[2 * i], v[2 * i + 1], 0x44),
                             _mm512_shuffle_f64x2(v[2 * i], v[2 * i + 1], 0xEE));
    NNC_UNROLL_TILE for (int i = 0; i < 2; ++i)
        b[i] = _mm512_add_pd(_mm512_shuffle_f64x2(a[2 * i], a[2 * i + 1], 0x88),
                             _mm512_shuffle_f64x2(a[2 * i], a[2 * i + 1], 0xDD));
    const __m512d d = _mm512_add_pd(_mm512_unpacklo_pd(b[0], b[1]), _mm512_unpackhi_pd(b[0], b[1]));
    _mm512_storeu_pd(out, _mm512_permutexvar_pd(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), d));
}
#define nnc_vhsums NNC_FN(vhsums)
#endif
#include "isa/avx2/transpose.h"
