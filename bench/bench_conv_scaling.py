"""nnc Conv2D kernels alone in the process (no other thread runtime), 1 vs 2
threads, each pass separately: forward (layer call, with its Python
overhead), and the C calls of the input gradient (dx) and the weight+bias
gradient (dW).

    python bench/bench_conv_scaling.py [--reps 8] [--shapes all|small]

Shows the kernels' own thread scaling, the small few-output-channel shapes
of the demo CNN's DenseBlock and the batch-1 first layer.  Min milliseconds
(median in brackets) and GFLOP/s at the minimum.  Before timing, each shape's
output and gradients are compared with PyTorch's (_common.check_torch_conv),
and after timing each pass at each thread count, the timed calls' outputs
are compared with PyTorch's again, raising on a mismatch (without torch:
not checked, said so).

    python bench/bench_conv_scaling.py [--reps 8] [--shapes all|small] [--json PATH]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import nnc  # noqa: E402
from nnc import _core  # noqa: E402
from _common import Results, add_json_arg, check_close, check_torch_conv, timeit, torch_conv  # noqa: E402

SHAPES = [  # (batch, H=W, Cin, Cout)
    (32, 56, 64, 64),   # a ResNet-style 3x3 layer
    (64, 16, 16, 8),    # demo CNN DenseBlock layer 0
    (64, 16, 24, 8),    # demo CNN DenseBlock layer 1
    (64, 32, 16, 16),   # demo CNN residual conv
    (1, 32, 3, 32),     # a batch-1 first layer
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=8)
    ap.add_argument("--shapes", choices=("all", "small"), default="all")
    add_json_arg(ap)
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
        print("torch not installed: outputs not checked")
    res = Results("bench_conv_scaling")
    shapes = SHAPES if args.shapes == "all" else SHAPES[1:]
    print(f"{'3x3 conv, pad 1, f32':<24}{'thr':>4}" + "".join(f"{p + ' ms (med)':>20}{'GF/s':>6}"
                                                              for p in ("fwd", "dx", "dW+db")))
    for n, hw, cin, cout in shapes:
        layer = nnc.Conv2D(cin, cout, 3, padding=1)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, hw, hw, cin)).astype(np.float32)
        y = layer.forward(x, training=True)
        geo = layer._cache[2]
        dz = rng.standard_normal(y.shape).astype(np.float32)
        dx, dW, db = np.empty_like(x), np.empty_like(layer.params["W"]), np.empty_like(layer.params["b"])
        W = layer.params["W"]
        flops = 2.0 * n * hw * hw * cin * cout * 9
        reps = args.reps if flops > 1e8 else 20 * args.reps
        out = {}
        passes = (("fwd", lambda: out.__setitem__("y", layer(x))),
                  ("dx", lambda: _core.conv_bwd_data(geo, dz, 0, W, dx, 0, False)),
                  ("dW+db", lambda: _core.conv_bwd_filter(geo, x, 0, dz, 0, dW, db)))
        ref = check_torch_conv(f"b{n} {hw}x{hw} {cin}->{cout}", layer, torch_conv(layer), x, dz,
                               torch.contiguous_format) if torch else None
        workload = f"b{n} {hw}x{hw} {cin}->{cout}"
        for threads in (1, 2):
            row = f"{workload:<24}{threads:>4}"
            with nnc.threads(threads):
                for name, fn in passes:
                    mn, md = timeit(fn, reps)
                    res.add(workload, name, threads, "nnc", mn, md)
                    row += f"{f'{mn:.3f} ({md:.3f})':>20}{flops / mn / 1e6:>6.0f}"
            if ref:
                for key, got in (("y", out["y"]), ("dx", dx), ("dW", dW), ("db", db)):
                    check_close(f"{workload} {threads} threads, timed {key}", got, *ref[key])
            print(row)
    res.write(args.json)


if __name__ == "__main__":
    main()
