"""Shape sweep: every layer family on shapes drawn at random (a fixed seed)
from realistic ranges, nnc against PyTorch, ONNX Runtime (forward) and NumPy
(Dense), forward and forward+backward, at each thread count asked for.

    python bench/bench_sweep.py [--threads 1,2] [--families dense,lstm] [--shapes 15] [--seed 0]
                                [--reps 3] [--rounds 3] [--quick] [--json PATH]

Families: dense; conv3x3, conv1x1, conv_strided, conv_dilated, conv_grouped
(depthwise and grouped); maxpool, avgpool; rnn (SimpleRNN, tanh), lstm, gru
(reset_after=True, as torch.nn.GRU); convlstm (ConvLSTM2D); denseblock.
Each family draws --shapes shapes (default 15) from its own stream of
numpy's default_rng seeded with (--seed, a hash of the family's name), so a
shape does not change when other families are left out.  Sizes are drawn
log-uniformly: batch 1-128, channels 3-512 (half of the draws rounded to a
multiple of 8), features and hidden sizes 32-1024, spatial sizes 7-112
(DenseBlock 7-56, ConvLSTM2D 7-64), sequences 10-200 (ConvLSTM2D: 10-40
steps, since its torch peer and the ONNX export unroll them).

The cap: a shape's forward pass is estimated at FLOPs / 50 GFLOP/s + bytes /
20 GB/s (bytes: inputs, outputs and weights, a recurrent layer's W_h counted
once per step) and must come to at most CAP_MS (40 ms); a drawn shape above
it has its batch halved until it fits, and is drawn again when it does not
fit at batch 1.  Forward+backward costs about three forward passes and
1 thread about twice 2 threads, so a call stays within a few hundred ms on
any peer.

Before timing, nnc's output and (for forward+backward) its input and weight
gradients are compared once per shape with torch's in every layout timed,
and its output with ONNX Runtime's and NumPy's (bench/_common.check_close,
the float32 tolerance of the reduction length), raising MismatchError on a
mismatch: a wrong layout mapping cannot give a fast figure.  torch runs the
convolutions, pooling and DenseBlock in NCHW and channels_last (each its own
module, asserted to be in that layout); the best of the two counts.  Each
torch module is exported to ONNX once (dynamo=False) and run by one session
per thread count.  Threads: nnc.set_num_threads, torch.set_num_threads, the
session's intra_op_num_threads and NumPy's BLAS pool (threadpoolctl).

Timing: for each shape and thread count, the contenders run in blocks of
--reps calls after two warm-up calls, the blocks of all of them --rounds
times over (bench/_common.time_contenders), so a slow stretch of a shared
machine falls on all of them.  A suspect timing (nnc above 1.15x its best
peer, or any contender more than 1.5x slower than on the fewest threads) is
timed once more, every contender, and the minimum of all calls counts, so
that a core taken by another process for a while does not pass for a weak
shape (the line ends with "timed again").  Per shape: min ms of nnc and every peer and
nnc / the best peer (< 1: nnc faster); per family, direction and thread
count: the geometric mean and the worst of those ratios; per shape and
family: nnc's time on the most threads over its time on 1 (> 1: slower with
more threads).  Medians are in the JSON rows.  --quick: 3 shapes per family,
1 round (a smoke run).  --summarize JSON prints the summary tables of an
earlier run's --json file again; --match REGEX times only the drawn shapes
whose name matches (to time a weak shape again).
"""
import argparse
import io
import json
import math
import os
import platform
import re
import sys
import time
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (MismatchError, Results, add_json_arg, check_close, check_torch_conv, hwio_to_oihw,  # noqa: E402
                     nchw, nhwc, time_contenders, torch_conv)
from _results import geomean  # noqa: E402

import nnc  # noqa: E402

FAMILIES = ("dense", "conv3x3", "conv1x1", "conv_strided", "conv_dilated", "conv_grouped", "maxpool", "avgpool",
            "rnn", "lstm", "gru", "convlstm", "denseblock")
CAP_MS = 40.0            # estimated forward cost of one shape, see the module docstring
FLOP_RATE = 50e9         # FLOP/s of the estimate
BYTE_RATE = 20e9         # bytes/s of the estimate
PASSES = ("fwd", "f+b")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


# -- shapes --------------------------------------------------------------------------------------

def _log_int(rng, lo, hi):
    """An integer in [lo, hi], log-uniform."""
    return int(min(hi, max(lo, math.floor(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))))))


