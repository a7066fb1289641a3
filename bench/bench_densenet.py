"""DenseBlock vs a straightforward PyTorch dense block (torch.cat per layer).

    python bench/bench_densenet.py [--threads 2] [--reps 10] [--json PATH]

Workload: batch 16, 32x32, 64 channels in, 6 layers, growth 32, 3x3 convs,
forward+backward (and forward alone).  PyTorch runs NCHW and channels_last
(each its own module, weights asserted in that layout); both are reported.
Equal work in forward+backward: both libraries compute the input gradient
and every weight and bias gradient (torch's input requires grad).  Before
timing, the output and those gradients are compared with torch's in each
layout (_common.check_close), raising on a mismatch.  Peak memory of one training step is measured for
each library in a fresh process.  torch is an optional bench dependency.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nnc  # noqa: E402
from _common import (Results, add_json_arg, check_close, hwio_to_oihw, nchw, nhwc, probe_peaks,  # noqa: E402
                     report_peak, timeit)

N, H, W, C, L, G = 16, 32, 32, 64, 6, 32
WORKLOAD = f"DenseBlock N={N} {H}x{W} C={C} layers={L} growth={G}"
# Reduction lengths (check_close): the output through every layer's 3x3 conv
# (bias included); the input gradient back through every layer's conv over
# its G outputs; the weight gradients also sum over every pixel.
K_FWD = sum(9 * (C + i * G) + 1 for i in range(L))
K_BWD = L * (9 * G + 1)
K_DW = N * H * W + K_BWD


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
                    conv.weight.copy_(torch.from_numpy(hwio_to_oihw(layer.params[f"layer{i}.W"])))
                    conv.bias.copy_(torch.from_numpy(layer.params[f"layer{i}.b"]))
                self.convs.append(conv)

        def forward(self, x, masks=None):
            """masks (the check's): layer i's ReLU replaced by a product with masks[i]."""
            for i, conv in enumerate(self.convs):
                x = torch.cat([x, torch.relu(conv(x)) if masks is None else conv(x) * masks[i]], 1)
            return x

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    m = Block().to(memory_format=fmt)
    for conv in m.convs:
        assert conv.weight.is_contiguous(memory_format=fmt), f"torch weight strides {conv.weight.stride()} not {fmt}"
    return m


def torch_input(x, channels_last):
    """x as an NCHW tensor in the layout asked for, requiring its gradient like nnc's backward computes it."""
    import torch
    t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    return (t.contiguous(memory_format=torch.channels_last) if channels_last else t).requires_grad_(True)


def check_training_step(layer, x, m, xt, tag):
    """dx and every layer's dW, db of one training step (dy = 1) against torch's,
    torch taking each ReLU's derivative from nnc's output (y > 0): where a
    pre-activation lies within rounding of 0 the two libraries may take
    opposite sides of the kink, a difference of the derivative's value, not
    of rounding."""
    import torch
    y = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(y))
    masks = [torch.from_numpy(nchw(y[..., C + i * G:C + (i + 1) * G] > 0).astype(np.float32)) for i in range(L)]
    m.zero_grad(set_to_none=True)
    xt.grad = None
    m(xt, masks).sum().backward()
    check_close(f"DenseBlock torch {tag} dx", dx, nhwc(xt.grad), K_BWD)
    for i, conv in enumerate(m.convs):
        check_close(f"DenseBlock torch {tag} layer{i}.W grad", layer.grads[f"layer{i}.W"],
                    conv.weight.grad.permute(2, 3, 1, 0).numpy(), K_DW)
        check_close(f"DenseBlock torch {tag} layer{i}.b grad", layer.grads[f"layer{i}.b"], conv.bias.grad.numpy(),
                    K_DW)
    xt.grad = None


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
    add_json_arg(ap)
    args = ap.parse_args()
    nnc.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(args.memory_probe, args.threads)
        return
    import torch
    torch.set_num_threads(args.threads)
    layer, x = make()
    y = layer(x)
    print(f"{WORKLOAD}, {args.threads} threads; output, input and weight gradients checked against torch; "
          f"forward+backward computes the input gradient in both libraries")

    def nnc_step():
        out = layer.forward(x, training=True)
        layer.backward(np.ones_like(out))

    nnc_rows = {"forward": timeit(lambda: layer(x), args.reps), "forward+backward": timeit(nnc_step, args.reps)}
    torch_rows = {}
    for cl in (False, True):
        tag = "channels_last" if cl else "NCHW"
        m, xt = torch_block(layer, cl), torch_input(x, cl)
        with torch.no_grad():
            check_close(f"DenseBlock torch {tag} forward", y, nhwc(m(xt)), K_FWD)
        check_training_step(layer, x, m, xt, tag)

        def step():
            m.zero_grad()
            xt.grad = None
            m(xt).sum().backward()

        with torch.no_grad():
            f = timeit(lambda: m(xt), args.reps)
        torch_rows[tag] = {"forward": f, "forward+backward": timeit(step, args.reps)}
    res = Results("bench_densenet")
    print(f"{'workload':<18}{'nnc min/med ms':>18}{'torch layout':>16}{'torch min/med ms':>18}{'ratio':>8}")
    for name, (a, am) in nnc_rows.items():
        res.add(WORKLOAD, name, args.threads, "nnc", a, am)
        for tag, tr in torch_rows.items():
            b, bm = tr[name]
            res.add(WORKLOAD, name, args.threads, f"torch-{tag}", b, bm)
            print(f"{name:<18}{a:>9.2f}/{am:<8.2f}{tag:>16}{b:>9.2f}/{bm:<8.2f}{a / b:>8.2f}")
    mem = probe_peaks(__file__, args.threads, ("nnc", "torch-NCHW", "torch-channels_last"))
    print("peak memory of one training step (MB): " + ", ".join(f"{k} {v:.1f}" for k, v in mem.items()))
    res.meta["peak_memory_mb"] = mem
    res.write(args.json)


if __name__ == "__main__":
    main()
