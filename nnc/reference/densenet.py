"""Reference DenseBlock (float64 NumPy): layer i applies a "same" conv + ReLU
to the channel concatenation of the input and all earlier outputs."""
import numpy as np

from .convrnn import conv_same, conv_same_backward


def denseblock_forward(x, Ws, bs):
    """Returns the output concat[x, y_0, ..., y_{L-1}] (N, H, W, C + L*g)."""
    feats = np.asarray(x, np.float64)
    for W, b in zip(Ws, bs):
        y = np.maximum(conv_same(feats, np.asarray(W, np.float64)) + b, 0.0)
        feats = np.concatenate([feats, y], axis=-1)
    return feats


def denseblock_backward(x, Ws, bs, out, dout):
    """Returns (dx, dWs, dbs) for dout = dL/d(output)."""
    c0 = np.shape(x)[-1]
    g = np.array(dout, np.float64)
    dWs, dbs = [None] * len(Ws), [None] * len(Ws)
    for i in reversed(range(len(Ws))):
        ci = c0 + i * Ws[i].shape[3]
        k = Ws[i].shape[3]
        dz = g[..., ci:ci + k] * (out[..., ci:ci + k] > 0)
        dfeat, dWs[i] = conv_same_backward(out[..., :ci], np.asarray(Ws[i], np.float64), dz)
        dbs[i] = dz.sum(axis=(0, 1, 2))
        g[..., :ci] += dfeat
    return g[..., :c0], dWs, dbs
