// kernels/rnn/gates.h - the recurrent cells' fused gate passes (template; see
// nnc_internal.h): element-wise over rows of pre-activations, whoever
// produced them (the sequence kernels' GEMMs, or a convolution: rows may be
// pixels).  Row strides are in elements; a NULL state row reads as zeros.
// The *_rows_* passes run on the calling thread; the exposed ops at the end
// (lstm_cell_fwd, lstm_cell_bwd, rnn_cell_bwd) split the rows over threads.

// Load from an optional row (NULL = zeros).
#define RNN_LDZ(p, m) ((p) ? nnc_vloadp((p), (m)) : nnc_vzero())

// LSTM step: i,f,o = sigma, c~ = tanh; C = f*C_prev + i*c~; h = o*tanh(C).
// Forward passes work on W units whose gate blocks are H (>= W) apart, so a
// thread may run a slice of the units.
static void NNC_FN(lstm_rows_fwd)(nnc_ssize rows, nnc_ssize W, nnc_ssize H, NNC_T *a, nnc_ssize lda,
                                  const NNC_T *cp, nnc_ssize ldcp, NNC_T *c, nnc_ssize ldc, NNC_T *h, nnc_ssize ldh,
                                  int save)
{
    for (nnc_ssize r = 0; r < rows; ++r) {
        NNC_T *ar = a + r * lda, *cr = c + r * ldc, *hr = h + r * ldh;
        const NNC_T *cpr = cp ? cp + r * ldcp : NULL;
        for (nnc_ssize j = 0; j < W; j += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, W - j);
            nnc_v i = nnc_vsigmoid(nnc_vloadp(ar + j, m));
            nnc_v f = nnc_vsigmoid(nnc_vloadp(ar + H + j, m));
            nnc_v g = nnc_vtanh(nnc_vloadp(ar + 2 * H + j, m));
            nnc_v o = nnc_vsigmoid(nnc_vloadp(ar + 3 * H + j, m));
            nnc_v cn = nnc_vadd(nnc_vmul(f, RNN_LDZ(cpr ? cpr + j : NULL, m)), nnc_vmul(i, g));
            nnc_vstorep(cr + j, cn, m);
            nnc_vstorep(hr + j, nnc_vmul(o, nnc_vtanh(cn)), m);
            if (save) {
                nnc_vstorep(ar + j, i, m);
                nnc_vstorep(ar + H + j, f, m);
                nnc_vstorep(ar + 2 * H + j, g, m);
                nnc_vstorep(ar + 3 * H + j, o, m);
            }
        }
    }
}

// LSTM step backward (see rnn.def, lstm_cell_bwd).
static void NNC_FN(lstm_rows_bwd)(nnc_ssize rows, nnc_ssize H, const NNC_T *g, nnc_ssize ldg, const NNC_T *cp,
                                  nnc_ssize ldcp, const NNC_T *c, nnc_ssize ldc, const NNC_T *dhe, nnc_ssize lde,
                                  const NNC_T *dhr, nnc_ssize ldr, NNC_T *dc, nnc_ssize lddc, NNC_T *da,
                                  nnc_ssize ldda)
{
    const nnc_v one = nnc_vset1(1);
    for (nnc_ssize r = 0; r < rows; ++r) {
        const NNC_T *gr = g + r * ldg, *cr = c + r * ldc;
        const NNC_T *cpr = cp ? cp + r * ldcp : NULL;
        const NNC_T *der = dhe ? dhe + r * lde : NULL, *drr = dhr ? dhr + r * ldr : NULL;
        NNC_T *dcr = dc + r * lddc, *dar = da + r * ldda;
        for (nnc_ssize j = 0; j < H; j += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, H - j);
            nnc_v i = nnc_vloadp(gr + j, m), f = nnc_vloadp(gr + H + j, m);
            nnc_v gg = nnc_vloadp(gr + 2 * H + j, m), o = nnc_vloadp(gr + 3 * H + j, m);
            nnc_v dh = nnc_vadd(RNN_LDZ(der ? der + j : NULL, m), RNN_LDZ(drr ? drr + j : NULL, m));
            nnc_v tc = nnc_vtanh(nnc_vloadp(cr + j, m));
            nnc_v dct = nnc_vadd(nnc_vloadp(dcr + j, m), nnc_vmul(nnc_vmul(dh, o), nnc_vsub(one, nnc_vmul(tc, tc))));
            nnc_v cprev = RNN_LDZ(cpr ? cpr + j : NULL, m);
            nnc_vstorep(dcr + j, nnc_vmul(dct, f), m);
            nnc_vstorep(dar + j, nnc_vmul(nnc_vmul(dct, gg), nnc_vmul(i, nnc_vsub(one, i))), m);
            nnc_vstorep(dar + H + j, nnc_vmul(nnc_vmul(dct, cprev), nnc_vmul(f, nnc_vsub(one, f))), m);
            nnc_vstorep(dar + 2 * H + j, nnc_vmul(nnc_vmul(dct, i), nnc_vsub(one, nnc_vmul(gg, gg))), m);
            nnc_vstorep(dar + 3 * H + j, nnc_vmul(nnc_vmul(dh, tc), nnc_vmul(o, nnc_vsub(one, o))), m);
        }
    }
}

