// kernels/pool/window.h - a pooling problem's checks and a window's extent
// (part of kernels/pool/pool.h).

// Checks p (see nnc_pool.h); max_cells: also require kh*kw <= NNC_POOL_MAX_CELLS.
static int NNC_FN(pool_check)(const nnc_pool_desc *p, int max_cells)
{
    nnc_ssize hp, wp, cells, t;
    if (p->n < 0 || p->c < 0 || p->h < 1 || p->w < 1 || p->kh < 1 || p->kw < 1 || p->sh < 1 ||
        p->sw < 1 || p->ph < 0 || p->pw < 0 || p->ph > p->kh / 2 || p->pw > p->kw / 2)
        return NNC_EINVAL;
    if (__builtin_add_overflow(p->h, 2 * p->ph, &hp) || __builtin_add_overflow(p->w, 2 * p->pw, &wp) ||
        !nnc_mul_ok(p->kh, p->kw, &cells))
        return NNC_EOVERFLOW;
    if (hp < p->kh || wp < p->kw || p->oh != (hp - p->kh) / p->sh + 1 || p->ow != (wp - p->kw) / p->sw + 1 ||
        (max_cells && cells > NNC_POOL_MAX_CELLS))
        return NNC_EINVAL;
    if (!nnc_mul_ok(p->n, p->h, &t) || !nnc_mul_ok(t, p->w, &t) || !nnc_mul_ok(t, p->c, &t) ||
        !nnc_mul_ok(p->n, p->oh, &t) || !nnc_mul_ok(t, p->ow, &t) || !nnc_mul_ok(t, p->c, &t))
        return NNC_EOVERFLOW;
    return NNC_OK;
}

// The window of output index o along one axis (stride s, padding pad,
// window k, input length in): it starts at input index *start; its cells
// [*lo, *hi) lie inside the input [0, in).
NNC_INLINE void NNC_FN(pool_span)(nnc_ssize o, nnc_ssize s, nnc_ssize pad, nnc_ssize k, nnc_ssize in,
                                  nnc_ssize *start, nnc_ssize *lo, nnc_ssize *hi)
{
    nnc_ssize a = o * s - pad;
    *start = a;
    *lo = a < 0 ? -a : 0;
    *hi = NNC_MIN(k, in - a);
}
