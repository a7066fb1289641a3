"""Conv2D benchmark: nnc vs PyTorch (faster of NCHW and channels_last) and
ONNX Runtime (inference): a ResNet-style 3x3 layer, first layers at batch 1
and a depthwise layer.

    python bench/bench_conv.py [--threads 2] [--reps 20] [--clock wall|cpu]

The contenders run through bench/_common.time_contenders (each in its own block
by default; NNC_BENCH_ORDER=interleaved runs one call each per round), so a load change
on a shared machine hits all of them alike.  Prints min and median
milliseconds per call and the ratios nnc / other of the minima (< 1 means
nnc is faster).  ``--clock cpu`` times with the process CPU clock instead of
the wall clock: with --threads 1 that is robust to other jobs sharing the
machine (it measures the kernels' efficiency, not the latency).  torch and
onnxruntime are optional."""
import argparse
import os
import io
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import time_contenders  # noqa: E402

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


def nnc_fns(w):
    _, N, H, W, C, K, k, s, p, g = w
    layer = nnc.Conv2D(C, K, k, stride=s, padding=p, groups=g)
    x = np.random.default_rng(0).standard_normal((N, H, W, C)).astype(np.float32)
    gy = np.ones_like(layer.forward(x))

    def fb():
        layer.forward(x, training=True)
        layer.backward(gy)
    return {"nnc": (lambda: layer.forward(x), fb)}


def torch_fns(w, threads):
    import torch
    torch.set_num_threads(threads)
    _, N, H, W, C, K, k, s, p, g = w
    conv = torch.nn.Conv2d(C, K, k, stride=s, padding=p, groups=g)
    out = {}
    for name, fmt in (("torch-nchw", torch.contiguous_format), ("torch-cl", torch.channels_last)):
        m = conv.to(memory_format=fmt) if fmt is torch.channels_last else conv
        x = torch.randn(N, C, H, W).contiguous(memory_format=fmt)
        xg = x.clone().requires_grad_(True)
        gy = torch.ones_like(m(x))

        def fwd(m=m, x=x):
            with torch.no_grad():
                m(x)

        def fb(m=m, xg=xg, gy=gy):
            m.zero_grad(set_to_none=True)
            xg.grad = None
            m(xg).backward(gy)
        out[name] = (fwd, fb)
    return out


def ort_fns(w, threads):
    import onnxruntime as ort
    import torch
    _, N, H, W, C, K, k, s, p, g = w
    conv = torch.nn.Conv2d(C, K, k, stride=s, padding=p, groups=g).eval()
    buf = io.BytesIO()
    x = torch.randn(N, C, H, W)
    try:
        torch.onnx.export(conv, (x,), buf, input_names=["x"], output_names=["y"], dynamo=False)
    except TypeError:
        torch.onnx.export(conv, (x,), buf, input_names=["x"], output_names=["y"])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
    xn = x.numpy()
    return {"ort": (lambda: sess.run(None, {"x": xn}), None)}


CLOCK = time.perf_counter


def interleaved(fns, reps, which):
    """fns: name -> callable; (min, median) ms each (see bench/_common.time_contenders)."""
    times = time_contenders(fns, reps, CLOCK)
    return {n: (1e3 * min(t), 1e3 * float(np.median(t))) for n, t in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.perf_counter if args.clock == "wall" else time.process_time
    nnc.set_num_threads(args.threads)
    print(f"threads={args.threads} clock={args.clock}  ms per call (min / median); ratios of the minima, nnc / other; "
          f"torch = faster of NCHW and channels_last")
    print(f"{'workload':24s} {'pass':4s} {'nnc':>15s} {'torch':>15s} {'ort':>15s} {'nnc/torch':>9s} {'nnc/ort':>8s}")
    for w in WORKLOADS:
        fns = nnc_fns(w)
        for extra in (lambda: torch_fns(w, args.threads), lambda: ort_fns(w, args.threads)):
            try:
                fns.update(extra())
            except ImportError:
                pass
        for pi, pname in enumerate(("fwd", "f+b")):
            sel = {n: f[pi] for n, f in fns.items() if f[pi] is not None}
            r = interleaved(sel, args.reps if pi == 0 else max(3, args.reps // 2), pname)
            tk = [k for k in r if k.startswith("torch")]
            tbest = min((r[k] for k in tk), default=(np.nan, np.nan))
            ort_t = r.get("ort", (np.nan, np.nan))
            fmt = lambda t: f"{t[0]:7.3f}/{t[1]:7.3f}" if np.isfinite(t[0]) else "-"
            ratio = lambda a, b: f"{a[0] / b[0]:.2f}" if np.isfinite(b[0]) else "-"
            print(f"{w[0] if pi == 0 else '':24s} {pname:4s} {fmt(r['nnc']):>15s} {fmt(tbest):>15s} "
                  f"{fmt(ort_t):>15s} {ratio(r['nnc'], tbest):>9s} {ratio(r['nnc'], ort_t):>8s}")


if __name__ == "__main__":
    main()
