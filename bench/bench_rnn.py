"""Recurrent layers vs PyTorch (and ONNX Runtime for inference).

    unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
    python bench/bench_rnn.py [--threads 2] [--repeat 7] [--rounds 3] [--loaded] [--only LSTM,GRU,RNN] [--json PATH]

Workloads: LSTM, GRU (reset_after=True = torch.nn.GRU) and SimpleRNN (tanh =
torch.nn.RNN) with batch 32, T=100, input 128, hidden 256, forward
(inference) and forward+backward; batch-1 inference with T=100.  Weights are
mapped as the user guide describes (LSTM: the same gate order, b = b_ih +
b_hh; GRU: reset_after=True with the z block negated).  Before timing, the
outputs (torch's and ONNX Runtime's) and, for forward+backward, the input
and weight gradients (both libraries compute them) are compared with
torch's (_common.check_close), raising on a mismatch.  --loaded also runs
everything with a busy process spinning on one
core.  Each workload's contenders run in blocks of --repeat calls, the
blocks of all of them --rounds times over (bench/_common.time_contenders),
so a slow stretch of the machine does not fall on one contender only.
Prints min and median milliseconds over all rounds and the ratio nnc / other
(< 1: nnc faster).  torch and onnxruntime are optional benchmark dependencies.
"""
import argparse
import io
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
import nnc  # noqa: E402
from _common import Results, add_json_arg, check_close, min_median_ms, one_core_busy, time_contenders  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None
try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover
    ort = None


def build(kind, I, H):
    """nnc layer and the equivalent torch module with the same weights."""
    nnc.seed(0)
    if kind == "LSTM":
        layer = nnc.LSTM(I, H)
        tm = torch.nn.LSTM(I, H, batch_first=True)
        with torch.no_grad():
            tm.weight_ih_l0.copy_(torch.from_numpy(layer.params["W_x"]))
            tm.weight_hh_l0.copy_(torch.from_numpy(layer.params["W_h"]))
            layer.params["b"][...] = (tm.bias_ih_l0 + tm.bias_hh_l0).numpy()
    elif kind == "GRU":
        layer = nnc.GRU(I, H, reset_after=True)
        tm = torch.nn.GRU(I, H, batch_first=True)
        neg = np.ones((3 * H, 1), np.float32)
        neg[H:2 * H] = -1  # nnc u = 1 - torch z
        layer.params["W_x"][...] = tm.weight_ih_l0.detach().numpy() * neg
        layer.params["W_h"][...] = tm.weight_hh_l0.detach().numpy() * neg
        layer.params["b_x"][...] = tm.bias_ih_l0.detach().numpy() * neg[:, 0]
        layer.params["b_h"][...] = tm.bias_hh_l0.detach().numpy() * neg[:, 0]
    else:
        layer = nnc.SimpleRNN(I, H, activation="tanh")
        tm = torch.nn.RNN(I, H, batch_first=True, nonlinearity="tanh")
        with torch.no_grad():
            tm.weight_ih_l0.copy_(torch.from_numpy(layer.params["W_xh"]))
            tm.weight_hh_l0.copy_(torch.from_numpy(layer.params["W_hh"]))
            layer.params["b_h"][...] = (tm.bias_ih_l0 + tm.bias_hh_l0).detach().numpy()
    return layer, tm


GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def grad_pairs(kind, layer, tm, H):
    """(name, nnc gradient, torch's in nnc's layout) of every weight and bias."""
    g = {k: v.grad.numpy() for k, v in tm.named_parameters()}
    if kind == "LSTM":
        return [("W_x", layer.grads["W_x"], g["weight_ih_l0"]), ("W_h", layer.grads["W_h"], g["weight_hh_l0"]),
                ("b", layer.grads["b"], g["bias_ih_l0"])]
    if kind == "GRU":
        neg = np.ones(3 * H, np.float32)
        neg[H:2 * H] = -1  # nnc u = 1 - torch z
        return [("W_x", layer.grads["W_x"], g["weight_ih_l0"] * neg[:, None]),
                ("W_h", layer.grads["W_h"], g["weight_hh_l0"] * neg[:, None]),
                ("b_x", layer.grads["b_x"], g["bias_ih_l0"] * neg), ("b_h", layer.grads["b_h"], g["bias_hh_l0"] * neg)]
    return [("W_xh", layer.grads["W_xh"], g["weight_ih_l0"]), ("W_hh", layer.grads["W_hh"], g["weight_hh_l0"]),
            ("b_h", layer.grads["b_h"], g["bias_ih_l0"])]


