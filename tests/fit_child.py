"""A fit run in its own process, for tests/test_checkpoint.py's kill tests.

``python fit_child.py '<json>'`` trains a small model (``"cnn"`` or
``"lstm"``, optimiser ``"sgd"`` or ``"adam"``, ``threads``) with callbacks
and, given ``"checkpoint"``, checkpoints every ``"every"`` batches and
resumes from it.  It prints ``batch <k>`` after every step (k counted in
this process, from 1).  ``"pause"`` makes it print ``pause`` and sleep so
that the parent can kill it at a known point: ``["batch", k]`` after step k,
``["write", k]`` inside the k-th checkpoint write (after the first arrays
reached the temporary file), ``["fsync", k]`` when the k-th checkpoint's
temporary file is complete but not yet renamed, ``["rename", k]`` between the
k-th write's two renames (the old file moved to ``.prev``, the new one not
yet in place).  At the end it writes the params and the history to
``"out"``.
"""
import json
import os
import sys
import time

import numpy as np

cfg = json.loads(sys.argv[1])
import nnc  # noqa: E402
from nnc import serialization  # noqa: E402

nnc.set_num_threads(cfg["threads"])
nnc.set_stall_threshold(0)
kind, when = cfg.get("pause") or (None, 0)


def pause():
    print("pause", flush=True)
    time.sleep(120)


writes = [0]
save_checkpoint = serialization.save_checkpoint


def counting_save(*args, **kwargs):
    writes[0] += 1
    return save_checkpoint(*args, **kwargs)


serialization.save_checkpoint = counting_save
if kind == "write":
    write_header, arrays = np.lib.format.write_array_header_1_0, [0]

    def slow_write_header(*args, **kwargs):
        if writes[0] == when:
            arrays[0] += 1
            if arrays[0] == 3:   # two archive members written, the third begun
                pause()
        return write_header(*args, **kwargs)

    np.lib.format.write_array_header_1_0 = slow_write_header
if kind == "fsync":
    fsync = os.fsync

    def slow_fsync(fd):
        if writes[0] == when:
            pause()
        return fsync(fd)

    os.fsync = slow_fsync
if kind == "rename":
    replace = os.replace

    def slow_replace(src, dst):
        replace(src, dst)
        if writes[0] == when and dst.endswith(".prev"):
            pause()

    os.replace = slow_replace


class Progress(nnc.Callback):
    steps = 0

    def on_batch_end(self, batch, logs=None):
        Progress.steps += 1
        print(f"batch {Progress.steps}", flush=True)
        if kind == "batch" and Progress.steps == when:
            pause()


data = np.random.default_rng(0)
nnc.seed(0)
if cfg["model"] == "cnn":
    x = data.standard_normal((36, 8, 8, 1)).astype(np.float32)
    y = data.integers(0, 5, 36)
    kw = dict(padding="same")
    model = nnc.Sequential([
        nnc.Conv2D(1, 3, 3, activation="relu", **kw),
        nnc.Residual(nnc.Sequential([nnc.Conv2D(3, 3, 3, activation="relu", **kw), nnc.Conv2D(3, 3, 3, **kw)])),
        nnc.MaxPool2D(2),
        nnc.DenseBlock(3, 2, 2),
        nnc.Dropout(0.25),
        nnc.GlobalAvgPool2D(),
        nnc.Dense(7, 5),
    ])
    loss = "cross_entropy"
    callbacks = [nnc.LearningRateScheduler(nnc.StepDecay(0.05 if cfg["opt"] == "sgd" else 0.01, 2)),
                 nnc.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)]
else:
    x = data.standard_normal((36, 5, 3))
    y = data.standard_normal((36, 2))
    model = nnc.Sequential([nnc.LSTM(3, 6, return_sequences=False, dtype=np.float64),
                            nnc.Dense(6, 2, dtype=np.float64)])
    loss = "mse"
    callbacks = [nnc.ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5, min_delta=1.0)]
opt = nnc.optim.SGD(0.05, momentum=0.9) if cfg["opt"] == "sgd" else nnc.optim.Adam(0.01)
history = model.fit(x, y, loss=loss, optimizer=opt, epochs=cfg["epochs"], batch_size=8, verbose=0,
                    validation_data=(x[:10], y[:10]), callbacks=[Progress(), *callbacks],
                    checkpoint=cfg.get("checkpoint"), checkpoint_every=cfg.get("every"),
                    resume=cfg.get("checkpoint") is not None)
np.savez(cfg["out"], history=np.frombuffer(json.dumps(history).encode(), np.uint8),
         **{"p:" + k: v for k, v in model.params.items()})
