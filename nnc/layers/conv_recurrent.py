"""Convolutional recurrent layers on 5-D (N, T, H, W, C) input: ConvRNN2D and
ConvLSTM2D (the recurrent layers with both matrix products replaced by
"same", stride-1 cross-correlations).

Each forward and backward is one C call over the whole sequence
(src_c/kernels/rnn/convrnn.h), working on time-major buffers: the input
convolution of every timestep is one batched convolution, each step one
recurrent convolution plus one fused cell pass, and the weight gradients are
single convolutions over all timesteps.
"""
import math

import numpy as np

from .. import _config, _core
from .._validation import pair, pos_int, shape_str
from .activations import act_id
from .conv import conv2d_backward, conv2d_forward
from .recurrent import _HIDDEN_ACTS, _OUTPUT_ACTS, _Recurrent


class _ConvRecurrent(_Recurrent):
    _gates = 1
    _takes_lengths = False

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
    def _run(self, x, training, initial_state):
        """Runs the sequence; returns the hidden states, time-major (T, N, H, W, Ch)
        (only the last step when neither training nor return_sequences)."""
        N, T, H, W, C = x.shape
        ch, G, dt = self.hidden_channels, self._gates, self.dtype
        h0, c0 = self._initial(initial_state, self._state_shape(x.shape))
        Wx, Wh, b = self._weights()
        xt = np.ascontiguousarray(x.transpose(1, 0, 2, 3, 4))
        keep_h = bool(training or self.return_sequences)
        ss = N * H * W * ch
        gates = np.empty(T * G * ss, dt)
        hslots, cslots = (T + 1 if keep_h else 2), (T + 1 if training else 2)
        hist = np.empty(hslots * ss, dt)
        chist = np.empty(cslots * ss, dt) if self._has_cell_state else None
        _core.convrnn_fwd(self._cell, self._act(), int(training), int(keep_h), xt, Wx, Wh, b,
                          None if h0 is None else h0.reshape(-1), None if c0 is None else c0.reshape(-1),
                          gates, hist, chist)
        hist = hist.reshape(hslots, N, H, W, ch)
        last = T if keep_h else T % 2
        last_h = hist[last].copy()
        if self._has_cell_state:
            chist = chist.reshape(cslots, N, H, W, ch)
            self.state = (last_h, chist[T if training else T % 2].copy())
        else:
            self.state = last_h
        if training:
            self._cache = dict(x=x, xt=xt, hist=hist, chist=chist, gates=gates, consumed=False,
                               initial=(h0, c0))
        return hist[1:] if keep_h else hist[last][None]

    def _bptt(self, dhs_t):
        """BPTT from dhs_t (T, N, H, W, Ch) time-major; fills grads and
        grad_initial_state; returns dx (N, T, H, W, C)."""
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
            self._run(c["x"], True, (h0, zeros if c0 is None else c0) if self._has_cell_state else h0)
            c = self._cache = {**c, **self._cache}   # keeps the output projection's entries
        gates = c["gates"]
        c["consumed"] = True
        _core.convrnn_bwd(self._cell, self._act(), xt, Wx, Wh, c["hist"].reshape(-1),
                          None if c["chist"] is None else c["chist"].reshape(-1), gates,
                          np.ascontiguousarray(dhs_t).reshape(-1), dxt, self.grads[kx], self.grads[kh_],
                          self.grads[kb], dh0.reshape(-1), None if dc0 is None else dc0.reshape(-1))
        self.grad_initial_state = (dh0, dc0) if self._has_cell_state else dh0
        return np.ascontiguousarray(dxt.transpose(1, 0, 2, 3, 4))

    def _hidden_grad(self, grad_y, width, N, T, H, W):
        """grad_y -> time-major gradient w.r.t. every step's output (T, N, H, W, width)."""
        if self.return_sequences:
            g = self._grad_input(grad_y, (N, T, H, W, width))
            return np.ascontiguousarray(g.transpose(1, 0, 2, 3, 4))
        g = self._grad_input(grad_y, (N, H, W, width))
        full = np.zeros((T, N, H, W, width), self.dtype)
        full[-1] = g
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
        return y.reshape(S, N, H, W, -1), geo

    def _forward(self, x, training, initial_state=None):
        x = self._check_x(x)
        hs_t = self._run(x, training, initial_state)
        out_t = hs_t
        if self.out_channels is not None:
            out_t, geo = self._project(hs_t)
            if training:
                self._cache.update(y_t=out_t, geo=geo)
        if not self.return_sequences:
            return out_t[-1].copy()
        return np.ascontiguousarray(out_t.transpose(1, 0, 2, 3, 4))

    def _backward(self, grad_y, input_grad):
        c = self._cache
        N, T, H, W, _ = c["x"].shape
        ch = self.hidden_channels
        if self.out_channels is None:
            return self._bptt(self._hidden_grad(grad_y, ch, N, T, H, W))
        co = self.out_channels
        dy = self._hidden_grad(grad_y, co, N, T, H, W).reshape(-1, co)
        y = c["y_t"].reshape(-1, co)
        dz = np.empty_like(y)
        _core.act_bwd(dz, dy, y, self._oact)
        hs = c["hist"][1:].reshape(T * N, H, W, ch)
        dh, _, _ = conv2d_backward(c["geo"], hs, self._param("W_hy"), dz.reshape(T * N, H, W, co),
                                   dW=self.grads["W_hy"], db=self.grads["b_y"])
        return self._bptt(dh.reshape(T, N, H, W, ch))


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
    ``(h, C)``, each ``(N, H, W, hidden_channels)``.

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

    def _forward(self, x, training, initial_state=None):
        x = self._check_x(x)
        hs_t = self._run(x, training, initial_state)
        if not self.return_sequences:
            return hs_t[-1].copy()
        return np.ascontiguousarray(hs_t.transpose(1, 0, 2, 3, 4))

    def _backward(self, grad_y, input_grad):
        N, T, H, W, _ = self._cache["x"].shape
        return self._bptt(self._hidden_grad(grad_y, self.hidden_channels, N, T, H, W))
