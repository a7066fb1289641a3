"""Recurrent layers: SimpleRNN, LSTM, GRU (batch-first sequences).

``forward(x, lengths=...)`` takes sequences of different lengths padded to
T: an int array (N,), 1 <= length <= T.  Row n runs steps t < lengths[n]
only (the kernels skip the rest: a batch costs about its valid steps); past
them its state stays as it was and its outputs are zero, the last state
(``return_sequences=False``, ``state``) is the one of its last valid step,
and backward takes no gradient from or into padded steps.  The rows need
not be sorted: the layer runs them longest first and returns them in the
caller's order.

Each forward and each backward is one C call over the whole sequence (see
src_c/kernels/rnn/): the input projection of every timestep is one
GEMM, each step one recurrent GEMM plus one fused gate pass, and backward is
full backpropagation through time with the weight gradients computed as
large GEMMs over all timesteps.
"""
import math

import numpy as np

from .. import _config, _core
from .._validation import pos_int, shape_str
from .activations import ACTIVATIONS, act_id
from .base import Layer

_HIDDEN_ACTS = {k: v for k, v in ACTIVATIONS.items() if k in (None, "linear", "relu", "sigmoid", "tanh")}
_OUTPUT_ACTS = {k: v for k, v in ACTIVATIONS.items() if k != "sign"}


def check_lengths(lengths, n, t, where):
    """``lengths`` as an intp array of shape (n,) with every entry in [1, t]."""
    a = np.asarray(lengths)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{where}: expected integer lengths of shape {shape_str((n,))}, got dtype {a.dtype}")
    if a.shape != (n,):
        raise ValueError(f"{where}: expected lengths of shape {shape_str((n,))}, got {shape_str(a.shape)}")
    bad = (a < 1) | (a > t)
    if bad.any():
        raise ValueError(f"{where}: expected lengths in [1, {t}] (the input's T), got {a[np.argmax(bad)]}")
    return a.astype(np.intp)


class _Rows:
    """The batch order the kernels run in: with lengths, rows sorted by
    length, longest first (stable), so the rows of a step are a prefix; the
    identity when the lengths are already in that order (or absent)."""

    def __init__(self, lengths):
        self.order = self.inverse = None
        self.lengths = lengths
        if lengths is not None and np.any(lengths[1:] > lengths[:-1]):
            self.order = np.argsort(-lengths, kind="stable")
            self.inverse = np.argsort(self.order)
            self.lengths = lengths[self.order]

    def sort(self, a):
        """a (batch first) in kernel order."""
        return a if a is None or self.order is None else a[self.order]

    def unsort(self, a):
        """a (batch first, kernel order) in the caller's order."""
        return a if a is None or self.order is None else a[self.inverse]

    def last(self, seq):
        """(N, ...) the entry of each row's last step of seq (N, T, ...), kernel order."""
        if self.lengths is None:
            return seq[:, -1].copy()
        return seq[np.arange(seq.shape[0]), self.lengths - 1]

    def spread_last(self, g, t):
        """(N, T, ...) zeros with g at each row's last step (caller's order)."""
        full = np.zeros((g.shape[0], t) + g.shape[1:], g.dtype)
        if self.lengths is None:
            full[:, -1] = g
        else:
            full[np.arange(g.shape[0]), self.unsort(self.lengths) - 1] = g
        return full

    def padding(self, t):
        """(N, T) True past each row's length (caller's order); None without lengths."""
        if self.lengths is None:
            return None
        return np.arange(t) >= self.unsort(self.lengths)[:, None]


