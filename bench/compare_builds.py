"""Compares two builds of nnc on the same machine in one sitting.

    python bench/compare_builds.py BEFORE_TREE AFTER_TREE [--rounds 10] [--threads 2]

Each tree is a source checkout with its extension built in place
(`python setup.py build_ext --inplace`).  A fixed list of workloads through the
public API (GEMM, Dense, Conv2D incl. 1x1/strided/depthwise, pooling,
SimpleRNN/LSTM/GRU at batch 32/4/1, ConvRNN2D/ConvLSTM2D, DenseBlock, a small
CNN's predict) is timed in a fresh process per tree, the two trees alternating
for --rounds rounds, so a slow stretch of a shared machine falls on both.
Prints per workload the minimum over all rounds of each tree, after / before
of the minima and of the medians, and the run-to-run spread of BEFORE (its
odd rounds' minimum against its even rounds'): a ratio beyond that spread is
a real difference.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

WORKER = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[4])
import numpy as np
from _common import timeit_all
import nnc
from nnc import _core
assert nnc.__file__.startswith(sys.argv[1]), nnc.__file__
nnc.set_num_threads(int(sys.argv[3]))
rng = np.random.default_rng(0)
f32 = np.float32
out = {}

def tmin(name, fn, reps):
    out[name] = 1e3 * min(timeit_all(fn, reps))

def train_step(layer, x):
    def run():
        layer.backward(layer.forward(x, training=True))
    return run

for n in (64, 256, 1024):
    A = rng.standard_normal((n, n)).astype(f32)
    C = np.empty((n, n), f32)
    tmin(f"gemm {n}^3", lambda A=A, C=C: _core.gemm(0, 0, A, A, C), 30 if n < 1024 else 8)
for b, i, o in ((1, 1024, 1024), (32, 1024, 1024), (256, 256, 256), (256, 1024, 1024)):
    d = nnc.Dense(i, o, activation="relu")
    x = rng.standard_normal((b, i)).astype(f32)
    tmin(f"dense fwd b{b} {i}->{o}", lambda d=d, x=x: d.forward(x), 30)
    tmin(f"dense f+b b{b} {i}->{o}", train_step(d, x), 15)
for nb, hw, c, k, ks, s, g in ((32, 56, 64, 64, 3, 1, 1), (32, 28, 128, 128, 1, 1, 1), (1, 224, 3, 64, 7, 2, 1),
                               (8, 56, 64, 64, 3, 1, 64), (16, 28, 64, 96, 3, 2, 1), (8, 32, 3, 16, 3, 1, 1)):
    conv = nnc.Conv2D(c, k, ks, stride=s, padding="same" if s == 1 else ks // 2, groups=g, activation="relu")
    x = rng.standard_normal((nb, hw, hw, c)).astype(f32)
    tag = f"conv {ks}x{ks}/{s} {c}->{k} g{g} b{nb} {hw}^2"
    tmin(tag + " fwd", lambda conv=conv, x=x: conv.forward(x), 8)
    tmin(tag + " f+b", train_step(conv, x), 5)
x = rng.standard_normal((32, 112, 112, 64)).astype(f32)
for pool in (nnc.MaxPool2D(2), nnc.AvgPool2D(3, stride=2, padding=1)):
    tmin(f"{type(pool).__name__} fwd", lambda pool=pool: pool.forward(x), 10)
    tmin(f"{type(pool).__name__} f+b", train_step(pool, x), 6)
for cls in (nnc.LSTM, nnc.GRU, nnc.SimpleRNN):
    for nb, f, h in ((32, 128, 256), (1, 128, 256), (4, 64, 512)):
        layer = cls(f, h, return_sequences=True)
        x = rng.standard_normal((nb, 100, f)).astype(f32)
        tmin(f"{cls.__name__} fwd b{nb} {f}->{h}", lambda layer=layer, x=x: layer.forward(x), 8)
        tmin(f"{cls.__name__} f+b b{nb} {f}->{h}", train_step(layer, x), 5)
for cls in (nnc.ConvLSTM2D, nnc.ConvRNN2D):
    layer = cls(8, 16, 3, return_sequences=True)
    x = rng.standard_normal((4, 10, 16, 16, 8)).astype(f32)
    tmin(f"{cls.__name__} fwd", lambda layer=layer, x=x: layer.forward(x), 6)
    tmin(f"{cls.__name__} f+b", train_step(layer, x), 4)
block = nnc.DenseBlock(16, 4, 12)
x = rng.standard_normal((16, 32, 32, 16)).astype(f32)
tmin("DenseBlock fwd", lambda: block.forward(x), 6)
tmin("DenseBlock f+b", train_step(block, x), 4)
model = nnc.Sequential([nnc.Conv2D(1, 16, 3, padding="same", activation="relu"), nnc.MaxPool2D(2),
                        nnc.Conv2D(16, 32, 3, padding="same", activation="relu"), nnc.MaxPool2D(2),
                        nnc.Flatten(), nnc.Dense(32 * 7 * 7, 10, activation="softmax")])
for b in (1, 64):
    x = rng.standard_normal((b, 28, 28, 1)).astype(f32)
    tmin(f"small CNN predict b{b}", lambda x=x: model.predict(x), 20)
with open(sys.argv[2], "w") as f:
    json.dump(out, f)
'''


def run(tree, threads, tmp):
    path = os.path.join(tmp, "r.json")
    subprocess.run([sys.executable, "-c", WORKER, os.path.abspath(tree), path, str(threads),
                    os.path.dirname(os.path.abspath(__file__))], check=True)
    with open(path) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    runs = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            runs["before"].append(run(args.before, args.threads, tmp))
            runs["after"].append(run(args.after, args.threads, tmp))
    b, a = runs["before"], runs["after"]
    print(f"| workload ({args.threads} threads) | before min ms | after min ms | after / before, min | "
          f"after / before, median | spread of before |")
    print("|---|---|---|---|---|---|")
    for k in b[0]:
        bmin, amin = min(r[k] for r in b), min(r[k] for r in a)
        bmed, amed = sorted(r[k] for r in b)[len(b) // 2], sorted(r[k] for r in a)[len(a) // 2]
        odd, even = min(r[k] for r in b[0::2]), min(r[k] for r in b[1::2] or b)
        print(f"| {k} | {bmin:.3f} | {amin:.3f} | {amin / bmin:.3f} | {amed / bmed:.3f} | "
              f"{max(odd, even) / min(odd, even):.3f} |")


if __name__ == "__main__":
    main()
