// omp_team.c - the OpenMP team sizes the library's kernels actually use.
//
// The harness links with -Wl,--wrap=GOMP_parallel (GCC's libgomp entry of
// every `#pragma omp parallel`; the Makefile fails the link when the core
// references another parallel entry), so each parallel region of the
// library runs through a trampoline that records its team size before the
// region's body.  A kernel below its threading threshold runs on one thread
// (or without a region) whatever nnc_set_num_threads says: the harness
// shows that, and never needs the library's internal threshold.
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <stdatomic.h>
#include "bench.h"

void __real_GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
void __wrap_GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);

static atomic_int team_max;   // largest team since bench_team_reset

typedef struct {
    void (*fn)(void *);
    void *data;
} region;

// Body of every wrapped region: thread 0 records the team size, then every thread runs the real body.
static void trampoline(void *p)
{
    const region *r = p;
    if (omp_get_thread_num() == 0) {
        const int n = omp_get_num_threads();
        int cur = atomic_load(&team_max);
        while (n > cur && !atomic_compare_exchange_weak(&team_max, &cur, n)) {}
    }
    r->fn(r->data);
}

void __wrap_GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags)
{
    region r = {fn, data};
    __real_GOMP_parallel(trampoline, &r, num_threads, flags);
}

void bench_team_reset(void) { atomic_store(&team_max, 0); }

int bench_team_max(void)
{
    const int n = atomic_load(&team_max);
    return n > 1 ? n : 1;   // no parallel region: one thread
}
