# Recurrent kernels (SimpleRNN, LSTM, GRU) and their fused gate passes:
# bindings (included by _core.pyx).

RNN_SIMPLE, RNN_LSTM, RNN_GRU = 0, 1, 2


cdef inline const floating *_p2(const floating[:, ::1] a) noexcept nogil:
    return NULL if a is None or a.shape[0] * a.shape[1] == 0 else &a[0, 0]


cdef inline const floating *_p3(const floating[:, :, ::1] a) noexcept nogil:
    return NULL if a is None or a.shape[0] * a.shape[1] * a.shape[2] == 0 else &a[0, 0, 0]


cdef inline floating *_w3(floating[:, :, ::1] a) noexcept nogil:
    return NULL if a is None or a.shape[0] * a.shape[1] * a.shape[2] == 0 else &a[0, 0, 0]


cdef inline floating *_w2(floating[:, ::1] a) noexcept nogil:
    return NULL if a is None or a.shape[0] * a.shape[1] == 0 else &a[0, 0]


cdef inline floating *_w1(floating[::1] a) noexcept nogil:
    return NULL if a is None or a.shape[0] == 0 else &a[0]


cdef const nnc_ssize *_lengths_ptr(const nnc_ssize[::1] lengths, nnc_ssize n, what="lengths") except? NULL:
    """The data of lengths (or of another per-row array, `what`), NULL for
    None; its size must be n."""
    if lengths is None:
        return NULL
    if lengths.shape[0] != n:
        raise ValueError(f"nnc: {what} must have one entry per batch row")
    return &lengths[0] if n else NULL


cdef nnc_rnn_desc _rnn_desc(int cell, int act, int reset_after, int training, nnc_ssize n, nnc_ssize t,
                            nnc_ssize f, nnc_ssize h, const nnc_ssize *lengths=NULL,
                            const nnc_ssize *order=NULL):
    cdef nnc_rnn_desc d
    d.lengths = lengths
    d.order = order
    d.cell = cell
    d.act = act
    d.reset_after = reset_after
    d.training = training
    d.n = n
    d.t = t
    d.f = f
    d.h = h
    return d


def rnn_fwd_workspace_size(dtype_is_f64, int cell, int reset_after, nnc_ssize n, nnc_ssize t, nnc_ssize f,
                           nnc_ssize h):
    """Elements of the workspace rnn_fwd needs (of that dtype, on the current ISA)."""
    cdef nnc_rnn_desc d = _rnn_desc(cell, 0, reset_after, 0, n, t, f, h)
    cdef nnc_ssize s = op_rnn_fwd_workspace_size(dtype_is_f64, &d)
    if s < 0:
        raise ValueError("nnc: recurrent workspace too large")
    return s


def rnn_fwd(int cell, int act, int reset_after, int training, const floating[:, :, ::1] x,
            const floating[:, ::1] Wx, const floating[:, ::1] Wh, const floating[::1] bx,
            const floating[::1] bh, const floating[:, ::1] h0, const floating[:, ::1] c0,
            floating[:, :, ::1] hs, floating[:, :, ::1] cs, floating[:, :, ::1] gates,
            floating[:, :, ::1] aux, floating[::1] work, const nnc_ssize[::1] lengths=None,
            const nnc_ssize[::1] order=None, floating[:, :, ::1] hs_out=None):
    """Whole-sequence forward (see ops/rnn.def); outputs written in place; work
    holds rnn_fwd_workspace_size elements; lengths (N,) non-increasing or
    None; order (N,) or None: x's row of each row of the lengths' order;
    hs_out (with order) or None: hs in x's order.  Shapes are the caller's
    responsibility (the layers check them)."""
    cdef nnc_rnn_desc d = _rnn_desc(cell, act, reset_after, training, x.shape[0], x.shape[1], x.shape[2],
                                    Wh.shape[1], _lengths_ptr(lengths, x.shape[0]),
                                    _lengths_ptr(order, x.shape[0], "order"))
    if d.n == 0 or d.t == 0:
        return
    with nogil:
        _ck(op_rnn_fwd(&d, _p3(x), &Wx[0, 0], &Wh[0, 0], &bx[0], _ptr_or_null(bh), _p2(h0), _p2(c0), _w3(hs),
                       _w3(cs), _w3(gates), _w3(aux), _w3(hs_out), &work[0]))


