"""What resumable training costs, on the demo's residual CNN (nnc demo:
width 16, 1438 training digits, batch 32, Adam).

    python bench/bench_checkpoint.py [--threads 2] [--epochs 3] [--rounds 5] [--json PATH]

(a) Checkpointing every epoch: fit times with and without ``checkpoint=``,
    alternating, --rounds times (min and median over the rounds), and the
    time of each checkpoint write measured inside those fits.
(b) Memory: the peak of the bytes Python and NumPy allocate (tracemalloc)
    while a checkpoint is written, against the bytes of the model's
    parameters and of the optimiser's state, for the demo CNN and for an
    MLP with 8.4 M parameters.
(c) The non-finite guard: a training step (forward, loss, backward,
    optimiser step) against the guard's check of the loss and of every
    gradient (one sum of squares per array), min over many calls, for the
    demo CNN and for a small MLP (few, small arrays: the least favourable
    ratio).  With ``clip_norm`` the guard reuses the clipper's norm and
    costs nothing more.
"""
import argparse
import math
import os
import tempfile
import time
import tracemalloc

import numpy as np

import nnc
from nnc import training
from nnc.__main__ import _split, build_digits_cnn
from nnc.data import load_digits
from _common import Results, add_json_arg, min_median_ms


def digits():
    x, y = load_digits()
    xtr, ytr, _, _ = _split(x, y, 0.2, np.random.default_rng(0))
    return xtr, ytr


def fit_demo(x, y, epochs, checkpoint=None, model=None):
    nnc.seed(0)
    model = model or build_digits_cnn(16)
    return model, model.fit(x, y, loss=nnc.losses.SoftmaxCrossEntropy(), optimizer=nnc.optim.Adam(3e-3),
                            epochs=epochs, batch_size=32, verbose=0, checkpoint=checkpoint)


class Measured:
    """Wraps _Trainer.save: the seconds of every checkpoint write, and
    (with tracemalloc on) the peak bytes allocated above the level at its
    start."""

    def __init__(self):
        self.seconds, self.peaks = [], []
        self._save = training._Trainer.save

    def __enter__(self):
        outer = self

        def save(trainer):
            tracing = tracemalloc.is_tracing()
            if tracing:
                tracemalloc.reset_peak()
                base = tracemalloc.get_traced_memory()[0]
            t0 = time.perf_counter()
            outer._save(trainer)
            outer.seconds.append(time.perf_counter() - t0)
            if tracing:
                outer.peaks.append(tracemalloc.get_traced_memory()[1] - base)

        training._Trainer.save = save
        return self

    def __exit__(self, *exc):
        training._Trainer.save = self._save


def bench_overhead(x, y, epochs, rounds, res, threads):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "run.nnc")
        plain, ckpt = [], []
        fit_demo(x, y, 1)                     # warm-up
        with Measured() as m:
            for _ in range(rounds):
                for times, cp in ((plain, None), (ckpt, path)):
                    t0 = time.perf_counter()
                    fit_demo(x, y, epochs, cp)
                    times.append(time.perf_counter() - t0)
        size = os.path.getsize(path)
    p_min, p_med = min_median_ms(plain)
    c_min, c_med = min_median_ms(ckpt)
    w_min, w_med = min_median_ms(m.seconds)
    epoch_ms = p_min / epochs
    print(f"(a) demo CNN, {epochs} epochs of {len(x)} images, batch 32, {threads} threads, {rounds} rounds")
    print(f"    fit without checkpoint:        min {p_min:8.1f} ms  median {p_med:8.1f} ms")
    print(f"    fit with checkpoint per epoch: min {c_min:8.1f} ms  median {c_med:8.1f} ms  "
          f"(+{100 * (c_min / p_min - 1):.1f}% min, +{100 * (c_med / p_med - 1):.1f}% median)")
    print(f"    one checkpoint write ({size / 1024:.0f} KiB file, fsync included): min {w_min:.2f} ms, "
          f"median {w_med:.2f} ms = {100 * w_med / epoch_ms:.1f}% of an epoch ({epoch_ms:.0f} ms)")
    res.add("demo CNN", f"fit {epochs} epochs", threads, "no checkpoint", p_min, p_med)
    res.add("demo CNN", f"fit {epochs} epochs", threads, "checkpoint every epoch", c_min, c_med)
    res.add("demo CNN", "one checkpoint write", threads, "nnc", w_min, w_med)


