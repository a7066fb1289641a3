"""bench/bench_sweep.py: the shape generator (deterministic, within the
ranges and the cost cap) and the summary arithmetic on synthetic timings;
with torch and onnxruntime, one small shape per family built and checked
against the peers.  No timing is asserted."""
import math
import os
import sys

import numpy as np
import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
if not os.path.exists(os.path.join(BENCH, "bench_sweep.py")):
    pytest.skip("bench/ is not in this tree", allow_module_level=True)
sys.path.insert(0, BENCH)
import bench_sweep as sweep  # noqa: E402

CONV = ("conv3x3", "conv1x1", "conv_strided", "conv_dilated", "conv_grouped")


@pytest.mark.parametrize("family", sweep.FAMILIES)
def test_shapes_deterministic_distinct_within_cap(family):
    a = sweep.draw_shapes(family, 15, seed=0)
    assert a == sweep.draw_shapes(family, 15, seed=0)
    assert a != sweep.draw_shapes(family, 15, seed=1)
    assert sweep.draw_shapes(family, 3, seed=0) == a[:3]     # --quick: the first shapes of the full list
    assert len({sweep.describe(family, s) for s in a}) == 15
    for s in a:
        assert sweep.cost_ms(family, s) <= sweep.CAP_MS
        assert 1 <= s["N"] <= 128
        if family == "dense":
            assert 32 <= s["I"] <= 1024 and 32 <= s["O"] <= 1024
        elif family in ("rnn", "lstm", "gru"):
            assert 10 <= s["T"] <= 200 and 32 <= s["I"] <= 1024 and 32 <= s["H"] <= 1024
        elif family == "convlstm":
            assert 10 <= s["T"] <= 40 and 7 <= s["S"] <= 64 and 3 <= s["C"] <= 64 and 8 <= s["H"] <= 128
        elif family == "denseblock":
            assert 7 <= s["S"] <= 56 and 16 <= s["C"] <= 256 and 2 <= s["L"] <= 8 and 8 <= s["G"] <= 48
        else:
            assert 7 <= s["S"] <= 112 and 3 <= s["C"] <= 512
        if family in CONV:
            assert 3 <= s["K"] <= 512 and s["C"] % s["g"] == 0 and s["K"] % s["g"] == 0
            assert sweep._conv_out(s["S"], s["k"], s["s"], s["p"], s["d"]) >= 1


def test_shape_families_are_what_they_say():
    for s in sweep.draw_shapes("conv1x1", 15):
        assert (s["k"], s["s"], s["g"]) == (1, 1, 1)
    for s in sweep.draw_shapes("conv_strided", 15):
        assert s["s"] == 2
    for s in sweep.draw_shapes("conv_dilated", 15):
        assert s["d"] >= 2 and s["p"] == s["d"]
    assert all(s["g"] > 1 for s in sweep.draw_shapes("conv_grouped", 15))


def _rows(spec):
    """Result rows of {(workload, pass, threads): {library: min ms}}."""
    return [{"workload": w, "pass": p, "threads": t, "library": lib, "min_ms": ms, "median_ms": ms}
            for (w, p, t), libs in spec.items() for lib, ms in libs.items()]


