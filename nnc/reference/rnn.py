"""Reference SimpleRNN, LSTM and GRU (float64 NumPy loops over the formulas
of the user guide) with full backpropagation through time, and gradient clipping.

Sequences are (N, T, F); states (N, H).  ``dhs`` is the gradient w.r.t. every
hidden state h_t (N, T, H); the backward functions return the input
gradient, a dict of parameter gradients and the initial-state gradient.

``lengths`` (N,) (None: every row runs all T steps): row n runs steps
t < lengths[n] only; past them its state stays as it was (the next step of a
backward sees it unchanged), its outputs are zero, and the gradient w.r.t.
them is ignored."""
import numpy as np

from .dense import act, act_grad


def _f64(*arrays):
    return [None if a is None else np.asarray(a, np.float64) for a in arrays]


def _active(lengths, N, t):
    """(N, 1) True for the rows that run step t."""
    if lengths is None:
        return np.ones((N, 1), bool)
    return (np.asarray(lengths) > t)[:, None]


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


# -- SimpleRNN ------------------------------------------------------------

def simple_rnn_forward(x, W_xh, W_hh, b_h, activation="tanh", h0=None, lengths=None):
    """h_t = act(W_hh h_{t-1} + W_xh x_t + b_h); returns hs (N, T, H)."""
    x, W_xh, W_hh, b_h, h0 = _f64(x, W_xh, W_hh, b_h, h0)
    N, T, _ = x.shape
    H = W_hh.shape[0]
    h = np.zeros((N, H)) if h0 is None else h0
    hs = np.zeros((N, T, H))
    for t in range(T):
        m = _active(lengths, N, t)
        h = np.where(m, act(x[:, t] @ W_xh.T + h @ W_hh.T + b_h, activation), h)
        hs[:, t] = np.where(m, h, 0)
    return hs


def simple_rnn_backward(x, W_xh, W_hh, b_h, hs, dhs, activation="tanh", h0=None, lengths=None):
    x, W_xh, W_hh, hs, dhs, h0 = _f64(x, W_xh, W_hh, hs, dhs, h0)
    N, T, _ = x.shape
    H = W_hh.shape[0]
    h0 = np.zeros((N, H)) if h0 is None else h0
    g = {"W_xh": np.zeros_like(W_xh), "W_hh": np.zeros_like(W_hh), "b_h": np.zeros(H)}
    dx = np.zeros_like(x)
    dh_next = np.zeros((N, H))
    for t in reversed(range(T)):
        m = _active(lengths, N, t)
        hp = hs[:, t - 1] if t else h0
        dz = np.where(m, act_grad(hs[:, t], dhs[:, t] + dh_next, activation), 0)
        g["W_xh"] += dz.T @ x[:, t]
        g["W_hh"] += dz.T @ hp
        g["b_h"] += dz.sum(0)
        dx[:, t] = dz @ W_xh
        dh_next = np.where(m, dz @ W_hh, dh_next)
    return dx, g, dh_next


def output_forward(hs, W_hy, b_y, out_activation=None):
    """y_t = out_act(W_hy h_t + b_y)."""
    hs, W_hy, b_y = _f64(hs, W_hy, b_y)
    return act(hs @ W_hy.T + b_y, out_activation)


def output_backward(hs, W_hy, y, dy, out_activation=None):
    hs, W_hy, y, dy = _f64(hs, W_hy, y, dy)
    dz = act_grad(y, dy, out_activation)
    H = hs.shape[-1]
    return dz @ W_hy, {"W_hy": dz.reshape(-1, dz.shape[-1]).T @ hs.reshape(-1, H),
                       "b_y": dz.reshape(-1, dz.shape[-1]).sum(0)}


# -- LSTM -----------------------------------------------------------------

def lstm_forward(x, W_x, W_h, b, h0=None, c0=None, lengths=None):
    """Gate blocks i, f, c, o.  Returns hs, Cs (N, T, H)."""
    x, W_x, W_h, b, h0, c0 = _f64(x, W_x, W_h, b, h0, c0)
    N, T, _ = x.shape
    H = W_h.shape[1]
    h = np.zeros((N, H)) if h0 is None else h0
    C = np.zeros((N, H)) if c0 is None else c0
    hs, Cs = np.zeros((N, T, H)), np.zeros((N, T, H))
    for t in range(T):
        a = x[:, t] @ W_x.T + h @ W_h.T + b
        i, f, o = _sig(a[:, :H]), _sig(a[:, H:2 * H]), _sig(a[:, 3 * H:])
        Cc = np.tanh(a[:, 2 * H:3 * H])
        m = _active(lengths, N, t)
        C = np.where(m, f * C + i * Cc, C)
        h = np.where(m, o * np.tanh(C), h)
        hs[:, t], Cs[:, t] = np.where(m, h, 0), np.where(m, C, 0)
    return hs, Cs


