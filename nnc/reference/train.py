"""Reference losses, optimiser steps and residual connection (float64 NumPy),
written from the formulas of the user guide; nothing here imports nnc._core."""
import numpy as np


def mse(pred, target):
    """Mean of (p - t)^2 over all elements, and its gradient."""
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    d = p - t
    return float(np.mean(d * d)), 2.0 * d / d.size


def softmax_xent(logits, target):
    """Mean over labelled positions of -sum_c t_c log softmax(z)_c; target is
    integer labels (logits.shape[:-1]) or probabilities (logits.shape)."""
    z = np.asarray(logits, np.float64)
    c = z.shape[-1]
    z2 = z.reshape(-1, c)
    m = z2.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z2 - m).sum(axis=1, keepdims=True)) + m
    logp = z2 - lse
    target = np.asarray(target)
    if target.shape == z.shape[:-1]:
        t = np.zeros_like(z2)
        t[np.arange(z2.shape[0]), target.reshape(-1).astype(np.int64)] = 1.0
    else:
        t = np.asarray(target, np.float64).reshape(-1, c)
    n = z2.shape[0]
    loss = float(-(t * logp).sum() / n)
    grad = (np.exp(logp) - t) / n
    return loss, grad.reshape(z.shape)


def bce(pred, target, from_logits=False):
    """Mean binary cross-entropy and its gradient; probabilities with logs
    clamped at -100 and the gradient denominator at 1e-12 (PyTorch), or logits."""
    x, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    n = x.size
    if from_logits:
        sig = 1.0 / (1.0 + np.exp(-x))
        loss = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
        return float(loss.mean()), (sig - t) / n
    with np.errstate(divide="ignore"):
        lp = np.maximum(np.log(x), -100.0)
        lq = np.maximum(np.log(1 - x), -100.0)
    loss = -(t * lp + (1 - t) * lq)
    return float(loss.mean()), (x - t) / np.maximum(x * (1 - x), 1e-12) / n


def sgd(p, g, v, lr, momentum):
    """One SGD step; returns the new (p, v)."""
    v = momentum * v + g
    return p - lr * v, v


def adam(p, g, m, v, t, lr, b1, b2, eps):
    """One Adam step number t (1-based), PyTorch's form; returns (p, m, v)."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def residual_forward(x, block_fn, shortcut_fn=None):
    """y = F(x) + x, or F(x) + S(x)."""
    return block_fn(x) + (x if shortcut_fn is None else shortcut_fn(x))
