// kernels/conv/bwd_data.h - dx = conv_transpose(dz, W): the direct engine run
// backwards (a gather per dx pixel), or one GEMM on the 1x1 path.

// dx overwritten, or accumulated into (the engine's res = dx: added in its store).
static int NNC_FN(conv_bwd_data)(const nnc_conv_desc *p, const NNC_T *dz, const NNC_T *W, NNC_T *dx,
                                 int accumulate)
{
    int st = NNC_FN(conv_check)(p);
    if (st != NNC_OK) return st;
    if (p->n == 0) return NNC_OK;
    const int nt = NNC_FN(conv_threads)(p);
    if (NNC_FN(conv_is_gemm)(p)) {
        NNC_FN(gemm_args) g = {0, p->n * p->h * p->w, p->c, p->k, 1, accumulate ? 1 : 0, dz, p->ldy, 1, W,
                               p->k, NULL, dx, p->ldx, NULL, NNC_ACT_LINEAR};
        return NNC_FN(gemm_run)(&g, nt);
    }
    NNC_FN(dconv) d;
    st = NNC_FN(conv_engine)(&d, p, W, 1, dz, dx);
    if (st != NNC_OK) return st;
    if (accumulate) d.res = dx;
    return NNC_FN(dconv_run)(&d, p->n, nt);
}
