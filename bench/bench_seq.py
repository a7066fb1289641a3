"""Padded sequences, Bidirectional, Embedding and nnc.dask vs their peers.

    python bench/bench_seq.py [--threads 2] [--repeat 5] [--rounds 2] [--only rnn,bi,convlstm,emb,dask]
                              [--json PATH]

Workloads (float32):
- rnn: LSTM and GRU (reset_after=True = torch.nn.GRU), batch 32, T=100,
  128 -> 256, lengths uniform in [T/10, T] (one draw, unsorted): nnc with
  ``lengths=``, PyTorch on the same batch packed (pack_padded_sequence,
  enforce_sorted=False, then pad_packed_sequence) and nnc on the padded
  batch without lengths (every step of every row); forward (inference) and
  forward+backward.
- bi: Bidirectional LSTM and GRU with those lengths vs torch
  ``bidirectional=True`` on the packed batch; forward and forward+backward.
- convlstm: ConvLSTM2D 8 -> 16 channels, 3x3, batch 8, T=20, 16x16 images,
  lengths uniform in [T/10, T] (nnc only): ``lengths=`` vs the padded batch
  without lengths; forward and forward+backward (checked first: each
  sample's result is that of the sample alone on its valid steps).
- emb: Embedding backward, 50,000 x 128 table, 32 x 512 ids drawn from 500
  distinct ones (every id repeated ~33 times) vs torch's embedding backward
  (dense gradient).
- dask: nnc.dask.predict of an MLP (256 -> 512 -> 256 -> 16) over 262,144
  rows (268 MB) held by a 2-process distributed LocalCluster (1 thread each;
  the input persisted on the workers first, in chunks of 32,768 rows = 32
  MB, about 100 ms of one core's work each, as Dask's array best practices
  advise), the result gathered into this process, vs model.predict on the
  same rows in this process on 2 threads; also the model's pickled size vs
  its parameter bytes.
Before timing, nnc's outputs and gradients are compared with torch's
(_common.check_close).  Prints min and median ms and nnc / other (< 1: nnc
faster).  torch, dask and distributed are optional benchmark dependencies.
"""
import argparse
import os
import pickle
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
import nnc  # noqa: E402
from _common import Results, add_json_arg, check_close, min_median_ms, time_contenders  # noqa: E402
from bench_rnn import build  # noqa: E402

import torch  # noqa: E402

N, T, I, H = 32, 100, 128, 256


def timed(fns, repeat, rounds):
    return {k: min_median_ms(v) for k, v in time_contenders(fns, repeat, rounds=rounds).items()}


def packed(tm, x, lengths):
    """torch: x packed with lengths, through tm, padded back to T."""
    p = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    return torch.nn.utils.rnn.pad_packed_sequence(tm(p)[0], batch_first=True, total_length=x.shape[1])[0]


def run_rnn(kind, lengths, x, g, repeat, rounds):
    layer, tm = build(kind, I, H)
    xt, lt, gt = torch.from_numpy(x), torch.from_numpy(lengths), torch.from_numpy(g)
    with torch.no_grad():
        check_close(f"{kind} lengths forward", layer.forward(x, lengths=lengths), packed(tm, xt, lt).numpy(), I + H)
    xr = xt.clone().requires_grad_(True)
    layer.forward(x, training=True, lengths=lengths)
    dx = layer.backward(g)
    packed(tm, xr, lt).backward(gt)
    check_close(f"{kind} lengths dx", dx, xr.grad.numpy(), T * 4 * H)

    def torch_fwd():
        with torch.no_grad():
            packed(tm, xt, lt)

    def torch_train():
        packed(tm, xr, lt).backward(gt)

    rows = [(f"{kind} N={N} T={T} lengths forward",
             timed({"nnc": lambda: layer.forward(x, lengths=lengths), "torch packed": torch_fwd,
                    "nnc padded": lambda: layer.forward(x)}, repeat, rounds)),
            (f"{kind} N={N} T={T} lengths fwd+bwd",
             timed({"nnc": lambda: (layer.forward(x, training=True, lengths=lengths), layer.backward(g)),
                    "torch packed": torch_train,
                    "nnc padded": lambda: (layer.forward(x, training=True), layer.backward(g))}, repeat, rounds))]
    return rows


