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
// out[i] = vhsum256(v[i]), i < 8, the same pairings eight vectors at a time;
// 128-bit lane L ends with the sums of vectors L, L+2, L+4, L+6.
NNC_INLINE void NNC_FN(vhsums256)(const __m256 *v, float *out)
{
    __m256 a[4], b[2];
    NNC_UNROLL_TILE for (int i = 0; i < 4; ++i)
        a[i] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * i], v[2 * i + 1], 0x20),
                             _mm256_permute2f128_ps(v[2 * i], v[2 * i + 1], 0x31));
    NNC_UNROLL_TILE for (int i = 0; i < 2; ++i) {
        const __m256d lo = _mm256_castps_pd(a[2 * i]), hi = _mm256_castps_pd(a[2 * i + 1]);
        b[i] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(lo, hi)),
                             _mm256_castpd_ps(_mm256_unpackhi_pd(lo, hi)));
    }
    const __m256 d = _mm256_add_ps(_mm256_shuffle_ps(b[0], b[1], 0x88), _mm256_shuffle_ps(b[0], b[1], 0xDD));
    _mm256_storeu_ps(out, _mm256_permutevar8x32_ps(d, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}
#else
// (v0+v2) + (v1+v3)
NNC_INLINE double NNC_FN(vhsum256)(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}
// out[i] = vhsum256(v[i]), i < 4; 128-bit lane L ends with vectors L, L+2.
NNC_INLINE void NNC_FN(vhsums256)(const __m256d *v, double *out)
{
    const __m256d a0 = _mm256_add_pd(_mm256_permute2f128_pd(v[0], v[1], 0x20),
                                     _mm256_permute2f128_pd(v[0], v[1], 0x31));
    const __m256d a1 = _mm256_add_pd(_mm256_permute2f128_pd(v[2], v[3], 0x20),
                                     _mm256_permute2f128_pd(v[2], v[3], 0x31));
    const __m256d d = _mm256_add_pd(_mm256_unpacklo_pd(a0, a1), _mm256_unpackhi_pd(a0, a1));
    _mm256_storeu_pd(out, _mm256_permute4x64_pd(d, 0xD8));
}
#endif