class _Recurrent(Layer):
    """Shared machinery: input and state checks, the kernel calls, stateful
    mode.  Subclasses set ``_cell`` and ``_gates`` and add their params."""

    _cell = None
    _gates = 1
    _has_cell_state = False
    _takes_lengths = True   # forward(x, lengths=...)

    def __init__(self, input_size, hidden_size, return_sequences=True, stateful=False, dtype=np.float32):
        super().__init__(dtype)
        self.input_size = pos_int(input_size, "input_size", self.name)
        self.hidden_size = pos_int(hidden_size, "hidden_size", self.name)
        self.return_sequences = bool(return_sequences)
        self.stateful = bool(stateful)
        self.state = None
        self.grad_initial_state = None

    def reset_state(self):
        """Forget the carried state (the next stateful call starts from zeros)."""
        self.state = None

    def get_config(self):
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "return_sequences": self.return_sequences, "stateful": self.stateful, **super().get_config()}

    def _init_weights(self, wx_key, wh_key, rows):
        lim = 1.0 / math.sqrt(self.hidden_size)
        rng = _config.rng()
        self._add_param(wx_key, rng.uniform(-lim, lim, (rows, self.input_size)))
        self._add_param(wh_key, rng.uniform(-lim, lim, (rows, self.hidden_size)))

    # -- checks -----------------------------------------------------------
    def _check_x(self, x):
        x = self._input(x)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise self._shape_error(f"(N, T, {self.input_size})", x.shape)
        if x.shape[1] == 0:
            raise ValueError(f"{self.name}: expected input (N, T, {self.input_size}) with T >= 1, "
                             f"got {shape_str(x.shape)}")
        return x

    def _state_array(self, a, n, what):
        a = self._input(a, what)
        if a.shape != (n, self.hidden_size):
            raise self._shape_error(f"(N, H) = {shape_str((n, self.hidden_size))}", a.shape, what)
        return a

    def _initial(self, initial_state, n):
        """(h0, c0) arrays or None for zeros."""
        if initial_state is None and self.stateful and self.state is not None:
            st = self.state
            h = st[0] if self._has_cell_state else st
            if h.shape[0] != n:
                raise ValueError(f"{self.name}: stateful layer holds a state for batch size {h.shape[0]}, "
                                 f"got input batch size {n}; call reset_state() before changing the "
                                 f"batch size")
            initial_state = st
        if initial_state is None:
            return None, None
        if self._has_cell_state:
            if not isinstance(initial_state, (tuple, list)) or len(initial_state) != 2:
                raise ValueError(f"{self.name}: expected initial_state as a pair (h, C) of shape "
                                 f"{shape_str((n, self.hidden_size))}, got {type(initial_state).__name__}")
            return (self._state_array(initial_state[0], n, "initial state h"),
                    self._state_array(initial_state[1], n, "initial state C"))
        if isinstance(initial_state, (tuple, list)) and len(initial_state) == 1:
            initial_state = initial_state[0]
        return self._state_array(initial_state, n, "initial state"), None

    # -- kernels ----------------------------------------------------------
    def _weights(self):
        """(Wx, Wh, bx, bh or None) for the kernel."""
        raise NotImplementedError

    def _reset_after(self):
        return 0

    def _act(self):
        return 0

    def _run(self, x, training, initial_state, lengths):
        """The sequence kernel; returns (hs (N, T, H) in the caller's order,
        or None without return_sequences, the state h of each row's last
        step, the _Rows order) and sets state/cache."""
        N, T, _ = x.shape
        H, G = self.hidden_size, self._gates
        h0, c0 = self._initial(initial_state, N)
        rows = _Rows(None if lengths is None else check_lengths(lengths, N, T, self.name))
        h0, c0 = rows.sort(h0), rows.sort(c0)   # x stays in the caller's order (rows.order)
        Wx, Wh, bx, bh = self._weights()
        dt = self.dtype
        hs = np.empty((N, T, H), dt)
        # hs in the caller's order
        hs_out = np.empty((N, T, H), dt) if rows.order is not None and self.return_sequences else hs
        cs = np.empty((N, T, H), dt) if self._has_cell_state else None
        gates = np.empty((N, T, G * H), dt) if G > 1 else None
        aux = np.empty((N, T, H), dt) if self._cell == _core.RNN_GRU else None
        work = np.empty(_core.rnn_fwd_workspace_size(dt == np.float64, self._cell, self._reset_after(), N, T,
                                                     x.shape[2], H), dt)
        _core.rnn_fwd(self._cell, self._act(), self._reset_after(), int(training), x, Wx, Wh, bx, bh,
                      h0, c0, hs, cs, gates, aux, work, rows.lengths, rows.order,
                      None if hs_out is hs else hs_out)
        if N == 0:
            last_h = np.zeros((0, H), dt)
            last_c = np.zeros((0, H), dt)
        else:
            last_h = rows.unsort(rows.last(hs))
            last_c = rows.unsort(rows.last(cs)) if cs is not None else None
        self.state = (last_h, last_c) if self._has_cell_state else last_h
        if training:
            self._cache = dict(x=x, h0=h0, c0=c0, hs=hs, cs=cs, gates=gates, aux=aux, rows=rows)
        return hs_out if self.return_sequences else None, last_h, rows

    def _bptt(self, dhs):
        """Full BPTT from dhs (N, T, H); fills grads and grad_initial_state; returns dx."""
        c = self._cache
        x, rows = c["x"], c["rows"]
        N, T, _ = x.shape
        H = self.hidden_size
        Wx, Wh, _, bh = self._weights()
        keys = self._grad_keys()
        dx = np.empty_like(x)
        dh0 = np.empty((N, H), self.dtype)
        dc0 = np.empty((N, H), self.dtype) if self._has_cell_state else None
        work = np.empty(_core.rnn_bwd_workspace_size(self.dtype == np.float64, self._cell, self._reset_after(),
                                                     N, T, H, x.shape[2], rows.lengths), self.dtype)
        _core.rnn_bwd(self._cell, self._act(), self._reset_after(), x, Wx, Wh, c["h0"], c["c0"], c["hs"],
                      c["cs"], c["gates"], c["aux"], np.ascontiguousarray(dhs), dx,
                      self.grads[keys[0]], self.grads[keys[1]], self.grads[keys[2]],
                      self.grads[keys[3]] if bh is not None else None, dh0, dc0, work, rows.lengths, rows.order)
        dh0, dc0 = rows.unsort(dh0), rows.unsort(dc0)
        self.grad_initial_state = (dh0, dc0) if self._has_cell_state else dh0
        return dx

    def _grad_keys(self):
        raise NotImplementedError

    def _seq_grad(self, grad_y, N, T, width):
        """grad_y as the gradient w.r.t. a full (N, T, width) sequence."""
        if self.return_sequences:
            return self._grad_input(grad_y, (N, T, width))
        return self._cache["rows"].spread_last(self._grad_input(grad_y, (N, width)), T)

    def _forward(self, x, training, initial_state=None, lengths=None):
        x = self._check_x(x)
        hs, last, _ = self._run(x, training, initial_state, lengths)
        return hs if self.return_sequences else last.copy()

    def _backward(self, grad_y, input_grad):
        N, T, _ = self._cache["x"].shape
        return self._bptt(self._seq_grad(grad_y, N, T, self.hidden_size))