// Simple RNN step backward: da = act'(h) * (dh_ext + dh_rec).
static void NNC_FN(rnn_rows_bwd)(nnc_ssize rows, nnc_ssize H, const NNC_T *h, nnc_ssize ldh, const NNC_T *dhe,
                                 nnc_ssize lde, const NNC_T *dhr, nnc_ssize ldr, NNC_T *da, nnc_ssize ldda,
                                 int act)
{
    for (nnc_ssize r = 0; r < rows; ++r) {
        const NNC_T *hr = h + r * ldh;
        const NNC_T *der = dhe ? dhe + r * lde : NULL, *drr = dhr ? dhr + r * ldr : NULL;
        NNC_T *dar = da + r * ldda;
        for (nnc_ssize j = 0; j < H; j += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, H - j);
            nnc_v dh = nnc_vadd(RNN_LDZ(der ? der + j : NULL, m), RNN_LDZ(drr ? drr + j : NULL, m));
            nnc_vstorep(dar + j, NNC_FN(vact_grad)(nnc_vloadp(hr + j, m), dh, act), m);
        }
    }
}

// GRU, reset_after = 0, first pass: r,u = sigma(a_r, a_u) in place (a holds
// x and h terms and both biases); rh = r * h_prev.
static void NNC_FN(gru_rows_gates)(nnc_ssize rows, nnc_ssize W, nnc_ssize H, NNC_T *a, nnc_ssize lda,
                                   const NNC_T *hp, nnc_ssize ldhp, NNC_T *rh, nnc_ssize ldrh)
{
    for (nnc_ssize r = 0; r < rows; ++r) {
        NNC_T *ar = a + r * lda, *rhr = rh + r * ldrh;
        const NNC_T *hpr = hp ? hp + r * ldhp : NULL;
        for (nnc_ssize j = 0; j < W; j += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, W - j);
            nnc_v rr = nnc_vsigmoid(nnc_vloadp(ar + j, m));
            nnc_vstorep(ar + j, rr, m);
            nnc_vstorep(ar + H + j, nnc_vsigmoid(nnc_vloadp(ar + H + j, m)), m);
            nnc_vstorep(rhr + j, nnc_vmul(rr, RNN_LDZ(hpr ? hpr + j : NULL, m)), m);
        }
    }
}

