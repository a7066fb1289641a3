"""What both importers share: the weight conversions of the source
frameworks' layouts (verified against PyTorch) and a small intermediate
graph that becomes nnc layers, a Sequential when it is a chain, else a Graph.

The intermediate graph holds ops ``(name, kind, inputs, attrs)`` over values
named like the source's.  Before the layers are made, a BatchNorm directly
after a convolution or a Dense is folded into its weights and bias, an activation
directly after a convolution, a Dense or an Add becomes that layer's
activation, and the output of a one-direction RNN read only as its last
step becomes ``return_sequences=False``.  An RNN op holds, per layer, the
params of its directions: one, or forward and backward (a
:class:`~nnc.Bidirectional` concatenating the two).
"""
import numpy as np

from ..graph import Graph
from ..layers import (GRU, LSTM, Activation, Add, AvgPool2D, Bidirectional, Concat, Conv2D, Dense, Flatten,
                      GlobalAvgPool2D, LeakyReLU, MaxPool2D, Permute, SimpleRNN)
from ..models import Sequential

_FUSABLE = ("relu", "sigmoid", "tanh")


def conv_weight(w):
    """OIHW (PyTorch, ONNX) -> HWIO (nnc)."""
    return np.ascontiguousarray(np.asarray(w, np.float64).transpose(2, 3, 1, 0))


def chw_columns(W, chw):
    """A Dense weight (out, C*H*W) reading a (C, H, W)-flattened image, with its
    columns reordered for nnc's (H, W, C) flattening."""
    C, H, Wd = chw
    return np.ascontiguousarray(W.reshape(W.shape[0], C, H, Wd).transpose(0, 2, 3, 1).reshape(W.shape[0], -1))


def bn_scale_shift(gamma, beta, mean, var, eps):
    """BatchNorm at inference as y = x * scale + shift."""
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    return scale, np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale


def gate_blocks(a, order):
    """Rows of a (gates*H, ...) array reordered block-wise: block i of the
    result is block order[i] of a."""
    blocks = np.split(np.asarray(a, np.float64), len(order))
    return np.concatenate([blocks[i] for i in order])


