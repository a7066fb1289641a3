// nnc.h - the public header of the nnc C core (plain C11, no Python).
//
// Shape letters used in every comment: N batch, T time, H/W height/width,
// C channels, K kernel, F features, U hidden units, G gates.
// Layouts: row-major; images NHWC, conv weights HWIO, sequences (N, T, F).
//
// Every op exists for float32 (suffix _f32) and float64 (_f64) and returns a
// status code (NNC_OK = 0).  The ops are declared from the X-macro lists in
// nnc/ops/*.def; each call goes through the ops table of the ISA chosen at
// start-up (nnc_init) or forced with NNC_ISA=scalar|avx2|avx512.
#ifndef NNC_H
#define NNC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef ptrdiff_t nnc_ssize;

enum nnc_status {
    NNC_OK = 0,
    NNC_ENOMEM = 1,      // allocation failed
    NNC_EINVAL = 2,      // invalid argument (a bug in the caller: Python validates)
    NNC_EOVERFLOW = 3,   // a size product overflows
};

enum nnc_isa { NNC_ISA_SCALAR = 0, NNC_ISA_AVX2 = 1, NNC_ISA_AVX512 = 2, NNC_ISA_COUNT = 3 };

// Activation ids, shared by every kernel with a fused activation.
enum nnc_act {
    NNC_ACT_LINEAR = 0,
    NNC_ACT_RELU = 1,
    NNC_ACT_SIGMOID = 2,
    NNC_ACT_TANH = 3,
    NNC_ACT_SIGN = 4,     // 1 where z >= 0 else 0; NaN stays NaN; derivative 0
    NNC_ACT_SOFTMAX = 5,  // over the last axis (rows); never fused into a GEMM tile
    NNC_ACT_LEAKY_RELU = 6,  // z if z > 0 else alpha * z (NaN stays NaN); act_fwd / act_bwd only,
                             // never fused (the GEMM and conv epilogues have no alpha)
};

// Chooses the best ISA the CPU supports, lowered by the NNC_ISA environment
// variable, and the CPU row (nnc_cpu.h; NNC_CPU forces one).  Returns
// NNC_EINVAL if NNC_ISA names an unknown or unsupported ISA or NNC_CPU an
// unknown row (the ISA then stays at the best supported one, the row at the
// one detected).  Idempotent.
int nnc_init(void);
int nnc_isa_supported(int isa);   // 1 if this CPU (and build) can run isa
int nnc_get_isa(void);
int nnc_set_isa(int isa);         // NNC_EINVAL if unsupported; for tests and the bench
const char *nnc_isa_name(int isa);

// Library-wide thread count: a process global applied with num_threads(...)
// on every parallel region (never omp_set_num_threads), capped by
// omp_get_max_threads() of the calling thread.
void nnc_set_num_threads(int n);
int nnc_get_num_threads(void);
// The thread count a kernel called now from this OS thread would use:
// nnc_get_num_threads() capped by this thread's OpenMP limit (omp_get_max_threads(),
// e.g. threadpoolctl's threadpool_limits).
int nnc_effective_num_threads(void);
// Pauses the OpenMP runtime (before fork); returns 0 on success.
int nnc_omp_pause(void);
// Stall guard (runtime/threads.c): a timed parallel region (the conv engine's, or a
// recurrent forward's batch blocks') lost time to descheduled threads
// (another process busy on a core) when one of its threads started its
// share more than the threshold late, or when its first thread waited at
// the join longer than the threshold and longer than its own share took;
// the recurrent column split (kernels/rnn/forward.h) reports a
// thread that waited longer than the threshold for a partner.  The next
// calls then run on one thread: 2, 4, ... 256 calls after consecutive
// stalls, the whole team again after a clean region.
// Thread counts only: no result changes by a bit.  Threshold 0 turns the
// guard off.
// Sets the threshold (ns >= 0, and clears the guard's state; ns < 0 only
// reads it); returns the old one.  Default 500000 (0.5 ms).
long long nnc_stall_threshold_ns(long long ns);
int nnc_stall_solo_calls(void);   // calls left to run on one thread
void nnc_stall_note(int stalled);  // a timed region's verdict (ignored while the guard is off)
// Memory (runtime/memcache.c): 64-byte aligned blocks; large freed blocks stay in a
// bounded cache and are reused, so repeated calls do not fault in fresh pages.
void *nnc_aligned_alloc(size_t bytes);  // NULL on failure; any size, 0 included
void nnc_aligned_free(void *p);         // NULL is a no-op
void *nnc_aligned_realloc(void *p, size_t bytes);  // NULL on failure (p then untouched)
size_t nnc_mem_set_cache_limit(size_t bytes);  // returns the old limit; 0 = no cache
size_t nnc_mem_get_cache_limit(void);
size_t nnc_mem_cached_bytes(void);
void nnc_mem_clear_cache(void);
const char *nnc_compiler(void);
int nnc_openmp_version(void);

#include "nnc/nnc_cpu.h"
#include "nnc/nnc_conv.h"
#include "nnc/nnc_pool.h"
#include "nnc/nnc_rnn.h"
#include "nnc/nnc_convrnn.h"
#include "nnc/nnc_train.h"

// One declaration per op and dtype: nnc_<op>_f32 / nnc_<op>_f64.
#define NNC_OP(ret, name, params, args) ret nnc_##name##_f32 params;
#define NNC_T float
#include "nnc/ops.def"
#undef NNC_T
#undef NNC_OP
#define NNC_OP(ret, name, params, args) ret nnc_##name##_f64 params;
#define NNC_T double
#include "nnc/ops.def"
#undef NNC_T
#undef NNC_OP

#ifdef __cplusplus
}
#endif
#endif
