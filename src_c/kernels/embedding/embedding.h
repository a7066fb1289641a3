// kernels/embedding/embedding.h - row lookup and its gradient (template; see
// nnc_internal.h).
//
// The backward is a counting sort of the ids: for every table row k, the
// positions i with ids[i] == k in increasing order (start[k] .. start[k+1]
// of `order`).  Threads then own whole table rows and add their dy rows in
// that order, so each row's sum is the same chain of additions for any
// thread count, repeated ids included, and no two threads write one row.
#include "runtime/workspace.h"

// Rows per block of the parallel loops.
#define EMB_BLOCK 64

// 1 if every id is in [0, v).
static int NNC_FN(embedding_ids_ok)(const int64_t *ids, nnc_ssize n, nnc_ssize v)
{
    int ok = 1;
    for (nnc_ssize i = 0; i < n; ++i) ok &= ids[i] >= 0 && ids[i] < (int64_t)v;
    return ok;
}

static int NNC_FN(embedding_fwd)(NNC_T *y, const NNC_T *table, const int64_t *ids, nnc_ssize n, nnc_ssize v,
                                 nnc_ssize d)
{
    nnc_ssize total;
    if (n < 0 || v < 0 || d < 0 || !nnc_mul_ok(n, d, &total)) return NNC_EINVAL;
    if (n == 0 || d == 0) return NNC_OK;
    if (!y || !table || !ids || !NNC_FN(embedding_ids_ok)(ids, n, v)) return NNC_EINVAL;
    const int nt = nnc_threads_for((double)total);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize i = 0; i < n; ++i)
        memcpy(y + i * d, table + ids[i] * d, sizeof(NNC_T) * (size_t)d);
    return NNC_OK;
}

// Bytes: start (v + 1) and order (n), both nnc_ssize.
static nnc_ssize NNC_FN(embedding_bwd_workspace_size)(nnc_ssize n, nnc_ssize v)
{
    nnc_ssize bytes = NNC_WS_ALIGN;
    const nnc_ssize el = (nnc_ssize)sizeof(nnc_ssize);
    if (n < 0 || v < 0 || !nnc_ws_reserve(&bytes, v + 1, el) || !nnc_ws_reserve(&bytes, n, el)) return -1;
    return bytes;
}

static int NNC_FN(embedding_bwd)(NNC_T *dtable, const NNC_T *dy, const int64_t *ids, nnc_ssize n, nnc_ssize v,
                                 nnc_ssize d, void *work)
{
    nnc_ssize total;
    if (NNC_FN(embedding_bwd_workspace_size)(n, v) < 0 || d < 0 || !nnc_mul_ok(v, d, &total) ||
        !nnc_mul_ok(n, d, &total))
        return NNC_EINVAL;
    if (v == 0 || d == 0) return NNC_OK;
    if (!dtable || (n > 0 && (!dy || !ids || !work)) || !NNC_FN(embedding_ids_ok)(ids, n, v)) return NNC_EINVAL;
    char *cursor = (char *)work;
    nnc_ssize *start = nnc_ws_take(&cursor, v + 1, sizeof(nnc_ssize));
    nnc_ssize *order = nnc_ws_take(&cursor, n, sizeof(nnc_ssize));
    // Counting sort (stable): start[k] = positions of ids < k.
    memset(start, 0, sizeof(nnc_ssize) * (size_t)(v + 1));
    for (nnc_ssize i = 0; i < n; ++i) ++start[ids[i] + 1];
    for (nnc_ssize k = 0; k < v; ++k) start[k + 1] += start[k];
    for (nnc_ssize i = 0; i < n; ++i) order[start[ids[i]]++] = i;
    for (nnc_ssize k = v; k > 0; --k) start[k] = start[k - 1];
    start[0] = 0;
    const nnc_ssize nblocks = NNC_CEILDIV(v, (nnc_ssize)EMB_BLOCK);
    const int nt = nnc_threads_for((double)total + (double)v * (double)d);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize b = 0; b < nblocks; ++b)
        for (nnc_ssize k = b * EMB_BLOCK; k < NNC_MIN(v, (b + 1) * EMB_BLOCK); ++k) {
            NNC_T *dst = dtable + k * d;
            if (start[k] == start[k + 1]) {
                memset(dst, 0, sizeof(NNC_T) * (size_t)d);
                continue;
            }
            memcpy(dst, dy + order[start[k]] * d, sizeof(NNC_T) * (size_t)d);
            for (nnc_ssize p = start[k] + 1; p < start[k + 1]; ++p) {
                const NNC_T *src = dy + order[p] * d;
                for (nnc_ssize j = 0; j < d; ++j) dst[j] += src[j];
            }
        }
    return NNC_OK;
}

#undef EMB_BLOCK
