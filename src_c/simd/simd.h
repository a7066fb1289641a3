// simd/simd.h - one set of vector wrappers per (ISA, dtype), so that every
// template is written once and instantiated for scalar/AVX2/AVX-512 and
// float32/float64.  Included (without guard) once per dtype by
// isa/instantiate.h; simd/simd_undef.h removes everything again.
//
// Requires NNC_ISA_ID (0 scalar, 1 avx2, 2 avx512) and NNC_T / NNC_IS_F32.
//
//   nnc_v, NNC_VLEN            vector type and lanes (scalar: NNC_T, 1)
//   vzero() vset1(x)           constants
//   vload(p) vstore(p, v)      unaligned full-vector load/store
//   vloadn(p, n) vstoren(p,v,n) first n < NNC_VLEN lanes (others read as 0,
//                              never touched in memory: no out-of-bounds access)
//   vadd vsub vmul vdiv        arithmetic; vfma(a, b, c) = a*b + c, fused
//                              wherever the ISA has FMA (so only use it where
//                              the rounding is the same for every caller)
//   vmax(a, b) vmin(a, b)      a > b ? a : b (resp. <): b wins when either is
//                              NaN, so vmax(zero, x) keeps a NaN x
//   vsel_gt(a, b, x, y)        a > b ? x : y per lane (NaN compares false)
//   vsel_ge(a, b, x, y)        a >= b ? x : y
//   vsel_eq(a, b, x, y)        a == b ? x : y
//   vhsum(v)                   horizontal sum in a fixed lane order
//   vexp vtanh vsigmoid        element-wise functions (NNC_FN-suffixed)
//   nnc_vh, NNC_VHLEN          half-width vector (scalar: NNC_T, 1); vhzero()
//                              vhset1(x) vhload(p) vhfma(a, b, c) as above, and
//                              vhwiden(v): the nnc_v with v in its low lanes, 0 above
//   vtransp(dst, ldd, src, lds) NNC_TB x NNC_TB block transpose: dst[j*ldd+i] =
//                              src[i*lds+j] (8 x 8 f32 / 4 x 4 f64 on ymm; 1 x 1 scalar)
#include <math.h>
#if NNC_ISA_ID > 0
#include <immintrin.h>
#endif

#if NNC_ISA_ID == 0
#define nnc_v NNC_T
#define NNC_VLEN 1
#define vzero() ((NNC_T)0)
#define vset1(x) ((NNC_T)(x))
#define vload(p) (*(p))
#define vstore(p, v) (*(p) = (v))
#define vloadn(p, n) ((n) > 0 ? *(p) : (NNC_T)0)
#define vstoren(p, v, n) do { if ((n) > 0) *(p) = (v); } while (0)
#define vadd(a, b) ((a) + (b))
#define vsub(a, b) ((a) - (b))
#define vmul(a, b) ((a) * (b))
#define vdiv(a, b) ((a) / (b))
#define vfma(a, b, c) ((a) * (b) + (c))
#define vmax(a, b) ((a) > (b) ? (a) : (b))
#define vmin(a, b) ((a) < (b) ? (a) : (b))
#define vsel_gt(a, b, x, y) ((a) > (b) ? (x) : (y))
#define vsel_ge(a, b, x, y) ((a) >= (b) ? (x) : (y))
#define vsel_eq(a, b, x, y) ((a) == (b) ? (x) : (y))
#define vhsum(v) (v)
#define vsqrt(v) (NNC_IS_F32 ? (NNC_T)sqrtf((float)(v)) : (NNC_T)sqrt((double)(v)))
#define nnc_vh NNC_T
#define NNC_VHLEN 1
#define vhzero() ((NNC_T)0)
#define vhset1(x) ((NNC_T)(x))
#define vhload(p) (*(p))
#define vhfma(a, b, c) ((a) * (b) + (c))
#define vhwiden(v) (v)