class SimpleRNN(_Recurrent):
    """Elman RNN ``h_t = act(W_hh h_{t-1} + W_xh x_t + b_h)`` with an
    optional output projection ``y_t = out_act(W_hy h_t + b_y)``.

    Parameters
    ----------
    input_size, hidden_size : int
    output_size : int or None (no projection: ``y_t = h_t``)
    activation : "tanh", "sigmoid", "relu" or "linear"/None
    output_activation : None, "linear", "relu", "sigmoid", "tanh" or "softmax"
    return_sequences : bool (else only the last step is returned)
    stateful : bool (carry the last state into the next call)
    dtype : np.float32 or np.float64

    Shape
    -----
    Input ``(N, T, input_size)``, T >= 1; output ``(N, T, O)`` or ``(N, O)``, O =
    output_size or hidden_size.  ``forward(x, initial_state=h0)`` with h0
    ``(N, hidden_size)``; ``forward(x, lengths=l)`` with ``l`` integers ``(N,)``
    in ``[1, T]`` for padded sequences of different lengths: row n runs steps
    ``t < l[n]`` only (the kernels skip the rest), its outputs past them are
    zero, its last state (``return_sequences=False``, ``state``) is the one of
    step ``l[n] - 1``, and backward takes no gradient from or into padded
    steps.  The rows need not be sorted by length.

    Attributes
    ----------
    params : dict
        ``W_xh (H, I)``, ``W_hh (H, H)``, ``b_h (H,)``; with output_size O:
        ``W_hy (O, H)``, ``b_y (O,)``.
    state : ndarray or None
        ``h`` of the last step ``(N, H)``, set by every forward.
    grad_initial_state : ndarray or None
        After ``backward``: the gradient w.r.t. the initial state.
    """

    _cell = _core.RNN_SIMPLE
    _gates = 1

    def __init__(self, input_size, hidden_size, output_size=None, activation="tanh", output_activation=None,
                 return_sequences=True, stateful=False, dtype=np.float32):
        super().__init__(input_size, hidden_size, return_sequences, stateful, dtype)
        self.output_size = None if output_size is None else pos_int(output_size, "output_size", self.name)
        self.activation = activation
        self._act_id = act_id(activation, self.name, _HIDDEN_ACTS)
        self.output_activation = output_activation
        self._out_act = act_id(output_activation, self.name, _OUTPUT_ACTS)
        if self.output_size is None and output_activation not in (None, "linear"):
            raise ValueError(f"{self.name}: output_activation needs output_size")
        self._init_weights("W_xh", "W_hh", self.hidden_size)
        self._add_param("b_h", np.zeros(self.hidden_size))
        if self.output_size is not None:
            lim = math.sqrt(6.0 / (self.hidden_size + self.output_size))
            self._add_param("W_hy", _config.rng().uniform(-lim, lim, (self.output_size, self.hidden_size)))
            self._add_param("b_y", np.zeros(self.output_size))

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size, "activation": self.activation,
                "output_activation": self.output_activation}

    def _weights(self):
        return self._param("W_xh"), self._param("W_hh"), self._param("b_h"), None

    def _grad_keys(self):
        return ("W_xh", "W_hh", "b_h", None)

    def _act(self):
        return self._act_id

    def _forward(self, x, training, initial_state=None, lengths=None):
        x = self._check_x(x)
        hs, last, rows = self._run(x, training, initial_state, lengths)
        h = hs if self.return_sequences else last
        if self.output_size is None:
            return h if self.return_sequences else h.copy()
        h2 = np.ascontiguousarray(h).reshape(-1, self.hidden_size)
        y = np.empty((h2.shape[0], self.output_size), self.dtype)
        fused = 0 if self._out_act == ACTIVATIONS["softmax"] else self._out_act
        _core.gemm(0, 1, h2, self._param("W_hy"), y, 1.0, 0.0, self._param("b_y"), fused)
        if self._out_act == ACTIVATIONS["softmax"]:
            _core.act_fwd(y, y, self._out_act)
        y = y.reshape(h.shape[:-1] + (self.output_size,))
        padding = rows.padding(x.shape[1]) if self.return_sequences else None
        if padding is not None:
            y[padding] = 0   # outputs past a row's length are zero, as its states
        if training:
            self._cache["h2"], self._cache["y"], self._cache["padding"] = h2, y, padding
        return y

    def _backward(self, grad_y, input_grad):
        N, T, _ = self._cache["x"].shape
        if self.output_size is None:
            return self._bptt(self._seq_grad(grad_y, N, T, self.hidden_size))
        h2, y = self._cache["h2"], self._cache["y"]
        shape = (N, T, self.output_size) if self.return_sequences else (N, self.output_size)
        g = self._grad_input(grad_y, shape)
        if self._cache["padding"] is not None:
            g = g.copy()
            g[self._cache["padding"]] = 0   # nothing flows from padded outputs
        g = g.reshape(-1, self.output_size)
        y = y.reshape(g.shape)
        dz = np.empty_like(y)
        _core.act_bwd(dz, g, y, self._out_act)
        _core.gemm(1, 0, dz, h2, self.grads["W_hy"])
        _core.colsum(self.grads["b_y"], dz)
        dh = np.empty_like(h2)
        _core.gemm(0, 0, dz, self._param("W_hy"), dh)
        if self.return_sequences:
            dhs = dh.reshape(N, T, self.hidden_size)
        else:
            dhs = self._cache["rows"].spread_last(dh, T)
        return self._bptt(dhs)


