// kernels/conv/forward.h - the forward op: y = act(conv(x, W) + bias) (+ res),
// then a ReLU with NNC_CONV_RES_RELU.

// The forward op (ops/conv.def): one GEMM on the 1x1 path (when a residual is y itself)
// with more outputs than a half-width vector, else the direct engine with the
// merged-tap runs where the input allows (a GEMM tile of NNC_GEMM_NV vectors
// would leave most lanes idle on K = 3-8: 35x8x8x352 -> 3 on AVX-512 float32
// 305 -> 44 us on one thread by conv_dot, 11x24x24x31 -> 8 84 -> 40 us by a
// half-width vector).
static int NNC_FN(conv_fwd)(const nnc_conv_desc *p, const NNC_T *x, const NNC_T *W, const NNC_T *bias,
                            int act, const NNC_T *res, NNC_T *y)
{
    int st = NNC_FN(conv_check)(p);
    if (st != NNC_OK) return st;
    const int base = act & ~NNC_CONV_RES_RELU;
    if (base < 0 || base >= NNC_ACT_SOFTMAX) return NNC_EINVAL;
    if (p->n == 0) return NNC_OK;
    const int nt = NNC_FN(conv_threads)(p);
    // The GEMM path adds a residual only as y += x W (beta = 1): the same
    // operations as the store of the direct engine when there is no bias.
    const int acc = res == y && !bias && act == NNC_ACT_LINEAR;
    if (NNC_FN(conv_is_gemm)(p) && p->k > NNC_VHLEN && (!res || acc) && base == act) {
        NNC_FN(gemm_args) g = {0, p->n * p->h * p->w, p->k, p->c, 1, acc, x, p->ldx, 0, W, p->k, NULL, y,
                               p->ldy, bias, act};
        return NNC_FN(gemm_run)(&g, nt);
    }
    NNC_FN(dconv) d;
    st = NNC_FN(conv_engine)(&d, p, W, 0, x, y);
    if (st != NNC_OK) return st;
    d.bias = bias;
    d.act = act;
    d.res = res;
    d.merge = !d.depthwise && !d.dot && p->dil_w == 1 && p->groups == 1 && p->ldx == p->c;
    d.slide = d.merge && !d.narrow && p->k <= NNC_VLEN && p->kw == 3 && p->stride_w == 1;
    return NNC_FN(dconv_run)(&d, p->n, nt);
}