// GRU step, both variants: h = (1-u)*h_prev + u*c~.  reset_after = 0: r,u
// already activated in a, c~ = tanh(a_c).  reset_after = 1: q (rows, 3h) =
// W_h h_prev + b_h; r,u = sigma(a + q), c~ = tanh(a_c + r*q_c); q_c is kept in
// qsave.  With save, a holds r, u, c~ afterwards.
static void NNC_FN(gru_rows_fwd)(nnc_ssize rows, nnc_ssize W, nnc_ssize H, NNC_T *a, nnc_ssize lda,
                                 const NNC_T *q, nnc_ssize ldq, const NNC_T *hp, nnc_ssize ldhp, NNC_T *h,
                                 nnc_ssize ldh, NNC_T *qsave, nnc_ssize ldqs, int save)
{
    const nnc_v one = nnc_vset1(1);
    for (nnc_ssize r = 0; r < rows; ++r) {
        NNC_T *ar = a + r * lda, *hr = h + r * ldh;
        const NNC_T *hpr = hp ? hp + r * ldhp : NULL, *qr = q ? q + r * ldq : NULL;
        for (nnc_ssize j = 0; j < W; j += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, W - j);
            nnc_v rr, u, cand;
            if (qr) {
                nnc_v qc = nnc_vloadp(qr + 2 * H + j, m);
                rr = nnc_vsigmoid(nnc_vadd(nnc_vloadp(ar + j, m), nnc_vloadp(qr + j, m)));
                u = nnc_vsigmoid(nnc_vadd(nnc_vloadp(ar + H + j, m), nnc_vloadp(qr + H + j, m)));
                cand = nnc_vtanh(nnc_vadd(nnc_vloadp(ar + 2 * H + j, m), nnc_vmul(rr, qc)));
                if (qsave) nnc_vstorep(qsave + r * ldqs + j, qc, m);
                if (save) {
                    nnc_vstorep(ar + j, rr, m);
                    nnc_vstorep(ar + H + j, u, m);
                }
            } else {
                u = nnc_vloadp(ar + H + j, m);
                cand = nnc_vtanh(nnc_vloadp(ar + 2 * H + j, m));
            }
            if (save) nnc_vstorep(ar + 2 * H + j, cand, m);
            nnc_v hprev = RNN_LDZ(hpr ? hpr + j : NULL, m);
            nnc_vstorep(hr + j, nnc_vadd(nnc_vmul(nnc_vsub(one, u), hprev), nnc_vmul(u, cand)), m);
        }
    }
}

// GRU step backward, shared part: dh = dh_ext + dh_rec; da_u, da_c (the
// gradient w.r.t. the candidate's pre-activation) and dhp = dh * (1-u).
// reset_after = 1 (qc != NULL): also da_r, and dq (rows, 3h) = the gradient
// w.r.t. W_h h + b_h (dq_c = da_c * r).  reset_after = 0: da_r is left to
// gru_rows_bwd_r.
static void NNC_FN(gru_rows_bwd)(nnc_ssize rows, nnc_ssize H, const NNC_T *g, nnc_ssize ldg, const NNC_T *qc,
                                 nnc_ssize ldqc, const NNC_T *hp, nnc_ssize ldhp, const NNC_T *dhe, nnc_ssize lde,
                                 const NNC_T *dhr, nnc_ssize ldr, NNC_T *da, nnc_ssize ldda, NNC_T *dq,
                                 nnc_ssize lddq, NNC_T *dhp, nnc_ssize lddhp)
{
    const nnc_v one = nnc_vset1(1);
    for (nnc_ssize r = 0; r < rows; ++r) {
        const NNC_T *gr = g + r * ldg, *hpr = hp ? hp + r * ldhp : NULL;
        const NNC_T *der = dhe ? dhe + r * lde : NULL, *drr = dhr ? dhr + r * ldr : NULL;
        NNC_T *dar = da + r * ldda, *dhpr = dhp + r * lddhp;
        for (nnc_ssize j = 0; j < H; j += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, H - j);
            nnc_v u = nnc_vloadp(gr + H + j, m), cand = nnc_vloadp(gr + 2 * H + j, m);
            nnc_v dh = nnc_vadd(RNN_LDZ(der ? der + j : NULL, m), RNN_LDZ(drr ? drr + j : NULL, m));
            nnc_v hprev = RNN_LDZ(hpr ? hpr + j : NULL, m);
            nnc_v dac = nnc_vmul(nnc_vmul(dh, u), nnc_vsub(one, nnc_vmul(cand, cand)));
            nnc_v dau = nnc_vmul(nnc_vmul(dh, nnc_vsub(cand, hprev)), nnc_vmul(u, nnc_vsub(one, u)));
            nnc_vstorep(dar + H + j, dau, m);
            nnc_vstorep(dar + 2 * H + j, dac, m);
            nnc_vstorep(dhpr + j, nnc_vmul(dh, nnc_vsub(one, u)), m);
            if (qc) {
                nnc_v rr = nnc_vloadp(gr + j, m);
                nnc_v dar_ = nnc_vmul(nnc_vmul(dac, nnc_vloadp(qc + r * ldqc + j, m)), nnc_vmul(rr, nnc_vsub(one, rr)));
                NNC_T *dqr = dq + r * lddq;
                nnc_vstorep(dar + j, dar_, m);
                nnc_vstorep(dqr + j, dar_, m);
                nnc_vstorep(dqr + H + j, dau, m);
                nnc_vstorep(dqr + 2 * H + j, nnc_vmul(dac, rr), m);
            }
        }
    }
}

