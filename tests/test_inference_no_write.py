"""Inference (training=False) writes nothing to the layer (the layer contract): one
model may serve many threads, e.g. predicting images of different sizes at
once.  Each layer class runs inference on two input shapes; afterwards its
``__dict__`` (and its sub-layers') holds the same names, the same objects and
the same array values.  Allowed: a recurrent layer's ``state`` and
new entries in the per-shape memo dicts ``Layer._memos`` (the dicts
themselves stay the same objects)."""
import numpy as np
import pytest

import nnc
from nnc.layers.base import Layer
from nnc.layers.registry import registry


def _conv_lstm_init(x):
    h = np.full(x.shape[:1] + x.shape[2:4] + (4,), 0.5, np.float32)
    return dict(initial_state=(h, -h))


# class name -> (constructor, two input shapes, forward kwargs from the input or None)
CASES = {
    "Dense": (lambda: nnc.Dense(4, 3, activation="relu"), [(2, 4), (3, 2, 4)], None),
    "Perceptron": (lambda: nnc.Perceptron(4, 2), [(2, 4), (5, 4)], None),
    "Conv2D": (lambda: nnc.Conv2D(3, 4, 3, padding="same"), [(1, 5, 5, 3), (2, 6, 4, 3)], None),
    "MaxPool2D": (lambda: nnc.MaxPool2D(2), [(1, 4, 4, 3), (2, 6, 8, 3)], None),
    "AvgPool2D": (lambda: nnc.AvgPool2D(3, stride=2, padding=1), [(1, 4, 4, 3), (2, 6, 8, 3)], None),
    "GlobalAvgPool2D": (lambda: nnc.GlobalAvgPool2D(), [(1, 4, 4, 3), (2, 3, 5, 3)], None),
    "Flatten": (lambda: nnc.Flatten(), [(2, 3, 4), (1, 5)], None),
    "Dropout": (lambda: nnc.Dropout(0.5), [(2, 3, 4), (1, 5)], None),
    "Embedding": (lambda: nnc.Embedding(6, 3), [(2, 3), (4,)], None),
    "Bidirectional": (lambda: nnc.Bidirectional(nnc.GRU(4, 5)), [(2, 3, 4), (1, 6, 4)],
                      lambda x: dict(lengths=np.arange(1, x.shape[0] + 1))),
    "SimpleRNN": (lambda: nnc.SimpleRNN(4, 5, output_size=3), [(2, 3, 4), (1, 6, 4)], None),
    "LSTM": (lambda: nnc.LSTM(4, 5, return_sequences=False), [(2, 3, 4), (1, 6, 4)], None),
    "GRU": (lambda: nnc.GRU(4, 5, reset_after=True, stateful=True), [(2, 3, 4), (2, 5, 4)], None),
    "ConvRNN2D": (lambda: nnc.ConvRNN2D(3, 4, 3, out_channels=2), [(1, 2, 5, 5, 3), (2, 3, 6, 4, 3)], None),
    "ConvLSTM2D": (lambda: nnc.ConvLSTM2D(3, 4, 3, return_sequences=False), [(1, 2, 5, 5, 3), (2, 3, 6, 4, 3)],
                   _conv_lstm_init),
    "Residual": (lambda: nnc.Residual(nnc.Conv2D(3, 3, 3, padding=1), shortcut=nnc.Conv2D(3, 3, 1)),
                 [(1, 5, 5, 3), (2, 4, 6, 3)], None),
    "DenseBlock": (lambda: nnc.DenseBlock(3, 2, 2), [(1, 5, 5, 3), (2, 4, 6, 3)], None),
    "Activation": (lambda: nnc.Activation("softmax"), [(2, 3, 4), (1, 5)], None),
    "LeakyReLU": (lambda: nnc.LeakyReLU(0.2), [(2, 3, 4), (1, 5)], None),
    "Permute": (lambda: nnc.Permute((2, 1)), [(2, 3, 4), (1, 5, 2)], None),
    "Add": (lambda: nnc.Add("relu"), [[(2, 3), (2, 3)], [(1, 4, 2)] * 3], None),
    "Concat": (lambda: nnc.Concat(), [[(2, 3), (2, 1)], [(1, 4, 2)] * 3], None),
    "Graph": (lambda: nnc.Graph([("a", nnc.Conv2D(3, 3, 3, padding=1), "x"), ("s", nnc.Add("relu"), ["x", "a"]),
                                 ("c", nnc.Concat(), ["s", "x"]), ("p", nnc.GlobalAvgPool2D(), "c")]),
              [(1, 5, 5, 3), (2, 4, 6, 3)], None),
    "Sequential": (lambda: nnc.Sequential([nnc.Conv2D(3, 4, 3, padding=1, activation="relu"), nnc.MaxPool2D(2),
                                           nnc.Residual(nnc.Conv2D(4, 4, 3, padding=1)), nnc.GlobalAvgPool2D(),
                                           nnc.Dense(4, 2)]),
                   [(1, 6, 6, 3), (2, 4, 8, 3)], None),
}