def build_bi(kind):
    """nnc Bidirectional and torch bidirectional=True with the same weights."""
    layer, _ = build(kind, I, H)
    torch.manual_seed(0)
    tm = getattr(torch.nn, kind)(I, H, batch_first=True, bidirectional=True)
    bi = nnc.Bidirectional(layer)
    neg = np.ones((4 * H if kind == "LSTM" else 3 * H, 1), np.float32)
    if kind == "GRU":
        neg[H:2 * H] = -1   # nnc u = 1 - torch z
    for suffix, prefix in (("l0", "forward."), ("l0_reverse", "backward.")):
        w = {k: getattr(tm, f"{k}_{suffix}").detach().numpy() for k in ("weight_ih", "weight_hh", "bias_ih",
                                                                        "bias_hh")}
        bi.params[prefix + "W_x"][...] = w["weight_ih"] * neg
        bi.params[prefix + "W_h"][...] = w["weight_hh"] * neg
        if kind == "LSTM":
            bi.params[prefix + "b"][...] = w["bias_ih"] + w["bias_hh"]
        else:
            bi.params[prefix + "b_x"][...] = w["bias_ih"] * neg[:, 0]
            bi.params[prefix + "b_h"][...] = w["bias_hh"] * neg[:, 0]
    return bi, tm


def run_bi(kind, lengths, x, repeat, rounds):
    bi, tm = build_bi(kind)
    g = np.random.default_rng(1).standard_normal((N, T, 2 * H)).astype(np.float32)
    xt, lt, gt = torch.from_numpy(x), torch.from_numpy(lengths), torch.from_numpy(g)
    with torch.no_grad():
        check_close(f"Bidirectional {kind} forward", bi.forward(x, lengths=lengths), packed(tm, xt, lt).numpy(),
                    I + H)
    xr = xt.clone().requires_grad_(True)

    def torch_fwd():
        with torch.no_grad():
            packed(tm, xt, lt)

    return [(f"Bidirectional {kind} N={N} T={T} lengths forward",
             timed({"nnc": lambda: bi.forward(x, lengths=lengths), "torch packed": torch_fwd}, repeat, rounds)),
            (f"Bidirectional {kind} N={N} T={T} lengths fwd+bwd",
             timed({"nnc": lambda: (bi.forward(x, training=True, lengths=lengths), bi.backward(g)),
                    "torch packed": lambda: packed(tm, xr, lt).backward(gt)}, repeat, rounds))]


