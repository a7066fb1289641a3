// fma_peak.c - the floating-point peak of this machine per ISA and thread count,
// measured: every thread runs independent multiply-add chains, enough of them
// to cover the latency times the throughput of the FMA (or multiply and add)
// pipes, for a fixed number of flops; each thread's best of 20 passes counts
// (the threads run at once, with no synchronisation between passes).
//   avx512: 24 chains of 512-bit FMAs;  avx2: 12 chains of 256-bit FMAs;
//   scalar: the baseline build (SSE2, no FMA): 12 chains of 128-bit multiply + add.
// float64 runs the same instructions with half the lanes: half the float32 peak.
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include "bench.h"
#include "timer.h"
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

// Each probe: `iters` rounds over its chains, acc = acc * x + y (x just below 1:
// no overflow, no denormals); returns a value depending on every chain.
__attribute__((target("avx512f"), noinline)) static float chains_avx512(long iters)
{
    __m512 acc[24], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
#pragma GCC unroll 32
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; ++it)
#pragma GCC unroll 32
        for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
#pragma GCC unroll 32
    for (int i = 1; i < 24; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
    return _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx2,fma"), noinline)) static float chains_avx2(long iters)
{
    __m256 a[12], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
#pragma GCC unroll 32
    for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; ++it)
#pragma GCC unroll 32
        for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], x, y);
#pragma GCC unroll 32
    for (int i = 1; i < 12; ++i) a[0] = _mm256_add_ps(a[0], a[i]);
    return _mm256_cvtss_f32(a[0]);
}

__attribute__((noinline)) static float chains_sse2(long iters)
{
    __m128 c[12];
    const __m128 x = _mm_set1_ps(0.999999f), y = _mm_set1_ps(1e-7f);
#pragma GCC unroll 32
    for (int i = 0; i < 12; ++i) c[i] = _mm_set1_ps((float)i);
    for (long it = 0; it < iters; ++it)
#pragma GCC unroll 32
        for (int i = 0; i < 12; ++i) c[i] = _mm_add_ps(_mm_mul_ps(c[i], x), y);
    __m128 s = c[0];
#pragma GCC unroll 32
    for (int i = 1; i < 12; ++i) s = _mm_add_ps(s, c[i]);
    return _mm_cvtss_f32(s);
}

double bench_fma_peak(int isa, int threads)
{
    // flops of one round of each probe: chains x float32 lanes x 2
    static const double round_flops[NNC_ISA_COUNT] = {12 * 4 * 2, 12 * 8 * 2, 24 * 16 * 2};
    static float (*const probe[NNC_ISA_COUNT])(long) = {chains_sse2, chains_avx2, chains_avx512};
    if (isa < 0 || isa >= NNC_ISA_COUNT || !nnc_isa_supported(isa) || threads < 1) return 0;
    const long iters = (long)(2.5e8 / round_flops[isa]);   // ~0.25 GFLOP per pass
    double rate = 0;
    volatile float sink = 0;
    // Each thread's best pass on its own clock, summed: a stretch when another
    // process holds one core spoils that core's passes, not the others'.
    #pragma omp parallel num_threads(threads) reduction(+ : rate)
    {
        double best = 1e30;
        for (int pass = 0; pass < 20; ++pass) {
            const double t = bench_now();
            const float v = probe[isa](iters);
            const double dt = bench_now() - t;
            if (dt < best) best = dt;
            if (v == 12345.f) sink = v;
        }
        rate = (double)iters * round_flops[isa] / best / 1e9;
    }
    (void)sink;
    return rate;
}
#else
double bench_fma_peak(int isa, int threads)
{
    (void)isa, (void)threads;
    return 0;
}
#endif