// GRU reset_after = 0, second backward pass: drh = the gradient w.r.t. r*h_prev;
// da_r = drh * h_prev * r(1-r); dhp += drh * r.
static void NNC_FN(gru_rows_bwd_r)(nnc_ssize rows, nnc_ssize H, const NNC_T *g, nnc_ssize ldg, const NNC_T *hp,
                                   nnc_ssize ldhp, const NNC_T *drh, nnc_ssize lddrh, NNC_T *da, nnc_ssize ldda,
                                   NNC_T *dhp, nnc_ssize lddhp)
{
    const nnc_v one = nnc_vset1(1);
    for (nnc_ssize r = 0; r < rows; ++r) {
        const NNC_T *gr = g + r * ldg, *hpr = hp ? hp + r * ldhp : NULL, *dr = drh + r * lddrh;
        NNC_T *dar = da + r * ldda, *dhpr = dhp + r * lddhp;
        for (nnc_ssize j = 0; j < H; j += NNC_VLEN) {
            const nnc_ssize m = NNC_MIN(NNC_VLEN, H - j);
            nnc_v rr = nnc_vloadp(gr + j, m), d = nnc_vloadp(dr + j, m);
            nnc_v hprev = RNN_LDZ(hpr ? hpr + j : NULL, m);
            nnc_vstorep(dar + j, nnc_vmul(nnc_vmul(d, hprev), nnc_vmul(rr, nnc_vsub(one, rr))), m);
            nnc_vstorep(dhpr + j, nnc_vadd(nnc_vloadp(dhpr + j, m), nnc_vmul(d, rr)), m);
        }
    }
}

// ---- exposed gate passes (threads over rows) ------------------------------

static int NNC_FN(lstm_cell_fwd)(nnc_ssize rows, nnc_ssize h, NNC_T *a, nnc_ssize lda, const NNC_T *c_prev,
                                 nnc_ssize ldcp, NNC_T *c, nnc_ssize ldc, NNC_T *hout, nnc_ssize ldh, int save)
{
    if (rows <= 0 || h <= 0) return NNC_OK;
    int nt = nnc_threads_for(60.0 * (double)rows * (double)h);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize r = 0; r < rows; ++r)
        NNC_FN(lstm_rows_fwd)(1, h, h, a + r * lda, lda, c_prev ? c_prev + r * ldcp : NULL, ldcp, c + r * ldc, ldc,
                              hout + r * ldh, ldh, save);
    return NNC_OK;
}

static int NNC_FN(lstm_cell_bwd)(nnc_ssize rows, nnc_ssize h, const NNC_T *g, nnc_ssize ldg, const NNC_T *c_prev,
                                 nnc_ssize ldcp, const NNC_T *c, nnc_ssize ldc, const NNC_T *dh_ext, nnc_ssize lde,
                                 const NNC_T *dh_rec, nnc_ssize ldr, NNC_T *dc, nnc_ssize lddc, NNC_T *da,
                                 nnc_ssize ldda)
{
    if (rows <= 0 || h <= 0) return NNC_OK;
    int nt = nnc_threads_for(40.0 * (double)rows * (double)h);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize r = 0; r < rows; ++r)
        NNC_FN(lstm_rows_bwd)(1, h, g + r * ldg, ldg, c_prev ? c_prev + r * ldcp : NULL, ldcp, c + r * ldc, ldc,
                              dh_ext ? dh_ext + r * lde : NULL, lde, dh_rec ? dh_rec + r * ldr : NULL, ldr,
                              dc + r * lddc, lddc, da + r * ldda, ldda);
    return NNC_OK;
}

static int NNC_FN(rnn_cell_bwd)(nnc_ssize rows, nnc_ssize h, const NNC_T *hout, nnc_ssize ldh,
                                const NNC_T *dh_ext, nnc_ssize lde, const NNC_T *dh_rec, nnc_ssize ldr, NNC_T *da,
                                nnc_ssize ldda, int act)
{
    if (rows <= 0 || h <= 0) return NNC_OK;
    int nt = nnc_threads_for(4.0 * (double)rows * (double)h);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize r = 0; r < rows; ++r)
        NNC_FN(rnn_rows_bwd)(1, h, hout + r * ldh, ldh, dh_ext ? dh_ext + r * lde : NULL, lde,
                             dh_rec ? dh_rec + r * ldr : NULL, ldr, da + r * ldda, ldda, act);
    return NNC_OK;
}

#undef RNN_LDZ
