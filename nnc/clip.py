"""Gradient clipping: ``clip_grad_value`` and ``clip_grad_norm``, in place
over a dict or list of gradient arrays, in C."""
import math
import numbers

import numpy as np

from . import _core


def _arrays(grads, where):
    items = list(grads.values()) if isinstance(grads, dict) else grads
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"{where}: expected a dict or list of gradient arrays, got {type(grads).__name__}")
    out = []
    for a in items:
        if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
            got = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
            raise TypeError(f"{where}: expected float32/float64 gradient arrays, got {got}")
        if not a.flags.writeable:
            raise ValueError(f"{where}: gradient arrays must be writeable (clipping is in place)")
        out.append(a)
    return out


def _threshold(v, where):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v >= 0:
        raise ValueError(f"{where}: expected a threshold >= 0, got {v!r}")
    return float(v)


def _apply(a, fn, arg):
    """Run an in-place kernel on a (through a contiguous copy when needed)."""
    if a.flags.c_contiguous:
        fn(a.reshape(-1), a.dtype.type(arg))
    else:
        tmp = np.ascontiguousarray(a)
        fn(tmp.reshape(-1), a.dtype.type(arg))
        a[...] = tmp


def _norm(arrays):
    total = 0.0
    for a in arrays:  # fixed order: the arrays', then each array's own
        total += _core.sumsq(np.ascontiguousarray(a).reshape(-1))
    return math.sqrt(total)


def clip_grad_value(grads, v):
    """Clamp every gradient element to ``[-v, v]`` in place (NaN stays NaN).

    Parameters
    ----------
    grads : dict of str to ndarray, or list of ndarray
        Writeable float32/float64 arrays (e.g. ``model.grads``).
    v : float
        Threshold, ``>= 0``.

    Returns
    -------
    float
        The global L2 norm of all the gradients before clipping.

    Examples
    --------
    >>> import numpy as np, nnc
    >>> g = {"W": np.array([3.0, -4.0])}
    >>> nnc.clip_grad_value(g, 1.0)
    5.0
    >>> g["W"]
    array([ 1., -1.])
    """
    arrays = _arrays(grads, "clip_grad_value")
    v = _threshold(v, "clip_grad_value")
    norm = _norm(arrays)
    for a in arrays:
        _apply(a, _core.clip_value, v)
    return norm


def clip_grad_norm(grads, v):
    """Rescale all gradients together so that their global L2 norm is at most ``v``.

    With ``n = sqrt(sum of g**2 over every element of every array)``, every
    array is multiplied by ``v / n`` in place when ``n > v``; otherwise (a
    zero norm included) nothing changes.  The norm is summed in a fixed order
    (the arrays', then each array's own), whatever the thread count.

    Parameters
    ----------
    grads : dict of str to ndarray, or list of ndarray
        Writeable float32/float64 arrays (e.g. ``model.grads``).
    v : float
        Largest allowed norm, ``>= 0``.

    Returns
    -------
    float
        ``n``, the norm before clipping.

    Examples
    --------
    >>> import numpy as np, nnc
    >>> g = [np.array([3.0, 4.0])]
    >>> nnc.clip_grad_norm(g, 1.0)
    5.0
    >>> g[0]
    array([0.6, 0.8])
    """
    arrays = _arrays(grads, "clip_grad_norm")
    v = _threshold(v, "clip_grad_norm")
    norm = _norm(arrays)
    if norm > v and norm > 0:
        s = v / norm
        for a in arrays:
            _apply(a, _core.scale_inplace, s)
    return norm
