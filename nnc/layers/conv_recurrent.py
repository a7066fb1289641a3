"""Convolutional recurrent layers on 5-D (N, T, H, W, C) input: ConvRNN2D and
ConvLSTM2D (the recurrent layers with both matrix products replaced by
"same", stride-1 cross-correlations).

``forward(x, lengths=...)`` takes sequences of different lengths padded to
T, as the recurrent layers do: an int array (N,), 1 <= length <= T.  Sample
n runs steps t < lengths[n] only (each step's convolutions and cell pass
cover only the samples still running); past them its state stays as it was
and its outputs are zero, the last state (``return_sequences=False``,
``state``) is the one of its last valid step, and backward takes no
gradient from or into padded steps.

Each forward and backward is one C call over the whole sequence
(src_c/kernels/rnn/convrnn.h), working on time-major buffers: the input
convolution of every timestep is one batched convolution (with lengths, one
per step over the samples running it), each step one recurrent convolution
plus one fused cell pass, and the weight gradients are single convolutions
over all timesteps.
"""
import math

import numpy as np

from .. import _config, _core
from .._validation import pair, pos_int, shape_str
from .activations import act_id
from .conv import conv2d_backward, conv2d_forward
from .recurrent import _HIDDEN_ACTS, _OUTPUT_ACTS, _Recurrent, _Rows, check_lengths


def _flat(a):
    """a flattened (a state for the kernel), or None."""
    return None if a is None else a.reshape(-1)


