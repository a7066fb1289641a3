"""Conv2D benchmark: nnc vs PyTorch (faster of NCHW and channels_last) and
ONNX Runtime (inference), the "Done when" workloads of issue #3.

    python bench/bench_conv.py [--threads 2] [--reps 20]

Prints min and median milliseconds per call and the ratios nnc / other
(< 1 means nnc is faster).  torch and onnxruntime are optional."""
import argparse
import io
import time

import numpy as np

import nnc

WORKLOADS = [
    # name, N, H, W, Cin, Cout, kernel, stride, padding, groups
    ("3x3 64->64 b32 56x56", 32, 56, 56, 64, 64, 3, 1, 1, 1),
    ("7x7/2 3->64 b1 224x224", 1, 224, 224, 3, 64, 7, 2, 3, 1),
    ("3x3 3->32 b1 32x32", 1, 32, 32, 3, 32, 3, 1, 1, 1),
    ("dw3x3 128 b32 56x56", 32, 56, 56, 128, 128, 3, 1, 1, 128),
]


def timeit(fn, reps, warm=3):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e3 * min(ts), 1e3 * float(np.median(ts))


def bench_nnc(w, reps):
    _, N, H, W, C, K, k, s, p, g = w
    layer = nnc.Conv2D(C, K, k, stride=s, padding=p, groups=g)
    x = np.random.default_rng(0).standard_normal((N, H, W, C)).astype(np.float32)
    y = layer.forward(x)
    gy = np.ones_like(y)

    def fb():
        layer.forward(x, training=True)
        layer.backward(gy)
    return timeit(lambda: layer.forward(x), reps), timeit(fb, max(3, reps // 2))


def bench_torch(w, reps, threads):
    import torch
    torch.set_num_threads(threads)
    _, N, H, W, C, K, k, s, p, g = w
    conv = torch.nn.Conv2d(C, K, k, stride=s, padding=p, groups=g)
    best_f, best_fb = (np.inf, np.inf), (np.inf, np.inf)
    for fmt in (torch.contiguous_format, torch.channels_last):
        m = conv.to(memory_format=fmt)
        x = torch.randn(N, C, H, W).contiguous(memory_format=fmt)
        with torch.no_grad():
            f = timeit(lambda: m(x), reps)
        xg = x.clone().requires_grad_(True)
        gy = torch.ones_like(m(xg))

        def fb():
            m.zero_grad(set_to_none=True)
            xg.grad = None
            m(xg).backward(gy)
        fbt = timeit(fb, max(3, reps // 2))
        best_f = min(best_f, f)
        best_fb = min(best_fb, fbt)
    return best_f, best_fb


def bench_ort(w, reps, threads):
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
    return timeit(lambda: sess.run(None, {"x": xn}), reps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    nnc.set_num_threads(args.threads)
    print(f"threads={args.threads}  times in ms (min / median); ratio = nnc / other (min times)")
    hdr = f"{'workload':26s} {'pass':5s} {'nnc':>15s} {'torch':>15s} {'ort':>15s} {'nnc/torch':>9s} {'nnc/ort':>8s}"
    print(hdr)
    for w in WORKLOADS:
        f, fb = bench_nnc(w, args.reps)
        try:
            tf, tfb = bench_torch(w, args.reps, args.threads)
        except ImportError:
            tf = tfb = (np.nan, np.nan)
        try:
            of = bench_ort(w, args.reps, args.threads)
        except ImportError:
            of = (np.nan, np.nan)
        fmt = lambda t: f"{t[0]:7.3f}/{t[1]:7.3f}"
        print(f"{w[0]:26s} {'fwd':5s} {fmt(f):>15s} {fmt(tf):>15s} {fmt(of):>15s} {f[0] / tf[0]:9.2f} "
              f"{f[0] / of[0]:8.2f}")
        print(f"{'':26s} {'f+b':5s} {fmt(fb):>15s} {fmt(tfb):>15s} {'':>15s} {fb[0] / tfb[0]:9.2f}")


if __name__ == "__main__":
    main()
