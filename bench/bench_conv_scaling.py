"""nnc Conv2D alone in the process (no other thread runtime), 1 vs 2 threads.

    python bench/bench_conv_scaling.py [--reps 8]

Shows the kernels' own thread scaling, and the small few-output-channel
shapes of the demo CNN's DenseBlock.  Min milliseconds and GFLOP/s.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import nnc  # noqa: E402
from _common import timeit  # noqa: E402

SHAPES = [  # (batch, H=W, Cin, Cout)
    (32, 56, 64, 64),   # the ResNet-style 3x3 of issue #3
    (64, 16, 16, 8),    # demo CNN DenseBlock layer 0
    (64, 16, 24, 8),    # demo CNN DenseBlock layer 1
    (64, 32, 16, 16),   # demo CNN residual conv
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=8)
    args = ap.parse_args()
    print(f"{'3x3 conv, pad 1':<28}{'threads':>8}{'min ms':>10}{'GFLOP/s':>10}")
    for n, hw, cin, cout in SHAPES:
        layer = nnc.Conv2D(cin, cout, 3, padding=1)
        x = np.random.default_rng(0).standard_normal((n, hw, hw, cin)).astype(np.float32)
        flops = 2.0 * n * hw * hw * cin * cout * 9
        for threads in (1, 2):
            with nnc.threads(threads):
                ms, _ = timeit(lambda: layer(x), args.reps)
            print(f"{f'b{n} {hw}x{hw} {cin}->{cout}':<28}{threads:>8}{ms:>10.3f}{flops / ms / 1e6:>10.0f}")


if __name__ == "__main__":
    main()
