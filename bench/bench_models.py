"""The demo's residual CNN (nnc.__main__.build_digits_cnn) on 32x32x3 inputs:
nnc vs PyTorch (faster of NCHW and channels_last) and ONNX Runtime.

    python bench/bench_models.py [--threads 2] [--reps 10] [--rounds 3] [--loaded] [--json PATH]

Inference at batch 64, batch-1 latency and one training step
(forward + loss + backward) at batch 64.  Each library runs its blocks of
--reps calls a pass (5x for batch 1) in turn, --rounds times over, so a slow
stretch of the shared machine does not fall on one library only.  Prints
min / median milliseconds over all rounds of every library (torch in NCHW
and in channels_last, each its own model with nnc's weights, asserted in
that layout) and the ratios nnc / other of the min times (< 1 means nnc is
faster).  Before timing, the logits of both inference passes (torch in both
layouts, ONNX Runtime) and the loss and every weight gradient of the
training step (torch in both layouts) are compared with nnc's
(_common.check_close), raising on a mismatch.  torch and onnxruntime are
optional."""
import argparse
import collections
import io

import numpy as np

import nnc
from nnc.__main__ import build_digits_cnn
from _common import Results, add_json_arg, check_close, hwio_to_oihw, min_median_ms, nchw, one_core_busy, timeit_all

H = W = 32
C = 3
WIDTH = 16


PASSES = ("inference b64", "inference b1", "train step b64")


def make_nnc():
    """The nnc model, a batch of 64 images (NHWC), its labels and the loss."""
    nnc.seed(0)
    model = build_digits_cnn(WIDTH, in_channels=C)
    rng = np.random.default_rng(0)
    x64 = rng.standard_normal((64, H, W, C)).astype(np.float32)
    return model, x64, rng.integers(0, 10, 64), nnc.losses.SoftmaxCrossEntropy()


def bench_nnc(reps, tm):
    """tm(pass, fn, reps[, variant]) times fn (as do bench_torch and bench_ort)."""
    model, x64, y, loss = make_nnc()
    x1 = x64[:1].copy()

    def step():  # like torch's step below: no gradient w.r.t. the input images
        loss(model.forward(x64, training=True), y)
        model.backward(loss.backward(), input_grad=False)
    tm(PASSES[0], lambda: model.forward(x64), reps)
    tm(PASSES[1], lambda: model.forward(x1), reps * 5)
    tm(PASSES[2], step, reps)


def torch_model(nnc_model=None, memory_format=None):
    """The same network as nnc's build_digits_cnn, layer for layer, with
    nnc_model's weights (when given) and in memory_format (when given)."""
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
    m = nn.Sequential(
        nn.Conv2d(C, w, 3, padding=1), nn.ReLU(),
        Res(nn.Sequential(nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1))),
        nn.MaxPool2d(2),
        Dense(w, 2, w // 2),
        # nnc's padding "same" at stride 2 on 16x16: 0 before, 1 after (torch has no asymmetric conv padding)
        Res(nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(2 * w, 2 * w, 3, stride=2), nn.ReLU(),
                          nn.Conv2d(2 * w, 2 * w, 3, padding=1)), nn.Conv2d(2 * w, 2 * w, 1, stride=2)),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * w, 10))
    if nnc_model is not None:   # nnc's params and torch's parameters come in the same order
        theirs, ours = list(m.parameters()), list(nnc_model.params.items())
        assert len(theirs) == len(ours), (len(theirs), len(ours))
        with torch.no_grad():
            for p, (name, v) in zip(theirs, ours):
                v = hwio_to_oihw(v) if v.ndim == 4 else v
                assert p.shape == v.shape, f"{name}: nnc {v.shape} vs torch {tuple(p.shape)}"
                p.copy_(torch.from_numpy(v))
    if memory_format is not None:
        m = m.to(memory_format=memory_format)
        for p in m.parameters():
            assert p.dim() != 4 or p.is_contiguous(memory_format=memory_format), f"{p.stride()} not {memory_format}"
    return m, torch


def reduction_lengths(m):
    """(forward, weight gradient) reduction lengths of torch model m for
    check_close: every conv's and linear's inputs per output plus the global
    pool's pixels, summed over the layers; the weight gradients also sum over
    a batch of 64 images' pixels and go back through the layers."""
    from torch import nn
    k = 1 + (H // 4) * (W // 4)
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            k += mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1] + 1
        elif isinstance(mod, nn.Linear):
            k += mod.in_features + 1
    return k, 2 * k + 64 * H * W


