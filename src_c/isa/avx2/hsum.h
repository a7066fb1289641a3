// isa/avx2/hsum.h - the horizontal sum of a 256-bit vector behind nnc_vhsum,
// in a fixed lane order: the AVX2 one, and the last steps of the AVX-512 one
// (which first adds its two 256-bit halves).
#if NNC_IS_F32
// ((v0+v4) + (v2+v6)) + ((v1+v5) + (v3+v7))
NNC_INLINE float NNC_FN(vhsum256)(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#else
// (v0+v2) + (v1+v3)
NNC_INLINE double NNC_FN(vhsum256)(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}
#endif
