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
// activation on the last.  KC is a per-(ISA) constant, never derived from
// m, n or the thread count.  Everything else may vary without changing a
// bit: the tile an element falls in (rows of a partial tile run a kernel
// specialised for fewer rows; one row may run gemm_ukr_1x4, four panels at
// once), the path (small-m or blocked), whether B is packed per call,
// prepacked (gemm_pack_b) or read in place, and which thread owns a tile.
// So predict() gives bitwise the same rows for any batch size, and results
// are the same for any thread count.  Across ISAs results differ (FMA width
// and KC are per ISA).
//
// Paths and threads (each thread owns the C tiles it writes; no atomics):
// - m <= MC, the layer shapes (gemm_small): thread t owns a contiguous run
//   of B panels; it packs A (all m rows) once per KC slice and packs each of
//   its B panel slices into an L1 buffer right before using it.  nt == 1
//   runs without an OpenMP team.
// - m > MC (gemm_blocked): one parallel region; per KC slice an omp-for
//   packs the shared B block, then an omp-for runs (row block x column
//   chunk) items, each packing its own A block into per-thread scratch.
// Packing transposes with NNC_TB x NNC_TB register blocks (nnc_vtransp).
//
// Parts:
//   ukernel.h  the register-tile micro-kernels and their tile store
//   pack.h     packing of A and B panels, the prepacked-B layout and its size
//   driver.h   the blocked and small-m loops, threads, gemm / gemm_packed / gemm_run
//   nt.h       gemm_nt: A B^T with both operands row-major along k, unpacked

#define GEMM_NR (NNC_GEMM_NV * NNC_VLEN)
// KC 256: a KC x NR B micro-panel (reused by every MR-row tile of a block)
// is 16-32 KiB, L1/L2-resident; KC = 128 for AVX-512 f32 (16 KiB) measured
// ~3% slower on Zen 4.  The A block (MC x KC) stays in L2.
#define GEMM_KC 256
#define GEMM_MC (264 / NNC_GEMM_MR * NNC_GEMM_MR)
#define GEMM_NC (128 * GEMM_NR)
// Elements of packed A the small-m path keeps (all KC slices it can): 256 KiB.
#define GEMM_ABUDGET (262144 / (nnc_ssize)sizeof(NNC_T))

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
#undef GEMM_KC
#undef GEMM_MC
#undef GEMM_NC
#undef GEMM_ABUDGET
