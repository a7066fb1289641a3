"""The demo's residual CNN (nnc.__main__.build_digits_cnn) on 32x32x3 inputs:
nnc vs PyTorch (faster of NCHW and channels_last) and ONNX Runtime.

    python bench/bench_models.py [--threads 2] [--reps 10] [--rounds 3] [--loaded]

Inference at batch 64, batch-1 latency and one training step
(forward + loss + backward) at batch 64.  Each library runs its blocks of
--reps calls a pass (5x for batch 1) in turn, --rounds times over, so a slow
stretch of the shared machine does not fall on one library only.  Prints
min / median milliseconds over all rounds and the ratios nnc / other of the
min times (< 1 means nnc is faster).  torch and onnxruntime are optional."""
import argparse
import collections
import io

import numpy as np

import nnc
from nnc.__main__ import build_digits_cnn
from _common import min_median_ms, one_core_busy, timeit_all

H = W = 32
C = 3
WIDTH = 16


PASSES = ("inference b64", "inference b1", "train step b64")


def bench_nnc(reps, tm):
    """tm(pass, fn, reps[, variant]) times fn (as do bench_torch and bench_ort)."""
    nnc.seed(0)
    model = build_digits_cnn(WIDTH, in_channels=C)
    rng = np.random.default_rng(0)
    x64 = rng.standard_normal((64, H, W, C)).astype(np.float32)
    x1 = x64[:1].copy()
    y = rng.integers(0, 10, 64)
    loss = nnc.losses.SoftmaxCrossEntropy()

    def step():  # like torch's step below: no gradient w.r.t. the input images
        loss(model.forward(x64, training=True), y)
        model.backward(loss.backward(), input_grad=False)
    tm(PASSES[0], lambda: model.forward(x64), reps)
    tm(PASSES[1], lambda: model.forward(x1), reps * 5)
    tm(PASSES[2], step, reps)


def torch_model():
    """The same network as nnc's build_digits_cnn, layer for layer."""
    import torch
    from torch import nn

    class Res(nn.Module):
        def __init__(self, block, shortcut=None):
            super().__init__()
            self.block, self.shortcut = block, shortcut

        def forward(self, x):
            return self.block(x) + (x if self.shortcut is None else self.shortcut(x))

    class Dense(nn.Module):  # DenseNet block, the straightforward way: torch.cat per layer
        def __init__(self, cin, layers, growth):
            super().__init__()
            self.convs = nn.ModuleList(nn.Conv2d(cin + i * growth, growth, 3, padding=1) for i in range(layers))

        def forward(self, x):
            for conv in self.convs:
                x = torch.cat([x, torch.relu(conv(x))], 1)
            return x

    w = WIDTH
    return nn.Sequential(
        nn.Conv2d(C, w, 3, padding=1), nn.ReLU(),
        Res(nn.Sequential(nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1))),
        nn.MaxPool2d(2),
        Dense(w, 2, w // 2),
        Res(nn.Sequential(nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
                          nn.Conv2d(2 * w, 2 * w, 3, padding=1)), nn.Conv2d(2 * w, 2 * w, 1, stride=2)),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * w, 10)), torch


def bench_torch(reps, threads, tm):
    """Both memory formats (tm's variant)."""
    model, torch = torch_model()
    torch.set_num_threads(threads)
    y = torch.randint(0, 10, (64,))
    for fmt in (torch.contiguous_format, torch.channels_last):
        m = model.to(memory_format=fmt)
        x64 = torch.randn(64, C, H, W).contiguous(memory_format=fmt)
        x1 = x64[:1].clone().contiguous(memory_format=fmt)
        with torch.no_grad():
            tm(PASSES[0], lambda: m(x64), reps, fmt)
            tm(PASSES[1], lambda: m(x1), reps * 5, fmt)

        def step():
            m.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(m(x64), y).backward()
        tm(PASSES[2], step, reps, fmt)


def bench_ort(reps, threads, tm):
    import onnxruntime as ort
    model, torch = torch_model()
    model.eval()
    buf = io.BytesIO()
    x = torch.randn(1, C, H, W)
    kw = dict(input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    try:
        torch.onnx.export(model, (x,), buf, dynamo=False, **kw)
    except TypeError:
        torch.onnx.export(model, (x,), buf, **kw)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
    x64 = np.random.default_rng(0).standard_normal((64, C, H, W)).astype(np.float32)
    x1 = x64[:1].copy()
    tm(PASSES[0], lambda: sess.run(None, {"x": x64}), reps)
    tm(PASSES[1], lambda: sess.run(None, {"x": x1}), reps * 5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loaded", action="store_true", help="also run with one core loaded by a busy process")
    args = ap.parse_args()
    nnc.set_num_threads(args.threads)
    suite(args, "idle machine")
    if args.loaded:
        with one_core_busy():
            suite(args, "one core loaded by a busy process")


def suite(args, what):
    times = collections.defaultdict(list)  # (library, pass, variant) -> seconds of every call

    def timer(lib):
        return lambda name, fn, reps, variant=None: times[(lib, name, variant)].extend(timeit_all(fn, reps))
    benches = [("nnc", lambda tm: bench_nnc(args.reps, tm)),
               ("torch", lambda tm: bench_torch(args.reps, args.threads, tm)),
               ("ort", lambda tm: bench_ort(args.reps, args.threads, tm))]
    for _ in range(args.rounds):
        for lib, bench in list(benches):
            try:
                bench(timer(lib))
            except ImportError:
                benches.remove((lib, bench))

    def summary(lib, name):  # torch: the faster memory format (by its minimum)
        runs = [min_median_ms(v) for (lb, nm, _), v in times.items() if (lb, nm) == (lib, name)]
        return min(runs) if runs else (np.nan, np.nan)
    n, t, o = ([summary(lib, name) for name in PASSES] for lib in ("nnc", "torch", "ort"))
    print(f"demo residual CNN, {H}x{W}x{C}, width {WIDTH}; {what}, threads={args.threads}; ms min / median; "
          f"ratio = nnc / other (min)")
    print(f"{'pass':22s} {'nnc':>15s} {'torch':>15s} {'ort':>15s} {'nnc/torch':>9s} {'nnc/ort':>8s}")
    fmt = lambda v: f"{v[0]:7.3f}/{v[1]:7.3f}"  # noqa: E731
    for name, a, b, c in zip(PASSES, n, t, o):
        print(f"{name:22s} {fmt(a):>15s} {fmt(b):>15s} {fmt(c):>15s} {a[0] / b[0]:9.2f} {a[0] / c[0]:8.2f}")


if __name__ == "__main__":
    main()
