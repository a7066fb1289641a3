"""GEMM and Dense through the public API vs NumPy (OpenBLAS) and PyTorch, float32.

    python bench/bench_gemm.py [--threads 1,2] [--reps 30] [--quick] [--cpu-time] [--json PATH]

Each thread count runs in a child process whose OpenBLAS/OpenMP/PyTorch pools
are set to that count (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS,
torch.set_num_threads, nnc.set_num_threads).  Inside a child, the competitors
are timed by bench/_common.time_contenders (blocked by default, NNC_BENCH_ORDER=interleaved for round-robin) so that machine noise hits
them alike; the table shows median microseconds and the ratio
other / nnc (> 1: nnc is faster).  PyTorch is optional.  --cpu-time times
with time.thread_time() instead of the wall clock: on a machine shared with
other jobs it ignores time spent descheduled, but it only means something at
one thread (other threads' work is not counted).  Before timing, every
shape's product is compared with NumPy's and PyTorch's, and the Dense
layer's output and its input, weight and bias gradients with PyTorch's (the
ReLU's derivative taken from nnc's output), by _common.check_close (the
reduction length is the inner dimension), raising on a mismatch.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Results, add_json_arg, check_close, time_contenders  # noqa: E402

GEMM_SHAPES = [  # (m, n, k, ta, tb, label)
    (64, 64, 64, 0, 0, "64^3"),
    (128, 128, 128, 0, 0, "128^3"),
    (256, 256, 256, 0, 0, "256^3"),
    (512, 512, 512, 0, 0, "512^3"),
    (1024, 1024, 1024, 0, 0, "1024^3"),
    (1, 1024, 1024, 0, 1, "x@W.T b=1 1024"),
    (32, 1024, 1024, 0, 1, "x@W.T b=32 1024"),
    (256, 1024, 1024, 0, 1, "x@W.T b=256 1024"),
    (32, 256, 256, 0, 1, "x@W.T b=32 256"),
    (256, 1024, 1024, 0, 0, "dz@W b=256 1024"),
    (1024, 1024, 256, 1, 0, "dz.T@x b=256 1024"),
]
DENSE = [(b, f) for f in (256, 1024) for b in (1, 32, 256)]


CLOCK = time.perf_counter


def timeit_rounds(fns, reps, budget=4.0):
    """{name: sorted seconds} (see bench/_common.time_contenders)."""
    return time_contenders(fns, reps, CLOCK, budget)


def med(v):
    return v[len(v) // 2]


def row(label, times, res, nt, pass_, base="nnc", gflop=None):
    """Prints one table row (median times) and adds every contender's row to res."""
    res.add_times(label, pass_, nt, times)
    cells = [f"{label:22s}"]
    for k, v in times.items():
        cells.append(f"{k} {med(v) * 1e6:9.1f}us")
        if gflop:
            cells.append(f"({gflop / med(v) / 1e9:6.1f} GF/s)")
    for k, v in times.items():
        if k != base:
            cells.append(f"{k}/{base} {med(v) / med(times[base]):5.2f}x")
    print("  ".join(cells), flush=True)


def check_gemm(label, C, ref, k, peer):
    check_close(f"GEMM {label} vs {peer}", C, ref, k)


def check_dense(label, layer, x, g, lin, torch):
    """y, dx, dW, db of one training step of nnc Dense (relu) against torch
    Linear, the ReLU's derivative taken from nnc's output (y > 0): where a
    pre-activation lies within rounding of 0 the libraries may take opposite
    sides of the kink."""
    batch, f = x.shape
    y = layer.forward(x, training=True)
    dx = layer.backward(g)
    tx = torch.from_numpy(x).requires_grad_(True)
    lin.zero_grad(set_to_none=True)
    z = lin(tx)
    check_close(f"Dense {label} forward", y, torch.relu(z).detach().numpy(), f + 1)
    (z * torch.from_numpy((y > 0).astype(np.float32))).backward(torch.from_numpy(g))
    check_close(f"Dense {label} dx", dx, tx.grad.numpy(), f)
    check_close(f"Dense {label} dW", layer.grads["W"], lin.weight.grad.numpy(), batch + f)
    check_close(f"Dense {label} db", layer.grads["b"], lin.bias.grad.numpy(), batch + f)
    lin.zero_grad(set_to_none=True)