class IR:
    """The intermediate graph (see the module docstring)."""

    def __init__(self, where):
        self.where = where
        self.ops = []          # [name, kind, inputs, attrs]
        self.inputs = []       # source input names
        self.outputs = []      # source output names
        self.unsupported = []  # descriptions of what cannot be converted
        self.labels = {}       # value -> a readable name for its node (e.g. the source's node name)

    def op(self, value, kind, inputs, **attrs):
        self.ops.append([value, kind, list(inputs), attrs])
        return value

    def fail(self, what):
        self.unsupported.append(what)

    def check(self):
        if self.unsupported:
            raise ValueError(f"{self.where}: cannot convert {len(self.unsupported)} part(s) of the model "
                             "(nothing was converted):\n  " + "\n  ".join(self.unsupported))

    # -- rewrites ---------------------------------------------------------
    def _readers(self):
        n = {}
        for _, _, srcs, _ in self.ops:
            for s in srcs:
                n[s] = n.get(s, 0) + 1
        for o in self.outputs:
            n[o] = n.get(o, 0) + 2   # an output is never fused away
        return n

    def _merge_into_producer(self, kinds, can, merge):
        """Removes each op whose single input is made by an op of ``kinds``
        read by it alone and ``can(producer, op)``; ``merge`` updates the
        producer, whose output then stands for the removed op's."""
        changed = True
        while changed:
            changed = False
            readers = self._readers()
            by_name = {op[0]: op for op in self.ops}
            for op in self.ops:
                if len(op[2]) != 1:
                    continue
                prod = by_name.get(op[2][0])
                if prod is not None and prod[1] in kinds and readers.get(prod[0]) == 1 and can(prod, op):
                    merge(prod, op)
                    self.ops.remove(op)
                    self._rename(op[0], prod[0])
                    changed = True
                    break

    def _rename(self, old, new):
        for op in self.ops:
            op[2] = [new if s == old else s for s in op[2]]
        self.outputs = [new if o == old else o for o in self.outputs]

    def simplify(self):
        def fold_bn(prod, bn):   # scales the output channels: W's last axis (HWIO) or rows (Dense)
            a, s = prod[3], bn[3]
            a["W"] = a["W"] * (s["scale"] if prod[1] == "conv" else s["scale"][:, None])
            a["b"] = (np.zeros(s["scale"].shape) if a["b"] is None else a["b"]) * s["scale"] + s["shift"]

        def act_ok(prod, op):
            return prod[3].get("act") is None and op[3]["name"] in _FUSABLE + (("softmax",) if prod[1] == "dense"
                                                                                else ())

        def set_act(prod, op):
            prod[3]["act"] = op[3]["name"]

        def last_step(prod, op):
            prod[3]["return_sequences"] = False

        self._merge_into_producer(("conv", "dense"), lambda p, o: o[1] == "bn" and p[3].get("act") is None,
                                  fold_bn)
        self._merge_into_producer(("conv", "dense", "add"), lambda p, o: o[1] == "act" and act_ok(p, o), set_act)
        # a bidirectional RNN's last step is not its return_sequences=False output: the backward
        # direction's output at the last step has read that step only
        self._merge_into_producer(("rnn",), lambda p, o: o[1] == "last_step" and p[3]["return_sequences"]
                                  and len(p[3]["layers"][-1]) == 1, last_step)

    # -- nnc layers ---------------------------------------------------------
    def build(self, dtype, input_layout, image_inputs, image_outputs):
        """The nnc model: a Sequential for a chain, else a Graph; with
        ``input_layout="NCHW"``, inside a Sequential that transposes an image
        input to NHWC and an image output back (the inner model keeps its
        inference plan)."""
        self.check()
        nchw_out = input_layout == "NCHW" and any(o in image_outputs for o in self.outputs)
        if nchw_out and len(self.outputs) > 1:
            raise ValueError(f"{self.where}: input_layout='NCHW' with several outputs is not supported")
        self.simplify()
        nodes, renamed = [], {}
        taken = {_safe(s) for s in self.inputs}
        for name, kind, srcs, a in self.ops:
            ins = [renamed.get(s, _safe(s)) for s in srcs]
            layers = _layers(kind, a, dtype, self.where, name)
            base = _safe(self.labels.get(name, name))
            if base in taken:
                base = _safe(name)
            for i, layer in enumerate(layers):
                node = base if len(layers) == 1 else f"{base}_{i}"
                nodes.append((node, layer, ins))
                taken.add(node)
                ins = [node]
            renamed[name] = node
        outputs = [renamed.get(o, _safe(o)) for o in self.outputs]
        inputs = [_safe(s) for s in self.inputs]
        chain = (len(inputs) == 1 and len(outputs) == 1 and outputs[0] == nodes[-1][0]
                 and all(srcs == [prev] for (_, _, srcs), prev in zip(nodes, inputs + [n[0] for n in nodes])))
        if chain:
            model = Sequential([layer for _, layer, _ in nodes], dtype=dtype)
        else:
            model = Graph(nodes, inputs=inputs, outputs=outputs, dtype=dtype)
        pre = [Permute((2, 3, 1), dtype=dtype)] if input_layout == "NCHW" and image_inputs else []
        post = [Permute((3, 1, 2), dtype=dtype)] if nchw_out else []
        return Sequential(pre + [model] + post, dtype=dtype) if pre or post else model


def _safe(name):
    return str(name).replace(".", "_") or "_"


