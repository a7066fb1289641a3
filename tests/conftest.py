"""Shared fixtures: dtype, ISA path, a seeded generator, tolerances.

The tests import the source tree, which must hold the built extension:
``pip install -e ".[test]"`` (or ``python setup.py build_ext --inplace``).
"""
import numpy as np
import pytest

import nnc
from nnc import _core

ISAS = list(_core.ISA_NAMES)   # every ISA path nnc has; the CPU's unsupported ones skip

# The stall guard would move work to one thread while the machine is busy
# (e.g. under the sanitizer job): the suite runs the thread counts it asks
# for.  tests/test_reliability.py tests the guard itself.
nnc.set_stall_threshold(0)

# Tolerances of a layer against the float64 reference (a rounding-error bound);
# long reductions scale them with helpers.tol(dtype, K).
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture(params=ISAS)
def isa(request):
    """Run the test on one ISA path of the kernels (each one nnc has; skipped,
    with the reason in the report, where this CPU lacks it)."""
    if not _core.isa_supported(request.param):
        pytest.skip(f"this CPU lacks {request.param}")
    old = _core.get_isa()
    _core.set_isa(request.param)
    yield request.param
    _core.set_isa(old)


@pytest.fixture(params=[1, 2], ids=["t1", "t2"])
def nthreads(request):
    old = nnc.get_num_threads()
    nnc.set_num_threads(request.param)
    yield request.param
    nnc.set_num_threads(old)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
