"""nnc's memory cache: arrays allocated by layers reuse resident blocks, are
never shared between live arrays, and the cache stays within its limit."""
import threading

import numpy as np
import pytest

import nnc
from nnc import _core

try:
    from numpy._core.multiarray import get_handler_name
except ImportError:  # numpy < 2
    from numpy.core.multiarray import get_handler_name

BIG = (64, 32, 32, 16)  # 4 MiB of float32: well above the cache's 64 KiB floor


@pytest.fixture
def cache_limit():
    old = nnc.set_memory_cache_limit(256 << 20)
    nnc.clear_memory_cache()
    yield
    nnc.set_memory_cache_limit(old)


def test_layer_outputs_come_from_the_cache_aligned(cache_limit, rng):
    layer = nnc.Conv2D(16, 16, 3, padding=1)
    x = rng.standard_normal(BIG).astype(np.float32)
    y = layer(x)
    assert get_handler_name(y) == "nnc_memcache"
    assert y.ctypes.data % 64 == 0
    assert get_handler_name(np.empty(3)) != "nnc_memcache"  # only inside nnc calls


def test_a_freed_block_is_reused_and_live_arrays_never_alias(cache_limit, rng):
    layer = nnc.Conv2D(16, 16, 3, padding=1)
    x1 = rng.standard_normal(BIG).astype(np.float32)
    x2 = rng.standard_normal(BIG).astype(np.float32)
    y1 = layer(x1)
    keep = y1.copy()
    y2 = layer(x2)
    assert y2.ctypes.data != y1.ctypes.data
    np.testing.assert_array_equal(y1, keep)  # y2 did not overwrite y1
    addr = y2.ctypes.data
    del y2
    assert _core.cached_bytes() >= y1.nbytes
    y3 = layer(x2)
    assert y3.ctypes.data == addr
    np.testing.assert_array_equal(y3, layer(x2))


def test_zeros_resize_and_limit(cache_limit):
    with _core.memcache():
        a = np.full(1 << 18, 7.0)
    addr = a.ctypes.data
    del a
    with _core.memcache():
        z = np.zeros(1 << 18)  # the dirty block again, cleared (calloc path)
        b = np.arange(1 << 17, dtype=np.float64)
    assert z.ctypes.data == addr and not z.any()
    b.resize(1 << 19, refcheck=False)  # realloc path keeps the contents
    np.testing.assert_array_equal(b[:1 << 17], np.arange(1 << 17))
    del z, b
    assert _core.cached_bytes() > 0
    assert nnc.set_memory_cache_limit(1 << 20) == 256 << 20
    assert _core.cached_bytes() <= 1 << 20
    nnc.set_memory_cache_limit(0)
    assert _core.cached_bytes() == 0
    with _core.memcache():
        c = np.ones(1 << 18)
    del c
    assert _core.cached_bytes() == 0  # limit 0: nothing is kept


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1", None])
def test_bad_limit(bad):
    with pytest.raises(ValueError, match="set_memory_cache_limit"):
        nnc.set_memory_cache_limit(bad)


def test_threads_share_the_cache_safely(cache_limit, rng):
    layer = nnc.Dense(256, 256)
    xs = [rng.standard_normal((512, 256)).astype(np.float32) for _ in range(4)]
    want = [layer(x) for x in xs]
    errors = []

    def work(i):
        try:
            for _ in range(20):
                np.testing.assert_array_equal(layer(xs[i]), want[i])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert _core.cached_bytes() <= 256 << 20