def _layers(kind, a, dtype, where, name):
    """The nnc layers of one op (several for a multi-layer RNN)."""
    if kind == "dense":
        W = a["W"]
        layer = Dense(W.shape[1], W.shape[0], activation=a.get("act"), use_bias=a["b"] is not None, dtype=dtype)
        _set(layer, W=W, b=a["b"])
        return [layer]
    if kind == "conv":
        W = a["W"]
        layer = Conv2D(W.shape[2] * a["groups"], W.shape[3], W.shape[:2], stride=a["stride"], padding=a["padding"],
                       dilation=a["dilation"], groups=a["groups"], activation=a.get("act"),
                       use_bias=a["b"] is not None, dtype=dtype)
        _set(layer, W=W, b=a["b"])
        return [layer]
    if kind == "bn":   # not after a convolution: a per-channel scale and shift, as a depthwise 1x1 conv
        if not a["image"]:
            raise ValueError(f"{where}: {name}: a BatchNorm of features is supported only directly after a "
                             "Linear / Gemm (folded into it)")
        C = a["scale"].shape[0]
        layer = Conv2D(C, C, 1, groups=C, dtype=dtype)
        _set(layer, W=a["scale"].reshape(1, 1, 1, C), b=a["shift"])
        return [layer]
    if kind == "act":
        return [Activation(a["name"], dtype=dtype)]
    if kind == "leaky":
        return [LeakyReLU(a["slope"], dtype=dtype)]
    if kind == "maxpool":
        return [MaxPool2D(a["kernel"], a["stride"], a["padding"], dtype=dtype)]
    if kind == "avgpool":
        return [AvgPool2D(a["kernel"], a["stride"], a["padding"], dtype=dtype)]
    if kind == "gap":
        return [GlobalAvgPool2D(dtype=dtype)]
    if kind == "flatten":
        return [Flatten(dtype=dtype)]
    if kind == "add":
        return [Add(a.get("act"), dtype=dtype)]
    if kind == "concat":
        return [Concat(dtype=dtype)]
    if kind == "rnn":
        layers = []
        for i, dirs in enumerate(a["layers"]):
            seq = a["return_sequences"] or i < len(a["layers"]) - 1
            p = dirs[0]
            I, H = p["W_x"].shape[1], p["W_h"].shape[1]
            if a["cell"] == "lstm":
                layer = LSTM(I, H, return_sequences=seq, dtype=dtype)
            elif a["cell"] == "gru":
                layer = GRU(I, H, reset_after=p["reset_after"], return_sequences=seq, dtype=dtype)
            else:
                layer = SimpleRNN(I, H, activation=p["act"], return_sequences=seq, dtype=dtype)
            parts = [layer]
            if len(dirs) == 2:
                layer = Bidirectional(layer, merge_mode="concat")
                parts = [layer.forward_layer, layer.backward_layer]
            for part, p in zip(parts, dirs):
                _set(part, **{k: p[src] for k, src in _RNN_KEYS[a["cell"]].items()})
            layers.append(layer)
        return layers
    raise ValueError(f"{where}: {name}: taking the last time step is supported only directly after a "
                     "one-direction RNN")


# nnc param name -> converted param name, per cell
_RNN_KEYS = {"lstm": {"W_x": "W_x", "W_h": "W_h", "b": "b"},
             "gru": {"W_x": "W_x", "W_h": "W_h", "b_x": "b_x", "b_h": "b_h"},
             "rnn": {"W_xh": "W_x", "W_hh": "W_h", "b_h": "b"}}


def _set(layer, **arrays):
    for k, v in arrays.items():
        if v is not None:
            layer.params[k][...] = np.asarray(v, np.float64).reshape(layer.params[k].shape)


def lstm_params(w_ih, w_hh, b_ih, b_hh, order=(0, 1, 2, 3)):
    """nnc LSTM params (gates i, f, c, o) from the source's, whose gate
    blocks ``order`` lists in nnc's order."""
    return {"W_x": gate_blocks(w_ih, order), "W_h": gate_blocks(w_hh, order),
            "b": gate_blocks(b_ih, order) + gate_blocks(b_hh, order)}


def gru_params(w_ih, w_hh, b_ih, b_hh, r, z, n, reset_after):
    """nnc GRU params (gates r, u = 1 - z, c) from blocks r, z, n of the
    source's: the z block is negated (u = sigmoid(-a_z) = 1 - z)."""
    sign = np.array([1.0, -1.0, 1.0])

    def conv(a):
        blocks = np.split(np.asarray(a, np.float64), 3)
        return np.concatenate([s * blocks[i] for s, i in zip(sign, (r, z, n))])

    return {"W_x": conv(w_ih), "W_h": conv(w_hh), "b_x": conv(b_ih), "b_h": conv(b_hh), "reset_after": reset_after}


def compare(where, got, expected):
    """Raises ValueError when the imported model's output differs from the
    source's beyond float32 tolerance."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    if got.shape != expected.shape:
        raise ValueError(f"{where}: the imported model gives shape {got.shape}, the source {expected.shape}")
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    err = float(np.max(np.abs(got - expected))) if got.size else 0.0
    if not err <= 1e-4 * scale:
        raise ValueError(f"{where}: the imported model differs from the source on the example input "
                         f"(max abs difference {err:.3g}, allowed {1e-4 * scale:.3g})")
