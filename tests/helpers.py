"""Comparison and gradient-check helpers used by every test module."""
import numpy as np

from conftest import TOL


def assert_close(actual, expected, dtype, scale=1.0, what=""):
    """assert_allclose with the dtype's tolerance (times ``scale``), naming
    the worst coordinate on failure."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    tol = TOL[np.dtype(dtype).type]
    rtol, atol = tol["rtol"] * scale, tol["atol"] * scale
    both_nan = np.isnan(actual) & np.isnan(expected)
    with np.errstate(invalid="ignore"):
        err = np.where(both_nan, 0.0, np.abs(actual - expected) - rtol * np.abs(expected))
    if actual.size and not np.all(err <= atol):
        idx = np.unravel_index(np.nanargmax(np.where(np.isnan(err), np.inf, err)), err.shape)
        raise AssertionError(
            f"{what}: max excess error {err[idx]:.3g} at {idx}: got {actual[idx]!r}, expected {expected[idx]!r} "
            f"(rtol={rtol:g}, atol={atol:g}, dtype={np.dtype(dtype).name}, shape={actual.shape})")


def numeric_grad(f, x, idx, eps=1e-6):
    """Central difference of scalar f() w.r.t. x[idx] (x is modified and restored)."""
    old = x[idx]
    x[idx] = old + eps
    fp = f()
    x[idx] = old - eps
    fm = f()
    x[idx] = old
    return (fp - fm) / (2 * eps)


def check_layer_grads(layer, x, rng, n_coords=12, eps=1e-6, forward_kwargs=None):
    """Float64 finite-difference check of grad_x and every grads[k] of layer,
    with L = sum(y * G) for a fixed random G."""
    forward_kwargs = forward_kwargs or {}
    x = np.array(x, dtype=np.float64)
    y = layer.forward(x, training=True, **forward_kwargs)
    G = rng.standard_normal(y.shape)
    dx = layer.backward(G)
    grads = {k: v.copy() for k, v in layer.grads.items()}

    def loss():
        return float(np.sum(layer.forward(x, training=False, **forward_kwargs) * G))

    def check(arr, analytic, what):
        flat = rng.choice(arr.size, size=min(n_coords, arr.size), replace=False)
        for f in flat:
            idx = np.unravel_index(f, arr.shape)
            num = numeric_grad(loss, arr, idx, eps)
            np.testing.assert_allclose(analytic[idx], num, rtol=1e-5, atol=1e-7 * max(1.0, abs(num)) + 1e-8,
                                       err_msg=f"{type(layer).__name__} d{what}{idx}")

    check(x, dx, "x")
    for k, p in layer.params.items():
        check(p, grads[k], k)
    return dx, grads


def assert_threads_bitwise(layer, x, dy=None, subsets=((1, 2),), forward_kwargs=None, subset_kwargs=None):
    """Training forward + backward at 1 and at 2 threads give bitwise the same
    output, input gradient and parameter gradients, and inference (1 and 2
    threads) on the batch rows [lo, hi) of each subset gives bitwise those
    rows.  dy defaults to the output itself; forward_kwargs go to the
    training forwards, subset_kwargs(lo, hi) (if given) returns those of a
    subset's inference (e.g. its rows of an initial state).  Returns the
    output, the input gradient and a copy of the parameter gradients."""
    import nnc
    runs = []
    for n in (1, 2):
        with nnc.threads(n):
            y = layer.forward(x, training=True, **(forward_kwargs or {}))
            dx = layer.backward(y if dy is None else dy)
            runs.append((y, dx, {k: v.copy() for k, v in layer.grads.items()}))
    (y1, dx1, g1), (y2, dx2, g2) = runs
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(dx1, dx2)
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k], err_msg=k)
    for n in (1, 2):
        with nnc.threads(n):
            for lo, hi in subsets:
                kw = subset_kwargs(lo, hi) if subset_kwargs else {}
                np.testing.assert_array_equal(layer.forward(x[lo:hi], **kw), y1[lo:hi],
                                              err_msg=f"rows {lo}:{hi}, {n} thread(s)")
    return y1, dx1, g1


def assert_bad_lengths(layer, x, name):
    """layer.forward(x, lengths=...) on x with N = 3, T = 5 rejects lengths
    of a wrong shape, a float dtype or out of [1, T], naming the layer."""
    import pytest
    with pytest.raises(ValueError, match=rf"{name}: expected lengths of shape \(3,\), got \(2,\)"):
        layer.forward(x, lengths=[5, 5])
    with pytest.raises(ValueError, match=rf"{name}: expected lengths of shape \(3,\), got \(3, 1\)"):
        layer.forward(x, lengths=np.ones((3, 1), np.int64))
    with pytest.raises(TypeError, match=rf"{name}: expected integer lengths of shape \(3,\), got dtype float64"):
        layer.forward(x, lengths=[5.0, 5.0, 2.0])
    for bad in (0, 6, -1):
        with pytest.raises(ValueError, match=rf"{name}: expected lengths in \[1, 5\] \(the input's T\), got {bad}"):
            layer.forward(x, training=True, lengths=[5, bad, 2])


# -- rounding bounds of reductions --------------------------------------------

UNIT = {np.float32: 2.0 ** -24, np.float64: 2.0 ** -53}   # unit roundoff u


def peak(a, axes):
    """|a| with every entry raised to the largest |entry| over ``axes`` (the
    entries computed at one step: one error scale)."""
    a = np.abs(np.asarray(a, np.float64))
    return np.broadcast_to(a.max(axis=axes, keepdims=True), a.shape) if a.size else a


def sum_bound(dtype, K, mag, prop, depth=16):
    """Bound on |G - G_ref| for a sum G = sum_k a_k b_k of K products that a
    kernel computed in dtype while the float64 reference G_ref used the same
    operand values:

        u (2 sqrt(K) mag + depth prop)

    mag = sum_k |a_k b_k| (the reference's terms with absolute values)
    covers the summation's own rounding (probabilistic sqrt(K) growth,
    Higham & Mary 2019); prop = sum_k (peak|a_k| |b_k| + |a_k| peak|b_k|),
    the same sum with one factor raised to the largest entry computed with it
    (``peak``: its row, or its whole step), covers the rounding the factors carry in from the
    forward and backward passes that made them: at most ``depth`` units of
    that largest entry (an entry that cancels to ~0, or a ReLU
    output at its kink, keeps the error of the sums that made it).  The
    default depth is one step's chain of sums; a recurrence of T steps or a
    stack of L layers passes it times its growth rule (a recurrent
    layer's error grows with T)."""
    return UNIT[np.dtype(dtype).type] * (2 * np.sqrt(max(K, 1)) * mag + depth * prop)


def assert_within(actual, expected, bound, what=""):
    """|actual - expected| <= bound elementwise, naming the worst entry."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = np.abs(actual - expected)
    bound = np.broadcast_to(bound, err.shape)
    if not (err <= bound).all():
        i = np.unravel_index(np.argmax(np.where(np.isnan(err), np.inf, err - bound)), err.shape)
        raise AssertionError(f"{what}: at {i} got {actual[i]!r}, expected {expected[i]!r}, |err| {err[i]:.3g} > "
                             f"bound {bound[i]:.3g}")


def grad_bounds(dtype, terms, depth=16):
    """sum_bound of recurrent parameter gradients.  terms maps a gradient's
    name to (A, B): G = sum over the steps (n, t) of A[n, t] (outer) B[n, t],
    A (N, T, I) the gradient of the pre-activations, B (N, T, J) the inputs
    (B None: G = sum A[n, t], a bias); ``peak`` over a row [n, t] (one
    sample's gates or state at one step: the outputs of one chain of sums);
    depth as in sum_bound.  Returns {name: bound of G, shape (I, J) or (I,)}."""
    out = {}
    for name, (A, B) in terms.items():
        A = np.asarray(A, np.float64)
        K = A.shape[0] * A.shape[1]
        a, pa = np.abs(A).reshape(K, -1), peak(A, 2).reshape(K, -1)
        if B is None:
            out[name] = sum_bound(dtype, K, a.sum(0), pa.sum(0), depth)
        else:
            B = np.asarray(B, np.float64)
            b, pb = np.abs(B).reshape(K, -1), peak(B, 2).reshape(K, -1)
            out[name] = sum_bound(dtype, K, a.T @ b, pa.T @ b + a.T @ pb, depth)
    return out


def conv_grad_bounds(dtype, x, dz, kernel_shape, depth=16):
    """sum_bound of the weight and bias gradients of a "same" stride-1
    convolution (nnc.reference.convrnn.conv_same) summed over the steps:
    x (N, T, H, W, C) the inputs, dz (N, T, H, W, O) the pre-activation
    gradients, every tap's input a zero-padded pixel; a step is t, over the
    whole batch; depth as in sum_bound.  Returns (bound of dW (KH, KW, C, O), bound of db (O,))."""
    from nnc.reference.convrnn import conv_same_backward

    def wsum(a, b):  # the weight gradient's sum with factors b (inputs) and a (gradients)
        return conv_same_backward(b.reshape((-1,) + b.shape[2:]), np.zeros(kernel_shape),
                                  a.reshape((-1,) + a.shape[2:]))[1]

    steps = (0, 2, 3, 4)
    ax, az = np.abs(np.asarray(x, np.float64)), np.abs(np.asarray(dz, np.float64))
    K = int(np.prod(az.shape[:4]))
    bw = sum_bound(dtype, K, wsum(az, ax), wsum(peak(dz, steps), ax) + wsum(az, peak(x, steps)), depth)
    bb = sum_bound(dtype, K, az.sum((0, 1, 2, 3)), peak(dz, steps).sum((0, 1, 2, 3)), depth)
    return bw, bb