def mlp(width=2048):
    nnc.seed(0)
    return nnc.Sequential([nnc.Dense(64, width, "relu"), nnc.Dense(width, width, "relu"),
                           nnc.Dense(width, width, "relu"), nnc.Dense(width, 10)])


def bench_memory(x, y, res, threads):
    print("(b) peak bytes allocated while writing a checkpoint (tracemalloc), Adam")
    xf = x.reshape(len(x), -1)
    for name, model, xx in (("demo CNN", None, x), ("MLP 64-2048-2048-2048-10", mlp(), xf)):
        with tempfile.TemporaryDirectory() as d, Measured() as m:
            model = model or build_digits_cnn(16)
            tracemalloc.start()
            try:
                model.fit(xx[:64], y[:64], loss="cross_entropy", optimizer=nnc.optim.Adam(1e-4), epochs=2,
                          batch_size=32, verbose=0, checkpoint=os.path.join(d, "run.nnc"))
            finally:
                tracemalloc.stop()
        params = sum(v.nbytes for v in model.params.values())
        peak = max(m.peaks)
        print(f"    {name}: params {params / 2**20:8.2f} MiB (+ Adam state {2 * params / 2**20:.2f} MiB); "
              f"peak while writing {peak / 2**20:8.3f} MiB = {100 * peak / params:.1f}% of the params")
        res.meta[f"checkpoint peak bytes, {name}"] = {"params_bytes": params, "peak_bytes": peak}


def bench_guard(x, y, res, threads, reps=300):
    print(f"(c) non-finite guard per training step, batch 32, {threads} threads (min of {reps} calls)")
    loss = nnc.losses.SoftmaxCrossEntropy()
    xf = x.reshape(len(x), -1)
    small = nnc.Sequential([nnc.Dense(64, 32, "relu"), nnc.Dense(32, 10)])
    for name, model, xb in (("demo CNN", build_digits_cnn(16), x[:32]), ("MLP 64-32-10", small, xf[:32])):
        yb, opt = y[:32], nnc.optim.Adam(1e-4)

        def step():
            out = model.forward(xb, training=True)
            loss(out, yb)
            model.backward(loss.backward(), input_grad=False)
            opt.step(model.params, model.grads)

        step()
        value, check, grads = loss(model.forward(xb), yb), training._GradSumsq(), model.grads

        def guard():   # what fit adds to a step without clip_norm (it has model.grads for the optimiser anyway)
            math.isfinite(value)
            math.isfinite(check(grads))

        t_step, t_guard = [], []
        for _ in range(3):   # alternating blocks
            for ts, fn in ((t_step, step), (t_guard, guard)):
                fn()
                for _ in range(reps):
                    t0 = time.perf_counter()
                    fn()
                    ts.append(time.perf_counter() - t0)
        s_min, s_med = min_median_ms(t_step)
        g_min, g_med = min_median_ms(t_guard)
        print(f"    {name} ({len(grads)} gradient arrays, {sum(g.size for g in grads.values()):,} values): "
              f"step {1e3 * s_min:8.1f} us, guard {1e3 * g_min:5.2f} us = {100 * g_min / s_min:.2f}% "
              f"(medians {1e3 * s_med:.1f} / {1e3 * g_med:.2f} us = {100 * g_med / s_med:.2f}%)")
        res.add(name, "train step b32", threads, "step", s_min, s_med)
        res.add(name, "train step b32", threads, "non-finite guard", g_min, g_med)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    add_json_arg(ap)
    args = ap.parse_args()
    nnc.set_num_threads(args.threads)
    x, y = digits()
    res = Results("bench_checkpoint")
    bench_overhead(x, y, args.epochs, args.rounds, res, args.threads)
    bench_memory(x, y, res, args.threads)
    bench_guard(x, y, res, args.threads)
    res.write(args.json)


if __name__ == "__main__":
    main()
