"""Reference ConvRNN2D and ConvLSTM2D (float64 NumPy loops over time),
written from the formulas of the user guide: the recurrent layers with both matrix
products replaced by "same" (stride 1) cross-correlations."""
import numpy as np

from .conv import conv2d_backward, conv2d_forward, same_padding
from .dense import act, act_grad


def _same(w):
    (t, b), (l, r) = (same_padding(1, k, 1, 1) for k in w.shape[:2])
    return (t, b, l, r)


def conv_same(x, w):
    """"same" stride-1 cross-correlation: x (N,H,W,C), w (KH,KW,C,O) -> (N,H,W,O)."""
    return conv2d_forward(x, w, padding=_same(w))


def conv_same_backward(x, w, dy):
    """Gradients (dx, dw) of conv_same(x, w) given dy."""
    dx, dw, _ = conv2d_backward(x, w, None, dy, padding=_same(w))
    return dx, dw


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def _step_backward(x_t, h_prev, p, g, dz, kx, kh, kb):
    """One step's pre-activation gradient dz (N, H, W, G*Ch) through
    z = conv(x_t, p[kx]) + conv(h_prev, p[kh]) + p[kb]: adds the weight and
    bias gradients into g, returns (dx_t, dh_prev)."""
    g[kb] += dz.sum((0, 1, 2))
    dx_t, dw = conv_same_backward(x_t, p[kx], dz)
    g[kx] += dw
    dh_prev, dw = conv_same_backward(h_prev, p[kh], dz)
    g[kh] += dw
    return dx_t, dh_prev


def convrnn_forward(x, p, h0=None, activation="tanh", output_activation=None):
    """x (N,T,H,W,C); p: W_xh, W_hh, b_h[, W_hy, b_y].  Returns (ys, hs) with
    ys the per-step outputs (N,T,H,W,Co or Ch) and hs (N,T+1,H,W,Ch) the states."""
    N, T, H, W, _ = x.shape
    ch = p["W_hh"].shape[3]
    h = np.zeros((N, H, W, ch)) if h0 is None else np.asarray(h0, np.float64)
    hs, ys = [h], []
    for t in range(T):
        h = act(conv_same(x[:, t], p["W_xh"]) + conv_same(h, p["W_hh"]) + p["b_h"], activation)
        hs.append(h)
        ys.append(act(conv_same(h, p["W_hy"]) + p["b_y"], output_activation) if "W_hy" in p else h)
    return np.stack(ys, 1), np.stack(hs, 1)


def convrnn_backward(x, p, ys, hs, dys, activation="tanh", output_activation=None):
    """BPTT for convrnn_forward; dys (N,T,...) gradient of every step's output.
    Returns (dx, grads, dh0)."""
    T = x.shape[1]
    g = {k: np.zeros_like(v, dtype=np.float64) for k, v in p.items()}
    dx = np.zeros_like(x, dtype=np.float64)
    dh = np.zeros_like(hs[:, 0])
    for t in reversed(range(T)):
        h = hs[:, t + 1]
        if "W_hy" in p:
            dzy = act_grad(ys[:, t], dys[:, t], output_activation)
            g["b_y"] += dzy.sum((0, 1, 2))
            dh_y, dw = conv_same_backward(h, p["W_hy"], dzy)
            g["W_hy"] += dw
            dh = dh + dh_y
        else:
            dh = dh + dys[:, t]
        dz = act_grad(h, dh, activation)
        dx[:, t], dh = _step_backward(x[:, t], hs[:, t], p, g, dz, "W_xh", "W_hh", "b_h")
    return dx, g, dh


def convlstm_forward(x, p, h0=None, c0=None):
    """x (N,T,H,W,C); p: W_x (KH,KW,C,4Ch), W_h (KH,KW,Ch,4Ch), b (4Ch,), gates i,f,c,o.
    Returns (hs, cs, gates): hs/cs (N,T+1,H,W,Ch) incl. the initial state,
    gates (N,T,H,W,4Ch) post-activation."""
    N, T, H, W, _ = x.shape
    ch = p["W_h"].shape[2]
    h = np.zeros((N, H, W, ch)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros((N, H, W, ch)) if c0 is None else np.asarray(c0, np.float64)
    hs, cs, gs = [h], [c], []
    for t in range(T):
        a = conv_same(x[:, t], p["W_x"]) + conv_same(h, p["W_h"]) + p["b"]
        i, f, gg, o = (a[..., k * ch:(k + 1) * ch] for k in range(4))
        i, f, gg, o = _sig(i), _sig(f), np.tanh(gg), _sig(o)
        c = f * c + i * gg
        h = o * np.tanh(c)
        hs.append(h)
        cs.append(c)
        gs.append(np.concatenate([i, f, gg, o], -1))
    return np.stack(hs, 1), np.stack(cs, 1), np.stack(gs, 1)


def convlstm_backward(x, p, hs, cs, gates, dhs, dhT=None, dcT=None):
    """BPTT for convlstm_forward; dhs (N,T,H,W,Ch) gradient of every step's h
    (zeros where the output is not used); dhT/dcT extra gradient of the final
    state.  Returns (dx, grads, dh0, dc0)."""
    T = x.shape[1]
    ch = p["W_h"].shape[2]
    g = {k: np.zeros_like(v, dtype=np.float64) for k, v in p.items()}
    dx = np.zeros_like(x, dtype=np.float64)
    dh = np.zeros_like(hs[:, 0]) if dhT is None else np.array(dhT, np.float64)
    dc = np.zeros_like(cs[:, 0]) if dcT is None else np.array(dcT, np.float64)
    for t in reversed(range(T)):
        i, f, gg, o = (gates[:, t, ..., k * ch:(k + 1) * ch] for k in range(4))
        dh = dh + dhs[:, t]
        tc = np.tanh(cs[:, t + 1])
        dc = dc + dh * o * (1 - tc * tc)
        da = np.concatenate([dc * gg * i * (1 - i), dc * cs[:, t] * f * (1 - f),
                             dc * i * (1 - gg * gg), dh * tc * o * (1 - o)], -1)
        dx[:, t], dh = _step_backward(x[:, t], hs[:, t], p, g, da, "W_x", "W_h", "b")
        dc = dc * f
    return dx, g, dh, dc