#elif NNC_ISA_ID == 1 && NNC_IS_F32
#define nnc_v __m256
#define NNC_VLEN 8
#define vzero() _mm256_setzero_ps()
#define vset1(x) _mm256_set1_ps(x)
#define vload(p) _mm256_loadu_ps(p)
#define vstore(p, v) _mm256_storeu_ps((p), (v))
#define nnc_mask_(n) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define vloadn(p, n) _mm256_maskload_ps((p), nnc_mask_(n))
#define vstoren(p, v, n) _mm256_maskstore_ps((p), nnc_mask_(n), (v))
#define vadd _mm256_add_ps
#define vsub _mm256_sub_ps
#define vmul _mm256_mul_ps
#define vdiv _mm256_div_ps
#define vfma _mm256_fmadd_ps
#define vmax _mm256_max_ps
#define vmin _mm256_min_ps
#define vsel_gt(a, b, x, y) _mm256_blendv_ps((y), (x), _mm256_cmp_ps((a), (b), _CMP_GT_OQ))
#define vsel_ge(a, b, x, y) _mm256_blendv_ps((y), (x), _mm256_cmp_ps((a), (b), _CMP_GE_OQ))
#define vsel_eq(a, b, x, y) _mm256_blendv_ps((y), (x), _mm256_cmp_ps((a), (b), _CMP_EQ_OQ))
#define vsqrt _mm256_sqrt_ps
#define nnc_vh __m128
#define NNC_VHLEN 4
#define vhzero() _mm_setzero_ps()
#define vhset1(x) _mm_set1_ps(x)
#define vhload(p) _mm_loadu_ps(p)
#define vhfma _mm_fmadd_ps
#define vhwiden _mm256_zextps128_ps256
#define vround_(v) _mm256_round_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define vpow2i_(n) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
NNC_INLINE float NNC_FN(vhsum)(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#define vhsum NNC_FN(vhsum)

#elif NNC_ISA_ID == 1
#define nnc_v __m256d
#define NNC_VLEN 4
#define vzero() _mm256_setzero_pd()
#define vset1(x) _mm256_set1_pd(x)
#define vload(p) _mm256_loadu_pd(p)
#define vstore(p, v) _mm256_storeu_pd((p), (v))
#define nnc_mask_(n) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(n)), _mm256_setr_epi64x(0, 1, 2, 3))
#define vloadn(p, n) _mm256_maskload_pd((p), nnc_mask_(n))
#define vstoren(p, v, n) _mm256_maskstore_pd((p), nnc_mask_(n), (v))
#define vadd _mm256_add_pd
#define vsub _mm256_sub_pd
#define vmul _mm256_mul_pd
#define vdiv _mm256_div_pd
#define vfma _mm256_fmadd_pd
#define vmax _mm256_max_pd
#define vmin _mm256_min_pd
#define vsel_gt(a, b, x, y) _mm256_blendv_pd((y), (x), _mm256_cmp_pd((a), (b), _CMP_GT_OQ))
#define vsel_ge(a, b, x, y) _mm256_blendv_pd((y), (x), _mm256_cmp_pd((a), (b), _CMP_GE_OQ))
#define vsel_eq(a, b, x, y) _mm256_blendv_pd((y), (x), _mm256_cmp_pd((a), (b), _CMP_EQ_OQ))
#define vsqrt _mm256_sqrt_pd
#define nnc_vh __m128d
#define NNC_VHLEN 2
#define vhzero() _mm_setzero_pd()
#define vhset1(x) _mm_set1_pd(x)
#define vhload(p) _mm_loadu_pd(p)
#define vhfma _mm_fmadd_pd
#define vhwiden _mm256_zextpd128_pd256
NNC_INLINE double NNC_FN(vhsum)(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}
#define vhsum NNC_FN(vhsum)

#elif NNC_ISA_ID == 2 && NNC_IS_F32
#define nnc_v __m512
#define NNC_VLEN 16
#define vzero() _mm512_setzero_ps()
#define vset1(x) _mm512_set1_ps(x)
#define vload(p) _mm512_loadu_ps(p)
#define vstore(p, v) _mm512_storeu_ps((p), (v))
#define vloadn(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1u), (p))
#define vstoren(p, v, n) _mm512_mask_storeu_ps((p), (__mmask16)((1u << (n)) - 1u), (v))
#define vadd _mm512_add_ps
#define vsub _mm512_sub_ps
#define vmul _mm512_mul_ps
#define vdiv _mm512_div_ps
#define vfma _mm512_fmadd_ps
#define vmax _mm512_max_ps
#define vmin _mm512_min_ps
#define vsel_gt(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), _CMP_GT_OQ), (y), (x))
#define vsel_ge(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), _CMP_GE_OQ), (y), (x))
#define vsel_eq(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), _CMP_EQ_OQ), (y), (x))
#define vsqrt _mm512_sqrt_ps
#define nnc_vh __m256
#define NNC_VHLEN 8
#define vhzero() _mm256_setzero_ps()
#define vhset1(x) _mm256_set1_ps(x)
#define vhload(p) _mm256_loadu_ps(p)
#define vhfma _mm256_fmadd_ps
#define vhwiden _mm512_zextps256_ps512
#define vround_(v) _mm512_roundscale_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define vpow2i_(n) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
NNC_INLINE float NNC_FN(vhsum)(__m512 v)
{
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#define vhsum NNC_FN(vhsum)

#elif NNC_ISA_ID == 2
#define nnc_v __m512d
#define NNC_VLEN 8
#define vzero() _mm512_setzero_pd()
#define vset1(x) _mm512_set1_pd(x)
#define vload(p) _mm512_loadu_pd(p)
#define vstore(p, v) _mm512_storeu_pd((p), (v))
#define vloadn(p, n) _mm512_maskz_loadu_pd((__mmask8)((1u << (n)) - 1u), (p))
#define vstoren(p, v, n) _mm512_mask_storeu_pd((p), (__mmask8)((1u << (n)) - 1u), (v))
#define vadd _mm512_add_pd
#define vsub _mm512_sub_pd
#define vmul _mm512_mul_pd
#define vdiv _mm512_div_pd
#define vfma _mm512_fmadd_pd
#define vmax _mm512_max_pd
#define vmin _mm512_min_pd
#define vsel_gt(a, b, x, y) _mm512_mask_blend_pd(_mm512_cmp_pd_mask((a), (b), _CMP_GT_OQ), (y), (x))
#define vsel_ge(a, b, x, y) _mm512_mask_blend_pd(_mm512_cmp_pd_mask((a), (b), _CMP_GE_OQ), (y), (x))
#define vsel_eq(a, b, x, y) _mm512_mask_blend_pd(_mm512_cmp_pd_mask((a), (b), _CMP_EQ_OQ), (y), (x))
#define vsqrt _mm512_sqrt_pd
#define nnc_vh __m256d
#define NNC_VHLEN 4
#define vhzero() _mm256_setzero_pd()
#define vhset1(x) _mm256_set1_pd(x)
#define vhload(p) _mm256_loadu_pd(p)
#define vhfma _mm256_fmadd_pd
#define vhwiden _mm512_zextpd256_pd512
NNC_INLINE double NNC_FN(vhsum)(__m512d v)
{
    __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}
#define vhsum NNC_FN(vhsum)
#endif

// ---- element-wise functions --------------------------------------------
// float32 on AVX2/AVX-512: Cephes-style polynomials (about 2 ulp), NaN in,
// NaN out.  Everything else: the C library per lane (float64 stays exact to
// libm's accuracy, which the float64 gradient checks rely on).
#if NNC_ISA_ID > 0 && NNC_IS_F32
NNC_INLINE nnc_v NNC_FN(vexp)(nnc_v x)
{
    // Clamp so that 2^n stays a normal number; the operand order keeps NaN.
    x = vmin(vset1(88.3762626647949f), x);
    x = vmax(vset1(-87.3365447504f), x);
    nnc_v n = vround_(vmul(x, vset1(1.44269504088896341f)));
    nnc_v r = vfma(n, vset1(-0.693359375f), x);
    r = vfma(n, vset1(2.12194440e-4f), r);
    nnc_v p = vset1(1.9875691500e-4f);
    p = vfma(p, r, vset1(1.3981999507e-3f));
    p = vfma(p, r, vset1(8.3334519073e-3f));
    p = vfma(p, r, vset1(4.1665795894e-2f));
    p = vfma(p, r, vset1(1.6666665459e-1f));
    p = vfma(p, r, vset1(5.0000001201e-1f));
    p = vfma(p, vmul(r, r), vadd(r, vset1(1.0f)));
    return vmul(p, vpow2i_(n));
}

NNC_INLINE nnc_v NNC_FN(vtanh)(nnc_v x)
{
    // |x| < 0.625: odd polynomial; else 1 - 2 / (exp(2|x|) + 1) with x's sign.
    nnc_v ax = vmax(vsub(vzero(), x), x);
    nnc_v z = vmul(x, x);
    nnc_v p = vset1(-5.70498872745e-3f);
    p = vfma(p, z, vset1(2.06390887954e-2f));
    p = vfma(p, z, vset1(-5.37397155531e-2f));
    p = vfma(p, z, vset1(1.33314422036e-1f));
    p = vfma(p, z, vset1(-3.33332819422e-1f));
    nnc_v small = vfma(vmul(p, z), x, x);
    nnc_v e = NNC_FN(vexp)(vadd(ax, ax));
    nnc_v big = vsub(vset1(1.0f), vdiv(vset1(2.0f), vadd(e, vset1(1.0f))));
    big = vsel_gt(vzero(), x, vsub(vzero(), big), big);
    return vsel_ge(ax, vset1(0.625f), big, small);
}

NNC_INLINE nnc_v NNC_FN(vsigmoid)(nnc_v x)
{
    return vdiv(vset1(1.0f), vadd(vset1(1.0f), NNC_FN(vexp)(vsub(vzero(), x))));
}
#else
#define NNC_LANEWISE_(name, f32fn, f64fn)                                      \
    NNC_INLINE nnc_v NNC_FN(name)(nnc_v x)                                     \
    {                                                                          \
        NNC_T t[NNC_VLEN];                                                     \
        vstore(t, x);                                                          \
        for (int l = 0; l < NNC_VLEN; ++l)                                     \
            t[l] = NNC_IS_F32 ? (NNC_T)f32fn((float)t[l]) : (NNC_T)f64fn((double)t[l]); \
        return vload(t);                                                       \
    }
NNC_LANEWISE_(vexp, expf, exp)
NNC_LANEWISE_(vtanh, tanhf, tanh)
NNC_INLINE nnc_v NNC_FN(vsigmoid)(nnc_v x)
{
    return vdiv(vset1(1), vadd(vset1(1), NNC_FN(vexp)(vsub(vzero(), x))));
}
#undef NNC_LANEWISE_
#endif
#define vexp NNC_FN(vexp)
#define vtanh NNC_FN(vtanh)
#define vsigmoid NNC_FN(vsigmoid)

// ---- block transpose (packing) -----------------------------------------
#if NNC_ISA_ID == 0
#define NNC_TB 1
#define vtransp(dst, ldd, src, lds) ((dst)[0] = (src)[0])
#elif NNC_IS_F32
#define NNC_TB 8
NNC_INLINE void NNC_FN(vtransp)(float *dst, nnc_ssize ldd, const float *src, nnc_ssize lds)
{
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int h = 0; h < 8; h += 4) {
        u[h + 0] = _mm256_shuffle_ps(t[h + 0], t[h + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[h + 1] = _mm256_shuffle_ps(t[h + 0], t[h + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int j = 0; j < 4; ++j) {
        _mm256_storeu_ps(dst + j * ldd, _mm256_permute2f128_ps(u[j], u[j + 4], 0x20));
        _mm256_storeu_ps(dst + (j + 4) * ldd, _mm256_permute2f128_ps(u[j], u[j + 4], 0x31));
    }
}
#define vtransp NNC_FN(vtransp)
#else
#define NNC_TB 4
NNC_INLINE void NNC_FN(vtransp)(double *dst, nnc_ssize ldd, const double *src, nnc_ssize lds)
{
    __m256d r0 = _mm256_loadu_pd(src), r1 = _mm256_loadu_pd(src + lds);
    __m256d r2 = _mm256_loadu_pd(src + 2 * lds), r3 = _mm256_loadu_pd(src + 3 * lds);
    __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(dst + ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(dst + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(dst + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
}
#define vtransp NNC_FN(vtransp)
#endif