class _ConvRecurrent(_Recurrent):
    _gates = 1

    def __init__(self, in_channels, hidden_channels, kernel_size, return_sequences, stateful, dtype):
        super().__init__(in_channels, hidden_channels, return_sequences, stateful, dtype)
        self.in_channels, self.hidden_channels = self.input_size, self.hidden_size
        self.kernel_size = pair(kernel_size, "kernel_size", self.name)

    def get_config(self):
        return {"in_channels": self.in_channels, "hidden_channels": self.hidden_channels,
                "kernel_size": list(self.kernel_size), "return_sequences": self.return_sequences,
                "stateful": self.stateful, "dtype": np.dtype(self.dtype).name}

    def _init_conv_weights(self, wx_key, wh_key, b_key):
        kh, kw = self.kernel_size
        G, ch = self._gates, self.hidden_channels
        rng = _config.rng()
        lim_x = math.sqrt(6.0 / (kh * kw * (self.in_channels + G * ch)))
        lim_h = math.sqrt(6.0 / (kh * kw * (ch + G * ch)))
        self._add_param(wx_key, rng.uniform(-lim_x, lim_x, (kh, kw, self.in_channels, G * ch)))
        self._add_param(wh_key, rng.uniform(-lim_h, lim_h, (kh, kw, ch, G * ch)))
        b = np.zeros(G * ch)
        if G == 4:
            b[ch:2 * ch] = 1.0   # forget-gate bias 1, the usual LSTM start
        self._add_param(b_key, b)

    # -- checks (state arrays are images here) ----------------------------
    # The state's shape follows the input's H, W: it is computed from the
    # input at every call and passed along, never kept on the layer (an
    # inference forward writes nothing but ``state``).
    def _check_x(self, x):
        x = self._input(x)
        if x.ndim != 5 or x.shape[4] != self.in_channels:
            raise self._shape_error(f"(N, T, H, W, {self.in_channels})", x.shape)
        if x.shape[1] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
            raise ValueError(f"{self.name}: expected input (N, T, H, W, {self.in_channels}) with T, H, W >= 1, "
                             f"got {shape_str(x.shape)}")
        return x

    def _state_shape(self, x_shape):
        """(N, H, W, Ch): the state's shape for an input of shape (N, T, H, W, C)."""
        return (x_shape[0], x_shape[2], x_shape[3], self.hidden_channels)

    def _state_array(self, a, n, what):
        # _Recurrent._initial converts each state array here; its shape, which
        # depends on the input's H, W, is checked by _initial below.
        return self._input(a, what)

    def _initial(self, initial_state, shape):
        """(h0, c0) arrays of the state ``shape`` (N, H, W, Ch), or None for zeros."""
        n, hw = shape[0], tuple(shape[1:3])
        if initial_state is None and self.stateful and self.state is not None:
            h = self.state[0] if self._has_cell_state else self.state
            if h.shape[1:3] != hw and h.shape[0] == n:
                raise ValueError(f"{self.name}: stateful layer holds a state of shape {shape_str(h.shape)}, "
                                 f"got input of spatial size {hw}; call reset_state() first")
        h0, c0 = super()._initial(initial_state, n)
        whats = ("initial state h", "initial state C") if self._has_cell_state else ("initial state",)
        for a, what in zip((h0, c0), whats):
            if a is not None and a.shape != shape:
                raise self._shape_error(f"(N, H, W, Ch) = {shape_str(shape)}", a.shape, what)
        return h0, c0

    # -- kernels ------------------------------------------------------------
    def _run(self, x, training, initial_state, lengths):
        """Runs the sequence with its rows in kernel order (longest first, see
        _Rows); sets state (caller's order) and, when training, the cache.
        Returns (hs_t, last_h, rows, pad_t), kernel order: every step's h
        time-major (T, N, H, W, Ch) (None when neither training nor
        return_sequences), each row's state at its last step (N, H, W, Ch),
        the _Rows order and the (T, N) mask of the padded steps (or None)."""
        N, T, H, W, C = x.shape
        ch, G, dt = self.hidden_channels, self._gates, self.dtype
        h0, c0 = self._initial(initial_state, self._state_shape(x.shape))
        checked = None if lengths is None else check_lengths(lengths, N, T, self.name)
        rows = _Rows(checked)
        Wx, Wh, b = self._weights()
        xt = np.ascontiguousarray(rows.sort(x).transpose(1, 0, 2, 3, 4))
        pad_t = None if checked is None else np.arange(T)[:, None] >= rows.lengths
        if training and pad_t is not None and pad_t.any():
            # backward's weight gradients convolve every image: the padded ones are zeros
            xt = xt.copy() if np.shares_memory(xt, x) else xt
            xt[pad_t] = 0
        keep_h = bool(training or self.return_sequences)
        ss = N * H * W * ch
        gates = np.empty(T * G * ss, dt)
        hslots, cslots = (T + 1 if keep_h else 2), (T + 1 if training else 2)
        hist = np.empty(hslots * ss, dt)
        chist = np.empty(cslots * ss, dt) if self._has_cell_state else None
        _core.convrnn_fwd(self._cell, self._act(), int(training), int(keep_h), xt, Wx, Wh, b,
                          _flat(rows.sort(h0)), _flat(rows.sort(c0)), gates, hist, chist, rows.lengths)
        hist = hist.reshape(hslots, N, H, W, ch)
        steps, n = (np.full(N, T) if checked is None else rows.lengths), np.arange(N)
        last_h = hist[steps if keep_h else steps % 2, n]   # each row's last slot (a copy)
        if self._has_cell_state:
            chist = chist.reshape(cslots, N, H, W, ch)
            self.state = (rows.unsort(last_h), rows.unsort(chist[steps if training else steps % 2, n]))
        else:
            self.state = rows.unsort(last_h)
        if training:
            self._cache = dict(x=x, lengths=checked, rows=rows, pad_t=pad_t, xt=xt, hist=hist, chist=chist,
                               gates=gates, consumed=False, initial=(h0, c0))
        return (hist[1:] if keep_h else None), last_h, rows, pad_t

    def _bptt(self, dhs_t):
        """BPTT from dhs_t (T, N, H, W, Ch), time-major in kernel order; fills
        grads and grad_initial_state; returns dx (N, T, H, W, C)."""
        c = self._cache
        xt = c["xt"]
        Wx, Wh, _ = self._weights()
        kx, kh_, kb = self._grad_keys()
        dxt = np.empty_like(xt)
        shape = self._state_shape(c["x"].shape)
        dh0 = np.empty(shape, self.dtype)
        dc0 = np.empty(shape, self.dtype) if self._has_cell_state else None
        if c["consumed"]:
            # The kernel turned the saved gates into their gradients (no extra
            # copy of the largest buffer): a second backward re-runs the forward.
            zeros = np.zeros(shape, self.dtype)
            h0, c0 = c["initial"]
            h0 = zeros if h0 is None else h0
            self._run(c["x"], True, (h0, zeros if c0 is None else c0) if self._has_cell_state else h0,
                      c["lengths"])
            c = self._cache = {**c, **self._cache}   # keeps the output projection's entries
        gates, rows = c["gates"], c["rows"]
        c["consumed"] = True
        _core.convrnn_bwd(self._cell, self._act(), xt, Wx, Wh, c["hist"].reshape(-1),
                          None if c["chist"] is None else c["chist"].reshape(-1), gates,
                          np.ascontiguousarray(dhs_t).reshape(-1), dxt, self.grads[kx], self.grads[kh_],
                          self.grads[kb], dh0.reshape(-1), None if dc0 is None else dc0.reshape(-1),
                          rows.lengths)
        dh0, dc0 = rows.unsort(dh0), rows.unsort(dc0)
        self.grad_initial_state = (dh0, dc0) if self._has_cell_state else dh0
        return np.ascontiguousarray(rows.unsort(dxt.transpose(1, 0, 2, 3, 4)))

    def _output(self, out_t, rows):
        """The layer's output (caller's order) from the time-major outputs
        out_t (kernel order): every step's, or (without return_sequences)
        out_t[0], each row's output at its last step."""
        if not self.return_sequences:
            return rows.unsort(out_t[0]).copy()
        return np.ascontiguousarray(rows.unsort(out_t.transpose(1, 0, 2, 3, 4)))

    def _out_grad(self, grad_y, width):
        """grad_y as the gradient w.r.t. the outputs as _output took them,
        time-major in kernel order: (T, N, H, W, width), zero past the
        lengths (nothing flows from padded outputs), or without
        return_sequences (1, N, H, W, width)."""
        c = self._cache
        N, T, H, W, _ = c["x"].shape
        rows = c["rows"]
        if not self.return_sequences:
            return rows.sort(self._grad_input(grad_y, (N, H, W, width)))[None]
        g = np.array(rows.sort(self._grad_input(grad_y, (N, T, H, W, width))).transpose(1, 0, 2, 3, 4), order="C")
        if c["pad_t"] is not None:
            g[c["pad_t"]] = 0
        return g

    def _hidden_grad(self, dh):
        """The gradient w.r.t. every step's h (T, N, H, W, Ch) from dh, that
        w.r.t. the states _output took (every step, or each row's last)."""
        if self.return_sequences:
            return dh
        c = self._cache
        N, T = c["x"].shape[:2]
        rows = c["rows"]
        full = np.zeros((T,) + dh.shape[1:], self.dtype)
        full[(np.full(N, T) if rows.lengths is None else rows.lengths) - 1, np.arange(N)] = dh[0]
        return full


