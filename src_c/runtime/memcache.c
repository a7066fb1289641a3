// runtime/memcache.c - the one allocator of nnc: 64-byte aligned blocks, and a small
// cache that keeps large freed blocks resident for the next request.
//
// Why: a fresh page costs about 0.35 ms per MiB on these machines (fault +
// zeroing), and a forward/backward pass allocates its activations and
// gradients anew each call.  With the cache, a block of >= MEMCACHE_MIN
// bytes that is freed stays mapped and is handed to the next request of
// nearly the same size (at most 1/8 larger), so a training loop stops paying
// for pages after its first step.  The cache holds at most `limit` bytes in
// at most MEMCACHE_SLOTS blocks; the oldest block is released first;
// nnc_mem_set_cache_limit(0) turns it off and empties it.  Sanitizer builds
// start at limit 0 so AddressSanitizer sees every free.
//
// Users: NumPy arrays that the Python layer allocates (a NEP 49 data
// handler, nnc/_memory.pxi) and the C core's temporaries.  Every block
// starts with a 64-byte header holding its size, so a free needs no size.
#include <stdlib.h>
#include <threads.h>

#include "nnc_internal.h"

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define MEMCACHE_ATFORK 1
#endif

#define MEMCACHE_HDR 64
#define MEMCACHE_MIN ((size_t)64 << 10)
#define MEMCACHE_PAGE ((size_t)4 << 10)
#define MEMCACHE_SLOTS 64

#if defined(__SANITIZE_ADDRESS__)
#define MEMCACHE_DEFAULT_LIMIT 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEMCACHE_DEFAULT_LIMIT 0
#endif
#endif
#ifndef MEMCACHE_DEFAULT_LIMIT
#define MEMCACHE_DEFAULT_LIMIT ((size_t)512 << 20)
#endif

typedef struct {
    char *base;
    size_t size;
    unsigned long long age;
} memcache_entry;

static struct {
    mtx_t lock;
    memcache_entry e[MEMCACHE_SLOTS];
    int n;
    size_t bytes, limit;
    unsigned long long clock;
} mc = {.limit = MEMCACHE_DEFAULT_LIMIT};
static once_flag mc_once = ONCE_FLAG_INIT;

#ifdef MEMCACHE_ATFORK
// A fork while another thread holds the lock must not leave it held in the child.
static void mc_prepare(void) { mtx_lock(&mc.lock); }
static void mc_release(void) { mtx_unlock(&mc.lock); }
#endif

static void mc_init(void)
{
    mtx_init(&mc.lock, mtx_plain);
#ifdef MEMCACHE_ATFORK
    pthread_atfork(mc_prepare, mc_release, mc_release);
#endif
}

static void mc_lock(void)
{
    call_once(&mc_once, mc_init);
    mtx_lock(&mc.lock);
}

// Removes entry i (lock held) and returns its base.
static char *mc_take(int i)
{
    char *b = mc.e[i].base;
    mc.bytes -= mc.e[i].size;
    mc.e[i] = mc.e[--mc.n];
    return b;
}

static int mc_oldest(void)
{
    int o = 0;
    for (int i = 1; i < mc.n; ++i)
        if (mc.e[i].age < mc.e[o].age) o = i;
    return o;
}

void *nnc_aligned_alloc(size_t bytes)
{
    size_t sz = (bytes + 63) & ~(size_t)63;
    if (sz < bytes) return NULL;
    if (sz == 0) sz = 64;
    if (sz >= MEMCACHE_MIN) {
        const size_t r = (sz + MEMCACHE_PAGE - 1) & ~(MEMCACHE_PAGE - 1);
        if (r < sz) return NULL;
        sz = r;
        mc_lock();
        int best = -1;
        for (int i = 0; i < mc.n; ++i)
            if (mc.e[i].size >= sz && mc.e[i].size - sz <= sz / 8 && (best < 0 || mc.e[i].size < mc.e[best].size))
                best = i;
        char *b = best >= 0 ? mc_take(best) : NULL;
        mtx_unlock(&mc.lock);
        if (b) return b + MEMCACHE_HDR;
    }
    if (sz > SIZE_MAX - MEMCACHE_HDR) return NULL;
    char *b = aligned_alloc(64, sz + MEMCACHE_HDR);
    if (!b && sz >= MEMCACHE_MIN) {  // memory held by the cache may be what is missing
        nnc_mem_clear_cache();
        b = aligned_alloc(64, sz + MEMCACHE_HDR);
    }
    if (!b) return NULL;
    *(size_t *)b = sz;
    return b + MEMCACHE_HDR;
}

void nnc_aligned_free(void *p)
{
    if (!p) return;
    char *b = (char *)p - MEMCACHE_HDR;
    const size_t sz = *(size_t *)b;
    if (sz >= MEMCACHE_MIN) {
        char *evict[MEMCACHE_SLOTS];
        int ne = 0;
        mc_lock();
        if (sz <= mc.limit) {
            while (mc.n == MEMCACHE_SLOTS || mc.bytes + sz > mc.limit) evict[ne++] = mc_take(mc_oldest());
            mc.e[mc.n++] = (memcache_entry){b, sz, ++mc.clock};
            mc.bytes += sz;
            b = NULL;
        }
        mtx_unlock(&mc.lock);
        for (int i = 0; i < ne; ++i) free(evict[i]);
    }
    free(b);
}

void *nnc_aligned_realloc(void *p, size_t bytes)
{
    void *q = nnc_aligned_alloc(bytes);
    if (q && p) {
        const size_t old = *(size_t *)((char *)p - MEMCACHE_HDR);
        memcpy(q, p, old < bytes ? old : bytes);
        nnc_aligned_free(p);
    }
    return q;
}

size_t nnc_mem_set_cache_limit(size_t bytes)
{
    char *evict[MEMCACHE_SLOTS];
    int ne = 0;
    mc_lock();
    const size_t old = mc.limit;
    mc.limit = bytes;
    while (mc.n && mc.bytes > mc.limit) evict[ne++] = mc_take(mc_oldest());
    mtx_unlock(&mc.lock);
    for (int i = 0; i < ne; ++i) free(evict[i]);
    return old;
}

size_t nnc_mem_get_cache_limit(void)
{
    mc_lock();
    const size_t l = mc.limit;
    mtx_unlock(&mc.lock);
    return l;
}

size_t nnc_mem_cached_bytes(void)
{
    mc_lock();
    const size_t b = mc.bytes;
    mtx_unlock(&mc.lock);
    return b;
}

void nnc_mem_clear_cache(void)
{
    char *evict[MEMCACHE_SLOTS];
    mc_lock();
    const int ne = mc.n;
    for (int i = 0; i < ne; ++i) evict[i] = mc.e[i].base;
    mc.n = 0;
    mc.bytes = 0;
    mtx_unlock(&mc.lock);
    for (int i = 0; i < ne; ++i) free(evict[i]);
}