def child(nt, reps, quick, cpu_time, json_path):
    global CLOCK
    if cpu_time:
        CLOCK = time.thread_time
    import nnc
    from nnc import _core
    try:
        import torch
        torch.set_num_threads(nt)
    except ImportError:
        torch = None
    nnc.set_num_threads(nt)
    rng = np.random.default_rng(0)
    res = Results("bench_gemm")
    print(f"\n== {nt} thread(s); {'CPU' if cpu_time else 'wall'} time; nnc ISA {_core.get_isa()}; numpy {np.__version__}"
          + (f"; torch {torch.__version__}" if torch else "; torch not installed"))
    print("-- GEMM, float32 (nnc._core.gemm vs numpy.matmul vs torch.mm), median of timed runs")
    for m, n, k, ta, tb, label in GEMM_SHAPES[:4] if quick else GEMM_SHAPES:
        A = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
        B = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
        C = np.empty((m, n), np.float32)
        opA, opB = (A.T if ta else A), (B.T if tb else B)
        fns = {"nnc": lambda: _core.gemm(ta, tb, A, B, C), "numpy": lambda: np.matmul(opA, opB, out=C)}
        fns["nnc"]()
        C_nnc = C.copy()
        check_gemm(label, C_nnc, np.matmul(opA, opB), k, "numpy")
        if torch:
            tA, tB, tC = torch.from_numpy(opA), torch.from_numpy(opB), torch.from_numpy(C)
            fns["torch"] = lambda: torch.mm(tA, tB, out=tC)
            check_gemm(label, C_nnc, torch.mm(tA, tB).numpy(), k, "torch")
        row(label, timeit_rounds(fns, reps), res, nt, "gemm", gflop=2.0 * m * n * k)
    print("-- Dense relu, float32 (nnc.Dense vs torch.nn.Linear+relu); fwd = inference, fwd+bwd = training step")
    for batch, f in DENSE[:2] if quick else DENSE:
        layer = nnc.Dense(f, f, activation="relu", dtype=np.float32)
        x = rng.standard_normal((batch, f), dtype=np.float32)
        g = rng.standard_normal((batch, f), dtype=np.float32)
        W, b = layer.params["W"], layer.params["b"]

        def nnc_train():
            layer.forward(x, training=True)
            layer.backward(g)

        fwd = {"nnc": lambda: layer.forward(x), "numpy": lambda: np.maximum(x @ W.T + b, 0)}
        check_close(f"Dense b={batch} {f}->{f} forward vs numpy", fwd["nnc"](), fwd["numpy"](), f + 1)
        train = {"nnc": nnc_train}
        if torch:
            lin = torch.nn.Linear(f, f)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W))
                lin.bias.copy_(torch.from_numpy(b))
            tx, tg = torch.from_numpy(x), torch.from_numpy(g)
            txg = tx.clone().requires_grad_(True)

            def torch_fwd():
                with torch.no_grad():
                    return torch.relu(lin(tx))

            def torch_train():
                lin.zero_grad(set_to_none=True)
                txg.grad = None
                torch.relu(lin(txg)).backward(tg)

            fwd["torch"] = torch_fwd
            train["torch"] = torch_train
            check_dense(f"b={batch} {f}->{f}", layer, x, g, lin, torch)
        row(f"fwd b={batch} {f}->{f}", timeit_rounds(fwd, reps), res, nt, "fwd")
        row(f"fwd+bwd b={batch} {f}->{f}", timeit_rounds(train, reps), res, nt, "fwd+bwd")
    if json_path:
        with open(json_path, "w") as fh:
            json.dump(res.rows, fh)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="a few shapes only (smoke test)")
    ap.add_argument("--cpu-time", action="store_true", help="thread CPU time instead of wall time (1 thread)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-json", help=argparse.SUPPRESS)
    add_json_arg(ap)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.reps, a.quick, a.cpu_time, a.child_json)
        return
    print(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "|", " ".join(sys.argv))
    res = Results("bench_gemm")
    res.meta["clock"] = "thread CPU time" if a.cpu_time else "wall"
    with tempfile.TemporaryDirectory() as tmp:
        for nt in (int(t) for t in a.threads.split(",")):
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(nt), OMP_NUM_THREADS=str(nt), MKL_NUM_THREADS=str(nt))
            for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
                env.pop(var, None)
            rows = os.path.join(tmp, f"{nt}.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--child", str(nt), "--reps", str(a.reps),
                   "--child-json", rows]
            subprocess.run(cmd + (["--quick"] if a.quick else []) + (["--cpu-time"] if a.cpu_time else []), env=env,
                           check=True)
            with open(rows) as fh:
                res.rows += json.load(fh)
    res.write(a.json)


if __name__ == "__main__":
    main()
