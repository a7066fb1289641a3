// kernels/rnn/gemv.h - the recurrent product on the calling thread (template;
// see nnc_internal.h): rows of h_{t-1} times a packed W_h, through the GEMM,
// or for one row (batch 1) through the GEMV streams below.

// C (rows, n) = A (rows, k) B + beta C + bias with B packed, on the calling
// thread (one row: the GEMM's GEMV-shaped kernel, bitwise the same row).
NNC_INLINE void NNC_FN(rnn_gemm)(nnc_ssize rows, nnc_ssize n, nnc_ssize k, const NNC_T *A, nnc_ssize lda,
                                 const NNC_T *Bp, NNC_T beta, NNC_T *C, nnc_ssize ldc, const NNC_T *bias,
                                 int *failed)
{
    NNC_FN(gemm_args) g = {0, rows, n, k, 1, beta, A, lda, 0, NULL, 0, Bp, C, ldc, bias, NNC_ACT_LINEAR};
    if (NNC_FN(gemm_run)(&g, 1) != NNC_OK) __atomic_store_n(failed, 1, __ATOMIC_RELAXED);
}

// One row (batch 1) times packed W_h: NQ "streams", each 2*NNC_VLEN
// columns of one packed panel (rows nr apart) into its own output row
// segment, c = h W (+ beta c + bias).  Per element this is exactly the
// GEMM's chain (gemm_ukr_1: from 0, acc = fma(h[p], B[p][j], acc) over p in
// order within each KC slice, stored by gemm_store_row), so the row is
// bitwise the one the GEMM gives the same row in a batch.  The GEMM's own
// one-row kernel (gemm_ukr_1x4) needs four adjacent panels written to
// adjacent columns; here the streams are the gate blocks of one slice of
// hidden units (H apart in the output), which gives 2*NQ independent chains
// with no packing of h and no per-call set-up.
typedef struct {
    const NNC_T *b;     // packed panel + column offset of the block
    NNC_T *c;           // output, first column of the block
    const NNC_T *bias;  // bias of that column, or NULL
    nnc_ssize ncols;    // 1 .. 2*NNC_VLEN
} NNC_FN(rnn_strm);

// Maximum number of streams of one rnn_gemv call.
#define RNN_GEMV_MAXQ 4

// The kernel for nq (compile-time, 1 .. RNN_GEMV_MAXQ) streams s[0..nq) over
// k rows of h (the packed panels' rows nr apart); g gives beta and the
// accumulation rule to gemm_store_row.  Overwrites (or, beta = 1, adds to)
// each stream's output segment.
NNC_INLINE void NNC_FN(rnn_gemv)(const NNC_FN(rnn_strm) *s, const int nq, const NNC_T *NNC_RESTRICT h,
                                 nnc_ssize k, nnc_ssize nr, const NNC_FN(gemm_args) *g)
{
    const nnc_ssize kcs = NNC_FN(gemm_kc)();
    for (nnc_ssize pc = 0; pc < k; pc += kcs) {
        const nnc_ssize kc = NNC_MIN(kcs, k - pc);
        nnc_v acc[RNN_GEMV_MAXQ][2];
        const NNC_T *b[RNN_GEMV_MAXQ];
        NNC_UNROLL_TILE for (int q = 0; q < nq; ++q) {
            acc[q][0] = acc[q][1] = nnc_vzero();
            b[q] = s[q].b + pc * nr;
        }
        for (nnc_ssize p = 0; p < kc; ++p) {
            const nnc_v av = nnc_vset1(h[pc + p]);
            NNC_UNROLL_TILE for (int q = 0; q < nq; ++q) {
                acc[q][0] = nnc_vfma(av, nnc_vload(b[q] + p * nr), acc[q][0]);
                acc[q][1] = nnc_vfma(av, nnc_vload(b[q] + p * nr + NNC_VLEN), acc[q][1]);
            }
        }
        NNC_UNROLL_TILE for (int q = 0; q < nq; ++q) {
            // a copy (acc stays in registers); store_row indexes up to NNC_GEMM_NV (<= 4) vectors
            const nnc_v o[4] = {acc[q][0], acc[q][1], nnc_vzero(), nnc_vzero()};
            NNC_FN(gemm_store_row)(s[q].c, o, s[q].ncols, pc == 0, pc + kc == k, g, s[q].bias);
        }
    }
}

// The instances rnn_rec calls: 1, 2, 3 and 4 streams.
static void NNC_FN(rnn_gemv_1)(const NNC_FN(rnn_strm) *s, const NNC_T *NNC_RESTRICT h, nnc_ssize k, nnc_ssize nr,
                               const NNC_FN(gemm_args) *g) { NNC_FN(rnn_gemv)(s, 1, h, k, nr, g); }
static void NNC_FN(rnn_gemv_2)(const NNC_FN(rnn_strm) *s, const NNC_T *NNC_RESTRICT h, nnc_ssize k, nnc_ssize nr,
                               const NNC_FN(gemm_args) *g) { NNC_FN(rnn_gemv)(s, 2, h, k, nr, g); }
static void NNC_FN(rnn_gemv_3)(const NNC_FN(rnn_strm) *s, const NNC_T *NNC_RESTRICT h, nnc_ssize k, nnc_ssize nr,
                               const NNC_FN(gemm_args) *g) { NNC_FN(rnn_gemv)(s, 3, h, k, nr, g); }
static void NNC_FN(rnn_gemv_4)(const NNC_FN(rnn_strm) *s, const NNC_T *NNC_RESTRICT h, nnc_ssize k, nnc_ssize nr,
                               const NNC_FN(gemm_args) *g) { NNC_FN(rnn_gemv)(s, 4, h, k, nr, g); }

#undef RNN_GEMV_MAXQ
