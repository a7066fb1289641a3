// runtime/threads.c - allocation helpers, thread count, OpenMP/compiler introspection.
#include <stdatomic.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>
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

int nnc_effective_num_threads(void) { return nnc_threads(); }

// Stall guard state (nnc.h): calls left on one thread, the current period.
static atomic_int g_solo_left, g_solo_period;
static atomic_llong g_stall_ns = 500000;
#define NNC_SOLO_MAX 256

// The team for a call: one thread below `floor`, else the stall guard's
// verdict (one thread while it reports a busy machine) or nnc_threads().
static int threads_above(double cost, double floor)
{
    if (cost < floor) return 1;
    int left = atomic_load(&g_solo_left);
    while (left > 0)
        if (atomic_compare_exchange_weak(&g_solo_left, &left, left - 1)) return 1;
    return nnc_threads();
}

// ~ 50 us of single-core element-wise work: below it a team costs more than it gains.
int nnc_threads_for(double work) { return threads_above(work, 2.0e6); }

// A 2-thread OpenMP region costs about 0.5 us to open and join while the
// team spins (measured on the CPUs nnc is tuned on); from 3 us of work on
// one core, splitting it saves several times that.
int nnc_threads_for_ns(double ns) { return threads_above(ns, 3000.0); }

long long nnc_stall_threshold_ns(long long ns)
{
    if (ns < 0) return atomic_load(&g_stall_ns);
    atomic_store(&g_solo_left, 0);   // a fresh start
    atomic_store(&g_solo_period, 0);
    return atomic_exchange(&g_stall_ns, ns);
}

int nnc_stall_solo_calls(void) { return atomic_load(&g_solo_left); }

void nnc_stall_note(int stalled)
{
    if (atomic_load(&g_stall_ns) == 0) return;
    int p = 0;
    if (stalled) {
        p = atomic_load(&g_solo_period);
        p = NNC_MIN(NNC_SOLO_MAX, NNC_MAX(2, 2 * p));
        atomic_store(&g_solo_left, p);
    }
    atomic_store(&g_solo_period, p);
}

long long nnc_now_ns(void)
{
#if defined(__unix__) || defined(__APPLE__)
    struct timespec ts;   // CLOCK_MONOTONIC: a vDSO call, no system call
    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0) return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
#endif
    return 0;
}

// A region lost time to descheduled threads when a thread started its share
// more than the threshold late (it was not running when the team formed:
// e.g. two threads on one free core), or when the first thread waited at the
// join longer than the threshold and longer than its own share took (a
// partner descheduled during its share).
void nnc_region_begin(nnc_region_clock *c, int nt)
{
    c->t0 = nt > 1 && atomic_load(&g_stall_ns) > 0 ? nnc_now_ns() : 0;
    c->tm = 0;
    c->late = 0;
}

void nnc_region_started(nnc_region_clock *c)
{
#ifdef _OPENMP
    if (c->t0 && omp_get_thread_num() != 0 && nnc_now_ns() - c->t0 > atomic_load(&g_stall_ns))
        __atomic_store_n(&c->late, 1, __ATOMIC_RELAXED);
#else
    (void)c;
#endif
}

void nnc_region_master_done(nnc_region_clock *c)
{
#ifdef _OPENMP
    if (c->t0 && omp_get_thread_num() == 0) c->tm = nnc_now_ns();
#else
    (void)c;
#endif
}

void nnc_region_end(const nnc_region_clock *c)
{
    if (!c->t0 || !c->tm) return;
    const long long wait = nnc_now_ns() - c->tm;
    nnc_stall_note(c->late || (wait > atomic_load(&g_stall_ns) && wait > c->tm - c->t0));
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

void *nnc_tls_scratch(enum nnc_scratch_slot slot, size_t bytes)
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
