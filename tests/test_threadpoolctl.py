"""threadpoolctl sees nnc's OpenMP runtime and its limits apply to nnc's kernels."""
import numpy as np
import pytest

import nnc
from nnc import _core

threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl is a test extra")


def _openmp_libs_mapped():
    """Paths of the OpenMP runtimes mapped into this process."""
    with open("/proc/self/maps") as f:
        return {line.split()[-1] for line in f if "libgomp" in line.rsplit("/", 1)[-1]}


def test_threadpool_info_lists_nnc_openmp_runtime():
    info = threadpoolctl.threadpool_info()
    seen = {entry["filepath"] for entry in info if entry["internal_api"] == "openmp"}
    assert seen, info
    import os
    mapped = {os.path.realpath(p) for p in _openmp_libs_mapped()}
    assert {os.path.realpath(p) for p in seen} >= mapped


def test_threadpool_limits_limit_nnc_kernels():
    with nnc.threads(2):
        assert _core.effective_num_threads() == 2
        with threadpoolctl.threadpool_limits(1):
            assert nnc.get_num_threads() == 2
            assert _core.effective_num_threads() == 1
            # and the kernels run (on one thread) with the same results
            x = np.random.default_rng(0).standard_normal((4, 8, 8, 3)).astype(np.float32)
            conv = nnc.Conv2D(3, 4, 3, padding="same")
            y1 = conv.forward(x)
        assert _core.effective_num_threads() == 2
        np.testing.assert_array_equal(conv.forward(x), y1)