def _channels(rng, lo, hi):
    """A channel or feature count in [lo, hi]: log-uniform, half the time rounded to a multiple of 8."""
    c = _log_int(rng, lo, hi)
    if rng.random() < 0.5 and c >= 8:
        c = min(hi, max(8, 8 * round(c / 8)))
    return c


def _conv_out(size, k, s, p, d=1):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _draw(family, rng):
    """One shape of ``family`` (a dict) before the cap."""
    N = _log_int(rng, 1, 128)
    if family == "dense":
        return dict(N=N, I=_channels(rng, 32, 1024), O=_channels(rng, 32, 1024))
    if family in GATES:
        return dict(N=N, T=_log_int(rng, 10, 200), I=_channels(rng, 32, 1024), H=_channels(rng, 32, 1024))
    if family == "convlstm":
        k = int(rng.choice([3, 3, 5]))
        return dict(N=_log_int(rng, 1, 32), T=_log_int(rng, 10, 40), S=_log_int(rng, 7, 64),
                    C=_channels(rng, 3, 64), H=_channels(rng, 8, 128), k=k)
    if family == "denseblock":
        return dict(N=N, S=_log_int(rng, 7, 56), C=_channels(rng, 16, 256), L=int(rng.integers(2, 9)),
                    G=_log_int(rng, 8, 48))
    S = _log_int(rng, 7, 112)
    if family in ("maxpool", "avgpool"):
        k, s, p = [(2, 2, 0), (3, 2, 1), (3, 1, 1), (3, 3, 0)][int(rng.integers(4))]
        return dict(N=N, S=S, C=_channels(rng, 3, 512), k=k, s=s, p=p)
    C, K = _channels(rng, 3, 512), _channels(rng, 3, 512)
    shape = dict(N=N, S=S, C=C, K=K, k=3, s=1, p=1, d=1, g=1)
    if family == "conv1x1":
        shape.update(k=1, p=0)
    elif family == "conv_strided":
        k = int(rng.choice([1, 3, 3, 5, 7]))
        shape.update(k=k, s=2, p=k // 2)
    elif family == "conv_dilated":
        d = int(rng.integers(2, 5))
        shape.update(d=d, p=d)
    elif family == "conv_grouped":
        k = int(rng.choice([3, 3, 5]))
        s = int(rng.choice([1, 1, 2]))
        if rng.random() < 0.6:   # depthwise
            shape.update(K=C, g=C)
        else:
            g = int(rng.choice([2, 4, 8, 16, 32]))
            cg, kg = _log_int(rng, 4, min(64, 512 // g)), _log_int(rng, 4, min(64, 512 // g))
            shape.update(C=g * cg, K=g * kg, g=g)
        shape.update(k=k, s=s, p=k // 2)
    return shape


def work(family, s):
    """(FLOPs, bytes) of one forward pass of shape s (the cap's estimate)."""
    N = s["N"]
    if family == "dense":
        return 2 * N * s["I"] * s["O"], 4 * (N * s["I"] + s["I"] * s["O"] + N * s["O"])
    if family in GATES:
        G, T, I, H = GATES[family], s["T"], s["I"], s["H"]
        return 2 * N * T * G * H * (I + H), 4 * (N * T * (I + H) + G * H * I + T * G * H * H)
    if family == "convlstm":
        px = N * s["T"] * s["S"] ** 2
        return 2 * px * 4 * s["H"] * s["k"] ** 2 * (s["C"] + s["H"]), 4 * px * (s["C"] + 6 * s["H"])
    if family == "denseblock":
        px, C, G = N * s["S"] ** 2, s["C"], s["G"]
        flops = sum(2 * px * G * 9 * (C + i * G) for i in range(s["L"]))
        return flops, 4 * px * (2 * C + 2 * s["L"] * G)
    S, C, k = s["S"], s["C"], s["k"]
    O = _conv_out(S, k, s["s"], s["p"], s.get("d", 1))
    if family in ("maxpool", "avgpool"):
        return N * O * O * C * k * k, 4 * N * C * (S * S + O * O)
    K = s["K"]
    return 2 * N * O * O * K * k * k * C // s["g"], 4 * (N * S * S * C + N * O * O * K + k * k * C // s["g"] * K)


def cost_ms(family, s):
    flops, nbytes = work(family, s)
    return 1e3 * (flops / FLOP_RATE + nbytes / BYTE_RATE)


def _valid(family, s):
    if family.startswith("conv") and family != "convlstm":
        return _conv_out(s["S"], s["k"], s["s"], s["p"], s["d"]) >= 1
    if family in ("maxpool", "avgpool"):
        return _conv_out(s["S"], s["k"], s["s"], s["p"]) >= 1
    return True


def draw_shapes(family, count=15, seed=0):
    """``count`` distinct shapes of ``family`` within the cap, the same for a
    seed whatever other families are drawn."""
    rng = np.random.default_rng([seed, zlib.crc32(family.encode())])
    out, names = [], set()
    while len(out) < count:
        s = _draw(family, rng)
        while cost_ms(family, s) > CAP_MS and s["N"] > 1:
            s["N"] = max(1, s["N"] // 2)
        if cost_ms(family, s) <= CAP_MS and _valid(family, s) and describe(family, s) not in names:
            out.append(s)
            names.add(describe(family, s))
    return out


def describe(family, s):
    """The workload name of a shape: the family and its sizes."""
    N = s["N"]
    if family == "dense":
        return f"dense N={N} {s['I']}->{s['O']}"
    if family in GATES:
        return f"{family} N={N} T={s['T']} {s['I']}->{s['H']}"
    if family == "convlstm":
        return f"convlstm N={N} T={s['T']} {s['S']}x{s['S']} {s['C']}->{s['H']} k{s['k']}"
    if family == "denseblock":
        return f"denseblock N={N} {s['S']}x{s['S']} C={s['C']} L={s['L']} G={s['G']}"
    if family in ("maxpool", "avgpool"):
        return f"{family} N={N} {s['S']}x{s['S']}x{s['C']} k{s['k']}s{s['s']}p{s['p']}"
    extra = (f"d{s['d']}" if s["d"] > 1 else "") + (f"g{s['g']}" if s["g"] > 1 else "")
    return f"{family} N={N} {s['S']}x{s['S']} {s['C']}->{s['K']} k{s['k']}s{s['s']}p{s['p']}{extra}"


# -- cases: nnc and its peers on one shape, checked ------------------------------------------------

class Case:
    """One shape: fns {library: (forward, forward+backward or None)} and the
    ONNX model (bytes, {input name: array}) that sessions run."""

    def __init__(self, name):
        self.name = name
        self.fns = {}
        self.onnx = None


def _onnx_bytes(module, args, input_names):
    import torch
    buf = io.BytesIO()
    torch.onnx.export(module.eval(), tuple(torch.from_numpy(a) for a in args), buf, input_names=input_names,
                      dynamo=False)
    return buf.getvalue()


def ort_session(model, threads):
    """An ONNX Runtime session of model (bytes) on ``threads`` intra-op threads."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def _torch_pair(module, args, gy):
    """(forward, forward+backward) of a torch module on tensors ``args`` (the
    first one's gradient computed), output gradient gy."""
    import torch
    xg = args[0].detach().clone().requires_grad_(True)

    def fwd():
        with torch.no_grad():
            module(*args)

    def fb():
        module.zero_grad(set_to_none=True)
        xg.grad = None
        out = module(xg, *args[1:])
        (out[0] if isinstance(out, tuple) else out).backward(gy)
    return fwd, fb


def _nnc_pair(layer, x, gy):
    def fb():
        layer.forward(x, training=True)
        layer.backward(gy)
    return (lambda: layer.forward(x)), fb


def _rand(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def case_dense(s, rng):
    import torch
    N, I, O = s["N"], s["I"], s["O"]
    layer = nnc.Dense(I, O)
    layer.params["b"][...] = 0.1 * rng.standard_normal(O)
    W, b = layer.params["W"], layer.params["b"]
    x, gy = _rand(rng, (N, I)), _rand(rng, (N, O))
    c = Case(describe("dense", s))
    c.fns["nnc"] = _nnc_pair(layer, x, gy)

    def np_fb():
        x @ W.T + b
        gy @ W, gy.T @ x, gy.sum(0)
    c.fns["numpy"] = (lambda: x @ W.T + b, np_fb)
    lin = torch.nn.Linear(I, O)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(W))
        lin.bias.copy_(torch.from_numpy(b))
    y = layer.forward(x, training=True)
    dx = layer.backward(gy)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = lin(xt)
    yt.backward(torch.from_numpy(gy))
    check_close(f"{c.name} numpy y", y, x @ W.T + b, I + 1)
    check_close(f"{c.name} torch y", y, yt.detach().numpy(), I + 1)
    check_close(f"{c.name} torch dx", dx, xt.grad.numpy(), O)
    check_close(f"{c.name} torch dW", layer.grads["W"], lin.weight.grad.numpy(), N)
    check_close(f"{c.name} torch db", layer.grads["b"], lin.bias.grad.numpy(), N)
    c.fns["torch"] = _torch_pair(lin, (torch.from_numpy(x),), torch.from_numpy(gy))
    c.onnx = (_onnx_bytes(lin, (x,), ["x"]), {"x": x}, lambda out: out, I + 1)
    return c


def case_conv(family, s, rng):
    import torch
    layer = nnc.Conv2D(s["C"], s["K"], s["k"], stride=s["s"], padding=s["p"], dilation=s["d"], groups=s["g"])
    layer.params["b"][...] = 0.1 * rng.standard_normal(s["K"])
    x = _rand(rng, (s["N"], s["S"], s["S"], s["C"]))
    gy = _rand(rng, layer.forward(x).shape)
    c = Case(describe(family, s))
    c.fns["nnc"] = _nnc_pair(layer, x, gy)
    for lib, fmt in (("torch-nchw", torch.contiguous_format), ("torch-cl", torch.channels_last)):
        m = torch_conv(layer, fmt)
        check_torch_conv(f"{c.name} {lib}", layer, m, x, gy, fmt)
        c.fns[lib] = _torch_pair(m, (torch.from_numpy(nchw(x)).contiguous(memory_format=fmt),),
                                 torch.from_numpy(nchw(gy)).contiguous(memory_format=fmt))
    k_fwd = s["k"] ** 2 * s["C"] // s["g"] + 1
    c.onnx = (_onnx_bytes(torch_conv(layer), (nchw(x),), ["x"]), {"x": nchw(x)}, nhwc, k_fwd)
    return c


def case_pool(family, s, rng):
    import torch
    k, st, p = s["k"], s["s"], s["p"]
    if family == "maxpool":
        layer = nnc.MaxPool2D(k, stride=st, padding=p)
        module = torch.nn.MaxPool2d(k, st, p)
    else:
        layer = nnc.AvgPool2D(k, stride=st, padding=p)
        module = torch.nn.AvgPool2d(k, st, p, count_include_pad=False)   # nnc: padded cells not counted
    x = _rand(rng, (s["N"], s["S"], s["S"], s["C"]))
    y = layer.forward(x, training=True)
    gy = _rand(rng, y.shape)
    dx = layer.backward(gy)
    c = Case(describe(family, s))
    c.fns["nnc"] = _nnc_pair(layer, x, gy)
    for lib, fmt in (("torch-nchw", torch.contiguous_format), ("torch-cl", torch.channels_last)):
        xt = torch.from_numpy(nchw(x)).contiguous(memory_format=fmt)
        gt = torch.from_numpy(nchw(gy)).contiguous(memory_format=fmt)
        xg = xt.clone().requires_grad_(True)
        yt = module(xg)
        yt.backward(gt)
        if not (yt.is_contiguous(memory_format=fmt) and xg.grad.is_contiguous(memory_format=fmt)):
            raise MismatchError(f"{c.name} {lib}: torch output strides {yt.stride()} not in {fmt}")
        check_close(f"{c.name} {lib} y", y, nhwc(yt), k * k)
        check_close(f"{c.name} {lib} dx", dx, nhwc(xg.grad), k * k)
        c.fns[lib] = _torch_pair(module, (xt,), gt)
    c.onnx = (_onnx_bytes(module, (nchw(x),), ["x"]), {"x": nchw(x)}, nhwc, k * k)
    return c


def case_recurrent(family, s, rng):
    import torch
    from bench_rnn import build, check_training_step
    N, T, I, H = s["N"], s["T"], s["I"], s["H"]
    kind = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[family]
    layer, tm = build(kind, I, H)
    x, gy = _rand(rng, (N, T, I)), _rand(rng, (N, T, H))
    c = Case(describe(family, s))
    with torch.no_grad():
        check_close(f"{c.name} torch y", layer.forward(x), tm(torch.from_numpy(x))[0].numpy(), I + H + 1)
    check_training_step(kind, layer, tm, x, gy)
    c.fns["nnc"] = _nnc_pair(layer, x, gy)
    c.fns["torch"] = _torch_pair(tm, (torch.from_numpy(x),), torch.from_numpy(gy))
    c.onnx = (_onnx_bytes(tm, (x,), ["x"]), {"x": x}, lambda out: out, I + H + 1)
    return c


def torch_convlstm(layer):
    """A ConvLSTM in torch with nnc ConvLSTM2D ``layer``'s weights: one conv
    per step over cat(x_t, h) (NCHW), input (N, T, C, H, W)."""
    import torch
    cin, ch, k = layer.params["W_x"].shape[2], layer.params["W_h"].shape[2], layer.params["W_x"].shape[0]

    class ConvLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(cin + ch, 4 * ch, k, padding=k // 2)
            with torch.no_grad():
                w = np.concatenate([layer.params["W_x"], layer.params["W_h"]], axis=2)
                self.conv.weight.copy_(torch.from_numpy(hwio_to_oihw(w)))
                self.conv.bias.copy_(torch.from_numpy(layer.params["b"]))

        def forward(self, x):
            h = x.new_zeros(x.shape[0], ch, x.shape[3], x.shape[4])
            c, hs = h, []
            for t in range(x.shape[1]):
                i, f, g, o = torch.split(self.conv(torch.cat([x[:, t], h], 1)), ch, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                hs.append(h)
            return torch.stack(hs, 1)
    return ConvLSTM()


def case_convlstm(s, rng):
    import torch
    N, T, S, C, H, k = s["N"], s["T"], s["S"], s["C"], s["H"], s["k"]
    layer = nnc.ConvLSTM2D(C, H, k)
    x, gy = _rand(rng, (N, T, S, S, C)), _rand(rng, (N, T, S, S, H))
    to_t = (0, 1, 4, 2, 3)    # (N, T, H, W, C) -> (N, T, C, H, W)
    to_n = (0, 1, 3, 4, 2)
    m = torch_convlstm(layer)
    xt, gt = torch.from_numpy(x.transpose(to_t).copy()), torch.from_numpy(gy.transpose(to_t).copy())
    c = Case(describe("convlstm", s))
    k_fwd, k_bwd = k * k * (C + H) + 1, T * k * k * 4 * H
    with torch.no_grad():
        check_close(f"{c.name} torch y", layer.forward(x), m(xt).numpy().transpose(to_n), k_fwd)
    layer.forward(x, training=True)
    dx = layer.backward(gy)
    xg = xt.clone().requires_grad_(True)
    m(xg).backward(gt)
    gw = m.conv.weight.grad.permute(2, 3, 1, 0).numpy()
    check_close(f"{c.name} torch dx", dx, xg.grad.numpy().transpose(to_n), k_bwd)
    check_close(f"{c.name} torch dW_x", layer.grads["W_x"], gw[:, :, :C], N * T * S * S + k_bwd)
    check_close(f"{c.name} torch dW_h", layer.grads["W_h"], gw[:, :, C:], N * T * S * S + k_bwd)
    c.fns["nnc"] = _nnc_pair(layer, x, gy)
    c.fns["torch"] = _torch_pair(m, (xt,), gt)
    c.onnx = (_onnx_bytes(m, (xt.numpy(),), ["x"]), {"x": xt.numpy()}, lambda out: out.transpose(to_n), k_fwd)
    return c


def torch_denseblock(layer, fmt):
    """nnc DenseBlock ``layer`` in torch (conv + ReLU, torch.cat per layer) in
    memory format fmt; forward(x, masks) replaces layer i's ReLU by a product
    with masks[i] (the check's)."""
    import torch
    convs = torch.nn.ModuleList()
    for i in range(layer.num_layers):
        w, b = layer.params[f"layer{i}.W"], layer.params[f"layer{i}.b"]
        conv = torch.nn.Conv2d(w.shape[2], w.shape[3], w.shape[0], padding=w.shape[0] // 2)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(hwio_to_oihw(w)))
            conv.bias.copy_(torch.from_numpy(b))
        convs.append(conv)

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = convs

        def forward(self, x, masks=None):
            for i, conv in enumerate(self.convs):
                z = conv(x)
                x = torch.cat([x, torch.relu(z) if masks is None else z * masks[i]], 1)
            return x
    m = Block().to(memory_format=fmt)
    if not all(conv.weight.is_contiguous(memory_format=fmt) for conv in m.convs):
        raise MismatchError(f"DenseBlock: torch weights not in {fmt}")
    return m


def case_denseblock(s, rng):
    import torch
    N, S, C, L, G = s["N"], s["S"], s["C"], s["L"], s["G"]
    layer = nnc.DenseBlock(C, L, G)
    for i in range(L):
        layer.params[f"layer{i}.b"][...] = 0.1 * rng.standard_normal(G)
    x = _rand(rng, (N, S, S, C))
    y = layer.forward(x, training=True)
    gy = _rand(rng, y.shape)
    dx = layer.backward(gy)
    c = Case(describe("denseblock", s))
    k_fwd = sum(9 * (C + i * G) + 1 for i in range(L))
    k_bwd = L * (9 * G + 1)
    masks = [torch.from_numpy(nchw(y[..., C + i * G:C + (i + 1) * G] > 0).astype(np.float32)) for i in range(L)]
    c.fns["nnc"] = _nnc_pair(layer, x, gy)
    for lib, fmt in (("torch-nchw", torch.contiguous_format), ("torch-cl", torch.channels_last)):
        m = torch_denseblock(layer, fmt)
        xt = torch.from_numpy(nchw(x)).contiguous(memory_format=fmt)
        gt = torch.from_numpy(nchw(gy)).contiguous(memory_format=fmt)
        with torch.no_grad():
            check_close(f"{c.name} {lib} y", y, nhwc(m(xt)), k_fwd)
        xg = xt.clone().requires_grad_(True)
        m(xg, [mk.contiguous(memory_format=fmt) for mk in masks]).backward(gt)
        check_close(f"{c.name} {lib} dx", dx, nhwc(xg.grad), k_bwd)
        for i, conv in enumerate(m.convs):
            check_close(f"{c.name} {lib} layer{i}.W grad", layer.grads[f"layer{i}.W"],
                        conv.weight.grad.permute(2, 3, 1, 0).numpy(), N * S * S + k_bwd)
        c.fns[lib] = _torch_pair(m, (xt,), gt)
    c.onnx = (_onnx_bytes(torch_denseblock(layer, torch.contiguous_format), (nchw(x),), ["x"]), {"x": nchw(x)},
              nhwc, k_fwd)
    return c


def make_case(family, s, seed=0):
    """The Case of shape s of family, checked against every peer."""
    nnc.seed(seed)
    rng = np.random.default_rng(seed)
    if family == "dense":
        return case_dense(s, rng)
    if family in ("maxpool", "avgpool"):
        return case_pool(family, s, rng)
    if family in GATES:
        return case_recurrent(family, s, rng)
    if family == "convlstm":
        return case_convlstm(s, rng)
    if family == "denseblock":
        return case_denseblock(s, rng)
    return case_conv(family, s, rng)


# -- summaries -----------------------------------------------------------------------------------

def family_of(workload):
    return workload.split(" ", 1)[0]


def shape_ratios(rows, stat="min_ms", upto=False):
    """{(workload, pass, threads): (nnc / best peer, best peer's library)} of
    result rows (dicts with workload, pass, threads, library and stat); rows
    without nnc or without a peer are left out.  upto: a peer's best time at
    any thread count up to nnc's (a user would run a peer on fewer threads
    when more make it slower, as on a loaded machine)."""
    groups = {}
    for r in rows:
        groups.setdefault((r["workload"], r["pass"]), {})[(r["library"], r["threads"])] = r[stat]
    out = {}
    for (workload, pass_), times in groups.items():
        for (lib, t), nnc_time in times.items():
            if lib != "nnc":
                continue
            peers = {}
            for (plib, pt), v in times.items():
                if plib != "nnc" and (pt <= t if upto else pt == t):
                    peers[plib] = min(v, peers.get(plib, v))
            if peers:
                best = min(peers, key=peers.get)
                out[(workload, pass_, t)] = (nnc_time / peers[best], best)
    return out


def family_summary(ratios):
    """{(family, pass, threads): {"n", "geomean", "worst", "worst_workload"}}
    of shape_ratios' {(workload, pass, threads): (ratio, peer)}."""
    per = {}
    for (workload, pass_, threads), (ratio, _) in ratios.items():
        per.setdefault((family_of(workload), pass_, threads), []).append((ratio, workload))
    out = {}
    for key, vals in per.items():
        worst = max(vals)
        out[key] = {"n": len(vals), "geomean": geomean([v for v, _ in vals]), "worst": worst[0],
                    "worst_workload": worst[1]}
    return out


def thread_scaling(rows, stat="min_ms"):
    """{(workload, pass): nnc's time on the most threads / on the fewest} of
    result rows measured at two thread counts or more (> 1: slower with more)."""
    per = {}
    for r in rows:
        if r["library"] == "nnc":
            per.setdefault((r["workload"], r["pass"]), {})[r["threads"]] = r[stat]
    return {k: v[max(v)] / v[min(v)] for k, v in per.items() if len(v) > 1}


# -- the run ---------------------------------------------------------------------------------------

def cpu_header():
    """{model name, vendor, family, model} of the first CPU in /proc/cpuinfo."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, val = line.partition(":")
                info[key.strip()] = val.strip()
    except OSError:
        pass
    return {"cpu": info.get("model name", platform.processor()), "vendor": info.get("vendor_id", "?"),
            "cpu_family": info.get("cpu family", "?"), "cpu_model": info.get("model", "?")}


def versions():
    out = {"nnc": nnc.__version__, "isa": nnc._core.get_isa(), "numpy": np.__version__}
    for mod in ("torch", "onnxruntime"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = "absent"
    return out


def set_threads(t, blas):
    nnc.set_num_threads(t)
    try:
        import torch
        torch.set_num_threads(t)
    except ImportError:
        pass
    if blas is not None:
        blas.limit(limits=t, user_api="blas")


def suspect(ms, fewer_ms):
    """Whether a timing ({library: min ms}) is timed again: nnc above 1.15x its
    best peer, or any contender (nnc or a peer) more than 1.5x slower than on
    fewer threads (fewer_ms, or None), the mark of a core taken by another
    process during its blocks."""
    peers = [v for k, v in ms.items() if k != "nnc"]
    if peers and ms["nnc"] > 1.15 * min(peers):
        return True
    return bool(fewer_ms) and any(v > 1.5 * fewer_ms[k] for k, v in ms.items() if k in fewer_ms)


def run_case(case, threads, reps, rounds, res, blas):
    """Times every contender of case at each thread count (ONNX Runtime's
    output checked once per session); a suspect timing is timed once more,
    every contender, and the minimum of all calls counts.  Yields (pass,
    threads, {library: min ms}, timed again)."""
    fewer = {}
    for t in sorted(threads):
        set_threads(t, blas)
        fwd = {lib: f for lib, (f, _) in case.fns.items()}
        if case.onnx is not None:
            model, feeds, to_nnc, k = case.onnx
            sess = ort_session(model, t)
            check_close(f"{case.name} ort y ({t} threads)", case.fns["nnc"][0](), to_nnc(sess.run(None, feeds)[0]), k)
            fwd["ort"] = lambda sess=sess, feeds=feeds: sess.run(None, feeds)
        for pass_, fns in (("fwd", fwd), ("f+b", {lib: fb for lib, (_, fb) in case.fns.items() if fb})):
            times = time_contenders(fns, reps, rounds=rounds)
            again = suspect({lib: min(v) for lib, v in times.items()}, fewer.get(pass_))
            if again:
                for lib, v in time_contenders(fns, reps, rounds=rounds).items():
                    times[lib] = sorted(times[lib] + v)
            res.add_times(case.name, pass_, t, times)
            fewer.setdefault(pass_, {lib: min(v) for lib, v in times.items()})
            yield pass_, t, {lib: 1e3 * min(v) for lib, v in times.items()}, again


def fmt_ratio(v):
    return f"{v:.2f}" if v >= 0.1 else f"{v:.2g}"


def _summary_table(summ, fams, threads):
    print(f"{'family':14s}" + "".join(f"{p + ' ' + str(t) + 'T':>22s}" for t in threads for p in PASSES))
    for fam in fams:
        cells = []
        for t in threads:
            for p in PASSES:
                s = summ.get((fam, p, t))
                cells.append(f"{fmt_ratio(s['geomean'])} (worst {fmt_ratio(s['worst'])})" if s else "-")
        print(f"{fam:14s}" + "".join(f"{c:>22s}" for c in cells))


def print_summary(rows, threads, top=5):
    """Prints the per-family tables; returns (family_summary, family_summary
    with peers at up to nnc's threads, thread_scaling)."""
    ratios = shape_ratios(rows)
    summ = family_summary(ratios)
    summ_upto = family_summary(shape_ratios(rows, upto=True))
    fams = [f for f in FAMILIES if any(k[0] == f for k in summ)]
    print("\n## Per family: nnc / best peer at the same thread count (min times); geometric mean (worst shape)")
    _summary_table(summ, fams, threads)
    if len(threads) > 1:
        print("\n## The same, each peer at its faster thread count up to nnc's")
        _summary_table(summ_upto, fams, threads)
    t = max(threads)
    peers = "each peer at its faster thread count up to " if len(threads) > 1 else ""
    print(f"\n## Worst {top} shapes per family and pass at {t} thread{'s' if t > 1 else ''}: nnc / best peer "
          f"({peers}{t})")
    worst_of = shape_ratios(rows, upto=True)
    for fam in fams:
        for p in PASSES:
            worst = sorted(((r, w, peer) for (w, pp, tt), (r, peer) in worst_of.items()
                            if family_of(w) == fam and pp == p and tt == t), reverse=True)[:top]
            if worst:
                print(f"{fam} {p}: " + "; ".join(f"{w.split(' ', 1)[1]} {fmt_ratio(r)} ({peer})"
                                                for r, w, peer in worst))
    scal = thread_scaling(rows)
    if scal:
        print(f"\n## nnc at {max(threads)} threads / at {min(threads)} (> 1: slower with more threads); "
              f"geometric mean (worst, shapes above 1)")
        print(f"{'family':14s}" + "".join(f"{p:>32s}" for p in PASSES))
        for fam in fams:
            cells = []
            for p in PASSES:
                v = [(r, w) for (w, pp), r in scal.items() if family_of(w) == fam and pp == p]
                cells.append(f"{fmt_ratio(geomean([r for r, _ in v]))} (worst {fmt_ratio(max(v)[0])}, "
                             f"{sum(r > 1 for r, _ in v)} > 1)" if v else "-")
            print(f"{fam:14s}" + "".join(f"{c:>32s}" for c in cells))
        slower = sorted(((r, w, p) for (w, p), r in scal.items() if r > 1), reverse=True)[:3 * top]
        if slower:
            print("slowest with more threads: " + "; ".join(f"{w} {p} {fmt_ratio(r)}" for r, w, p in slower))
    return summ, summ_upto, scal


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated (default: all)")
    ap.add_argument("--shapes", type=int, default=15, help="shapes per family (default 15)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reps", type=int, default=3, help="calls per block (default 3)")
    ap.add_argument("--rounds", type=int, default=3, help="blocks per contender (default 3)")
    ap.add_argument("--quick", action="store_true", help="3 shapes per family, 1 round: a smoke run")
    ap.add_argument("--match", metavar="REGEX", help="time only the drawn shapes whose name (as printed) matches")
    ap.add_argument("--summarize", metavar="JSON", help="print the summary tables of an earlier run's --json file")
    add_json_arg(ap)
    args = ap.parse_args()
    if args.summarize:
        with open(args.summarize) as f:
            doc = json.load(f)
        print(f"# {args.summarize}: {doc.get('date', '?')}, cpu {doc.get('cpu', '?')}, isa {doc.get('isa', '?')}")
        print_summary(doc["rows"], sorted({r["threads"] for r in doc["rows"]}))
        return
    threads = [int(t) for t in args.threads.split(",")]
    families = args.families.split(",")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        ap.error(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")
    n_shapes, rounds = (3, 1) if args.quick else (args.shapes, args.rounds)
    try:
        from threadpoolctl import ThreadpoolController
        blas = ThreadpoolController()
    except ImportError:
        blas = None
    head = {**cpu_header(), **versions(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "threads": threads, "seed": args.seed, "shapes_per_family": n_shapes, "reps": args.reps,
            "rounds": rounds, "cap_ms": CAP_MS, "loadavg_start": loadavg()}
    print(f"# shape sweep, {head['date']}")
    print(f"# cpu: {head['cpu']} (vendor {head['vendor']}, family {head['cpu_family']}, model {head['cpu_model']}), "
          f"{os.cpu_count()} CPUs; load average {head['loadavg_start']}")
    buf = io.StringIO()
    nnc.show_config(file=buf)
    print("".join(f"# {line}\n" for line in buf.getvalue().splitlines()), end="")
    print(f"# nnc {head['nnc']} isa {head['isa']} | torch {head['torch']} | onnxruntime {head['onnxruntime']} | "
          f"numpy {head['numpy']}")
    print(f"# threads {args.threads}; seed {args.seed}; {n_shapes} shapes per family; blocks of {args.reps} calls, "
          f"{rounds} round(s); cap {CAP_MS:g} ms estimated forward; ms = min per call; ratio = nnc / best peer")
    res = Results("bench_sweep")
    res.meta.update(head)
    t0 = time.perf_counter()
    for fam in families:
        print(f"\n## {fam}")
        for s in draw_shapes(fam, n_shapes, args.seed):
            if args.match and not re.search(args.match, describe(fam, s)):
                continue
            set_threads(max(threads), blas)
            case = make_case(fam, s, args.seed)
            for pass_, t, ms, again in run_case(case, threads, args.reps, rounds, res, blas):
                peers = {k: v for k, v in ms.items() if k != "nnc"}
                best = min(peers, key=peers.get)
                cells = "  ".join(f"{k} {v:.3f}" for k, v in peers.items())
                print(f"{case.name:48s} {pass_:3s} {t}T  nnc {ms['nnc']:.3f}  {cells}  "
                      f"ratio {fmt_ratio(ms['nnc'] / peers[best])} ({best}){'  timed again' if again else ''}",
                      flush=True)
    res.meta["loadavg_end"] = loadavg()
    print(f"\n# {time.perf_counter() - t0:.0f} s; load average at the end {res.meta['loadavg_end']}")
    print_summary(res.rows, threads)
    res.write(args.json)


if __name__ == "__main__":
    main()
