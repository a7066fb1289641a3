"""Command line: ``python -m nnc demo`` (also the ``nnc`` console script).

``nnc demo`` trains a small residual CNN on the bundled UCI 8x8 digits and
reports its held-out accuracy, training time and inference throughput; then
SimpleRNN, LSTM and GRU on the adding problem (T=50) with gradient-norm
clipping; then an Embedding + Bidirectional GRU classifier on token
sequences of different lengths.  ``nnc info`` prints the build
configuration (ISA, threads, compiler).
"""
import argparse
import sys
import time

import numpy as np

import nnc
from nnc.data import load_digits


def _split(x, y, test_fraction, rng):
    order = rng.permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def _throughput(model, x, min_seconds=0.5, batch_size=256):
    """Inference images/second of model.predict over x (best of repeated runs)."""
    model.predict(x[:batch_size], batch_size=batch_size)  # warm-up
    best, spent = float("inf"), 0.0
    while spent < min_seconds:
        t0 = time.perf_counter()
        model.predict(x, batch_size=batch_size)
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
    return len(x) / best


def build_digits_cnn(width=16, in_channels=1, dtype=np.float32):
    """The small residual CNN of the demo: (N, H, W, in_channels) images -> 10 logits.

    3x3 conv -> residual block (two 3x3 convs) -> 2x2 max-pool -> dense block
    (2 layers, growth width/2) -> residual block with a strided 1x1-conv
    projection shortcut -> global average pool -> dense head."""
    w, kw = width, dict(padding="same", dtype=dtype)
    conv = nnc.Conv2D
    return nnc.Sequential([
        conv(in_channels, w, 3, activation="relu", **kw),
        nnc.Residual(nnc.Sequential([conv(w, w, 3, activation="relu", **kw), conv(w, w, 3, **kw)])),
        nnc.MaxPool2D(2, dtype=dtype),
        nnc.DenseBlock(w, 2, w // 2, dtype=dtype),
        nnc.Residual(nnc.Sequential([conv(2 * w, 2 * w, 3, stride=2, activation="relu", **kw),
                                     conv(2 * w, 2 * w, 3, **kw)]),
                     shortcut=conv(2 * w, 2 * w, 1, stride=2, dtype=dtype)),
        nnc.GlobalAvgPool2D(dtype=dtype),
        nnc.Dense(2 * w, 10, dtype=dtype),
    ])


def demo_digits(epochs=None, quick=False, seed=0, out=None):
    """Train the residual CNN on 80% of the bundled digits and report the
    held-out accuracy, training time and inference images/second (to out,
    default sys.stdout)."""
    out = sys.stdout if out is None else out
    x, y = load_digits()
    rng = np.random.default_rng(0)
    xtr, ytr, xte, yte = _split(x, y, 0.2, rng)
    if quick:
        xtr, ytr = xtr[:640], ytr[:640]
    epochs = (4 if quick else 12) if epochs is None else epochs
    nnc.seed(seed)
    model = build_digits_cnn(8 if quick else 16)
    print(f"== digits (UCI optical digits, bundled): {len(xtr)} train / {len(xte)} held-out images "
          f"of 8x8x1, residual CNN", file=out)
    model.summary(input_shape=x.shape[1:], file=out)
    t0 = time.perf_counter()
    opt = nnc.optim.Adam(3e-3)
    fine = epochs // 4  # the last quarter of the epochs at a 10x lower learning rate
    for lr, n in ((3e-3, epochs - fine), (3e-4, fine)):
        opt.lr = lr
        if n:
            model.fit(xtr, ytr, loss=nnc.losses.SoftmaxCrossEntropy(), optimizer=opt, epochs=n, batch_size=32,
                      verbose=0 if quick else 1)
    train_time = time.perf_counter() - t0
    acc = float(np.mean(np.argmax(model.predict(xte), axis=-1) == yte))
    ips = _throughput(model, xte, 0.1 if quick else 0.5)
    print(f"test accuracy: {acc * 100:.2f}% on {len(xte)} held-out images (chance 10%)", file=out)
    print(f"training time: {train_time:.1f} s for {epochs} epochs", file=out)
    print(f"inference: {ips:,.0f} images/s (batch 256, {nnc.get_num_threads()} threads)", file=out)
    return {"accuracy": acc, "train_time": train_time, "images_per_second": ips}


def adding_problem(n, steps, rng, dtype=np.float32):
    """The adding problem: x (n, steps, 2) holds uniform values and a marker
    channel with two ones (one in each half); the target is the sum of the two
    marked values (n, 1).  Predicting the mean (1.0) gives an MSE of about 0.167."""
    x = np.zeros((n, steps, 2), dtype=dtype)
    x[:, :, 0] = rng.uniform(0, 1, (n, steps))
    half = steps // 2
    i = rng.integers(0, half, n)
    j = rng.integers(half, steps, n)
    rows = np.arange(n)
    x[rows, i, 1] = 1
    x[rows, j, 1] = 1
    y = (x[rows, i, 0] + x[rows, j, 0])[:, None].astype(dtype)
    return x, y


def demo_adding(epochs=None, quick=False, steps=50, seed=0, out=None):
    """SimpleRNN vs LSTM vs GRU on the adding problem (sequence length
    ``steps``), trained with gradient-norm clipping; reports each test MSE
    (to out, default sys.stdout)."""
    out = sys.stdout if out is None else out
    rng = np.random.default_rng(1)
    n_train, hidden = (256, 8) if quick else (3072, 32)
    xtr, ytr = adding_problem(n_train, steps, rng)
    xte, yte = adding_problem(512, steps, rng)
    epochs = (1 if quick else 16) if epochs is None else epochs
    print(f"== adding problem: T={steps}, {n_train} training sequences, hidden {hidden}; "
          f"baseline MSE (always predict 1.0): {float(np.mean((yte - 1.0) ** 2)):.4f}", file=out)
    results = {}
    for i, cls in enumerate((nnc.SimpleRNN, nnc.LSTM, nnc.GRU)):
        nnc.seed(seed + i)
        rnn = cls(2, hidden, return_sequences=False)
        if cls is nnc.LSTM:  # forget-gate bias 1 (Jozefowicz et al., 2015): remember by default
            rnn.params["b"][hidden:2 * hidden] = 1.0
        model = nnc.Sequential([rnn, nnc.Dense(hidden, 1)])
        t0 = time.perf_counter()
        model.fit(xtr, ytr, loss="mse", optimizer=nnc.optim.Adam(1e-2), epochs=epochs, batch_size=64,
                  clip_norm=1.0, verbose=0 if quick else 1)
        dt = time.perf_counter() - t0
        mse = float(np.mean((model.predict(xte) - yte) ** 2))
        results[cls.__name__] = mse
        verdict = "solved" if mse < 0.01 else "not solved"
        print(f"{cls.__name__:>9}: test MSE {mse:.4f} ({verdict}), {dt:.1f} s", file=out)
    return results


def first_plus_last(n, rng, vocab=8, max_len=24):
    """Token sequences of lengths 3..max_len (ids 1..vocab-1, padded with 0 to
    max_len) and labels: 1 when the first and the last token of a sequence
    add up to at least ``vocab``.  Returns (ids (n, max_len), lengths (n,),
    labels (n,))."""
    lengths = rng.integers(3, max_len + 1, n)
    ids = rng.integers(1, vocab, (n, max_len))
    ids[np.arange(max_len) >= lengths[:, None]] = 0
    labels = (ids[np.arange(n), lengths - 1] + ids[:, 0] >= vocab).astype(np.int64)
    return ids, lengths, labels


def demo_sequences(epochs=None, quick=False, seed=0, out=None):
    """Embedding -> Bidirectional GRU -> Dense on variable-length token
    sequences (first_plus_last): the forward direction ends on each
    sequence's last valid token, the backward one on its first; reports the
    held-out accuracy (to out, default sys.stdout)."""
    out = sys.stdout if out is None else out
    rng = np.random.default_rng(2)
    n_train = 640 if quick else 2000
    ids, lengths, labels = first_plus_last(n_train, rng)
    ids_te, lengths_te, labels_te = first_plus_last(1000, rng)
    epochs = (3 if quick else 5) if epochs is None else epochs
    nnc.seed(seed)
    model = nnc.Sequential([nnc.Embedding(8, 8),
                            nnc.Bidirectional(nnc.GRU(8, 16, reset_after=True, return_sequences=False)),
                            nnc.Dense(32, 32, activation="relu"), nnc.Dense(32, 2)])
    print(f"== variable-length sequences: {n_train} training sequences of 3..24 tokens (padded); label: "
          f"first + last token >= 8; majority class {max(labels_te.mean(), 1 - labels_te.mean()) * 100:.1f}%",
          file=out)
    t0 = time.perf_counter()
    model.fit(ids, labels, loss=nnc.losses.SoftmaxCrossEntropy(), optimizer=nnc.optim.Adam(1e-2), epochs=epochs,
              batch_size=32, lengths=lengths, verbose=0 if quick else 1)
    dt = time.perf_counter() - t0
    acc = float(np.mean(np.argmax(model.predict(ids_te, lengths=lengths_te), axis=-1) == labels_te))
    print(f"Embedding + Bidirectional(GRU): held-out accuracy {acc * 100:.2f}% on {len(labels_te)} sequences, "
          f"{dt:.1f} s", file=out)
    return {"accuracy": acc, "train_time": dt}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="nnc", description="nnc: neural-network layers with C kernels.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train the bundled demos (digits classifier, recurrent adding problem)",
                          description="Train a residual CNN on the bundled UCI 8x8 digits (held-out accuracy, "
                                      "training time, inference images/s), then SimpleRNN, LSTM and GRU on the "
                                      "adding problem (T=50) with gradient-norm clipping, then an Embedding + "
                                      "Bidirectional GRU on variable-length token sequences.")
    demo.add_argument("--epochs", type=int, default=None, metavar="N",
                      help="training epochs of each part (default: 12 digits, 16 adding problem)")
    demo.add_argument("--threads", type=int, default=None, metavar="N",
                      help="nnc threads (default: all available cores)")
    demo.add_argument("--only", choices=["cnn", "rnn", "seq"], default=None, help="run only one part")
    demo.add_argument("--quick", action="store_true", help="a reduced run of a few seconds (smoke test)")
    demo.add_argument("--seed", type=int, default=0, help="library seed for initialisation and shuffling")
    sub.add_parser("info", help="print the build configuration (ISA, threads, compiler)")
    args = parser.parse_args(argv)

    if args.command == "info":
        nnc.show_config()
        return 0
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        nnc.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.only in (None, "cnn"):
        demo_digits(args.epochs, args.quick, args.seed)
    if args.only in (None, "rnn"):
        demo_adding(args.epochs, args.quick, seed=args.seed)
    if args.only in (None, "seq"):
        demo_sequences(args.epochs, args.quick, seed=args.seed)
    print(f"total: {time.perf_counter() - t0:.1f} s on {nnc.get_num_threads()} threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