class ConvRNN2D(_ConvRecurrent):
    """Convolutional simple RNN on ``(N, T, H, W, C)`` input.

    ``h_t = act(W_xh ⋆ x_t + W_hh ⋆ h_{t-1} + b_h)`` and, with
    ``out_channels``, ``y_t = out_act(W_hy ⋆ h_t + b_y)`` (else ``y_t = h_t``);
    ⋆ is a "same", stride-1 cross-correlation.

    Parameters
    ----------
    in_channels, hidden_channels : int
    kernel_size : int or (kh, kw)
    out_channels : int or None
    activation : "tanh", "sigmoid", "relu" or "linear"
    output_activation : any activation name, or None
    return_sequences, stateful : bool
    dtype : np.float32 or np.float64

    Shape
    -----
    Input ``(N, T, H, W, in_channels)``; output ``(N, T, H, W, Co)`` with
    ``Co = out_channels or hidden_channels`` (``(N, H, W, Co)`` without
    ``return_sequences``).  State ``(N, H, W, hidden_channels)``.
    ``forward(x, initial_state=h0)`` with h0 ``(N, H, W, hidden_channels)``;
    ``forward(x, lengths=l)`` with ``l`` integers ``(N,)`` in ``[1, T]`` for
    padded sequences of different lengths: sample n runs steps ``t < l[n]``
    only (the padded steps are skipped), its outputs past them are zero
    (with ``out_channels`` too), its last state (``return_sequences=False``,
    ``state``) is the one of step ``l[n] - 1``, and backward takes no
    gradient from or into padded steps.  The samples need not be sorted by
    length.

    Attributes
    ----------
    params: ``W_xh (KH, KW, Cin, Ch)``, ``W_hh (KH, KW, Ch, Ch)``, ``b_h (Ch,)``;
    with output ``W_hy (KH, KW, Ch, Co)``, ``b_y (Co,)``.

    Memory: training keeps, per timestep and pixel, Ch pre-activations and Ch
    hidden values, i.e. ``2 * Ch * H * W * N * itemsize`` bytes per timestep
    (plus a time-major copy of the input); inference keeps two state slots
    (all T when ``return_sequences``, as they are the output).
    """

    _cell = _core.RNN_SIMPLE

    def __init__(self, in_channels, hidden_channels, kernel_size, out_channels=None, activation="tanh",
                 output_activation=None, return_sequences=True, stateful=False, dtype=np.float32):
        super().__init__(in_channels, hidden_channels, kernel_size, return_sequences, stateful, dtype)
        self.activation = activation
        self._hact = act_id(activation, self.name, _HIDDEN_ACTS)
        self.output_activation = output_activation
        self._oact = act_id(output_activation, self.name, _OUTPUT_ACTS)
        self.out_channels = None if out_channels is None else pos_int(out_channels, "out_channels", self.name)
        self._init_conv_weights("W_xh", "W_hh", "b_h")
        if self.out_channels is not None:
            kh, kw = self.kernel_size
            lim = math.sqrt(6.0 / (kh * kw * (hidden_channels + self.out_channels)))
            self._add_param("W_hy", _config.rng().uniform(-lim, lim, (kh, kw, hidden_channels, self.out_channels)))
            self._add_param("b_y", np.zeros(self.out_channels))

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels, "activation": self.activation,
                "output_activation": self.output_activation}

    def _weights(self):
        return self._param("W_xh"), self._param("W_hh"), self._param("b_h")

    def _grad_keys(self):
        return "W_xh", "W_hh", "b_h"

    def _act(self):
        return self._hact

    def _project(self, hs_t):
        """y = out_act(W_hy ⋆ h + b_y) over a time-major batch of states."""
        S, N, H, W, ch = hs_t.shape
        y, geo = conv2d_forward(hs_t.reshape(S * N, H, W, ch), self._param("W_hy"), self._param("b_y"),
                                padding="same", activation=self.output_activation, where=self.name)
        return y.reshape(S, N, H, W, self.out_channels), geo

    def _forward(self, x, training, initial_state=None, lengths=None):
        x = self._check_x(x)
        hs_t, last_h, rows, pad_t = self._run(x, training, initial_state, lengths)
        out_t = hs_t if self.return_sequences else last_h[None]
        if self.out_channels is not None:
            h_t = out_t
            out_t, geo = self._project(h_t)
            if self.return_sequences and pad_t is not None:
                out_t[pad_t] = 0   # outputs past a row's length are zero, as its states
            if training:
                self._cache.update(y_t=out_t, geo=geo, h_t=h_t)
        return self._output(out_t, rows)

    def _backward(self, grad_y, input_grad):
        c = self._cache
        if self.out_channels is None:
            return self._bptt(self._hidden_grad(self._out_grad(grad_y, self.hidden_channels)))
        co, ch = self.out_channels, self.hidden_channels
        dy = self._out_grad(grad_y, co)
        S, N, H, W, _ = dy.shape
        y = c["y_t"].reshape(-1, co)
        dz = np.empty_like(y)
        _core.act_bwd(dz, dy.reshape(-1, co), y, self._oact)
        dh, _, _ = conv2d_backward(c["geo"], c["h_t"].reshape(S * N, H, W, ch), self._param("W_hy"),
                                   dz.reshape(S * N, H, W, co), dW=self.grads["W_hy"], db=self.grads["b_y"])
        return self._bptt(self._hidden_grad(dh.reshape(S, N, H, W, ch)))


