"""Pooling benchmark: nnc vs PyTorch (the faster of NCHW and channels_last).

    python bench/bench_pool.py [--threads 2] [--reps 30] [--batch 32] [--hw 112] [--json PATH]

Workloads (float32, NHWC for nnc) on (batch, hw, hw, 64): MaxPool and AvgPool
2x2 stride 2 (on 112x112x64 maps at the defaults) and MaxPool 3x3 stride 2
pad 1.  For each: forward (inference: nnc
training=False, PyTorch under no_grad) and forward+backward (nnc
forward(training=True) + backward; PyTorch autograd.grad).  Prints min and
median ms, GB/s of compulsory traffic (forward: read x + write y;
forward+backward: that + read dy + write dx), its share of the 27 GB/s
one-core copy bandwidth of these machines, and the ratio nnc/PyTorch of the
min times (< 1: nnc is faster), for PyTorch in both layouts.  Before timing,
nnc's output and input gradient are compared with PyTorch's in each layout
(_common.check_close: the reduction length is the window size), raising on
a mismatch.  Implementations are timed by bench/_common.time_contenders in the
same run.  The copy bandwidth of one core (numpy copyto of the input, which
fits in L3) is measured too, for reference.
PyTorch is optional: without it only nnc's figures are printed.
"""
import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Results, add_json_arg, check_close, nhwc, time_contenders, timeit  # noqa: E402

import nnc

try:
    import torch
except ImportError:  # optional bench dependency
    torch = None


COPY_GBS = 27.0   # one-core copy bandwidth of the reference machine


def copy_bandwidth(nbytes, reps):
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    ms, _ = timeit(lambda: np.copyto(dst, src), reps)
    return 2 * nbytes / (ms * 1e-3) / 1e9


def bench_case(name, layer, tfn, x, reps):
    """Checks every implementation against nnc, then times them all
    (bench/_common.time_contenders), so that a busy machine slows them alike;
    returns rows for the table: every implementation of every pass."""
    y = layer(x)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    fwd_bytes = x.nbytes + y.nbytes
    both_bytes = fwd_bytes + dy.nbytes + x.nbytes
    k = layer.pool_size[0] * layer.pool_size[1]   # outputs per window, windows per input (at most)
    layer.forward(x, training=True)
    dx = layer.backward(dy)

    def nnc_both():
        layer.forward(x, training=True)
        layer.backward(dy)

    fns = {("fwd", "nnc"): lambda: layer.forward(x), ("fwd+bwd", "nnc"): nnc_both}
    if torch is not None:
        for fmt in ("NCHW", "channels_last"):
            xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
            dyt = torch.from_numpy(np.ascontiguousarray(dy.transpose(0, 3, 1, 2)))
            if fmt == "channels_last":
                xt = xt.contiguous(memory_format=torch.channels_last)
                dyt = dyt.contiguous(memory_format=torch.channels_last)
            xg = xt.clone().requires_grad_(True)
            check_close(f"{name} torch {fmt} forward", y, nhwc(tfn(xt)), k)
            check_close(f"{name} torch {fmt} dx", dx, nhwc(torch.autograd.grad(tfn(xg), xg, dyt)[0]), k)

            def t_fwd(xt=xt):
                with torch.no_grad():
                    tfn(xt)

            def t_both(xg=xg, dyt=dyt):
                torch.autograd.grad(tfn(xg), xg, dyt)

            fns[("fwd", f"torch {fmt}")] = t_fwd
            fns[("fwd+bwd", f"torch {fmt}")] = t_both
    times = time_contenders(fns, reps)
    return [(f"{name} {what}", impl, (min(t), statistics.median(t)), fwd_bytes if what == "fwd" else both_bytes)
            for (what, impl), t in sorted(times.items(), key=lambda kv: (kv[0][0], kv[0][1] != "nnc"))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hw", type=int, default=112)
    add_json_arg(ap)
    args = ap.parse_args()
    nnc.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    x = np.random.default_rng(0).standard_normal((args.batch, args.hw, args.hw, 64)).astype(np.float32)
    bw = copy_bandwidth(x.nbytes, args.reps)
    print(f"nnc {nnc.__version__} isa={nnc._core.get_isa()} threads={args.threads}; "
          f"torch {torch.__version__ if torch else 'absent'}; input {x.shape} float32")
    print(f"one-core copy bandwidth (numpy copyto, {x.nbytes / 2**20:.1f} MiB): {bw:.1f} GB/s")
    cases = [("MaxPool 2x2/2", nnc.MaxPool2D(2),
              (lambda t: torch.nn.functional.max_pool2d(t, 2, 2)) if torch else None),
             ("MaxPool 3x3/2 p1", nnc.MaxPool2D(3, stride=2, padding=1),
              (lambda t: torch.nn.functional.max_pool2d(t, 3, 2, 1)) if torch else None),
             ("AvgPool 2x2/2", nnc.AvgPool2D(2),
              (lambda t: torch.nn.functional.avg_pool2d(t, 2, 2)) if torch else None)]
    print(f"{'case':24s} {'impl':20s} {'min ms':>8s} {'med ms':>8s} {'GB/s':>7s} {'%27GB/s':>7s} {'nnc/torch':>9s}")
    res = Results("bench_pool")
    res.meta["copy_gbs"] = bw
    for name, layer, tfn in cases:
        rows = bench_case(name, layer, tfn, x, args.reps)
        nnc_t = {r[0]: r[2][0] for r in rows if r[1] == "nnc"}
        for case, impl, (tmin, tmed), nbytes in rows:
            gbs = nbytes / tmin / 1e9
            ratio = f"{nnc_t[case] / tmin:9.2f}" if impl != "nnc" else ""
            print(f"{case:24s} {impl:20s} {tmin * 1e3:8.3f} {tmed * 1e3:8.3f} {gbs:7.1f} {100 * gbs / COPY_GBS:6.0f}% {ratio}")
            res.add(name, case[len(name) + 1:], args.threads, impl, tmin * 1e3, tmed * 1e3)
    res.write(args.json)


if __name__ == "__main__":
    main()
