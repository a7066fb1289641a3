"""The CPU table (src_c/runtime/cpu.c): every row, forced on this machine,
gives the reference's results and stays bitwise deterministic across
thread counts and row subsets; NNC_CPU forces a row at import; show_config
reports it."""
import os
import subprocess
import sys

import numpy as np
import pytest

import nnc
from nnc import _core
from nnc.reference import conv as conv_ref
from nnc.reference import dense as dense_ref
from test_gemm import ACTS, check, operands, run

ROWS = list(_core.cpu_rows())


@pytest.fixture(params=ROWS)
def cpu_row(request):
    old = _core.cpu_info()["row"]
    _core.set_cpu(request.param)
    yield request.param
    _core.set_cpu(old)


def test_table_has_a_generic_row_and_detects_one_row():
    info = _core.cpu_info()
    assert ROWS[-1] == "generic" and len(set(ROWS)) == len(ROWS)
    assert info["detected_row"] in ROWS
    assert info["row"] == (os.environ.get("NNC_CPU") or info["detected_row"])


def test_blocking_follows_the_row(cpu_row, isa):
    """KC a multiple of 16 in [128, 256] whose packed B panel fits the row's L1d
    share, MC a multiple of MR, NC of NR."""
    info = _core.cpu_info()
    for f64 in (False, True):
        mr, nr, kc, mc, nc = _core.gemm_block_sizes(f64)
        size = 8 if f64 else 4
        assert kc % 16 == 0 and 128 <= kc <= 256
        assert kc == 128 or kc * nr * size <= info["l1d_kib"] * 1024 * info["kc_l1_pct"] / 100
        assert mc % mr == 0 and mc >= 4 * mr and nc % nr == 0 and nc >= 8 * nr


def test_gemm_across_the_rows_blocks(cpu_row, isa, dtype, rng):
    """Shapes that cross the row's KC, MC and NC, against the float64 reference."""
    mr, nr, kc, mc, nc = _core.gemm_block_sizes(dtype == np.float64)
    for (m, n, k), (ta, tb), packed in [((mc + mr + 1, 2 * nr + 3, kc + 7), (0, 0), False),
                                        ((mc + 1, nr + 1, 2 * kc + 1), (1, 1), True),
                                        ((3, nc + nr + 5, kc - 1), (0, 1), False),
                                        ((mr + 2, 19, 2 * kc + 9), (1, 0), True)]:
        A, B, C, b = operands(rng, dtype, ta, tb, m, n, k, 0.5, bias=True)
        got = run(ta, tb, A, B, C, 1.0, 0.5, b, ACTS["relu"], packed)
        check(got, ta, tb, A, B, C, 1.0, 0.5, b, "relu", what=f"{cpu_row} {isa} {m}x{n}x{k} {ta}{tb}")


def test_gemm_bitwise_across_threads_and_row_subsets(cpu_row, isa, dtype, rng):
    mr, nr, kc, mc, nc = _core.gemm_block_sizes(dtype == np.float64)
    old = nnc.get_num_threads()
    try:
        for m, n, k in [(mc + 2 * mr + 1, 70, kc + 33), (40, 3 * nr + 1, 2 * kc + 1)]:
            A, B, C, b = operands(rng, dtype, 0, 0, m, n, k, 1.0, bias=True)
            outs = []
            for nt in (1, 2):
                nnc.set_num_threads(nt)
                outs.append(run(0, 0, A, B, C, 1.0, 1.0, b, ACTS["tanh"]))
            np.testing.assert_array_equal(outs[0], outs[1], err_msg=f"{cpu_row} {isa} threads")
            for i0, i1 in [(0, 1), (1, m // 2), (m // 2, m)]:
                part = run(0, 0, np.ascontiguousarray(A[i0:i1]), B, C[i0:i1], 1.0, 1.0, b, ACTS["tanh"])
                np.testing.assert_array_equal(part, outs[1][i0:i1], err_msg=f"{cpu_row} {isa} rows {i0}:{i1}")
    finally:
        nnc.set_num_threads(old)


def test_layers_under_every_row(cpu_row, dtype, rng):
    """Dense and a 1x1 convolution (both on the GEMM engine) against their
    references, and bitwise the same on 1 and 2 threads."""
    x = rng.standard_normal((37, 300)).astype(dtype)
    dense = nnc.Dense(300, 45, activation="tanh", dtype=dtype)
    want = dense_ref.dense_forward(x, dense.params["W"], dense.params["b"], "tanh")
    img = rng.standard_normal((2, 9, 11, 40)).astype(dtype)
    conv = nnc.Conv2D(40, 70, 1, dtype=dtype)
    want_conv = conv_ref.conv2d_forward(img, conv.params["W"], conv.params["b"])
    old = nnc.get_num_threads()
    try:
        got = []
        for nt in (1, 2):
            nnc.set_num_threads(nt)
            got.append((dense.forward(x), conv.forward(img)))
    finally:
        nnc.set_num_threads(old)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(got[0][0], want, **tol)
    np.testing.assert_allclose(got[0][1], want_conv, **tol)
    np.testing.assert_array_equal(got[0][0], got[1][0])
    np.testing.assert_array_equal(got[0][1], got[1][1])


def test_set_cpu_rejects_an_unknown_row():
    with pytest.raises(ValueError, match="unknown CPU row 'pentium'"):
        _core.set_cpu("pentium")
    assert _core.cpu_info()["row"] in ROWS


def _child(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env}, cwd=os.path.dirname(os.path.dirname(nnc.__file__)))


def test_nnc_cpu_forces_a_row_and_show_config_reports_it():
    for row in (ROWS[0], "generic"):
        out = _child("import nnc; nnc.show_config()", NNC_CPU=row)
        assert out.returncode == 0, out.stderr
        assert f"cpu row:     {row} (detected: {_core.cpu_info()['detected_row']}" in out.stdout
        assert "gemm blocks: float32 MRxNR" in out.stdout


def test_nnc_cpu_unknown_row_fails_the_import():
    out = _child("import nnc", NNC_CPU="pentium")
    assert out.returncode != 0
    assert "NNC_CPU='pentium' is not a CPU row" in out.stderr