def _record(v, key, out, seen):
    """Flatten what must not change into out: {key: (object, copy of its
    values if an array)}; layers, dicts, lists and tuples are walked into."""
    out[key] = (v, np.array(v, copy=True) if isinstance(v, np.ndarray) else None)
    if isinstance(v, Layer):
        if id(v) in seen:
            return
        seen.add(id(v))
        names = sorted(vars(v))
        out[key + ":names"] = (tuple(names), None)
        for name in names:
            if name == "state" and hasattr(v, "reset_state"):
                continue   # a recurrent layer's state is set by every forward
            if name in Layer._memos:
                out[f"{key}.{name}"] = (getattr(v, name), None)   # the same dict; new entries allowed
                continue
            _record(getattr(v, name), f"{key}.{name}", out, seen)
    elif isinstance(v, dict):
        out[key + ":keys"] = (tuple(v), None)
        for k, item in v.items():
            _record(item, f"{key}[{k!r}]", out, seen)
    elif isinstance(v, (list, tuple)):
        for i, item in enumerate(v):
            _record(item, f"{key}[{i}]", out, seen)


def _snapshot(layer):
    out = {}
    _record(layer, "layer", out, set())
    return out


def _assert_unchanged(before, after):
    added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    assert not added and not removed, f"inference added {added}, removed {removed}"
    for key, (obj, values) in before.items():
        now, _ = after[key]
        if key.endswith((":names", ":keys")):
            assert now == obj, key
            continue
        assert now is obj, f"{key} was replaced by inference"
        if values is not None:
            np.testing.assert_array_equal(now, values, err_msg=f"{key} was written by inference")


def test_every_layer_class_has_a_case():
    assert set(CASES) == set(registry())


@pytest.mark.parametrize("name", sorted(CASES))
def test_inference_writes_nothing_to_the_layer(name, rng):
    make, shapes, kwargs = CASES[name]
    nnc.seed(3)
    layer = make()
    xs = [[rng.standard_normal(t).astype(np.float32) for t in s] if isinstance(s, list)   # merge layers
          else rng.integers(0, 6, s) if name == "Embedding" else rng.standard_normal(s).astype(np.float32)
          for s in shapes]
    before = _snapshot(layer)
    ys = [layer.forward(x, **(kwargs(x) if kwargs else {})) for x in xs]
    again = layer.forward(xs[0], **(kwargs(xs[0]) if kwargs else {}))
    _assert_unchanged(before, _snapshot(layer))
    batch = [(x[0] if isinstance(x, list) else x).shape[0] for x in xs]
    assert ys[0].shape[0] == batch[0] and ys[1].shape[0] == batch[1]
    if not getattr(layer, "stateful", False):   # a stateful layer starts from the carried state
        np.testing.assert_array_equal(again, ys[0])


@pytest.mark.parametrize("name", ["ConvRNN2D", "ConvLSTM2D"])
def test_inference_between_training_forward_and_backward(name, rng):
    """An inference call on other image sizes between a training forward and
    its backward changes nothing in the backward (the state shape comes from
    the cached input, not from the last call)."""
    make, shapes, _ = CASES[name]
    nnc.seed(4)
    layer = make()
    x = rng.standard_normal(shapes[0]).astype(np.float32)
    other = rng.standard_normal(shapes[1]).astype(np.float32)
    g = rng.standard_normal(layer.forward(x, training=True).shape).astype(np.float32)
    results = []
    for between in (False, True):
        layer.forward(x, training=True)
        if between:
            layer.forward(other)
        dx = layer.backward(g)
        state = layer.grad_initial_state
        results.append([dx, *(v.copy() for v in layer.grads.values()),
                        *(state if isinstance(state, tuple) else (state,))])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
