"""DenseBlock vs a straightforward PyTorch dense block (torch.cat per layer).

    python bench/bench_densenet.py [--threads 2] [--reps 10]

Workload: batch 16, 32x32, 64 channels in, 6 layers, growth 32, 3x3 convs,
forward+backward (and forward alone).  PyTorch runs NCHW and channels_last;
the faster is reported.  Peak memory of one training step is measured for
each library in a fresh process.  torch is an optional bench dependency.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nnc  # noqa: E402
from _common import probe_peaks, report_peak, timeit  # noqa: E402

N, H, W, C, L, G = 16, 32, 32, 64, 6, 32


def make():
    nnc.seed(0)
    layer = nnc.DenseBlock(C, L, G)
    x = np.random.default_rng(0).standard_normal((N, H, W, C)).astype(np.float32)
    return layer, x


def torch_block(layer, channels_last):
    import torch

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = torch.nn.ModuleList()
            for i in range(L):
                conv = torch.nn.Conv2d(C + i * G, G, 3, padding=1)
                with torch.no_grad():
                    conv.weight.copy_(torch.from_numpy(layer.params[f"layer{i}.W"].transpose(3, 2, 0, 1).copy()))
                    conv.bias.copy_(torch.from_numpy(layer.params[f"layer{i}.b"]))
                self.convs.append(conv)

        def forward(self, x):
            for conv in self.convs:
                x = torch.cat([x, torch.relu(conv(x))], 1)
            return x

    m = Block()
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    return m


def torch_input(x, channels_last):
    import torch
    t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t


def memory_probe(lib, threads):
    layer, x = make()
    if lib == "nnc":
        report_peak(lib, lambda: layer.backward(np.ones_like(layer.forward(x, training=True))))
    else:
        import torch
        torch.set_num_threads(threads)
        cl = lib == "torch-channels_last"
        m, xt = torch_block(layer, cl), torch_input(x, cl)
        report_peak(lib, lambda: m(xt).sum().backward())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--memory-probe")
    args = ap.parse_args()
    nnc.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(args.memory_probe, args.threads)
        return
    import torch
    torch.set_num_threads(args.threads)
    layer, x = make()
    y = layer(x)
    print(f"DenseBlock N={N} {H}x{W} C={C} layers={L} growth={G}, {args.threads} threads")

    def nnc_step():
        out = layer.forward(x, training=True)
        layer.backward(np.ones_like(out))

    rows = [("forward", timeit(lambda: layer(x), args.reps)), ("forward+backward", timeit(nnc_step, args.reps))]
    best = {}
    for cl in (False, True):
        m, xt = torch_block(layer, cl), torch_input(x, cl)
        with torch.no_grad():
            err = np.abs(m(xt).numpy().transpose(0, 2, 3, 1) - y).max()
        assert err < 1e-3, err

        def step():
            m.zero_grad()
            m(xt).sum().backward()

        with torch.no_grad():
            f = timeit(lambda: m(xt), args.reps)
        for name, t in (("forward", f), ("forward+backward", timeit(step, args.reps))):
            tag = "channels_last" if cl else "NCHW"
            if name not in best or t[0] < best[name][1][0]:
                best[name] = (tag, t)
    print(f"{'workload':<18}{'nnc min/med ms':>18}{'torch (layout)':>22}{'torch min/med ms':>18}{'ratio':>8}")
    for name, (a, am) in rows:
        tag, (b, bm) = best[name]
        print(f"{name:<18}{a:>9.2f}/{am:<8.2f}{tag:>22}{b:>9.2f}/{bm:<8.2f}{a / b:>8.2f}")
    mem = probe_peaks(__file__, args.threads, ("nnc", "torch-NCHW", "torch-channels_last"))
    print("peak memory of one training step (MB): " + ", ".join(f"{k} {v:.1f}" for k, v in mem.items()))


if __name__ == "__main__":
    main()
