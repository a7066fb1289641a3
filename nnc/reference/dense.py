"""Reference GEMM, activations and Dense layer (float64 NumPy)."""
import numpy as np


def gemm(A, B, C=None, alpha=1.0, beta=0.0, ta=False, tb=False, bias=None):
    """alpha * op(A) @ op(B) + beta * C + bias, in float64."""
    A = np.asarray(A, np.float64)
    B = np.asarray(B, np.float64)
    r = alpha * ((A.T if ta else A) @ (B.T if tb else B))
    if C is not None and beta != 0:
        r = r + beta * np.asarray(C, np.float64)
    if bias is not None:
        r = r + bias
    return r


def act(z, name):
    z = np.asarray(z, np.float64)
    if name in (None, "linear"):
        return z.copy()
    if name == "relu":
        return np.where(np.isnan(z), z, np.maximum(z, 0.0))
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "sign":
        return np.where(np.isnan(z), z, (z >= 0).astype(np.float64))
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(name)


def act_grad(y, dy, name):
    """dL/dz from the output y = act(z) and dL/dy."""
    if name in (None, "linear"):
        return dy.copy()
    if name == "relu":
        return dy * (y > 0)
    if name == "sigmoid":
        return dy * y * (1 - y)
    if name == "tanh":
        return dy * (1 - y * y)
    if name == "sign":
        return np.zeros_like(dy)
    if name == "softmax":
        return y * (dy - np.sum(dy * y, axis=-1, keepdims=True))
    raise ValueError(name)


def dense_forward(x, W, b, activation):
    z = np.asarray(x, np.float64) @ np.asarray(W, np.float64).T
    if b is not None:
        z = z + b
    return act(z, activation)


def dense_backward(x, W, y, dy, activation):
    """Returns dx, dW, db for y = act(x W^T + b) over the last axis."""
    x2 = np.asarray(x, np.float64).reshape(-1, W.shape[1])
    dz = act_grad(np.asarray(y, np.float64), np.asarray(dy, np.float64), activation).reshape(-1, W.shape[0])
    dx = (dz @ np.asarray(W, np.float64)).reshape(np.shape(x))
    return dx, dz.T @ x2, dz.sum(axis=0)