def check_peers(threads):
    """nnc's logits (batch 64 and 1), loss and weight gradients against torch
    (both layouts) and its logits against ONNX Runtime, once before timing."""
    model, x64, y, loss = make_nnc()
    logits = model.forward(x64)
    loss_value = loss(model.forward(x64, training=True), y)
    model.backward(loss.backward(), input_grad=False)
    grads = list(model.grads.items())
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)
    for fmt in (torch.contiguous_format, torch.channels_last):
        m, _ = torch_model(model, fmt)
        k_fwd, k_dw = reduction_lengths(m)
        xt = torch.from_numpy(nchw(x64)).contiguous(memory_format=fmt)
        with torch.no_grad():
            check_close(f"torch {fmt} logits b64", logits, m(xt).numpy(), k_fwd)
            check_close(f"torch {fmt} logits b1", model.forward(x64[:1].copy()), m(xt[:1]).numpy(), k_fwd)
        lt = torch.nn.functional.cross_entropy(m(xt), torch.from_numpy(y))
        lt.backward()
        check_close(f"torch {fmt} loss", loss_value, lt.item(), k_fwd)
        for (name, g), p in zip(grads, m.parameters()):
            gt = p.grad.permute(2, 3, 1, 0).numpy() if p.dim() == 4 else p.grad.numpy()
            check_close(f"torch {fmt} gradient of {name}", g, gt, k_dw)
    try:
        sess = ort_session(threads, model)
    except ImportError:
        return
    check_close("onnxruntime logits b64", logits, sess.run(None, {"x": nchw(x64)})[0], k_fwd)


def bench_torch(reps, threads, tm):
    """Both memory formats (tm's variant), each its own model with nnc's weights."""
    model, x64, y, _ = make_nnc()
    import torch
    torch.set_num_threads(threads)
    y = torch.from_numpy(y)
    for fmt in (torch.contiguous_format, torch.channels_last):
        m, _ = torch_model(model, fmt)
        x64t = torch.from_numpy(nchw(x64)).contiguous(memory_format=fmt)
        x1 = x64t[:1].clone().contiguous(memory_format=fmt)
        with torch.no_grad():
            tm(PASSES[0], lambda: m(x64t), reps, fmt)
            tm(PASSES[1], lambda: m(x1), reps * 5, fmt)

        def step():
            m.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(m(x64t), y).backward()
        tm(PASSES[2], step, reps, fmt)


def ort_session(threads, nnc_model):
    """ONNX Runtime session of the torch model equivalent to nnc_model (dynamic batch)."""
    import onnxruntime as ort
    model, torch = torch_model(nnc_model)
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
    return ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])


def bench_ort(reps, threads, tm):
    model, x64, _, _ = make_nnc()
    sess = ort_session(threads, model)
    x64 = nchw(x64)
    x1 = x64[:1].copy()
    tm(PASSES[0], lambda: sess.run(None, {"x": x64}), reps)
    tm(PASSES[1], lambda: sess.run(None, {"x": x1}), reps * 5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loaded", action="store_true", help="also run with one core loaded by a busy process")
    add_json_arg(ap)
    args = ap.parse_args()
    nnc.set_num_threads(args.threads)
    check_peers(args.threads)
    res = Results("bench_models")
    suite(args, "idle machine", res, "idle")
    if args.loaded:
        with one_core_busy():
            suite(args, "one core loaded by a busy process", res, "one core loaded")
    res.write(args.json)


def suite(args, what, res, condition):
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

    def label(lib, variant):
        return lib if variant is None else f"{lib}-{'cl' if 'channels_last' in str(variant) else 'nchw'}"
    libs = sorted({label(lib, v) for lib, _, v in times}, key=lambda n: (n != "nnc", n))
    r = {(label(lib, v), name): min_median_ms(t) for (lib, name, v), t in times.items()}
    for (lib, name), (mn, md) in r.items():
        res.add("demo residual CNN", name, args.threads, lib, mn, md, condition=condition)
    print(f"demo residual CNN, {H}x{W}x{C}, width {WIDTH}; {what}, threads={args.threads}; ms min / median; "
          f"ratio = nnc / other (min); outputs, loss and gradients checked against every peer")
    print(f"{'pass':16s}" + "".join(f"{n:>17s}" for n in libs) + "".join(f"{'nnc/' + n:>15s}" for n in libs[1:]))
    for name in PASSES:
        cells = "".join(f" {r[n, name][0]:7.3f}/{r[n, name][1]:<8.3f}" if (n, name) in r else f"{'-':>17s}"
                        for n in libs)
        ratios = "".join(f"{r['nnc', name][0] / r[n, name][0]:15.2f}" if (n, name) in r else f"{'-':>15s}"
                         for n in libs[1:])
        print(f"{name:16s}{cells}{ratios}", flush=True)


if __name__ == "__main__":
    main()
