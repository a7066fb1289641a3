// kernels/conv/geometry.h - checks of a conv desc, the path predicates and
// the thread count (functions of the geometry only).

// NNC_CONV_RW x NNC_CONV_NV vectors: the register tile; a narrow tile (nv <=
// NNC_CONV_NVH vectors, e.g. 32 channels on AVX-512) runs up to NNC_CONV_RWX pixels,
// so a small channel count still streams enough FMAs per load.
#define CONV_NB (NNC_CONV_NV * NNC_VLEN)
// Most rows of a tile with nv vectors.
#define CONV_RWMAX(nv) ((nv) <= NNC_CONV_NVH ? NNC_CONV_RWX : NNC_CONV_RW)

// Fields check (Python validates; this keeps the C core memory-safe).
static int NNC_FN(conv_check)(const nnc_conv_desc *p)
{
    if (p->n < 0 || p->h < 1 || p->w < 1 || p->c < 1 || p->k < 1 || p->kh < 1 || p->kw < 1 ||
        p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 || p->dil_w < 1 || p->pad_top < 0 ||
        p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0 || p->groups < 1 || p->c % p->groups ||
        p->k % p->groups || p->ldx < p->c || p->ldy < p->k)
        return NNC_EINVAL;
    const nnc_ssize eh = p->h + p->pad_top + p->pad_bottom - p->dil_h * (p->kh - 1) - 1;
    const nnc_ssize ew = p->w + p->pad_left + p->pad_right - p->dil_w * (p->kw - 1) - 1;
    if (eh < 0 || ew < 0 || p->oh != eh / p->stride_h + 1 || p->ow != ew / p->stride_w + 1) return NNC_EINVAL;
    nnc_ssize a, b;
    if (!nnc_mul_ok(p->n, p->h, &a) || !nnc_mul_ok(a, p->w, &a) || !nnc_mul_ok(a, p->ldx, &a) ||
        !nnc_mul_ok(p->n, p->oh, &b) || !nnc_mul_ok(b, p->ow, &b) || !nnc_mul_ok(b, p->ldy, &b) ||
        !nnc_mul_ok(p->kh * p->kw, p->c, &a) || !nnc_mul_ok(a, p->k, &a))
        return NNC_EOVERFLOW;
    return NNC_OK;
}

// 1x1, stride 1, no padding, one group: forward, dx and dW are GEMMs.
static int NNC_FN(conv_is_gemm)(const nnc_conv_desc *p)
{
    return p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
           p->pad_bottom == 0 && p->pad_left == 0 && p->pad_right == 0 && p->groups == 1;
}

// One input and one output channel per group.
static int NNC_FN(conv_is_depthwise)(const nnc_conv_desc *p)
{
    return p->groups > 1 && p->c == p->groups && p->k == p->groups;
}

static double NNC_FN(conv_flops)(const nnc_conv_desc *p)
{
    return 2.0 * (double)p->n * (double)p->oh * (double)p->ow * (double)p->k * (double)(p->kh * p->kw) *
           (double)(p->c / p->groups);
}

// Threads for a conv: the direct kernels run near the FMA peak even on
// small problems, so a team pays off from about 4 us of single-core work
// (0.4 MFLOP; the demo CNN's batch-1 forward 116 -> 103 us at 2 threads
// against 1 MFLOP).
static int NNC_FN(conv_threads)(const nnc_conv_desc *p)
{
    return nnc_threads_for(5.0 * NNC_FN(conv_flops)(p));
}

// The outputs i >= 0 whose input position i*step + base lies inside [0, extent):
// i in [*lo, *hi) (callers clip *hi to the output size).
NNC_INLINE void NNC_FN(conv_span)(nnc_ssize base, nnc_ssize step, nnc_ssize extent, nnc_ssize *lo,
                                  nnc_ssize *hi)
{
    *lo = base >= 0 ? 0 : NNC_CEILDIV(-base, step);
    *hi = extent - base <= 0 ? 0 : (extent - base - 1) / step + 1;
}
