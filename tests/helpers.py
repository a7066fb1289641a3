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
