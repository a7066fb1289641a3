"""nnc.onnx.load: an ONNX file as an nnc model (needs the ``onnx`` package,
the ``nnc[onnx]`` extra; it is imported when ``load`` is called).

The file is parsed as data only: its graph is read node by node and mapped
to nnc layers; nothing in it is executed, and tensors stored outside the
file (external data) are refused.
"""
import os

import numpy as np

from ._validation import layer_dtype
from .interop._build import IR, bn_scale_shift, chw_columns, conv_weight, gru_params, lstm_params

__all__ = ["load"]

_WHERE = "nnc.onnx.load"
_MAX_BYTES = 2 << 30   # protobuf's own limit


def load(path_or_bytes, dtype=np.float32, input_layout="NHWC"):
    """An nnc model from an ONNX model (a file path or its bytes).

    Supported operators: Gemm, MatMul (+ Add of a constant), Conv,
    Relu, Sigmoid, Tanh, Softmax (channel or last axis), LeakyRelu,
    MaxPool, AveragePool, GlobalAveragePool (and ReduceMean over the
    spatial axes; Squeeze of its 1x1), Flatten and Reshape to
    ``(N, -1)``, Add, Concat (channel axis), BatchNormalization (folded
    into the Conv or Gemm before it; of an image elsewhere, a per-channel
    scale and shift), LSTM (gate order i, o, f, c), GRU (z, r, h;
    ``linear_before_reset=1`` is nnc's ``reset_after=True``), RNN
    (tanh or relu), forward or bidirectional (a :class:`~nnc.Bidirectional`
    with ``merge_mode="concat"``, the Transpose and Reshape merging the
    directions folded away), Identity and Dropout (dropped), and the static
    shape plumbing exporters emit around recurrent layers (Shape, Gather,
    Slice, Squeeze, Unsqueeze, Concat, ConstantOfShape for zero initial
    states, Transpose between batch-first and time-first, ``Gather`` of the
    last time step), which is folded away.

    Parameters
    ----------
    path_or_bytes : str, os.PathLike or bytes
    dtype : np.float32 or np.float64, default np.float32
    input_layout : {"NHWC", "NCHW"}, default "NHWC"
        The image layout the returned model takes: nnc's or the file's
        (then the model transposes once at its input and returns
        image-shaped outputs as NCHW).  Sequences are ``(N, T, F)``, also
        where the file's are time-first.

    Returns
    -------
    Sequential or Graph

    Raises
    ------
    ValueError
        For a file that is not a valid ONNX model, and (in one message)
        for every node or attribute that cannot be converted.
    ImportError
        Without the ``onnx`` package.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ImportError(f"{_WHERE} needs the onnx package: pip install 'nnc[onnx]'") from None
    dtype = layer_dtype(dtype, _WHERE)
    if input_layout not in ("NHWC", "NCHW"):
        raise ValueError(f"{_WHERE}: input_layout must be 'NHWC' or 'NCHW', got {input_layout!r}")
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
    elif isinstance(path_or_bytes, (str, os.PathLike)):
        with open(path_or_bytes, "rb") as f:
            data = f.read(_MAX_BYTES + 1)
    else:
        raise TypeError(f"{_WHERE}: expected a path or bytes, got {type(path_or_bytes).__name__}")
    if len(data) > _MAX_BYTES:
        raise ValueError(f"{_WHERE}: the file is larger than 2 GiB")
    try:
        model = onnx.load_from_string(data)
        for t in list(model.graph.initializer):
            if t.data_location == onnx.TensorProto.EXTERNAL:
                raise ValueError(f"tensor {t.name!r} is stored outside the file (external data is not read)")
        onnx.checker.check_model(model)
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except ValueError as e:
        raise ValueError(f"{_WHERE}: not a valid ONNX model: {e}") from None
    except Exception as e:   # protobuf DecodeError, onnx.checker.ValidationError, shape inference errors
        raise ValueError(f"{_WHERE}: not a valid ONNX model: {type(e).__name__}: {str(e)[:300]}") from None
    try:
        ir, images_in, images_out = _Converter(inferred, onnx, numpy_helper).run()
        return ir.build(dtype, input_layout, images_in, images_out)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, ZeroDivisionError) as e:
        if isinstance(e, ValueError) and str(e).startswith(_WHERE):
            raise
        # inconsistent attributes or weights, or a layer rejecting them
        raise ValueError(f"{_WHERE}: cannot convert the model: {type(e).__name__}: {str(e)[:300]}") from None


class _Converter:
    """ONNX nodes to the intermediate graph (nnc/interop/_build.py)."""

    def __init__(self, model, onnx, numpy_helper):
        self.g = model.graph
        self.opset = max([o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] or [1])
        self.onnx, self.nh = onnx, numpy_helper
        self.ir = IR(_WHERE)
        self.const = {t.name: numpy_helper.to_array(t) for t in self.g.initializer}
        self.zeros = set()    # values known to be all zeros (initial states)
        self.kind = {}        # value -> image | pooled | chw | plain | seq_t | rnn_y | rnn_y2 (bidirectional) | rnn_y2t
        self.chw = {}
        self.alias = {}
        self.shape = {}
        for vi in list(self.g.value_info) + list(self.g.input) + list(self.g.output):
            t = vi.type.tensor_type
            if t.HasField("shape"):
                self.shape[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
        self.readers = {}
        for node in self.g.node:
            for s in node.input:
                self.readers[s] = self.readers.get(s, 0) + 1
        self.dense_of = {}    # dense op value -> its attrs (a MatMul waiting for its bias)
        self.node_name = ""   # of the node being converted

    def src(self, name):
        while name in self.alias:
            name = self.alias[name]
        return name

    def attrs(self, node):
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def run(self):
        ir = self.ir
        images_in, images_out = [], []
        for vi in self.g.input:
            if vi.name in self.const:
                continue
            ir.inputs.append(vi.name)
            rank = len(self.shape.get(vi.name, ()))
            time_first = rank == 3 and any(n.op_type in ("LSTM", "GRU", "RNN") and n.input[0] == vi.name
                                           for n in self.g.node)   # (T, N, F): the model takes (N, T, F)
            self.kind[vi.name] = "image" if rank == 4 else "seq_t" if time_first else "plain"
            if rank == 4:
                images_in.append(vi.name)
        if len(ir.inputs) != 1:
            ir.fail(f"graph inputs {ir.inputs}: exactly one input is supported")
        for node in self.g.node:
            label = f"node {node.name or node.output[0]!r} ({node.op_type})"
            if any(self.kind.get(s) == "failed" for s in node.input):   # judged by its operator only
                why = None if node.op_type in _SUPPORTED else "this operator is not supported"
            else:
                self.node_name = node.name
                why = self.node(node)
            if why:
                ir.fail(f"{label}: {why}")
            if why or any(self.kind.get(s) == "failed" for s in node.input):
                self.kind.update((o, "failed") for o in node.output)
        for vi in self.g.output:
            o = self.src(vi.name)
            ir.outputs.append(o)
            k = self.kind.get(vi.name)
            if k == "image":
                images_out.append(o)
            elif k not in ("plain", "seq_t", "failed"):   # a time-first sequence comes out as (N, T, ...)
                ir.fail(f"output {vi.name!r}: a {k or 'constant'} value cannot be an output")
        return ir, images_in, images_out

    # -- one node -----------------------------------------------------------
    def node(self, node):
        op, a = node.op_type, self.attrs(node)
        ins = list(node.input)   # value names of the file; self.emit resolves aliases
        out = node.output[0] if node.output else None
        if node.domain not in ("", "ai.onnx"):
            return f"operator domain {node.domain!r} is not supported"
        if out is None:
            return "a node without outputs"
        if all(s == "" or s in self.const for s in ins) and op in _FOLD:
            return self.fold(op, a, ins, out)
        if op == "ConstantOfShape":
            value = a.get("value")
            if value is not None and np.any(self.nh.to_array(value)):
                return "only zero-filled ConstantOfShape (initial states) is supported"
            self.zeros.add(out)
            return None
        if op == "Slice" and ins[0] in self.zeros:
            self.zeros.add(out)
            return None
        if op == "Shape":
            shape = self.shape.get(ins[0])
            if shape is None:
                return "the shape of its input is unknown"
            self.const[out] = np.array([0 if d is None else d for d in shape], np.int64)   # 0: "copy" in Reshape
            return None
        x = ins[1] if op == "Add" and len(ins) == 2 and ins[0] in self.const else ins[0]   # bias + x
        k = self.kind.get(x)
        if k is None:
            return f"input {node.input[0]!r} is not computed from the graph input"
        if op in ("Identity", "Dropout"):
            self.relabel(out, x, k)
            return None
        if op in ("Relu", "Sigmoid", "Tanh"):
            self.emit(out, "act", [x], name=op.lower())
        elif op == "LeakyRelu":
            self.emit(out, "leaky", [x], slope=float(a.get("alpha", 0.01)))
        elif op == "Softmax":
            rank = len(self.shape.get(x, ()) or ())
            axis = a.get("axis", -1 if self.opset >= 13 else 1)
            if self.opset < 13 and axis not in (-1, rank - 1):   # before opset 13: over all axes from axis on
                return f"softmax over the axes from {axis} on is not supported (opset {self.opset})"
            if not (k == "image" and axis in (1, -3) or k in ("plain", "chw", "seq_t") and axis in (-1, rank - 1)):
                return f"softmax over axis {axis} is not supported (only the channel or last axis)"
            self.emit(out, "act", [x], name="softmax")
        elif op in ("Gemm", "MatMul"):
            return self.dense(node, op, a, ins, out, k)
        elif op == "Add":
            return self.add(ins, out, k)
        elif op == "Conv":
            return self.conv(a, ins, out, k)
        elif op == "BatchNormalization":
            rank = len(self.shape.get(x) or ())
            if not (k == "image" or k == "plain" and rank == 2) or len(node.output) > 1 \
                    or any(s not in self.const for s in ins[1:5]):
                return ("only inference-mode BatchNormalization with constant statistics of an image or of "
                        "(N, features)")
            scale, shift = bn_scale_shift(*(self.const[s] for s in ins[1:5]), a.get("epsilon", 1e-5))
            self.emit(out, "bn", [x], scale=scale, shift=shift, image=k == "image")
        elif op in ("MaxPool", "AveragePool"):
            return self.pool(op, a, x, out, k)
        elif op in ("GlobalAveragePool", "ReduceMean"):
            if op == "ReduceMean":
                axes = a.get("axes", self.const.get(ins[1]) if len(ins) > 1 else None)
                if axes is None or sorted(int(i) % 4 for i in axes) != [2, 3] or a.get("noop_with_empty_axes"):
                    return "only the mean over the spatial axes (2, 3) of an image is supported"
            if k != "image":
                return "expects an image"
            self.emit(out, "gap", [x])
            self.kind[out] = "pooled" if a.get("keepdims", 1) or op == "GlobalAveragePool" else "plain"
            return None
        elif op == "Reshape" and k == "rnn_y2t":
            return self.merge_directions(ins, out)
        elif op in ("Flatten", "Reshape"):
            return self.flatten(op, a, ins, out, k)
        elif op == "Concat":
            return self.concat(a, ins, out)
        elif op == "Transpose":
            perm = list(a.get("perm", []))
            if k == "rnn_y2" and perm == [0, 2, 1, 3]:   # bidirectional Y: (T, 2, N, H) -> (T, N, 2, H)
                self.relabel(out, x, "rnn_y2t")
                return None
            flips = {"plain": "seq_t", "seq_t": "plain"}
            if perm != [1, 0, 2] or k not in flips:
                return f"only the batch/time swap perm=[1, 0, 2] of a sequence is supported, got perm={perm}"
            self.relabel(out, x, flips[k])
            return None
        elif op == "Squeeze":
            axes = list(a["axes"]) if "axes" in a else (list(self.const[ins[1]]) if len(ins) > 1 else [])
            if k == "rnn_y" and axes == [1]:
                self.relabel(out, x, "seq_t")
                return None
            if k == "pooled" and sorted(int(i) % 4 for i in axes) == [2, 3]:
                self.relabel(out, x, "plain")
                return None
            return (f"only squeezing the direction axis of an RNN output or the 1x1 of a pooled image is "
                    f"supported (axes={axes})")
        elif op == "Gather":
            idx = self.const.get(ins[1]) if len(ins) > 1 else None
            axis = a.get("axis", 0)
            if idx is None or np.ndim(idx) != 0 or int(idx) != -1 or not (
                    k == "seq_t" and axis == 0 or k == "plain" and axis == 1
                    and len(self.shape.get(x) or ()) == 3):
                return "only taking the last time step of a sequence is supported"
            self.emit(out, "last_step", [x])
            self.kind[out] = "plain"
        elif op in ("LSTM", "GRU", "RNN"):
            return self.rnn(node, op, a, ins, k)
        else:
            return "this operator is not supported"
        self.kind[out] = self.kind.get(out, k)
        return None

    def relabel(self, out, x, kind):
        """``out`` is the same nnc value as ``x``, of the given kind."""
        self.alias[out] = x
        self.kind[out] = kind
        if x in self.chw:
            self.chw[out] = self.chw[x]

    def emit(self, out, kind, inputs, **attrs):
        """An op of the intermediate graph reading the nnc values of ``inputs``,
        its node named after the ONNX node (exporters name them like
        "/layer1/conv2/Conv")."""
        if self.node_name:
            self.ir.labels[out] = self.node_name.strip("/")
        return self.ir.op(out, kind, [self.src(s) for s in inputs], **attrs)

    # -- helpers ------------------------------------------------------------
    def fold(self, op, a, ins, out):
        vals = [self.const.get(s) for s in ins]
        if op == "Constant" and "value" in a:
            a = {"value": self.nh.to_array(a["value"])}
        if op == "Cast":
            a = {"to": self.onnx.helper.tensor_dtype_to_np_dtype(a["to"])}
        try:
            self.const[out] = _FOLD[op](vals, a)
        except (ValueError, IndexError, TypeError) as e:
            return f"cannot fold constant inputs: {e}"
        return None

    def dense(self, node, op, a, ins, out, k):
        if k not in ("plain", "chw", "seq_t") or len(ins) < 2 or ins[1] not in self.const:
            return "needs a (N, features) input and constant weights"
        B = self.const[ins[1]].astype(np.float64)
        if op == "Gemm":
            if a.get("transA", 0):
                return "transA=1 is not supported"
            W = B if a.get("transB", 0) else B.T
            W = W * a.get("alpha", 1.0)
            b = None
            if len(ins) > 2 and ins[2]:
                if ins[2] not in self.const:
                    return "the bias C must be a constant"
                b = np.broadcast_to(self.const[ins[2]].astype(np.float64) * a.get("beta", 1.0), (W.shape[0],))
        else:
            if B.ndim != 2:
                return "only a 2-D constant right operand is supported"
            W, b = B.T, None
        if k == "chw":
            W = chw_columns(W, self.chw[ins[0]])
        self.emit(out, "dense", [ins[0]], W=np.ascontiguousarray(W), b=None if b is None else np.array(b))
        self.kind[out] = "seq_t" if k == "seq_t" else "plain"
        self.dense_of[out] = self.ir.ops[-1][3]
        return None

    def add(self, ins, out, k):
        mm, bias = ins[::-1] if len(ins) == 2 and ins[0] in self.const else (ins + [None])[:2]   # either order
        if len(ins) == 2 and bias in self.const and mm in self.dense_of \
                and self.dense_of[mm]["b"] is None and self.readers.get(mm) == 1:
            attrs = self.dense_of[mm]
            attrs["b"] = np.broadcast_to(self.const[bias].astype(np.float64), (attrs["W"].shape[0],)).copy()
            self.relabel(out, mm, self.kind[mm])
            return None
        if len(ins) != 2 or any(self.kind.get(s) != k for s in ins) or k not in ("image", "plain") \
                or self.shape.get(ins[0]) != self.shape.get(ins[1]):
            return "only the sum of two computed values of one shape (or a bias after MatMul)"
        self.emit(out, "add", ins)
        self.kind[out] = k
        return None

    def conv(self, a, ins, out, k):
        if k != "image" or len(ins) < 2 or ins[1] not in self.const or (len(ins) > 2 and ins[2]
                                                                        and ins[2] not in self.const):
            return "needs an image input and constant weights"
        W = self.const[ins[1]].astype(np.float64)
        if W.ndim != 4:
            return "only 2-D convolutions are supported"
        pad = self.padding(a, W.shape[2:])
        if isinstance(pad, str) and pad not in ("same", "valid"):
            return pad
        b = self.const[ins[2]].astype(np.float64) if len(ins) > 2 and ins[2] else None
        self.emit(out, "conv", [ins[0]], W=conv_weight(W), b=b, stride=tuple(a.get("strides", (1, 1))),
                   padding=pad, dilation=tuple(a.get("dilations", (1, 1))), groups=int(a.get("group", 1)))
        self.kind[out] = "image"
        return None

    @staticmethod
    def padding(a, kernel):
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto == "SAME_UPPER" and tuple(a.get("strides", (1, 1))) == (1, 1):
            return "same"
        if auto == "VALID":
            return "valid"
        if auto != "NOTSET":
            return f"auto_pad={auto} is not supported"
        p = list(a.get("pads", [0, 0, 0, 0]))
        if len(p) != 4 or p[0] != p[2] or p[1] != p[3]:
            return f"asymmetric pads {p} are not supported"
        return (int(p[0]), int(p[1]))

    def pool(self, op, a, x, out, k):
        if k != "image":
            return "expects an image"
        if a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", (1, 1))) or a.get("storage_order", 0):
            return "ceil_mode, dilations and storage_order are not supported"
        kernel = tuple(a["kernel_shape"])
        pad = self.padding(a, kernel)
        if isinstance(pad, str):
            return pad if pad not in ("same", "valid") else "auto_pad is not supported for pooling"
        if op == "AveragePool" and a.get("count_include_pad", 0) and any(pad):
            return "count_include_pad=1 with padding is not supported (nnc averages the valid cells)"
        self.emit(out, "maxpool" if op == "MaxPool" else "avgpool", [x], kernel=kernel,
                   stride=tuple(a.get("strides", (1, 1))), padding=pad)
        self.kind[out] = "image"
        return None

    def flatten(self, op, a, ins, out, k):
        x = ins[0]
        if op == "Flatten" and a.get("axis", 1) != 1:
            return "only axis=1 is supported"
        if op == "Reshape":
            target = self.const.get(ins[1]) if len(ins) > 1 else None
            src_shape = self.shape.get(x)
            if target is None or src_shape is None or len(target) != 2 or target[0] not in (0, -1) \
                    and target[0] != src_shape[0] or (target[1] != -1 and (None in src_shape[1:] or int(
                        target[1]) != int(np.prod(src_shape[1:])))):
                return "only a reshape to (N, -1) (a flatten) is supported"
        if k == "pooled":   # (N, C, 1, 1) in the file, already (N, C) in nnc
            self.relabel(out, x, "plain")
            return None
        if k not in ("image", "plain"):
            return f"cannot flatten a {k} value"
        self.emit(out, "flatten", [x])
        self.kind[out] = "chw" if k == "image" else "plain"
        if k == "image":
            self.chw[out] = self.shape[x][1:]
        return None

    def concat(self, a, ins, out):
        axis = a.get("axis")
        kinds = {self.kind.get(s) for s in ins}
        rank = len(self.shape.get(ins[0]) or ())
        if len(kinds) != 1 or not (kinds == {"image"} and axis in (1, -3)
                                   or kinds == {"plain"} and axis in (-1, rank - 1)):
            return f"only a concatenation of computed values along the channel (or last) axis, got axis={axis}"
        self.emit(out, "concat", ins)
        self.kind[out] = kinds.pop()
        return None

    def rnn(self, node, op, a, ins, k):
        if k != "seq_t":
            return "expects a time-first sequence (N, T, F transposed, as exporters emit)"
        direction = a.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        if direction not in ("forward", "bidirectional") or a.get("clip") is not None or a.get("input_forget", 0) \
                or a.get("layout", 0):
            return (f"only the forward and bidirectional directions (got {direction!r}), no clip, no input_forget "
                    "and layout=0 are supported")
        if any(s not in self.const for s in ins[1:3]) or (len(ins) > 3 and ins[3] and ins[3] not in self.const):
            return "the weights must be constants"
        if len(ins) > 4 and ins[4]:
            return "sequence_lens is not supported"
        if any(s and s not in self.zeros and not (s in self.const and not np.any(self.const[s])) for s in ins[5:]):
            return "only zero initial states are supported"
        if any(self.readers.get(o, 0) for o in node.output[1:]):
            return "only the output sequence Y can be used (not Y_h / Y_c)"
        acts = [s.decode() if isinstance(s, bytes) else s for s in a.get("activations", [])]
        dirs = 2 if direction == "bidirectional" else 1
        per = len(acts) // dirs   # the forward direction's, then the backward's
        if acts[:per] != acts[per:] and dirs == 2:
            return f"different activations per direction {acts} are not supported"
        acts = acts[:per]
        if op == "LSTM" and acts and acts != ["Sigmoid", "Tanh", "Tanh"] or op == "GRU" and acts and \
                acts != ["Sigmoid", "Tanh"]:
            return f"activations {acts} are not supported"
        if op == "RNN" and (acts or ["Tanh"])[0].lower() not in ("tanh", "relu"):
            return f"activation {acts[0]} is not supported"
        W, R = self.const[ins[1]].astype(np.float64), self.const[ins[2]].astype(np.float64)
        gates, H = {"LSTM": 4, "GRU": 3, "RNN": 1}[op], int(a["hidden_size"])
        if W.shape[0] != dirs or R.shape[0] != dirs or W.shape[1] != gates * H:
            return "hidden_size or direction does not match the weights"
        B = self.const[ins[3]].astype(np.float64) if len(ins) > 3 and ins[3] else np.zeros((dirs, 2 * W.shape[1]))
        layer = []
        for d in range(dirs):
            wb, rb = np.split(B[d], 2)
            if op == "LSTM":
                p = lstm_params(W[d], R[d], wb, rb, order=(0, 2, 3, 1))   # ONNX i, o, f, c
            elif op == "GRU":   # z, r, h
                p = gru_params(W[d], R[d], wb, rb, 1, 0, 2, bool(a.get("linear_before_reset", 0)))
            else:
                p = {"W_x": W[d], "W_h": R[d], "b": wb + rb, "act": (acts or ["Tanh"])[0].lower()}
            layer.append(p)
        out = node.output[0]
        self.emit(out, "rnn", [ins[0]], cell=op.lower(), layers=[layer], return_sequences=True)
        self.kind[out] = "rnn_y" if dirs == 1 else "rnn_y2"
        return None

    def merge_directions(self, ins, out):
        """Reshape of a bidirectional Y transposed to (T, N, 2, H) into
        (T, N, 2 * H): the two directions concatenated, as Bidirectional's
        merge_mode="concat" gives them."""
        target, shape = self.const.get(ins[1]) if len(ins) > 1 else None, self.shape.get(ins[0])
        if target is None or shape is None or len(target) != 3 or not (
                target[0] in (0, shape[0]) and target[1] in (0, -1, shape[1])
                and target[2] in (-1, 2 * shape[3]) and list(target).count(-1) <= 1):
            return "only merging the two directions of a bidirectional RNN output, (T, N, 2, H) to (T, N, 2 H)"
        self.relabel(out, ins[0], "seq_t")
        return None


def _unsqueeze(v, a):
    axes = list(a["axes"]) if "axes" in a else [int(i) for i in v[1]]
    x = v[0]
    for ax in sorted(int(i) % (x.ndim + len(axes)) for i in axes):
        x = np.expand_dims(x, ax)
    return x


def _slice(v, a):
    x, starts, ends = v[0], v[1], v[2]
    axes = v[3] if len(v) > 3 and v[3] is not None else range(len(starts))
    steps = v[4] if len(v) > 4 and v[4] is not None else [1] * len(starts)
    idx = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        idx[int(ax)] = slice(int(s), int(min(e, 2 ** 62)), int(st))
    return x[tuple(idx)]


_SUPPORTED = {"Identity", "Dropout", "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Softmax", "Gemm", "MatMul", "Add",
              "Conv", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape",
              "Concat", "Transpose", "Squeeze", "Gather", "LSTM", "GRU", "RNN", "Shape", "ConstantOfShape",
              "Slice", "Unsqueeze", "Constant", "Cast", "ReduceMean"}

# shape plumbing evaluated when every input is constant
_FOLD = {
    "Constant": lambda v, a: np.asarray(next(iter(a.values()))),   # value_float(s), value_int(s)
    "Identity": lambda v, a: v[0],
    "Gather": lambda v, a: np.take(v[0], v[1], axis=a.get("axis", 0)),
    "Unsqueeze": _unsqueeze,
    "Squeeze": lambda v, a: np.squeeze(v[0], axis=tuple(int(i) for i in (a.get("axes") or v[1]))),
    "Concat": lambda v, a: np.concatenate([np.atleast_1d(x) for x in v], axis=a.get("axis", 0)),
    "Slice": _slice,
    "Cast": lambda v, a: v[0].astype(a["to"]),
}
