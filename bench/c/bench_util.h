// bench_util.h - test data shared by the bench_<family>.c files.
#ifndef NNC_BENCH_UTIL_H
#define NNC_BENCH_UTIL_H
#include <stddef.h>

// n uniform values in [-1, 1) from a fixed LCG (float or double array).
static inline void bench_fill(void *p, size_t n, int f64, unsigned *seed)
{
    for (size_t i = 0; i < n; ++i) {
        *seed = *seed * 1664525u + 1013904223u;
        double v = (double)(*seed >> 8) / (double)(1u << 24) * 2.0 - 1.0;
        if (f64) ((double *)p)[i] = v;
        else ((float *)p)[i] = (float)v;
    }
}

static inline double bench_get(const void *p, size_t i, int f64)
{
    return f64 ? ((const double *)p)[i] : ((const float *)p)[i];
}
#endif
