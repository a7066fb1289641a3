// nnc_internal.h - helpers shared by every translation unit of the C core.
//
// Templates (the headers under kernels/) are plain C bodies written against:
//   NNC_T          the element type (float or double)
//   NNC_FN(name)   pastes nnc_<name>_<f32|f64>__<isa>: every template function
//                  is static and suffixed, so one TU can hold both dtypes
//   nnc_v, NNC_VLEN and the nnc_v*() wrappers of isa/<isa>/simd.h
// They are included only from src_c/isa/instantiate.h.
#ifndef NNC_INTERNAL_H
#define NNC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "nnc/nnc.h"

#if defined(_MSC_VER)
#define NNC_RESTRICT __restrict
#define NNC_INLINE static __forceinline
#else
#define NNC_RESTRICT __restrict__
#define NNC_INLINE static inline __attribute__((always_inline))
#endif

// Before a loop over the rows/pixels of a micro-kernel's register tile: unroll
// it whole.  GCC replaces an accumulator array by registers only when every
// index is a constant by then; otherwise (tiles of 8+ rows) it keeps a
// zero-filled stack image of the tile (a memset and a reload per call).
#if defined(__clang__)
#define NNC_UNROLL_TILE _Pragma("unroll")
#elif defined(__GNUC__)
#define NNC_UNROLL_TILE _Pragma("GCC unroll 16")
#else
#define NNC_UNROLL_TILE
#endif

#define NNC_PASTE3_(a, b, c, d) nnc_##a##_##b##__##c
#define NNC_PASTE3(a, b, c) NNC_PASTE3_(a, b, c, _)
#define NNC_FN(name) NNC_PASTE3(name, NNC_SFX, NNC_ISA)

#define NNC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define NNC_MAX(a, b) ((a) > (b) ? (a) : (b))
#define NNC_CEILDIV(a, b) (((a) + (b) - 1) / (b))

// Thread count for a parallel region doing about `work` flops (or element
// operations): 1 below the threshold, so small problems do not pay for a team.
int nnc_threads_for(double work);
// Threads for a call estimated to take `ns` nanoseconds on one core.
int nnc_threads_for_ns(double ns);
// The library thread count capped by omp_get_max_threads() of this thread.
int nnc_threads(void);

// Timing of a parallel region for the stall guard (nnc.h): begin before the
// region (nt its team size), started first thing in it, master_done once
// the thread's share is done (after an `omp for nowait`), end after it.
typedef struct { long long t0, tm; int late; } nnc_region_clock;
long long nnc_now_ns(void);   // monotonic; 0 where there is no such clock
void nnc_region_begin(nnc_region_clock *c, int nt);
void nnc_region_started(nnc_region_clock *c);
void nnc_region_master_done(nnc_region_clock *c);
void nnc_region_end(const nnc_region_clock *c);

// Overflow-checked size products; return 0 and leave *out untouched on overflow.
static inline int nnc_mul_ok(nnc_ssize a, nnc_ssize b, nnc_ssize *out)
{
    nnc_ssize r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return 0;
    *out = r;
    return 1;
}

// A per-OS-thread scratch buffer that only grows, one per slot.  Never shared
// between threads, so two Python threads may run kernels at once.  A slot's
// buffer stays valid until the same thread asks for that slot again, so an
// op holds at most one buffer per slot and never calls code that takes its
// slot while it holds it:
//   NNC_SCRATCH_GEMM_B, NNC_SCRATCH_GEMM_A  the GEMM's packed panels (kernels/gemm)
//   NNC_SCRATCH_WORK     an op's working buffer (the conv engine's per-thread
//                        tap table, the RNN backward's dh, the losses' partial sums)
//   NNC_SCRATCH_WEIGHTS  weights packed by an op for the GEMM or the conv engine
enum nnc_scratch_slot {
    NNC_SCRATCH_GEMM_B,
    NNC_SCRATCH_GEMM_A,
    NNC_SCRATCH_WORK,
    NNC_SCRATCH_WEIGHTS,
    NNC_TLS_SLOTS
};
void *nnc_tls_scratch(enum nnc_scratch_slot slot, size_t bytes);

#endif