def run_convlstm(repeat, rounds):
    n, t, hw, cin, ch = 8, 20, 16, 8, 16
    rng = np.random.default_rng(3)
    lengths = rng.integers(t // 10, t + 1, n)
    print(f"ConvLSTM2D lengths: {sorted(lengths.tolist())} (valid steps {lengths.sum() / (n * t):.0%})")
    x = rng.standard_normal((n, t, hw, hw, cin)).astype(np.float32)
    g = rng.standard_normal((n, t, hw, hw, ch)).astype(np.float32)
    layer = nnc.ConvLSTM2D(cin, ch, 3)
    y = layer.forward(x, lengths=lengths)
    for i in (0, n - 1):
        check_close(f"ConvLSTM2D lengths sample {i}", y[i, :lengths[i]], layer.forward(x[i:i + 1, :lengths[i]])[0], 1)
    name = f"ConvLSTM2D N={n} T={t} {hw}x{hw} {cin}->{ch}"
    return [(f"{name} lengths forward",
             timed({"nnc": lambda: layer.forward(x, lengths=lengths), "nnc padded": lambda: layer.forward(x)},
                   repeat, rounds)),
            (f"{name} lengths fwd+bwd",
             timed({"nnc": lambda: (layer.forward(x, training=True, lengths=lengths), layer.backward(g)),
                    "nnc padded": lambda: (layer.forward(x, training=True), layer.backward(g))}, repeat, rounds))]


def run_emb(repeat, rounds):
    rng = np.random.default_rng(2)
    V, D = 50_000, 128
    ids = rng.choice(V, 500, replace=False)[rng.integers(0, 500, (32, 512))]
    g = rng.standard_normal(ids.shape + (D,)).astype(np.float32)
    emb = nnc.Embedding(V, D)
    w = torch.tensor(emb.params["W"], requires_grad=True)
    it, gt = torch.from_numpy(ids), torch.from_numpy(g)
    out = torch.nn.functional.embedding(it, w)
    emb.forward(ids, training=True)
    emb.backward(g)
    check_close("Embedding backward", emb.grads["W"], torch.autograd.grad(out, w, gt, retain_graph=True)[0].numpy(),
                40)
    return [("Embedding 50000x128 ids 32x512 (500 distinct) backward",
             timed({"nnc": lambda: emb.backward(g),
                    "torch": lambda: torch.autograd.grad(out, w, gt, retain_graph=True)}, repeat, rounds))]


def run_dask(threads, repeat, rounds):
    import dask.array as da
    import distributed
    import nnc.dask
    nnc.seed(0)
    model = nnc.Sequential([nnc.Dense(256, 512, activation="relu"), nnc.Dense(512, 256, activation="relu"),
                            nnc.Dense(256, 16)])
    rows_n = 262_144
    x = da.random.default_rng(0).standard_normal((rows_n, 256), chunks=(32_768, 256), dtype=np.float32)
    local_x = x.compute(scheduler="sync")
    param_bytes = sum(p.nbytes for p in model.params.values())
    shipped = len(pickle.dumps(nnc.dask._ModelNode(model)))
    print(f"\nmodel: {param_bytes / 1e6:.2f} MB of parameters, {shipped / 1e6:.2f} MB as nnc.dask ships it "
          f"({len(pickle.dumps(model)) / 1e6:.2f} MB pickled with its gradients); "
          f"input {local_x.nbytes / 1e6:.0f} MB ({rows_n} rows)")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        xp = client.persist(x)
        distributed.wait(xp)
        ref = model.predict(local_x)
        assert np.array_equal(nnc.dask.predict(model, xp).compute(), ref), "dask result differs from local"
        ts = {"nnc.dask 2 workers x 1 thread": [], f"nnc local {threads} threads": []}
        for _ in range(repeat * rounds):
            t = time.perf_counter()
            nnc.dask.predict(model, xp).compute()
            ts["nnc.dask 2 workers x 1 thread"].append(time.perf_counter() - t)
            t = time.perf_counter()
            model.predict(local_x)
            ts[f"nnc local {threads} threads"].append(time.perf_counter() - t)
    out = {k: min_median_ms(sorted(v)) for k, v in ts.items()}
    for k, (mn, md) in out.items():
        print(f"  {k}: {mn:.1f} / {md:.1f} ms (min/med), {rows_n / mn * 1e3:,.0f} rows/s")
    return [(f"MLP predict {rows_n} rows", out)]


def report(rows, res, threads):
    print("\n| workload | contender | ms (min/med) | nnc / contender (min) |\n|---|---|---|---|")
    for name, r in rows:
        workload, _, pass_ = name.rpartition(" ")
        base = r.get("nnc", next(iter(r.values())))
        for lib, (mn, md) in r.items():
            res.add(workload, pass_, threads, lib, mn, md)
            print(f"| {name} | {lib} | {mn:.2f} / {md:.2f} | {base[0] / mn:.2f} |")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", default="rnn,bi,convlstm,emb,dask")
    add_json_arg(ap)
    args = ap.parse_args()
    nnc.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"nnc {nnc.__version__} isa={nnc._core.get_isa()} threads={args.threads}; torch {torch.__version__}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    rng = np.random.default_rng(0)
    lengths = rng.integers(T // 10, T + 1, N)
    x = rng.standard_normal((N, T, I)).astype(np.float32)
    g = rng.standard_normal((N, T, H)).astype(np.float32)
    print(f"lengths: uniform in [{T // 10}, {T}], mean {lengths.mean():.1f} (valid steps {lengths.sum() / (N * T):.0%})")
    only = args.only.split(",")
    res, rows = Results("bench_seq"), []
    if "rnn" in only:
        for kind in ("LSTM", "GRU"):
            rows += run_rnn(kind, lengths, x, g, args.repeat, args.rounds)
    if "bi" in only:
        for kind in ("LSTM", "GRU"):
            rows += run_bi(kind, lengths, x, args.repeat, args.rounds)
    if "convlstm" in only:
        rows += run_convlstm(args.repeat, args.rounds)
    if "emb" in only:
        rows += run_emb(args.repeat, args.rounds)
    if "dask" in only:
        try:
            import distributed  # noqa: F401
            rows += run_dask(args.threads, args.repeat, args.rounds)
        except ImportError:
            print("dask: skipped (pip install 'nnc[dask]')")
    report(rows, res, args.threads)
    res.write(args.json)


if __name__ == "__main__":
    main()