def check_training_step(kind, layer, tm, x, g):
    """dx and every weight and bias gradient of one training step against torch's.
    Reduction lengths: the input gradient goes back through every step's G*H
    gate gradients; the weight gradients also sum over N*T positions."""
    N, T, _ = x.shape
    H = g.shape[2]
    k_bwd = T * GATES[kind] * H
    layer.forward(x, training=True)
    dx = layer.backward(g)
    tm.zero_grad(set_to_none=True)
    xr = torch.from_numpy(x).requires_grad_(True)
    tm(xr)[0].backward(torch.from_numpy(g))
    check_close(f"{kind} N={N} T={T} dx", dx, xr.grad.numpy(), k_bwd)
    for name, got, ref in grad_pairs(kind, layer, tm, H):
        check_close(f"{kind} N={N} T={T} d{name}", got, ref, N * T + k_bwd)
    tm.zero_grad(set_to_none=True)


def onnx_session(tm, x, threads):
    if ort is None:
        return None
    buf = io.BytesIO()
    try:
        torch.onnx.export(tm, (torch.from_numpy(x),), buf, input_names=["x"], output_names=["y", "h"],
                          dynamo=False)
    except Exception as e:  # noqa: BLE001 - optional comparison
        print(f"  (ONNX export failed: {e.__class__.__name__}: {e})")
        return None
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])


def timed(fns, repeat, rounds):
    """{name: (min ms, median ms)} over ``rounds`` rounds of ``repeat``-call blocks."""
    return {k: min_median_ms(v) for k, v in time_contenders(fns, repeat, rounds=rounds).items()}


def run(kind, N, T, I, H, threads, repeat, rounds, train=True):
    rng = np.random.default_rng(0)
    layer, tm = build(kind, I, H)
    x = rng.standard_normal((N, T, I)).astype(np.float32)
    g = rng.standard_normal((N, T, H)).astype(np.float32)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        ref = tm(xt)[0].numpy()
    k_fwd = I + H + 1   # a step's pre-activations; the gates shrink earlier steps' errors
    check_close(f"{kind} N={N} T={T} forward", layer(x), ref, k_fwd)
    rows = []

    def nnc_fwd():
        layer.forward(x)

    def torch_fwd():
        with torch.no_grad():
            tm(xt)

    sess = onnx_session(tm, x, threads)
    fns = {"nnc": nnc_fwd, "torch": torch_fwd}
    if sess is not None:
        check_close(f"{kind} N={N} T={T} onnxruntime forward", layer(x), sess.run(None, {"x": x})[0], k_fwd)
        fns["onnxruntime"] = lambda: sess.run(None, {"x": x})
    rows.append((f"{kind} N={N} T={T} forward", timed(fns, repeat, rounds)))
    if train:
        check_training_step(kind, layer, tm, x, g)
        xr = xt.clone().requires_grad_(True)
        gt = torch.from_numpy(g)

        def nnc_train():
            layer.forward(x, training=True)
            layer.backward(g)

        def torch_train():
            out = tm(xr)[0]
            out.backward(gt)

        rows.append((f"{kind} N={N} T={T} fwd+bwd", timed({"nnc": nnc_train, "torch": torch_train}, repeat, rounds)))
    return rows


def report(rows, title, res, threads, condition):
    """Prints the table of rows and adds them to res (Results)."""
    for name, r in rows:
        workload, _, pass_ = name.rpartition(" ")
        for lib, (mn, md) in r.items():
            res.add(workload, pass_, threads, lib, mn, md, condition=condition)
    print(f"\n### {title}\n")
    print("| workload | nnc ms (min/med) | torch ms (min/med) | ORT ms (min/med) | nnc/torch | nnc/ORT |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        n, t, o = r["nnc"], r["torch"], r.get("onnxruntime")
        ostr = f"{o[0]:.3f} / {o[1]:.3f}" if o else "-"
        orat = f"{n[0] / o[0]:.2f}" if o else "-"
        print(f"| {name} | {n[0]:.3f} / {n[1]:.3f} | {t[0]:.3f} / {t[1]:.3f} | {ostr} | {n[0] / t[0]:.2f} | {orat} |")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loaded", action="store_true", help="also run with one core loaded by a busy process")
    ap.add_argument("--only", default="LSTM,GRU,RNN")
    add_json_arg(ap)
    args = ap.parse_args()
    nnc.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"nnc {nnc.__version__} isa={nnc._core.get_isa()} threads={args.threads}; torch {torch.__version__}; "
          f"onnxruntime {ort.__version__ if ort else '-'}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    kinds = args.only.split(",")

    def suite():
        rows = []
        for kind in kinds:
            rows += run(kind, 32, 100, 128, 256, args.threads, args.repeat, args.rounds)
        for kind in kinds:
            rows += run(kind, 1, 100, 128, 256, args.threads, 4 * args.repeat, args.rounds, train=False)
        return rows

    res = Results("bench_rnn")
    report(suite(), f"idle machine, {args.threads} threads", res, args.threads, "idle")
    if args.loaded:
        with one_core_busy():
            report(suite(), f"one core loaded by a busy process, {args.threads} threads", res, args.threads,
                   "one core loaded")
    res.write(args.json)


if __name__ == "__main__":
    main()
