// kernels/gemm/gemm.h - the GEMM engine (template; see nnc_internal.h): its
// constants and problem descriptor, then its parts in dependency order.
//
//   C (m, n) = act(alpha * op(A) op(B) + beta * C + bias)     row-major
//   op(A) (m, k): A[i*lda + p], or A[p*lda + i] when transposed
//   op(B) (k, n): B[p*ldb + j], or B[j*ldb + p] when transposed
//   bias (n) or NULL, act an nnc_act (not softmax); beta == 0 never reads C.
//
// BLIS structure: B is packed into NR-column panels (k-major inside a panel),
// A into MR-row panels; an MR x NR register-blocked micro-kernel runs over
// KC-deep slices.  A B operand can also be packed once (gemm_pack_b) and
// reused across calls: the weights of a dense, recurrent or conv layer.
//
// Determinism (API contract; tests/test_gemm.py checks it bitwise): every
// element C[i][j] is, per KC slice [pc, pc+kc) in increasing pc, the FMA
// chain acc = fma(A[i][p], B[p][j], acc) over p in order from acc = 0, then
// c = alpha*acc (+ beta*C on the first slice, + c on later ones), bias and
// activation on the last.  KC is a constant of the CPU row, ISA and dtype
// (gemm_blocking below), never derived from m, n or the thread count.
// Everything else may vary without changing a bit: the tile an element
// falls in (rows of a partial tile run a kernel specialised for fewer rows;
// 1-3 rows may run a group kernel, several panels at once), the path (small-m or
// blocked), whether B is packed per call, prepacked (gemm_pack_b) or read
// in place, and which thread owns a tile.  So predict() gives bitwise the
// same rows for any batch size, and results are the same for any thread
// count.  Across ISAs and CPU rows results differ (FMA width, KC).
//
// Paths and threads (each thread owns the C tiles it writes; no atomics):
// - m <= MC, the layer shapes (gemm_small): thread t owns a contiguous run
//   of B panels (or, when they split more evenly, of MR-row tiles); it packs
//   A (all its rows) once per KC slice and packs each of its B panel slices
//   into an L1 buffer right before using it.  nt == 1 runs without an
//   OpenMP team.
// - m > MC (gemm_blocked): one parallel region; per KC slice an omp-for
//   packs the shared B block, then an omp-for runs (row block x column
//   chunk) items, each packing its own A block into per-thread scratch.
// Packing transposes with NNC_TB x NNC_TB register blocks (nnc_vtransp).
//
// Parts:
//   ukernel.h  the register-tile micro-kernels and their tile store
//   pack.h     packing of A and B panels, the prepacked-B layout and its size
//   driver.h   the blocked and small-m loops, threads, gemm / gemm_packed / gemm_run
//   nt.h       gemm_nt: A B^T with both operands row-major along k, by dot
//              products (or the packed GEMM when k is short)

#define GEMM_NR (NNC_GEMM_NV * NNC_VLEN)
// Elements of packed A the small-m path keeps (all KC slices it can): 256 KiB.
#define GEMM_ABUDGET (262144 / (nnc_ssize)sizeof(NNC_T))

// The cache blocks of the CPU row in use (runtime/cpu.c, nnc_cpu.h):
// - KC, the slice depth: a KC x NR packed B panel (reused by every MR-row
//   tile of a block) fills the row's share of L1d; a multiple of 16 in
//   [128, 256] (longer FMA chains round more: KC 512 tripled the float32
//   error of a 1024-deep product against a float64 reference).  KC depends on the row, the ISA (NR) and the dtype only,
//   never on m, n or the thread count (the determinism contract above).
// - MC: the MC x KC packed A block fills the row's share of L2.
// - NC: the KC x NC packed B block fits the row's L3 share of one core.
typedef struct {
    nnc_ssize kc, mc, nc;
} NNC_FN(gemm_blocks);

NNC_INLINE NNC_FN(gemm_blocks) NNC_FN(gemm_blocking)(void)
{
    const nnc_cpu_model *cpu = nnc_cpu();
    const nnc_ssize sz = (nnc_ssize)sizeof(NNC_T);
    nnc_ssize kc = (nnc_ssize)cpu->l1d_kib * 1024 * cpu->kc_l1_pct / 100 / (GEMM_NR * sz) / 16 * 16;
    kc = NNC_MIN(256, NNC_MAX(128, kc));
    const nnc_ssize mc = (nnc_ssize)cpu->l2_kib * 1024 * cpu->mc_l2_pct / 100 / (kc * sz) / NNC_GEMM_MR;
    const nnc_ssize nc = (nnc_ssize)cpu->l3_kib * 1024 / (kc * sz) / GEMM_NR;
    return (NNC_FN(gemm_blocks)){kc, NNC_MAX(4, mc) * NNC_GEMM_MR, NNC_MAX(8, nc) * GEMM_NR};
}

// One core's time (ns) for an m x n x k product, for the thread decision
// (nnc_threads_for_ns): its flops at the rate products of a few microseconds
// reach (about 150 GFLOP/s in float32, half in float64, on the CPUs nnc is
// tuned on) plus B's bytes at an L2 rate (100 GB/s), which is what bounds a
// product with few rows.
NNC_INLINE double NNC_FN(gemm_ns)(nnc_ssize m, nnc_ssize n, nnc_ssize k)
{
    const double flops = 2.0 * (double)m * (double)n * (double)k, bytes = (double)n * (double)k * sizeof(NNC_T);
    return flops / (sizeof(NNC_T) == 4 ? 150.0 : 75.0) + bytes / 100.0;
}

// One GEMM problem (the formula above); the B operand is either unpacked
// (B, ldb, tb) or prepacked by gemm_pack_b (Bp; B is then unused).
typedef struct {
    int ta;
    nnc_ssize m, n, k;
    NNC_T alpha, beta;
    const NNC_T *A;
    nnc_ssize lda;
    int tb;                // B operand: unpacked ...
    const NNC_T *B;
    nnc_ssize ldb;
    const NNC_T *Bp;       // ... or packed by gemm_pack_b (then B is unused)
    NNC_T *C;
    nnc_ssize ldc;
    const NNC_T *bias;
    int act;
} NNC_FN(gemm_args);

#include "kernels/gemm/ukernel.h"
#include "kernels/gemm/pack.h"
#include "kernels/gemm/driver.h"
#include "kernels/gemm/nt.h"

#undef GEMM_NR
#undef GEMM_ABUDGET