class LSTM(_Recurrent):
    """Long short-term memory, gate blocks in order i, f, c, o.

    ``a = W_x x_t + W_h h_{t-1} + b`` (4H pre-activations); ``i, f, o =
    sigmoid(a_i, a_f, a_o)``, ``c~ = tanh(a_c)``; ``C_t = f*C_{t-1} + i*c~``;
    ``h_t = o*tanh(C_t)``.

    Parameters
    ----------
    input_size : int
        Features I of each step.
    hidden_size : int
        Units H.
    return_sequences : bool, default True
        Return every step's ``h_t`` (else only the last).
    stateful : bool, default False
        Carry ``(h, C)`` of the last step into the next call (``reset_state()`` clears it).
    dtype : float32 or float64

    Shape
    -----
    Input ``(N, T, I)``; output ``(N, T, H)``, or ``(N, H)`` without
    ``return_sequences``.  ``forward(x, initial_state=(h0, C0))`` with
    ``h0, C0 (N, H)``; ``state`` and ``grad_initial_state`` are ``(h, C)`` pairs.
    ``forward(x, lengths=l)``: padded sequences of lengths ``l (N,)`` (see :class:`SimpleRNN`).

    Attributes
    ----------
    params : dict
        ``W_x (4H, I)``, ``W_h (4H, H)``, ``b (4H,)`` (rows in gate order i, f,
        c, o); ``grads`` the same keys.  The other members are :class:`SimpleRNN`'s.

    Examples
    --------
    >>> import numpy as np, nnc
    >>> nnc.LSTM(3, 5, return_sequences=False).forward(np.ones((2, 7, 3), np.float32)).shape
    (2, 5)
    """

    _cell = _core.RNN_LSTM
    _gates = 4
    _has_cell_state = True

    def __init__(self, input_size, hidden_size, return_sequences=True, stateful=False, dtype=np.float32):
        super().__init__(input_size, hidden_size, return_sequences, stateful, dtype)
        self._init_weights("W_x", "W_h", 4 * self.hidden_size)
        self._add_param("b", np.zeros(4 * self.hidden_size))

    def _weights(self):
        return self._param("W_x"), self._param("W_h"), self._param("b"), None

    def _grad_keys(self):
        return ("W_x", "W_h", "b", None)


