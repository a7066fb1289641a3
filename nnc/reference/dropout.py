"""Reference inverted dropout in NumPy, written from the definition (the
mask is the hash documented in src_c/include/nnc/ops/dropout.def)."""
import math

import numpy as np


def _mix(x):
    """lowbias32 on a uint32 array (wrapping arithmetic)."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def keep_mask(n, key, rate):
    """Boolean mask of n elements: element i is kept when
    mix(mix(lo32(i) ^ lo32(key)) ^ hi32(i) ^ hi32(key)) >= ceil(rate * 2^32)."""
    idx = np.arange(n, dtype=np.uint64)
    lo = (idx & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    hi = (idx >> np.uint64(32)).astype(np.uint32)
    h = _mix(_mix(lo ^ np.uint32(key & 0xFFFFFFFF)) ^ hi ^ np.uint32(key >> 32))
    return h.astype(np.uint64) >= np.uint64(math.ceil(rate * 2.0 ** 32))


def dropout(x, key, rate):
    """y = x * m / (1 - rate) with m the keep mask over x's elements in C order."""
    x = np.asarray(x)
    m = keep_mask(x.size, key, rate).reshape(x.shape)
    scale = x.dtype.type(1.0 / (1.0 - rate))
    return x * np.where(m, scale, x.dtype.type(0))