class ConvLSTM2D(_ConvRecurrent):
    """Convolutional LSTM on ``(N, T, H, W, C)`` input.

    The :class:`~nnc.LSTM` with both products replaced by "same", stride-1
    cross-correlations: ``a = W_x ⋆ x_t + W_h ⋆ h_{t-1} + b``, gates i, f, c, o;
    ``C_t = f∘C_{t-1} + i∘tanh(a_c)``, ``h_t = o∘tanh(C_t)``.

    Parameters
    ----------
    in_channels, hidden_channels : int
        Channels Cin of the input and Ch of the state.
    kernel_size : int or (int, int)
        (KH, KW) of both cross-correlations.
    return_sequences : bool, default True
        Return every step's ``h_t`` (else only the last).
    stateful : bool, default False
        Carry ``(h, C)`` into the next call (``reset_state()`` clears it).
    dtype : float32 or float64

    Shape
    -----
    Input ``(N, T, H, W, in_channels)``; output ``(N, T, H, W, hidden_channels)``
    (or ``(N, H, W, hidden_channels)`` without ``return_sequences``).  State
    ``(h, C)``, each ``(N, H, W, hidden_channels)``;
    ``forward(x, initial_state=(h0, C0))`` takes such a pair.
    ``forward(x, lengths=l)``: padded sequences of lengths ``l (N,)``, integers
    in ``[1, T]`` (see :class:`ConvRNN2D`): past its length a sample's ``(h, C)``
    stays as it was and its outputs are zero.

    Attributes
    ----------
    params: ``W_x (KH, KW, Cin, 4Ch)``, ``W_h (KH, KW, Ch, 4Ch)``, ``b (4Ch,)``
    (forget-gate bias initialised to 1).

    Memory: training keeps, per timestep and pixel, the 4 activated gates,
    h_t and C_t: ``6 * Ch * H * W * N * itemsize`` bytes per timestep (plus a
    time-major copy of the input); inference keeps no per-step history (two
    state slots, all h_t only when ``return_sequences``, as they are the output).
    """

    _cell = _core.RNN_LSTM
    _gates = 4
    _has_cell_state = True

    def __init__(self, in_channels, hidden_channels, kernel_size, return_sequences=True, stateful=False,
                 dtype=np.float32):
        super().__init__(in_channels, hidden_channels, kernel_size, return_sequences, stateful, dtype)
        self._init_conv_weights("W_x", "W_h", "b")

    def _weights(self):
        return self._param("W_x"), self._param("W_h"), self._param("b")

    def _grad_keys(self):
        return "W_x", "W_h", "b"

    def bytes_per_timestep(self, n, h, w):
        """Bytes a training forward keeps per timestep for (n, h, w) images."""
        return (6 * self.hidden_channels + self.in_channels) * n * h * w * np.dtype(self.dtype).itemsize

    def _forward(self, x, training, initial_state=None, lengths=None):
        x = self._check_x(x)
        hs_t, last_h, rows, _ = self._run(x, training, initial_state, lengths)
        return self._output(hs_t if self.return_sequences else last_h[None], rows)

    def _backward(self, grad_y, input_grad):
        return self._bptt(self._hidden_grad(self._out_grad(grad_y, self.hidden_channels)))