class GRU(_Recurrent):
    """Gated recurrent unit, gate blocks in order r, u, c.

    ``r, u = sigmoid(W_x x_t + b_x + W_h h_{t-1} + b_h)`` (their blocks);
    candidate ``c~ = tanh(W_xc x_t + b_xc + W_hc (r*h_{t-1}) + b_hc)``
    (``reset_after=False``) or ``tanh(W_xc x_t + b_xc + r*(W_hc h_{t-1} + b_hc))``
    (``reset_after=True``, PyTorch's variant); ``h_t = (1-u)*h_{t-1} + u*c~``.

    Parameters
    ----------
    input_size : int
        Features I of each step.
    hidden_size : int
        Units H.
    reset_after : bool, default False
        Apply the reset gate after the recurrent product (see above).
    return_sequences : bool, default True
        Return every step's ``h_t`` (else only the last).
    stateful : bool, default False
        Carry ``h`` of the last step into the next call (``reset_state()`` clears it).
    dtype : float32 or float64

    Shape
    -----
    Input ``(N, T, I)``; output ``(N, T, H)``, or ``(N, H)`` without
    ``return_sequences``.  ``forward(x, initial_state=h0)`` with ``h0 (N, H)``;
    ``forward(x, lengths=l)``: padded sequences of lengths ``l (N,)`` (see :class:`SimpleRNN`).

    Attributes
    ----------
    params : dict
        ``W_x (3H, I)``, ``W_h (3H, H)``, ``b_x (3H,)``, ``b_h (3H,)`` (rows in
        gate order r, u, c); ``grads`` the same keys.  The other members are
        :class:`SimpleRNN`'s.

    Examples
    --------
    >>> import numpy as np, nnc
    >>> nnc.GRU(3, 4, reset_after=True).forward(np.ones((2, 7, 3), np.float32)).shape
    (2, 7, 4)
    """

    _cell = _core.RNN_GRU
    _gates = 3

    def __init__(self, input_size, hidden_size, reset_after=False, return_sequences=True, stateful=False,
                 dtype=np.float32):
        super().__init__(input_size, hidden_size, return_sequences, stateful, dtype)
        self.reset_after = bool(reset_after)
        self._init_weights("W_x", "W_h", 3 * self.hidden_size)
        self._add_param("b_x", np.zeros(3 * self.hidden_size))
        self._add_param("b_h", np.zeros(3 * self.hidden_size))

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}

    def _reset_after(self):
        return int(self.reset_after)

    def _weights(self):
        return self._param("W_x"), self._param("W_h"), self._param("b_x"), self._param("b_h")

    def _grad_keys(self):
        return ("W_x", "W_h", "b_x", "b_h")
