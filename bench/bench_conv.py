"""Conv2D benchmark: nnc vs PyTorch (NCHW and channels_last, each its own
module with nnc's weights) and ONNX Runtime (inference): a ResNet-style 3x3
layer, first layers at batch 1 and a depthwise layer.

    python bench/bench_conv.py [--threads 2] [--reps 20] [--clock wall|cpu] [--only 2,3] [--json PATH]

Before timing, each workload's outputs are compared with every peer once
(_common.check_torch_conv: y, dx, dW, db against torch in both layouts, whose
weights are asserted to be in the layout they are timed in; y against ONNX
Runtime), raising on a mismatch.  The contenders run through
bench/_common.time_contenders (each in its own block by default;
NNC_BENCH_ORDER=interleaved runs one call each per round), so a load change
on a shared machine hits all of them alike.  Prints min and median
milliseconds per call of every contender and the ratios nnc / other of the
minima (< 1 means nnc is faster).  Forward+backward computes the input,
weight and bias gradients in every library.  ``--clock cpu`` times with the
process CPU clock instead of the wall clock: with --threads 1 that is robust
to other jobs sharing the machine (it measures the kernels' efficiency, not
the latency).  torch and onnxruntime are optional."""
import argparse
import os
import io
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (Results, add_json_arg, check_close, check_torch_conv, min_median_ms, nchw, nhwc,  # noqa: E402
                     time_contenders, torch_conv)

import nnc

WORKLOADS = [
    # name, N, H, W, Cin, Cout, kernel, stride, padding, groups
    ("3x3 64->64 b32 56x56", 32, 56, 56, 64, 64, 3, 1, 1, 1),
    ("7x7/2 3->64 b1 224x224", 1, 224, 224, 3, 64, 7, 2, 3, 1),
    ("3x3 3->32 b1 32x32", 1, 32, 32, 3, 32, 3, 1, 1, 1),
    ("dw3x3 128 b32 56x56", 32, 56, 56, 128, 128, 3, 1, 1, 128),
    # the demo CNN's DenseBlock convs: few output channels
    ("3x3 16->8 b64 16x16", 64, 16, 16, 16, 8, 3, 1, 1, 1),
    ("3x3 24->8 b64 16x16", 64, 16, 16, 24, 8, 3, 1, 1, 1),
]


def make_case(w):
    """nnc Conv2D of workload w (a small random bias), input x and output gradient gy (NHWC)."""
    _, N, H, W, C, K, k, s, p, g = w
    nnc.seed(0)
    layer = nnc.Conv2D(C, K, k, stride=s, padding=p, groups=g)
    rng = np.random.default_rng(0)
    layer.params["b"][...] = 0.1 * rng.standard_normal(K)
    x = rng.standard_normal((N, H, W, C)).astype(np.float32)
    gy = rng.standard_normal(layer.forward(x).shape).astype(np.float32)
    return layer, x, gy


def nnc_fns(layer, x, gy):
    def fb():
        layer.forward(x, training=True)
        layer.backward(gy)
    return {"nnc": (lambda: layer.forward(x), fb)}


def torch_fns(name, layer, x, gy, threads):
    """Each layout its own module with the layer's weights, checked (check_torch_conv) before timing."""
    import torch
    torch.set_num_threads(threads)
    out = {}
    for lib, fmt in (("torch-nchw", torch.contiguous_format), ("torch-cl", torch.channels_last)):
        m = torch_conv(layer, fmt)
        check_torch_conv(f"{name} {lib}", layer, m, x, gy, fmt)
        xt = torch.from_numpy(nchw(x)).contiguous(memory_format=fmt)
        xg = xt.clone().requires_grad_(True)
        gt = torch.from_numpy(nchw(gy)).contiguous(memory_format=fmt)

        def fwd(m=m, xt=xt):
            with torch.no_grad():
                m(xt)

        def fb(m=m, xg=xg, gt=gt):
            m.zero_grad(set_to_none=True)
            xg.grad = None
            m(xg).backward(gt)
        out[lib] = (fwd, fb)
    return out


def ort_fns(name, layer, x, threads):
    """ONNX Runtime session of the layer (exported from the equivalent torch module), checked before timing."""
    import onnxruntime as ort
    import torch
    conv = torch_conv(layer).eval()
    buf = io.BytesIO()
    xn = nchw(x)
    try:
        torch.onnx.export(conv, (torch.from_numpy(xn),), buf, input_names=["x"], output_names=["y"], dynamo=False)
    except TypeError:
        torch.onnx.export(conv, (torch.from_numpy(xn),), buf, input_names=["x"], output_names=["y"])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
    kh, kw = layer.kernel_size
    check_close(f"{name} ort forward y", layer.forward(x), nhwc(sess.run(None, {"x": xn})[0]),
                kh * kw * layer.in_channels // layer.groups + 1)
    return {"ort": (lambda: sess.run(None, {"x": xn}), None)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    ap.add_argument("--only", help="comma-separated indices into the workload list (default: all)")
    add_json_arg(ap)
    args = ap.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    nnc.set_num_threads(args.threads)
    workloads = [WORKLOADS[int(i)] for i in args.only.split(",")] if args.only else WORKLOADS
    res = Results("bench_conv")
    res.meta["clock"] = args.clock
    libs = ("nnc", "torch-nchw", "torch-cl", "ort")
    print(f"threads={args.threads} clock={args.clock}  ms per call (min / median); ratios of the minima, nnc / other; "
          f"outputs and gradients checked against every peer before timing")
    print(f"{'workload':24s} {'pass':4s}" + "".join(f"{n:>17s}" for n in libs)
          + "".join(f"{'nnc/' + n:>15s}" for n in libs[1:]))
    for w in workloads:
        layer, x, gy = make_case(w)
        fns = nnc_fns(layer, x, gy)
        for extra in (lambda: torch_fns(w[0], layer, x, gy, args.threads),
                      lambda: ort_fns(w[0], layer, x, args.threads)):
            try:
                fns.update(extra())
            except ImportError:
                pass
        for pi, pname in enumerate(("fwd", "f+b")):
            sel = {n: f[pi] for n, f in fns.items() if f[pi] is not None}
            times = time_contenders(sel, args.reps if pi == 0 else max(3, args.reps // 2), clock)
            res.add_times(w[0], pname, args.threads, times)
            r = {n: min_median_ms(t) for n, t in times.items()}
            cells = "".join(f" {r[n][0]:7.3f}/{r[n][1]:<8.3f}" if n in r else f"{'-':>17s}" for n in libs)
            ratios = "".join(f"{r['nnc'][0] / r[n][0]:15.2f}" if n in r else f"{'-':>15s}" for n in libs[1:])
            print(f"{w[0] if pi == 0 else '':24s} {pname:4s}{cells}{ratios}", flush=True)
    res.write(args.json)


if __name__ == "__main__":
    main()
