// util.c - allocation helpers, thread count, OpenMP/compiler introspection.
#include <stdatomic.h>
#include <stdlib.h>
#include <threads.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__unix__)
#include <dlfcn.h>
#endif
#include "nnc_internal.h"

static atomic_int g_threads = 1;

void nnc_set_num_threads(int n) { atomic_store(&g_threads, n < 1 ? 1 : n); }
int nnc_get_num_threads(void) { return atomic_load(&g_threads); }

int nnc_threads(void)
{
    int n = atomic_load(&g_threads);
#ifdef _OPENMP
    int cap = omp_get_max_threads();   // honours threadpoolctl limits in the caller
    if (cap < n) n = cap;
#else
    n = 1;
#endif
    return n < 1 ? 1 : n;
}

int nnc_threads_for(double work)
{
    // ~ 50 us of single-core work: below it a team costs more than it gains.
    return work < 2.0e6 ? 1 : nnc_threads();
}

// Per-thread scratch lives behind a tss key whose destructor frees it when
// the OS thread exits, so short-lived Python threads do not leak.
typedef struct { void *p[NNC_TLS_SLOTS]; size_t n[NNC_TLS_SLOTS]; } tls_scratch;
static tss_t tls_key;
static once_flag tls_once = ONCE_FLAG_INIT;

static void tls_free(void *v)
{
    tls_scratch *t = v;
    for (int i = 0; i < NNC_TLS_SLOTS; ++i) nnc_aligned_free(t->p[i]);
    free(t);
}

static void tls_make_key(void) { tss_create(&tls_key, tls_free); }

void *nnc_tls_scratch(int slot, size_t bytes)
{
    call_once(&tls_once, tls_make_key);
    tls_scratch *t = tss_get(tls_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t || tss_set(tls_key, t) != thrd_success) { free(t); return NULL; }
    }
    if (t->p[slot] && t->n[slot] >= bytes) return t->p[slot];
    nnc_aligned_free(t->p[slot]);
    t->p[slot] = nnc_aligned_alloc(bytes);
    t->n[slot] = t->p[slot] ? bytes : 0;
    return t->p[slot];
}

int nnc_omp_pause(void)
{
#if defined(_OPENMP) && defined(__unix__)
    // omp_pause_resource_all is OpenMP 5.0; an older bundled libgomp may lack
    // it, so resolve it at run time instead of linking against it.
    typedef int (*pause_fn)(int);
    pause_fn f = (pause_fn)dlsym(RTLD_DEFAULT, "omp_pause_resource_all");
    if (!f) return -1;
    return f(2 /* omp_pause_hard */);
#else
    return -1;
#endif
}

const char *nnc_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#elif defined(_MSC_VER)
    return "msvc";
#else
    return "unknown";
#endif
}

int nnc_openmp_version(void)
{
#ifdef _OPENMP
    return _OPENMP;
#else
    return 0;
#endif
}
