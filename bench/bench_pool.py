"""Pooling benchmark: nnc vs PyTorch (the faster of NCHW and channels_last).

    python bench/bench_pool.py [--threads 2] [--reps 30] [--batch 32]

Workloads (float32, NHWC for nnc): MaxPool 3x3 stride 2 pad 1 and AvgPool
2x2 stride 2 on (batch, 56, 56, 64).  For each: forward (inference: nnc
training=False, PyTorch under no_grad) and forward+backward (nnc
forward(training=True) + backward; PyTorch autograd.grad).  Prints min and
median ms, GB/s of compulsory traffic (forward: read x + write y;
forward+backward: that + read dy + write dx) and the ratio nnc/PyTorch (time;
< 1 means nnc is faster).  The copy bandwidth of one core (numpy copyto of
the input) is measured in the same run as the yardstick.
PyTorch is optional: without it only nnc's figures are printed.
"""
import argparse
import statistics
import time

import numpy as np

import nnc

try:
    import torch
except ImportError:  # optional bench dependency
    torch = None


def timeit(fn, reps):
    fn()
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), statistics.median(ts)


def copy_bandwidth(nbytes, reps):
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    t, _ = timeit(lambda: np.copyto(dst, src), reps)
    return 2 * nbytes / t / 1e9


def bench_case(name, layer, tfn, x, reps):
    y = layer(x)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    fwd_bytes = x.nbytes + y.nbytes
    both_bytes = fwd_bytes + dy.nbytes + x.nbytes

    def nnc_fwd():
        layer.forward(x)

    def nnc_both():
        layer.forward(x, training=True)
        layer.backward(dy)

    rows = [(f"{name} fwd", "nnc", timeit(nnc_fwd, reps), fwd_bytes),
            (f"{name} fwd+bwd", "nnc", timeit(nnc_both, reps), both_bytes)]
    if torch is not None:
        best_f, best_b = None, None
        for fmt in ("NCHW", "channels_last"):
            xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
            dyt = torch.from_numpy(np.ascontiguousarray(dy.transpose(0, 3, 1, 2)))
            if fmt == "channels_last":
                xt = xt.contiguous(memory_format=torch.channels_last)
                dyt = dyt.contiguous(memory_format=torch.channels_last)
            yt = tfn(xt)
            # same result as nnc (layout aside)
            np.testing.assert_allclose(yt.permute(0, 2, 3, 1).numpy(), y, rtol=1e-6, atol=1e-6)
            xg = xt.clone().requires_grad_(True)

            def t_fwd():
                with torch.no_grad():
                    tfn(xt)

            def t_both():
                out = tfn(xg)
                torch.autograd.grad(out, xg, dyt)

            f, b = timeit(t_fwd, reps), timeit(t_both, reps)
            if best_f is None or f[0] < best_f[1][0]:
                best_f = (fmt, f)
            if best_b is None or b[0] < best_b[1][0]:
                best_b = (fmt, b)
        rows.append((f"{name} fwd", f"torch {best_f[0]}", best_f[1], fwd_bytes))
        rows.append((f"{name} fwd+bwd", f"torch {best_b[0]}", best_b[1], both_bytes))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    nnc.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    x = np.random.default_rng(0).standard_normal((args.batch, 56, 56, 64)).astype(np.float32)
    bw = copy_bandwidth(x.nbytes, args.reps)
    print(f"nnc {nnc.__version__} isa={nnc._core.get_isa()} threads={args.threads}; "
          f"torch {torch.__version__ if torch else 'absent'}; input {x.shape} float32")
    print(f"one-core copy bandwidth (numpy copyto, {x.nbytes / 2**20:.1f} MiB): {bw:.1f} GB/s")
    cases = [("MaxPool 3x3/2 p1", nnc.MaxPool2D(3, stride=2, padding=1),
              (lambda t: torch.nn.functional.max_pool2d(t, 3, 2, 1)) if torch else None),
             ("AvgPool 2x2/2", nnc.AvgPool2D(2),
              (lambda t: torch.nn.functional.avg_pool2d(t, 2, 2)) if torch else None)]
    print(f"{'case':24s} {'impl':20s} {'min ms':>8s} {'med ms':>8s} {'GB/s':>7s} {'% copy':>7s} {'nnc/torch':>9s}")
    for name, layer, tfn in cases:
        rows = bench_case(name, layer, tfn, x, args.reps)
        nnc_t = {r[0]: r[2][0] for r in rows if r[1] == "nnc"}
        for case, impl, (tmin, tmed), nbytes in rows:
            gbs = nbytes / tmin / 1e9
            ratio = f"{nnc_t[case] / tmin:9.2f}" if impl != "nnc" else ""
            print(f"{case:24s} {impl:20s} {tmin * 1e3:8.3f} {tmed * 1e3:8.3f} {gbs:7.1f} {100 * gbs / bw:6.0f}% {ratio}")


if __name__ == "__main__":
    main()
