// kernels/dropout/dropout.h - inverted dropout (template; see nnc_internal.h).
//
// The mask is a counter-based hash of (key, element index): nothing is stored
// between the forward and the backward, and no state is shared between
// threads.  The hash is two rounds of a 32-bit integer mixer (lowbias32: xor-
// shift, multiply, xor-shift, multiply, xor-shift; a bijection of uint32 with
// low bias), the first over the index's low word and the key's low word, the
// second adding both high words.  Plain integer C: GCC vectorises the loop for
// each ISA (vpmulld on AVX2 and AVX-512), with the same results everywhere.

NNC_INLINE uint32_t NNC_FN(dropout_mix)(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

// Elements [lo, hi) of y = x * (hash(key, i) >= threshold ? scale : 0).
static void NNC_FN(dropout_block)(NNC_T *y, const NNC_T *x, nnc_ssize lo, nnc_ssize hi, uint64_t key,
                                  uint64_t threshold, NNC_T scale)
{
    const uint32_t key_lo = (uint32_t)key, key_hi = (uint32_t)(key >> 32);
    for (nnc_ssize i = lo; i < hi; ++i) {
        const uint64_t idx = (uint64_t)i;
        const uint32_t h = NNC_FN(dropout_mix)(NNC_FN(dropout_mix)((uint32_t)idx ^ key_lo) ^ (uint32_t)(idx >> 32) ^
                                               key_hi);
        y[i] = x[i] * ((uint64_t)h >= threshold ? scale : (NNC_T)0);
    }
}

// Parallel over fixed blocks of NNC_TRAIN_BLOCK elements (element-wise: any
// split gives the same bits).
static int NNC_FN(dropout)(NNC_T *y, const NNC_T *x, nnc_ssize n, uint64_t key, uint64_t threshold, NNC_T scale)
{
    if (n < 0 || (n > 0 && (!y || !x))) return NNC_EINVAL;
    const nnc_ssize nblocks = NNC_CEILDIV(n, (nnc_ssize)NNC_TRAIN_BLOCK);
    const int nt = nnc_threads_for(8.0 * (double)n);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize b = 0; b < nblocks; ++b) {
        const nnc_ssize lo = b * NNC_TRAIN_BLOCK;
        NNC_FN(dropout_block)(y, x, lo, NNC_MIN(n, lo + NNC_TRAIN_BLOCK), key, threshold, scale);
    }
    return NNC_OK;
}