def lstm_backward(x, W_x, W_h, b, dhs, h0=None, c0=None, lengths=None):
    """Returns dx, grads {W_x, W_h, b}, (dh0, dC0)."""
    x, W_x, W_h, b, dhs, h0, c0 = _f64(x, W_x, W_h, b, dhs, h0, c0)
    N, T, _ = x.shape
    H = W_h.shape[1]
    h0 = np.zeros((N, H)) if h0 is None else h0
    c0 = np.zeros((N, H)) if c0 is None else c0
    # recompute the forward keeping the gates
    h, C = h0, c0
    cache = []
    for t in range(T):
        a = x[:, t] @ W_x.T + h @ W_h.T + b
        i, f, o = _sig(a[:, :H]), _sig(a[:, H:2 * H]), _sig(a[:, 3 * H:])
        Cc = np.tanh(a[:, 2 * H:3 * H])
        Cn = f * C + i * Cc
        cache.append((h, C, i, f, Cc, o, Cn))
        m = _active(lengths, N, t)
        h, C = np.where(m, o * np.tanh(Cn), h), np.where(m, Cn, C)
    g = {"W_x": np.zeros_like(W_x), "W_h": np.zeros_like(W_h), "b": np.zeros(4 * H)}
    dx = np.zeros_like(x)
    dh, dC = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        hp, Cp, i, f, Cc, o, Cn = cache[t]
        dht = dhs[:, t] + dh
        tc = np.tanh(Cn)
        dCt = dC + dht * o * (1 - tc ** 2)
        m = _active(lengths, N, t)
        da = np.where(m, np.concatenate([dCt * Cc * i * (1 - i), dCt * Cp * f * (1 - f),
                                         dCt * i * (1 - Cc ** 2), dht * tc * o * (1 - o)], axis=1), 0)
        g["W_x"] += da.T @ x[:, t]
        g["W_h"] += da.T @ hp
        g["b"] += da.sum(0)
        dx[:, t] = da @ W_x
        dh = np.where(m, da @ W_h, dh)
        dC = np.where(m, dCt * f, dC)
    return dx, g, (dh, dC)


# -- GRU ------------------------------------------------------------------

def _gru_step(xt, h, W_x, W_h, b_x, b_h, reset_after):
    H = h.shape[1]
    ax = xt @ W_x.T + b_x
    r = _sig(ax[:, :H] + h @ W_h[:H].T + b_h[:H])
    u = _sig(ax[:, H:2 * H] + h @ W_h[H:2 * H].T + b_h[H:2 * H])
    if reset_after:
        q = h @ W_h[2 * H:].T + b_h[2 * H:]
        cand = np.tanh(ax[:, 2 * H:] + r * q)
    else:
        q = None
        cand = np.tanh(ax[:, 2 * H:] + (r * h) @ W_h[2 * H:].T + b_h[2 * H:])
    return r, u, cand, q, (1 - u) * h + u * cand


def gru_forward(x, W_x, W_h, b_x, b_h, reset_after=False, h0=None, lengths=None):
    """Gate blocks r, u, c; h_t = (1-u) h_{t-1} + u c~.  Returns hs."""
    x, W_x, W_h, b_x, b_h, h0 = _f64(x, W_x, W_h, b_x, b_h, h0)
    N, T, _ = x.shape
    H = W_h.shape[1]
    h = np.zeros((N, H)) if h0 is None else h0
    hs = np.zeros((N, T, H))
    for t in range(T):
        m = _active(lengths, N, t)
        h = np.where(m, _gru_step(x[:, t], h, W_x, W_h, b_x, b_h, reset_after)[-1], h)
        hs[:, t] = np.where(m, h, 0)
    return hs


def gru_backward(x, W_x, W_h, b_x, b_h, dhs, reset_after=False, h0=None, lengths=None):
    """Returns dx, grads {W_x, W_h, b_x, b_h}, dh0."""
    x, W_x, W_h, b_x, b_h, dhs, h0 = _f64(x, W_x, W_h, b_x, b_h, dhs, h0)
    N, T, _ = x.shape
    H = W_h.shape[1]
    h = np.zeros((N, H)) if h0 is None else h0
    cache = []
    for t in range(T):
        step = _gru_step(x[:, t], h, W_x, W_h, b_x, b_h, reset_after)
        cache.append((h,) + step[:4])
        h = np.where(_active(lengths, N, t), step[-1], h)
    g = {"W_x": np.zeros_like(W_x), "W_h": np.zeros_like(W_h), "b_x": np.zeros(3 * H), "b_h": np.zeros(3 * H)}
    dx = np.zeros_like(x)
    dh = np.zeros((N, H))
    for t in reversed(range(T)):
        hp, r, u, cand, q = cache[t]
        m = _active(lengths, N, t)
        dh_in = dh
        dht = np.where(m, dhs[:, t] + dh, 0)
        dcp = dht * u * (1 - cand ** 2)            # d(candidate pre-activation)
        dup = dht * (cand - hp) * u * (1 - u)
        dh = dht * (1 - u)
        if reset_after:
            drp = dcp * q * r * (1 - r)
            dqc = dcp * r                            # d(W_hc h + b_hc)
            dq = np.concatenate([drp, dup, dqc], axis=1)
            g["W_h"] += dq.T @ hp
            g["b_h"] += dq.sum(0)
            dh = dh + dq @ W_h
        else:
            drh = dcp @ W_h[2 * H:]                   # d(r * h)
            drp = drh * hp * r * (1 - r)
            dh = dh + drh * r
            dru = np.concatenate([drp, dup], axis=1)
            dh = dh + dru @ W_h[:2 * H]
            g["W_h"][:2 * H] += dru.T @ hp
            g["W_h"][2 * H:] += dcp.T @ (r * hp)
            g["b_h"] += np.concatenate([drp, dup, dcp], axis=1).sum(0)
        dax = np.concatenate([drp, dup, dcp], axis=1)
        g["W_x"] += dax.T @ x[:, t]
        g["b_x"] += dax.sum(0)
        dx[:, t] = dax @ W_x
        dh = np.where(m, dh, dh_in)
    return dx, g, dh


# -- gradient clipping ------------------------------------------------------

def global_norm(arrays):
    return float(np.sqrt(sum(float(np.sum(np.asarray(a, np.float64) ** 2)) for a in arrays)))


def clip_by_value(arrays, v):
    return [np.clip(np.asarray(a, np.float64), -v, v) for a in arrays]


def clip_by_norm(arrays, v):
    n = global_norm(arrays)
    s = v / n if n > v else 1.0
    return [np.asarray(a, np.float64) * s for a in arrays]