def rnn_bwd_workspace_size(dtype_is_f64, int cell, int reset_after, nnc_ssize n, nnc_ssize t, nnc_ssize h,
                           nnc_ssize f=0, const nnc_ssize[::1] lengths=None):
    """Elements of the workspace rnn_bwd needs (of that dtype, on the current
    ISA); with lengths (and the input's f) also its packed rows."""
    cdef nnc_rnn_desc d = _rnn_desc(cell, 0, reset_after, 1, n, t, f, h, _lengths_ptr(lengths, n))
    cdef nnc_ssize s = op_rnn_bwd_workspace_size(dtype_is_f64, &d)
    if s < 0:
        raise ValueError("nnc: recurrent workspace too large")
    return s


def rnn_bwd(int cell, int act, int reset_after, const floating[:, :, ::1] x, const floating[:, ::1] Wx,
            const floating[:, ::1] Wh, const floating[:, ::1] h0, const floating[:, ::1] c0,
            const floating[:, :, ::1] hs, const floating[:, :, ::1] cs, const floating[:, :, ::1] gates,
            const floating[:, :, ::1] aux, const floating[:, :, ::1] dhs, floating[:, :, ::1] dx,
            floating[:, ::1] dWx, floating[:, ::1] dWh, floating[::1] dbx, floating[::1] dbh,
            floating[:, ::1] dh0, floating[:, ::1] dc0, floating[::1] work, const nnc_ssize[::1] lengths=None,
            const nnc_ssize[::1] order=None):
    """Full BPTT of a training rnn_fwd (see ops/rnn.def), with its lengths
    and order (x, dhs and dx in the caller's order)."""
    cdef nnc_rnn_desc d = _rnn_desc(cell, act, reset_after, 1, x.shape[0], x.shape[1], x.shape[2],
                                    Wh.shape[1], _lengths_ptr(lengths, x.shape[0]),
                                    _lengths_ptr(order, x.shape[0], "order"))
    with nogil:
        _ck(op_rnn_bwd(&d, _p3(x), &Wx[0, 0], &Wh[0, 0], _p2(h0), _p2(c0), _p3(hs), _p3(cs), _p3(gates),
                       _p3(aux), _p3(dhs), _w3(dx), &dWx[0, 0], &dWh[0, 0], &dbx[0], _w1(dbh), _w2(dh0),
                       _w2(dc0), _w1(work)))


def lstm_cell_fwd(floating[:, ::1] a, const floating[:, ::1] c_prev, floating[:, ::1] c, floating[:, ::1] h,
                  int save):
    """One fused LSTM step over rows: a (rows, 4H) pre-activations i,f,c,o
    (activated gates in place when save); c_prev may be None (zeros)."""
    cdef nnc_ssize rows = a.shape[0], hh = c.shape[1]
    if rows == 0 or hh == 0:
        return
    with nogil:
        _ck(op_lstm_cell_fwd(rows, hh, &a[0, 0], a.shape[1], _p2(c_prev), hh, &c[0, 0], hh, &h[0, 0], hh,
                             save))


def lstm_cell_bwd(const floating[:, ::1] g, const floating[:, ::1] c_prev, const floating[:, ::1] c,
                  const floating[:, ::1] dh_ext, const floating[:, ::1] dh_rec, floating[:, ::1] dc,
                  floating[:, ::1] da):
    """One fused LSTM step backward (see ops/rnn.def, lstm_cell_bwd)."""
    cdef nnc_ssize rows = g.shape[0], hh = c.shape[1]
    if rows == 0 or hh == 0:
        return
    with nogil:
        _ck(op_lstm_cell_bwd(rows, hh, &g[0, 0], g.shape[1], _p2(c_prev), hh, &c[0, 0], hh, _p2(dh_ext), hh,
                             _p2(dh_rec), hh, &dc[0, 0], hh, &da[0, 0], da.shape[1]))


def rnn_cell_bwd(const floating[:, ::1] h, const floating[:, ::1] dh_ext, const floating[:, ::1] dh_rec,
                 floating[:, ::1] da, int act):
    """da = act'(h) * (dh_ext + dh_rec) over rows (either gradient may be None)."""
    cdef nnc_ssize rows = h.shape[0], hh = h.shape[1]
    if rows == 0 or hh == 0:
        return
    with nogil:
        _ck(op_rnn_cell_bwd(rows, hh, &h[0, 0], hh, _p2(dh_ext), hh, _p2(dh_rec), hh, &da[0, 0], hh, act))