def test_summary_geomean_worst_and_best_peer():
    rows = _rows({
        ("dense N=1 32->32", "fwd", 2): {"nnc": 1.0, "torch": 2.0, "numpy": 4.0, "ort": 8.0},     # 0.5
        ("dense N=2 32->32", "fwd", 2): {"nnc": 2.0, "torch": 1.0, "numpy": 4.0},                 # 2.0
        ("dense N=3 32->32", "fwd", 2): {"nnc": 1.0, "torch": 1.0},                               # 1.0
        ("dense N=3 32->32", "f+b", 2): {"nnc": 3.0, "numpy": 2.0, "torch": 6.0},                 # 1.5
        ("lstm N=1 T=10 32->32", "fwd", 2): {"nnc": 1.0},                                         # no peer
    })
    ratios = sweep.shape_ratios(rows)
    assert ratios[("dense N=1 32->32", "fwd", 2)] == (0.5, "torch")
    assert ratios[("dense N=3 32->32", "f+b", 2)] == (1.5, "numpy")
    assert ("lstm N=1 T=10 32->32", "fwd", 2) not in ratios
    summ = sweep.family_summary(ratios)
    fwd = summ[("dense", "fwd", 2)]
    assert fwd["n"] == 3 and math.isclose(fwd["geomean"], 1.0) and fwd["worst"] == 2.0
    assert fwd["worst_workload"] == "dense N=2 32->32"
    assert summ[("dense", "f+b", 2)]["geomean"] == pytest.approx(1.5)
    assert set(summ) == {("dense", "fwd", 2), ("dense", "f+b", 2)}


def test_peers_upto_and_thread_scaling():
    rows = _rows({
        ("gru N=1 T=10 32->32", "fwd", 1): {"nnc": 4.0, "torch": 2.0},
        ("gru N=1 T=10 32->32", "fwd", 2): {"nnc": 3.0, "torch": 6.0},   # torch slower on 2 threads
        ("gru N=2 T=10 32->32", "fwd", 1): {"nnc": 1.0, "torch": 1.0},
        ("gru N=2 T=10 32->32", "fwd", 2): {"nnc": 1.5, "torch": 1.0},
    })
    same = sweep.shape_ratios(rows)
    upto = sweep.shape_ratios(rows, upto=True)
    assert same[("gru N=1 T=10 32->32", "fwd", 2)] == (0.5, "torch")
    assert upto[("gru N=1 T=10 32->32", "fwd", 2)] == (1.5, "torch")      # torch's 1-thread time
    assert upto[("gru N=1 T=10 32->32", "fwd", 1)] == same[("gru N=1 T=10 32->32", "fwd", 1)] == (2.0, "torch")
    scal = sweep.thread_scaling(rows)
    assert scal == {("gru N=1 T=10 32->32", "fwd"): 0.75, ("gru N=2 T=10 32->32", "fwd"): 1.5}


def test_suspect_timings():
    assert sweep.suspect({"nnc": 1.2, "torch": 1.0}, None)                 # nnc weak
    assert not sweep.suspect({"nnc": 1.1, "torch": 1.0, "ort": 2.0}, None)
    assert not sweep.suspect({"nnc": 1.0}, None)                           # no peer
    assert sweep.suspect({"nnc": 0.5, "torch": 1.0}, {"nnc": 0.6, "torch": 0.6})     # torch 1.67x slower
    assert sweep.suspect({"nnc": 1.0, "torch": 2.0}, {"nnc": 0.6, "torch": 2.0})     # nnc 1.67x slower
    assert not sweep.suspect({"nnc": 0.5, "torch": 1.0}, {"nnc": 0.9, "torch": 0.8})


@pytest.mark.parametrize("family", sweep.FAMILIES)
def test_case_checked_against_peers(family):
    """The smallest drawn shape of each family: built, compared with torch
    (every layout) and ONNX Runtime, and every contender callable."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    s = min(sweep.draw_shapes(family, 15), key=lambda s: sweep.cost_ms(family, s))
    case = sweep.make_case(family, s)
    assert "nnc" in case.fns and len(case.fns) >= 2
    model, feeds, to_nnc, k = case.onnx
    sess = sweep.ort_session(model, 1)
    sweep.check_close(f"{case.name} ort", case.fns["nnc"][0](), to_nnc(sess.run(None, feeds)[0]), k)
    for fwd, fb in case.fns.values():
        fwd()
        if fb is not None:
            fb()
    if family == "dense":
        assert "numpy" in case.fns
    if family in CONV + ("maxpool", "avgpool", "denseblock"):
        assert {"torch-nchw", "torch-cl"} <= set(case.fns)
    assert np.isfinite(case.fns["nnc"][0]()).all()
