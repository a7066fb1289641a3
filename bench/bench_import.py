"""Imported models: the test models of tests/torch_models.py at benchmark
sizes, nnc's model from ``nnc.onnx.load`` of their ONNX export against ONNX
Runtime running the same file and PyTorch running the module.

    python bench/bench_import.py [--threads 1 2] [--reps 20] [--rounds 2] [--json PATH]

Inference at batch 64 and batch 1 (5x the repetitions), at each thread
count.  nnc's model takes its own layouts (NHWC images, the default of the
importers); ONNX Runtime and PyTorch take NCHW.  Before timing, nnc's outputs
are checked against both peers.  Each library runs its block of --reps calls
in turn, --rounds times over (bench/_common.time_contenders); prints min /
median milliseconds and nnc / other of the min times (< 1: nnc faster).
Needs torch, onnx and onnxruntime."""
import argparse
import os
import sys

import numpy as np

import nnc
import nnc.onnx
from _common import Results, add_json_arg, min_median_ms, time_contenders

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

BATCHES = (64, 1)


def workloads():
    """{name: (torch module, example input of batch 1)}."""
    import torch
    import torch_models as tm
    torch.manual_seed(0)
    return {
        "ResNet-style CNN 32x32x3, width 16": (tm.with_random_batchnorm(tm.ResNet(width=16)),
                                               torch.randn(1, 3, 32, 32)),
        "DenseNet-style block 16x16x3, 3 layers": (tm.DenseNet(width=16, growth=8, layers=3, size=16).eval(),
                                                   torch.randn(1, 3, 16, 16)),
        "MLP 64-128-128-10": (tm.mlp(64, 128, 10).eval(), torch.randn(1, 64)),
        "2-layer LSTM T=32, 16->64": (tm.LSTMNet(16, 64, 10).eval(), torch.randn(1, 32, 16)),
        "GRU classifier T=32, 16->64": (tm.GRUNet(16, 64, 10).eval(), torch.randn(1, 32, 16)),
    }


def contenders(module, data, x, threads):
    """{library: fn} running the batch x (NCHW / (N, T, F)), checked first."""
    import onnxruntime as ort
    import torch
    nnc.set_num_threads(threads)
    torch.set_num_threads(threads)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    model = nnc.onnx.load(data)
    xn = np.ascontiguousarray(x.transpose(0, 2, 3, 1) if x.ndim == 4 else x)
    xt = torch.from_numpy(x)
    feed = {"x": x}
    with torch.no_grad():
        ref = module(xt).numpy()
    for peer, y in (("torch", ref), ("onnxruntime", sess.run(None, feed)[0])):
        np.testing.assert_allclose(model.forward(xn), y, rtol=1e-3, atol=1e-4, err_msg=f"nnc vs {peer}")

    def run_torch():
        with torch.no_grad():
            module(xt)
    return {"nnc": lambda: model.forward(xn), "torch": run_torch, "ort": lambda: sess.run(None, feed)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    add_json_arg(ap)
    args = ap.parse_args()
    import torch_models
    res = Results("bench_import")
    print("imported models (nnc.onnx.load of the ONNX export) vs ONNX Runtime on that file and PyTorch on the "
          "module; ms min / median; ratio = nnc / other (min)")
    print(f"{'model':40s} {'pass':14s} {'thr':>3s}" + "".join(f"{n:>18s}" for n in ("nnc", "torch", "ort"))
          + f"{'nnc/torch':>10s}{'nnc/ort':>9s}")
    rng = np.random.default_rng(0)
    for name, (module, example) in workloads().items():
        data = torch_models.to_onnx(module, example)
        for batch in BATCHES:
            x = rng.standard_normal((batch,) + tuple(example.shape[1:])).astype(np.float32)
            for threads in args.threads:
                fns = contenders(module, data, x, threads)
                reps = args.reps * (5 if batch == 1 else 1)
                times = time_contenders(fns, reps, rounds=args.rounds)
                pass_ = f"inference b{batch}"
                res.add_times(name, pass_, threads, times)
                mm = {k: min_median_ms(v) for k, v in times.items()}
                cells = "".join(f" {mm[k][0]:8.3f}/{mm[k][1]:<8.3f}" for k in ("nnc", "torch", "ort"))
                print(f"{name:40s} {pass_:14s} {threads:3d}{cells}{mm['nnc'][0] / mm['torch'][0]:10.2f}"
                      f"{mm['nnc'][0] / mm['ort'][0]:9.2f}", flush=True)
    res.write(args.json)


if __name__ == "__main__":
    main()
