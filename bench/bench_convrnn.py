"""ConvLSTM2D vs a straightforward PyTorch ConvLSTM and its ONNX Runtime
export.

    python bench/bench_convrnn.py [--threads 2] [--reps 10] [--json PATH]

Workload: batch 8, T=10, 32x32, 16 -> 32 channels, 3x3 kernel.  The PyTorch
version runs one conv2d per step over cat(x_t, h_{t-1}) (NCHW) giving 4*32
channels, then the gate math; autograd does backward.  Equal work in the training
step: both compute the input gradient and the weight and bias gradients
(torch's input requires grad).  Before timing, the output (inference, and
ONNX Runtime's) and dx, dW_x, dW_h, db of one training step are compared
with torch's (_common.check_close), raising on a mismatch.  Peak memory of one training step (forward+backward)
is measured for each library in a fresh process (peak RSS during the step
minus RSS before it).  torch and onnxruntime are optional bench dependencies.
"""
import argparse
import io
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nnc  # noqa: E402
from _common import Results, add_json_arg, check_close, probe_peaks, report_peak, timeit  # noqa: E402

N, T, H, W, CIN, CH, K = 8, 10, 32, 32, 16, 32, 3
# Reduction lengths (check_close): a step's gate pre-activations (bias
# included; the gates' derivatives are below 1, so errors of earlier steps
# shrink); the input gradient, back through every step's conv over the 4 CH
# gate gradients; the weight gradients, summed over every pixel of every step.
K_FWD = K * K * (CIN + CH) + 1
K_BWD = T * K * K * 4 * CH
K_DW = N * T * H * W + K_BWD
WORKLOAD = f"ConvLSTM2D N={N} T={T} {H}x{W} {CIN}->{CH} k={K}"


def torch_module(layer):
    import torch

    class ConvLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(CIN + CH, 4 * CH, K, padding=K // 2)
            w = np.concatenate([layer.params["W_x"], layer.params["W_h"]], axis=2)   # (K,K,CIN+CH,4CH)
            with torch.no_grad():
                self.conv.weight.copy_(torch.from_numpy(w.transpose(3, 2, 0, 1).copy()))
                self.conv.bias.copy_(torch.from_numpy(layer.params["b"]))

        def forward(self, x):   # x (N, T, C, H, W)
            n = x.shape[0]
            h = x.new_zeros(n, CH, H, W)
            c = x.new_zeros(n, CH, H, W)
            out = []
            for t in range(x.shape[1]):
                a = self.conv(torch.cat([x[:, t], h], 1))
                i, f, g, o = torch.split(a, CH, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                out.append(h)
            return torch.stack(out, 1)

    return ConvLSTM()


def make():
    nnc.seed(0)
    layer = nnc.ConvLSTM2D(CIN, CH, K)
    x = np.random.default_rng(0).standard_normal((N, T, H, W, CIN)).astype(np.float32)
    return layer, x


def memory_probe(lib):
    """One training step in this (fresh) process; prints the peak-RSS growth."""
    layer, x = make()
    if lib == "nnc":
        report_peak(lib, lambda: layer.backward(np.ones_like(layer.forward(x, training=True))))
    else:
        import torch
        torch.set_num_threads(2)
        m = torch_module(layer)
        xt = torch_input(x, torch)
        report_peak(lib, lambda: m(xt).sum().backward())


def torch_input(x, torch):
    """(N, T, C, H, W) tensor of x, requiring its gradient like nnc's backward computes it."""
    return torch.from_numpy(x.transpose(0, 1, 4, 2, 3).copy()).requires_grad_(True)


def check_training_step(layer, x, m, xt):
    """dx, dW_x, dW_h, db of one training step (dy = 1) against torch's."""
    dx = layer.backward(np.ones_like(layer.forward(x, training=True)))
    m.zero_grad(set_to_none=True)
    xt.grad = None
    m(xt).sum().backward()
    gw = m.conv.weight.grad.numpy().transpose(2, 3, 1, 0)   # (K, K, CIN + CH, 4 CH)
    check_close("ConvLSTM2D dx", dx, xt.grad.numpy().transpose(0, 1, 3, 4, 2), K_BWD)
    check_close("ConvLSTM2D dW_x", layer.grads["W_x"], gw[:, :, :CIN], K_DW)
    check_close("ConvLSTM2D dW_h", layer.grads["W_h"], gw[:, :, CIN:], K_DW)
    check_close("ConvLSTM2D db", layer.grads["b"], m.conv.bias.grad.numpy(), K_DW)
    xt.grad = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--memory-probe", choices=["nnc", "torch"])
    add_json_arg(ap)
    args = ap.parse_args()
    nnc.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(args.memory_probe)
        return
    import torch
    torch.set_num_threads(args.threads)
    layer, x = make()
    m = torch_module(layer)
    xt = torch_input(x, torch)
    with torch.no_grad():
        ref = m(xt).numpy().transpose(0, 1, 3, 4, 2)
    err = check_close("ConvLSTM2D forward", layer(x), ref, K_FWD)
    check_training_step(layer, x, m, xt)
    print(f"{WORKLOAD}, {args.threads} threads; max |nnc - torch| = {err:.1e}; "
          f"dx and weight gradients checked")
    print("training step: both libraries compute the input gradient and the weight and bias gradients")
    print(f"training memory kept per timestep by nnc: {layer.bytes_per_timestep(N, H, W) / 2**20:.2f} MiB")
    rows = []
    fwd = timeit(lambda: layer(x), args.reps)
    with torch.no_grad():
        tfwd = timeit(lambda: m(xt), args.reps)
    rows.append(("forward (inference)", fwd, "torch", tfwd))

    def nnc_step():
        y = layer.forward(x, training=True)
        layer.backward(np.ones_like(y))

    def torch_step():
        m.zero_grad()
        xt.grad = None
        m(xt).sum().backward()

    rows.append(("forward+backward", timeit(nnc_step, args.reps), "torch", timeit(torch_step, args.reps)))
    try:
        import onnxruntime as ort
        buf = io.BytesIO()
        torch.onnx.export(m, (xt.detach(),), buf, input_names=["x"], output_names=["y"], dynamo=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        sess = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
        xo = xt.detach().numpy()
        check_close("ConvLSTM2D onnxruntime forward", layer(x),
                    sess.run(None, {"x": xo})[0].transpose(0, 1, 3, 4, 2), K_FWD)
        rows.append(("forward (inference)", fwd, "onnxruntime", timeit(lambda: sess.run(None, {"x": xo}), args.reps)))
    except ImportError:
        print("onnxruntime not installed: skipped")
    res = Results("bench_convrnn")
    print(f"{'workload':<22}{'nnc min/med ms':>18}{'peer':>13}{'peer min/med ms':>18}{'ratio':>8}")
    for name, (a, am), peer, (b, bm) in rows:
        print(f"{name:<22}{a:>9.2f}/{am:<8.2f}{peer:>13}{b:>9.2f}/{bm:<8.2f}{a / b:>8.2f}")
        if not any(r["pass"] == name and r["library"] == "nnc" for r in res.rows):
            res.add(WORKLOAD, name, args.threads, "nnc", a, am)
        res.add(WORKLOAD, name, args.threads, peer, b, bm)
    mem = probe_peaks(__file__, args.threads, ("nnc", "torch"))
    print(f"peak memory of one training step: nnc {mem['nnc']:.1f} MB, torch {mem['torch']:.1f} MB "
          f"(ratio {mem['nnc'] / mem['torch']:.2f})")
    res.meta["peak_memory_mb"] = mem
    res.write(args.json)


if __name__ == "__main__":
    main()
