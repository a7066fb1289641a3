"""Input checking shared by every layer: all validation happens here, in
Python, before a Cython call, so users see nnc's messages (layer name,
expected and received shape/dtype), never a Cython buffer error."""
import numbers

import numpy as np

_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}
_NATIVE = {np.float32: np.dtype(np.float32), np.float64: np.dtype(np.float64)}


def layer_dtype(dtype, where):
    """Normalise a constructor's ``dtype`` to np.float32 or np.float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in _DTYPES:
        raise TypeError(f"{where}: dtype must be float32 or float64, got {dtype!r}")
    return dt.type


def dtype_name(dtype):
    return _DTYPES[np.dtype(dtype)]


def as_input(x, dtype, where, what="input"):
    """Any array-like of a float dtype -> C-contiguous array of ``dtype``
    (a copy when needed; the caller's array is never written)."""
    if type(x) is np.ndarray and x.dtype is _NATIVE.get(dtype) and x.ndim and x.flags.c_contiguous \
            and x.flags.aligned:
        return x  # the common case, already usable
    if not isinstance(x, np.ndarray):
        if x is None or isinstance(x, (str, bytes)):
            raise TypeError(f"{where}: expected a float array as {what}, got {type(x).__name__}")
        try:
            x = np.asarray(x)
        except (ValueError, TypeError) as e:
            raise TypeError(f"{where}: {what} is not convertible to an array ({e})") from None
    if x.dtype.kind != "f":
        raise TypeError(f"{where}: expected a floating-point {what} (float32/float64), got dtype {x.dtype}")
    # np.ascontiguousarray would turn a 0-d array into shape (1,)
    return np.ascontiguousarray(x, dtype=dtype) if x.ndim else np.array(x, dtype=dtype)


def pos_int(value, name, where, minimum=1):
    """An integer >= minimum (bool and non-integral values are rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}: expected an integer {name}, received: {name}={value!r}")
    if value < minimum:
        raise ValueError(f"{where}: expected {name} >= {minimum}, received: {name}={value!r}")
    return int(value)


def pair(value, name, where, minimum=1):
    """An int or an (h, w) pair of ints >= minimum -> (h, w)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{where}: expected {name} as an int or a pair, received: {name}={value!r}")
        return tuple(pos_int(v, name, where, minimum) for v in value)
    v = pos_int(value, name, where, minimum)
    return (v, v)


def shape_str(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def instance_or_named(value, base, names, what):
    """``value`` itself when it is a ``base`` instance, else ``names[value.lower()]()``
    for a known name (any case); ValueError naming the choices otherwise."""
    if isinstance(value, base):
        return value
    if isinstance(value, str) and value.lower() in names:
        return names[value.lower()]()
    raise ValueError(f"unknown {what} {value!r}; expected a {base.__module__}.{base.__name__} or one of "
                     f"{sorted(names)}")
