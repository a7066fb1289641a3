"""Reference 2-D pooling (float64 NumPy, explicit loops over output pixels),
written from the user guide: NHWC input, output size floor((in + 2p - k) / s) + 1,
padded cells never win a max and are not counted in a mean; max-pool
backward sends each window's gradient to its first maximum in row-major
window order (the first NaN when the window holds one); overlapping windows
add up."""
import numpy as np


def out_size(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def _windows(x_shape, pool, stride, padding):
    """Yields (oh, ow, rows, cols): the slices of the window at (oh, ow)
    clipped to the input."""
    _, H, W, _ = x_shape
    (kh, kw), (sh, sw), (ph, pw) = pool, stride, padding
    for oh in range(out_size(H, kh, sh, ph)):
        h0 = oh * sh - ph
        for ow in range(out_size(W, kw, sw, pw)):
            w0 = ow * sw - pw
            yield oh, ow, slice(max(h0, 0), min(h0 + kh, H)), slice(max(w0, 0), min(w0 + kw, W))


def maxpool_forward(x, pool, stride, padding):
    """Returns y (N, OH, OW, C) and arg (N, OH, OW, C, 2): for every output the
    (h, w) input position of its window's first maximum."""
    x = np.asarray(x, np.float64)
    N, H, W, C = x.shape
    OH, OW = out_size(H, pool[0], stride[0], padding[0]), out_size(W, pool[1], stride[1], padding[1])
    y = np.empty((N, OH, OW, C))
    arg = np.empty((N, OH, OW, C, 2), dtype=np.int64)
    for oh, ow, rows, cols in _windows(x.shape, pool, stride, padding):
        win = x[:, rows, cols, :]                                  # (N, r, c, C)
        flat = win.reshape(N, -1, C)                               # row-major cells
        nan = np.isnan(flat)
        # argmax returns the first occurrence: the first NaN, else the first maximum
        first = np.where(nan.any(axis=1), nan.argmax(axis=1), np.where(nan, -np.inf, flat).argmax(axis=1))
        y[:, oh, ow, :] = np.take_along_axis(flat, first[:, None, :], axis=1)[:, 0, :]
        ncols = cols.stop - cols.start
        arg[:, oh, ow, :, 0] = rows.start + first // ncols
        arg[:, oh, ow, :, 1] = cols.start + first % ncols
    return y, arg


def maxpool_backward(dy, arg, x_shape):
    dy = np.asarray(dy, np.float64)
    N, OH, OW, C = dy.shape
    dx = np.zeros(x_shape)
    n_idx, c_idx = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for oh in range(OH):
        for ow in range(OW):
            dx[n_idx, arg[:, oh, ow, :, 0], arg[:, oh, ow, :, 1], c_idx] += dy[:, oh, ow, :]
    return dx


def avgpool_forward(x, pool, stride, padding):
    x = np.asarray(x, np.float64)
    N, H, W, C = x.shape
    OH, OW = out_size(H, pool[0], stride[0], padding[0]), out_size(W, pool[1], stride[1], padding[1])
    y = np.empty((N, OH, OW, C))
    for oh, ow, rows, cols in _windows(x.shape, pool, stride, padding):
        win = x[:, rows, cols, :]
        y[:, oh, ow, :] = win.sum(axis=(1, 2)) / (win.shape[1] * win.shape[2])
    return y


def avgpool_backward(dy, x_shape, pool, stride, padding):
    dy = np.asarray(dy, np.float64)
    dx = np.zeros(x_shape)
    for oh, ow, rows, cols in _windows(x_shape, pool, stride, padding):
        count = (rows.stop - rows.start) * (cols.stop - cols.start)
        dx[:, rows, cols, :] += (dy[:, oh, ow, :] / count)[:, None, None, :]
    return dx


def global_avgpool_forward(x):
    return np.asarray(x, np.float64).mean(axis=(1, 2))


def global_avgpool_backward(dy, x_shape):
    _, H, W, _ = x_shape
    return np.broadcast_to((np.asarray(dy, np.float64) / (H * W))[:, None, None, :], x_shape).copy()
