// kernels/conv/ukernels_filter.h - the register-tile micro-kernels of dW for
// the general (not depthwise) conv, called by conv_w_filter (bwd_filter.h).

// The signature of a dW micro-kernel (conv_wgrad_ukr_fn) and its argument list:
//   x + ro*xrs + q*xps + r      broadcast operand of row ro, pixel q, tile row r
//   z + ro*zrs + q*zps          vector operand (nch channels) of the same pixel
//   dw + r*ldw                  the dW row that tile row r adds into
//   zfull                       every whole-vector read of z stays inside its buffer
#define CONV_WUKR_PARAMS                                                                             \
    const NNC_T *x, nnc_ssize xps, nnc_ssize xrs, const NNC_T *z, nnc_ssize zps, nnc_ssize zrs,      \
        nnc_ssize nrow, nnc_ssize npx, NNC_T *dw, nnc_ssize ldw, nnc_ssize nch, int zfull
#define CONV_WUKR_ARGS x, xps, xrs, z, zps, zrs, nrow, npx, dw, ldw, nch, zfull
typedef void (*NNC_FN(conv_wgrad_ukr_fn))(CONV_WUKR_PARAMS);

// The dW pixel loop: acc[r][j] += x[p, r] * z[p, j-th vector] over nrow
// rows of npx pixels (row strides xrs, zrs; pixel strides xps, zps), then
// dw[r*ldw + j-th vector] += acc[r][j].  store_full 0: the last vector has
// `last` < NNC_VLEN channels (masked store).  load_full 1 loads it whole all
// the same (zfull: the caller checked that every such read stays inside the
// buffer; the extra lanes are never stored): GCC 12 keeps acc in memory in
// a loop with masked loads, which costs 2-3x.
NNC_INLINE void NNC_FN(conv_wgrad_chain)(const int rw, const int nv, const int load_full,
                                         const int store_full, nnc_ssize last, CONV_WUKR_PARAMS)
{
    nnc_v acc[NNC_CONV_RWX][NNC_CONV_NV];
    NNC_UNROLL_TILE for (int r = 0; r < rw; ++r)
        for (int j = 0; j < nv; ++j) acc[r][j] = nnc_vzero();
    const nnc_vmask lanes = nnc_vmaskn(load_full ? 0 : last);   // made once, outside the pixel loop
    for (nnc_ssize rq = 0; rq < nrow * npx; ++rq) {
        const nnc_ssize ro = rq / npx, q = rq - ro * npx;
        const NNC_T *NNC_RESTRICT xq = x + ro * xrs + q * xps;
        const NNC_T *zq = z + ro * zrs + q * zps;
        nnc_v zv[NNC_CONV_NV];
        for (int j = 0; j < nv; ++j)
            zv[j] = load_full || j < nv - 1 ? nnc_vload(zq + j * NNC_VLEN)
                                            : nnc_vloadm(zq + j * NNC_VLEN, lanes);
        NNC_UNROLL_TILE for (int r = 0; r < rw; ++r) {
            const nnc_v xb = nnc_vset1(xq[r]);
            for (int j = 0; j < nv; ++j) acc[r][j] = nnc_vfma(xb, zv[j], acc[r][j]);
        }
    }
    NNC_UNROLL_TILE for (int r = 0; r < rw; ++r)
        for (int j = 0; j < nv; ++j) {
            NNC_T *o = dw + r * ldw + j * NNC_VLEN;
            if (store_full || j < nv - 1) nnc_vstore(o, nnc_vadd(nnc_vload(o), acc[r][j]));
            else nnc_vstoren(o, nnc_vadd(nnc_vloadn(o, last), acc[r][j]), last);
        }
}

// The dW register tile, rw broadcast channels x nv vectors (nch channels):
// the pixel loop with whole vectors where it may load them.
NNC_INLINE void NNC_FN(conv_wgrad_tile)(const int rw, const int nv, CONV_WUKR_PARAMS)
{
    const nnc_ssize last = nch - (nv - 1) * NNC_VLEN;
    if (last >= NNC_VLEN) NNC_FN(conv_wgrad_chain)(rw, nv, 1, 1, last, CONV_WUKR_ARGS);
    else if (zfull) NNC_FN(conv_wgrad_chain)(rw, nv, 1, 0, last, CONV_WUKR_ARGS);
    else NNC_FN(conv_wgrad_chain)(rw, nv, 0, 0, last, CONV_WUKR_ARGS);
}
