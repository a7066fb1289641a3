# ConvRNN2D / ConvLSTM2D kernels: bindings (included by _core.pyx).

cdef nnc_convrnn_desc _convrnn_desc(int cell, int act, int training, int keep_h, tuple xt_shape, tuple W_h_shape,
                                    const nnc_ssize[::1] lengths):
    cdef nnc_convrnn_desc d
    d.lengths = _lengths_ptr(lengths, xt_shape[1])
    d.cell, d.act, d.training, d.keep_h = cell, act, training, keep_h
    d.t, d.n, d.h, d.w, d.cin = xt_shape
    d.kh, d.kw, d.ch = W_h_shape[0], W_h_shape[1], W_h_shape[2]
    return d


cdef inline floating *_wN(floating[::1] a) noexcept nogil:
    return NULL if a is None or a.shape[0] == 0 else &a[0]


def convrnn_fwd(int cell, int act, int training, int keep_h, const floating[:, :, :, :, ::1] xt,
               const floating[:, :, :, ::1] Wx, const floating[:, :, :, ::1] Wh, const floating[::1] b,
               const floating[::1] h0, const floating[::1] c0, floating[::1] gates, floating[::1] hist,
               floating[::1] chist, const nnc_ssize[::1] lengths=None):
    """Whole-sequence ConvRNN2D (cell=RNN_SIMPLE) / ConvLSTM2D (RNN_LSTM) forward.

    Buffers are flat views of the time-major arrays described in
    src_c/include/nnc/ops/convrnn.def; sizes are checked here.  lengths (N,)
    non-increasing, or None."""
    cdef nnc_convrnn_desc d = _convrnn_desc(cell, act, training, keep_h,
                                            (xt.shape[0], xt.shape[1], xt.shape[2], xt.shape[3], xt.shape[4]),
                                            (Wh.shape[0], Wh.shape[1], Wh.shape[2], Wh.shape[3]), lengths)
    cdef nnc_ssize G = 4 if cell == RNN_LSTM else 1
    cdef nnc_ssize ss = d.n * d.h * d.w * d.ch
    if (Wx.shape[0] != d.kh or Wx.shape[1] != d.kw or Wx.shape[2] != d.cin or Wx.shape[3] != G * d.ch
            or Wh.shape[3] != G * d.ch or b.shape[0] != G * d.ch or gates.shape[0] != d.t * G * ss
            or hist.shape[0] != (d.t + 1 if keep_h else 2) * ss
            or (h0 is not None and h0.shape[0] != ss)
            or (cell == RNN_LSTM and (chist is None or chist.shape[0] != (d.t + 1 if training else 2) * ss
                                      or (c0 is not None and c0.shape[0] != ss)))):
        raise ValueError("convrnn_fwd: buffer sizes do not match the geometry")
    if ss == 0:
        return
    with nogil:
        _ck(op_convrnn_fwd(&d, &xt[0, 0, 0, 0, 0], &Wx[0, 0, 0, 0], &Wh[0, 0, 0, 0], &b[0], _ptr_or_null(h0),
                           _ptr_or_null(c0), &gates[0], &hist[0], _wN(chist)))


def convrnn_bwd(int cell, int act, const floating[:, :, :, :, ::1] xt, const floating[:, :, :, ::1] Wx,
                const floating[:, :, :, ::1] Wh, const floating[::1] hist, const floating[::1] chist,
                floating[::1] gates, const floating[::1] dhs, floating[:, :, :, :, ::1] dxt,
                floating[:, :, :, ::1] dWx, floating[:, :, :, ::1] dWh, floating[::1] db,
                floating[::1] dh0, floating[::1] dc0, const nnc_ssize[::1] lengths=None):
    """BPTT of a training convrnn_fwd (see convrnn.def), with its lengths; gates is overwritten."""
    cdef nnc_convrnn_desc d = _convrnn_desc(cell, act, 1, 1,
                                            (xt.shape[0], xt.shape[1], xt.shape[2], xt.shape[3], xt.shape[4]),
                                            (Wh.shape[0], Wh.shape[1], Wh.shape[2], Wh.shape[3]), lengths)
    cdef nnc_ssize G = 4 if cell == RNN_LSTM else 1
    cdef nnc_ssize ss = d.n * d.h * d.w * d.ch
    if (gates.shape[0] != d.t * G * ss or hist.shape[0] != (d.t + 1) * ss or dhs.shape[0] != d.t * ss
            or any(dxt.shape[i] != xt.shape[i] for i in range(5))
            or any(dWx.shape[i] != Wx.shape[i] or dWh.shape[i] != Wh.shape[i] for i in range(4)) or db.shape[0] != G * d.ch or dh0.shape[0] != ss
            or (cell == RNN_LSTM and (chist is None or chist.shape[0] != (d.t + 1) * ss
                                      or dc0 is None or dc0.shape[0] != ss))):
        raise ValueError("convrnn_bwd: buffer sizes do not match the geometry")
    with nogil:
        _ck(op_convrnn_bwd(&d, &xt[0, 0, 0, 0, 0] if ss else NULL, &Wx[0, 0, 0, 0], &Wh[0, 0, 0, 0],
                           &hist[0] if ss else NULL, _ptr_or_null(chist), &gates[0] if ss else NULL,
                           &dhs[0] if ss else NULL, &dxt[0, 0, 0, 0, 0] if ss else NULL, &dWx[0, 0, 0, 0],
                           &dWh[0, 0, 0, 0], &db[0], _wN(dh0), _wN(dc0)))
