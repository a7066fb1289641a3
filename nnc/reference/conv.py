"""Reference 2-D convolution (NHWC, HWIO), float64 NumPy, from the formula

    z[n,oh,ow,k] = b[k] + sum_{kh,kw,c} xp[n, oh*sh + kh*dh, ow*sw + kw*dw, c] W[kh,kw,c,k]

with xp the zero-padded input and c running over the group of k.  One NumPy
slice per kernel offset; backward scatters through the same slices."""
import numpy as np

from .dense import act, act_grad


def same_padding(size, k, s, d):
    """(before, after) for "same": output ceil(size/s), extra cell after."""
    out = -(-size // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def _slices(H, W, KH, KW, stride, dilation, OH, OW):
    sh, sw = stride
    dh, dw = dilation
    for kh in range(KH):
        for kw in range(KW):
            yield kh, kw, (slice(kh * dh, kh * dh + sh * (OH - 1) + 1, sh),
                           slice(kw * dw, kw * dw + sw * (OW - 1) + 1, sw))


def _geometry(x, W, stride, padding, dilation):
    N, H, Wd, C = x.shape
    KH, KW = W.shape[:2]
    pt, pb, pl, pr = padding
    OH = (H + pt + pb - dilation[0] * (KH - 1) - 1) // stride[0] + 1
    OW = (Wd + pl + pr - dilation[1] * (KW - 1) - 1) // stride[1] + 1
    return OH, OW


def _operands(x, W, stride, padding, dilation, groups):
    """float64 x and W, the zero-padded x, channels per group (in, out) and
    the output size."""
    x = np.asarray(x, np.float64)
    W = np.asarray(W, np.float64)
    pt, pb, pl, pr = padding
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    OH, OW = _geometry(x, W, stride, padding, dilation)
    return x, W, xp, W.shape[2], W.shape[3] // groups, OH, OW


def conv2d_forward(x, W, b=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1,
                   activation=None):
    """y = act(conv(x, W) + b); padding = (top, bottom, left, right)."""
    x, W, xp, Cg, Kg, OH, OW = _operands(x, W, stride, padding, dilation, groups)
    N, H, Wd, C = x.shape
    KH, KW, _, K = W.shape
    z = np.zeros((N, OH, OW, K))
    for kh, kw, (si, sj) in _slices(H, Wd, KH, KW, stride, dilation, OH, OW):
        patch = xp[:, si, sj, :]
        for g in range(groups):
            z[..., g * Kg:(g + 1) * Kg] += patch[..., g * Cg:(g + 1) * Cg] @ W[kh, kw, :, g * Kg:(g + 1) * Kg]
    if b is not None:
        z = z + np.asarray(b, np.float64)
    return act(z, activation)


def conv2d_backward(x, W, y, dy, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1,
                    activation=None):
    """Returns dx, dW, db for y = act(conv(x, W) + b)."""
    x, W, xp, Cg, Kg, OH, OW = _operands(x, W, stride, padding, dilation, groups)
    H, Wd = x.shape[1:3]
    KH, KW = W.shape[:2]
    pt, _, pl, _ = padding
    dz = act_grad(np.asarray(y, np.float64), np.asarray(dy, np.float64), activation)
    dxp = np.zeros_like(xp)
    dW = np.zeros_like(W)
    for kh, kw, (si, sj) in _slices(H, Wd, KH, KW, stride, dilation, OH, OW):
        patch = xp[:, si, sj, :]
        for g in range(groups):
            dzg = dz[..., g * Kg:(g + 1) * Kg]
            dW[kh, kw, :, g * Kg:(g + 1) * Kg] = np.einsum("nhwc,nhwk->ck", patch[..., g * Cg:(g + 1) * Cg], dzg)
            dxp[:, si, sj, g * Cg:(g + 1) * Cg] += dzg @ W[kh, kw, :, g * Kg:(g + 1) * Kg].T
    dx = dxp[:, pt:pt + H, pl:pl + Wd, :]
    return dx, dW, dz.sum(axis=(0, 1, 2))
