"""nnc.from_torch: a PyTorch module traced with torch.fx, converted op by op."""
import operator

import numpy as np

from .._validation import layer_dtype
from ._build import IR, bn_scale_shift, chw_columns, compare, conv_weight, gru_params, lstm_params

_WHERE = "nnc.from_torch"


def _np(t):
    return None if t is None else t.detach().cpu().double().numpy()


def from_torch(module, example_input, dtype=np.float32, input_layout="NHWC"):
    """An nnc model computing what a PyTorch module computes.

    The module is traced with ``torch.fx`` (a chain of layers becomes a
    :class:`~nnc.Sequential`, anything else a :class:`~nnc.Graph`), its
    weights are converted to nnc's layouts (OIHW -> HWIO, the column order of
    a Dense after a Flatten of an image, RNN gate orders), a BatchNorm after
    a convolution is folded into it, and activations are fused into the
    layer before them.  Then ``example_input`` is run through both and a
    ``ValueError`` is raised if the outputs differ beyond float32 tolerance.

    Supported: ``nn.Linear``, ``nn.Conv2d`` (zero padding, also "same"),
    ``nn.BatchNorm2d``, ``nn.BatchNorm1d`` after a ``nn.Linear``, ``nn.MaxPool2d``, ``nn.AvgPool2d`` (padding 0 or
    ``count_include_pad=False``), ``nn.AdaptiveAvgPool2d(1)``,
    ``nn.Flatten``, ``nn.ReLU``, ``nn.Sigmoid``, ``nn.Tanh``,
    ``nn.Softmax`` (over channels or features), ``nn.LeakyReLU``,
    ``nn.Dropout``, ``nn.Identity``, ``nn.RNN``/``nn.LSTM``/``nn.GRU``
    (any number of layers; their output sequence and, for one direction,
    its last step ``out[:, -1]``, or ``out[-1]`` with ``batch_first=False``:
    the nnc model takes ``(N, T, F)`` either way; ``bidirectional=True``
    becomes :class:`~nnc.Bidirectional` layers with ``merge_mode="concat"``;
    not ``proj_size``), ``nn.Sequential``, ``+``,
    ``torch.add``, ``torch.cat`` along channels, the functional forms of
    the activations and of ``flatten``, ``view``/``reshape`` to ``(N, -1)``
    (e.g. ``x.view(x.size(0), -1)``) and ``x.mean((2, 3))`` of an image.

    Parameters
    ----------
    module : torch.nn.Module
        Traced in evaluation mode (its mode is restored afterwards).
    example_input : torch.Tensor
        One input, in the module's own layout (NCHW images, ``(N, T, F)``
        sequences).
    dtype : np.float32 or np.float64, default np.float32
    input_layout : {"NHWC", "NCHW"}, default "NHWC"
        The image layout the returned model takes: nnc's (``"NHWC"``) or the
        source's (``"NCHW"``: the model transposes once at its input and
        returns image-shaped outputs as NCHW too).

    Returns
    -------
    Sequential or Graph

    Raises
    ------
    ValueError
        Listing every module or operation that cannot be converted (with its
        name and type), or when the converted model disagrees with the
        module on ``example_input``.
    """
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    dtype = layer_dtype(dtype, _WHERE)
    if input_layout not in ("NHWC", "NCHW"):
        raise ValueError(f"{_WHERE}: input_layout must be 'NHWC' or 'NCHW', got {input_layout!r}")
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"{_WHERE}: expected a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(example_input, torch.Tensor) or not example_input.is_floating_point():
        raise TypeError(f"{_WHERE}: example_input must be a floating-point torch.Tensor, "
                        f"got {type(example_input).__name__}")
    was_training = module.training
    module.eval()
    try:
        traced = module
        if type(module).__module__.startswith("torch.nn.") and not isinstance(module, torch.nn.Sequential):
            traced = torch.nn.Sequential(module)   # one layer: traced as a module, not as its functional form
        try:
            gm = torch.fx.symbolic_trace(traced)
        except Exception as e:   # control flow on values, unsupported Python constructs
            raise ValueError(f"{_WHERE}: torch.fx cannot trace {type(module).__name__}: {e}") from None
        with torch.no_grad():
            ShapeProp(gm).propagate(example_input)
            expected = module(example_input)
        ir, kind_in, kind_out = _convert(gm, torch)
        model = ir.build(dtype, input_layout, ir.inputs if kind_in == "image" else [],
                         ir.outputs if kind_out == "image" else [])
    finally:
        module.train(was_training)
    if not isinstance(expected, torch.Tensor):
        raise ValueError(f"{_WHERE}: the module must return one tensor, got {type(expected).__name__}")
    # the source's layout -> nnc's: NCHW -> NHWC (unless the model takes NCHW), (T, N, F) -> (N, T, F)
    to_nnc = {"image": (0, 2, 3, 1) if input_layout == "NHWC" else None, "seq_t": (1, 0, 2)}
    to_src = {"image": (0, 3, 1, 2) if input_layout == "NHWC" else None, "seq_t": (1, 0, 2)}
    x = example_input.detach().cpu().numpy()
    if to_nnc.get(kind_in):
        x = x.transpose(to_nnc[kind_in])
    y = model.predict(np.ascontiguousarray(x, dtype=dtype))
    if to_src.get(kind_out):
        y = y.transpose(to_src[kind_out])
    compare(_WHERE, y, expected.detach().cpu().numpy())
    return model


def _shape(node):
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _convert(gm, torch):
    nn = torch.nn
    F = torch.nn.functional
    ir = IR(_WHERE)
    # value -> "image" | "pooled" | "chw" | "plain" | "seq_t" (time-first) | "rnn" (an RNN's tuple) |
    # "static" (a size) | "failed" (not converted)
    kind = {}
    chw = {}       # value -> (C, H, W) of an image flattened the source's way
    alias = {}     # value -> the value it is (dropout, identity, flatten of a pooled map)
    modules = dict(gm.named_modules())
    acts = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh"}
    fn_acts = {torch.relu: "relu", F.relu: "relu", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
               torch.tanh: "tanh", F.tanh: "tanh"}
    layouts = [None, None]   # the kinds of the input and of the output
    time_first_rnns = set()   # RNN values of batch_first=False modules
    shapes = {}

    def src(a):
        name = a.name
        while name in alias:
            name = alias[name]
        return name

    def is_channel_dim(v, dim, ndim):
        return dim in (1, -3) if kind.get(v) == "image" else dim in (-1, ndim - 1)

    supported = tuple(getattr(nn, n) for n in _MODULE_NAMES)   # what _module converts (some settings aside)
    known = {"size", "view", "reshape", "relu", "sigmoid", "tanh", "flatten", "softmax", "mean", torch.mean,
             operator.add, operator.iadd, torch.add, torch.cat, torch.flatten, torch.reshape, F.softmax,
             torch.softmax, getattr, operator.getitem, *fn_acts}   # the operations converted below
    for node in gm.graph.nodes:
        if node.op != "output" and node.op != "placeholder" and not node.users:
            continue   # dead code (e.g. an RNN's unused state)
        failures = len(ir.unsupported)
        name = node.name
        shape = shapes[name] = _shape(node)
        if node.op == "placeholder":
            if ir.inputs:
                ir.fail(f"input {name!r}: one input is supported")
            ir.inputs.append(name)
            time_first = any(u.op == "call_module" and isinstance(modules[u.target], nn.RNNBase)
                             and not modules[u.target].batch_first for u in node.users)
            kind[name] = ("image" if shape is not None and len(shape) == 4 else
                          "seq_t" if time_first and len(shape or ()) == 3 else "plain")
            layouts[0] = kind[name]
            continue
        if node.op == "output":
            outs = node.args[0]
            if not hasattr(outs, "name"):
                ir.fail("output: one tensor output is supported")
                continue
            o = src(outs)
            ir.outputs.append(o)
            layouts[1] = kind.get(o)
            if kind.get(o) in ("pooled", "chw", "rnn", "static"):
                ir.fail(f"output {o!r}: a {kind[o]} value cannot be returned as the source shapes it")
            continue
        args = list(node.args)
        ins = [src(a) for a in args if hasattr(a, "name")]
        if any(kind.get(v) == "failed" for v in ins):   # downstream of what was not converted:
            kind[name] = "failed"                       # name only what could never be
            if node.op == "call_module" and not isinstance(modules[node.target], supported):
                m = modules[node.target]
                ir.fail(f"{node.target!r} ({type(m).__module__}.{type(m).__name__}): this module type is not "
                        "supported")
            elif node.op != "call_module" and node.target not in known:
                ir.fail(f"{name!r} ({getattr(node.target, '__name__', node.target)}): unsupported operation")
            continue
        if node.op == "call_module":
            m = modules[node.target]
            label = f"{node.target!r} ({type(m).__module__}.{type(m).__name__})"
            why = _module(ir, name, m, ins, kind, chw, alias, acts, shapes, nn, time_first_rnns)
            if why:
                ir.fail(f"{label}: {why}")
                kind[name] = "failed"
            continue
        target = node.target
        label = f"{name!r} ({getattr(target, '__name__', target)})"
        if (node.op == "call_method" and target == "size" or node.op == "call_function" and (
                target is getattr and args[1:] == ["shape"] or target is operator.getitem
                and kind.get(ins[0]) == "static")):
            kind[name] = "static"   # sizes, read by a reshape below
        elif (node.op == "call_method" and target in ("view", "reshape") or target is torch.reshape):
            into, before = shape, shapes.get(ins[0])
            if into is None or before is None or len(into) != 2 or into[0] != before[0] \
                    or into[1] != int(np.prod(before[1:])):
                ir.fail(f"{label}: only a reshape to (N, -1) (a flatten) is supported")
            else:
                _flatten(ir, name, ins[0], kind, chw, alias, shapes)
        elif (node.op == "call_method" and target == "mean" or target is torch.mean) and kind.get(ins[0]) == "image":
            dims = args[1] if len(args) > 1 else node.kwargs.get("dim")
            keep = args[2] if len(args) > 2 else node.kwargs.get("keepdim", False)
            if not isinstance(dims, (tuple, list)) or sorted(d % 4 for d in dims) != [2, 3]:
                ir.fail(f"{label}: only the mean over the spatial axes (2, 3) is supported")
            else:
                ir.op(name, "gap", ins[:1])
                kind[name] = "pooled" if keep else "plain"
        elif node.op == "call_method" and target in ("relu", "sigmoid", "tanh"):
            ir.op(name, "act", ins[:1], name=target)
            kind[name] = kind.get(ins[0])
        elif node.op == "call_function" and target in fn_acts and len(ins) == 1:
            ir.op(name, "act", ins, name=fn_acts[target])
            kind[name] = kind.get(ins[0])
        elif node.op == "call_function" and target in (operator.add, operator.iadd, torch.add) and len(ins) == 2 \
                and len(args) == 2 and not node.kwargs and kind.get(ins[0]) == kind.get(ins[1]) \
                and kind.get(ins[0]) in ("image", "plain", "seq_t"):
            ir.op(name, "add", ins)
            kind[name] = kind[ins[0]]
        elif node.op == "call_function" and target is torch.cat:
            tensors = args[0] if args else node.kwargs.get("tensors")
            dim = args[1] if len(args) > 1 else node.kwargs.get("dim", 0)
            vs = [src(t) for t in tensors] if isinstance(tensors, (list, tuple)) else []
            if len(vs) >= 2 and all(kind.get(v) == kind.get(vs[0]) for v in vs) \
                    and kind.get(vs[0]) in ("image", "plain", "seq_t") and is_channel_dim(vs[0], dim, len(shape)):
                ir.op(name, "concat", vs)
                kind[name] = kind[vs[0]]
            else:
                ir.fail(f"{label}: torch.cat is supported along the channel (or last) axis only")
        elif node.op == "call_function" and target in (torch.flatten,) or (
                node.op == "call_method" and target == "flatten"):
            start = args[1] if len(args) > 1 else node.kwargs.get("start_dim", 0)
            if start != 1 or (len(args) > 2 and args[2] != -1):
                ir.fail(f"{label}: flatten is supported from axis 1 to the last")
            else:
                _flatten(ir, name, ins[0], kind, chw, alias, shapes)
        elif node.op == "call_function" and target in (F.softmax, torch.softmax) or (
                node.op == "call_method" and target == "softmax"):
            dim = args[1] if len(args) > 1 else node.kwargs.get("dim")
            if dim is not None and is_channel_dim(ins[0], dim, len(shape)):
                ir.op(name, "act", ins, name="softmax")
                kind[name] = kind.get(ins[0])
            else:
                ir.fail(f"{label}: softmax is supported over the channel (or last) axis only")
        elif node.op == "call_function" and target is operator.getitem:
            v, index = ins[0], args[1]
            if kind.get(v) == "rnn" and index == 0:
                alias[name] = v
                kind[v] = "seq_t" if v in time_first_rnns else "plain"
            elif len(shape or ()) == 2 and (kind.get(v) == "plain" and _is_last_step(index)
                                            or kind.get(v) == "seq_t" and index == -1):
                ir.op(name, "last_step", [v])
                kind[name] = "plain"
            else:
                ir.fail(f"{label}: indexing {index!r} is supported only as out[0] of an RNN and out[:, -1]")
        else:
            ir.fail(f"{label}: unsupported operation {node.op} {getattr(target, '__qualname__', target)}")
        if len(ir.unsupported) > failures:
            kind[name] = "failed"
    return ir, layouts[0], layouts[1]


_MODULE_NAMES = ("ReLU", "Sigmoid", "Tanh", "Dropout", "Identity", "LeakyReLU", "Softmax", "Linear", "Conv2d",
                 "BatchNorm2d", "BatchNorm1d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten", "LSTM", "GRU", "RNN")


def _is_last_step(index):
    return (isinstance(index, tuple) and len(index) == 2 and index[0] == slice(None) and index[1] == -1)


def _flatten(ir, name, v, kind, chw, alias, shapes):
    if kind.get(v) == "pooled":   # (N, C, 1, 1) in the source, already (N, C) in nnc
        alias[name] = v
        kind[v] = "plain"
        return
    ir.op(name, "flatten", [v])
    kind[name] = "chw" if kind.get(v) == "image" else "plain"
    if kind.get(v) == "image":
        chw[name] = shapes[v][1:]


def _module(ir, name, m, ins, kind, chw, alias, acts, shapes, nn, time_first_rnns):
    """Converts one leaf module; returns why it cannot be, or None."""
    v = ins[0] if ins else None
    k = kind.get(v)
    shape = shapes[name]
    if type(m) in acts:
        ir.op(name, "act", ins, name=acts[type(m)])
        kind[name] = k
    elif isinstance(m, (nn.Dropout, nn.Identity)):
        alias[name] = v
    elif isinstance(m, nn.LeakyReLU):
        ir.op(name, "leaky", ins, slope=float(m.negative_slope))
        kind[name] = k
    elif isinstance(m, nn.Softmax):
        if k == "image" and m.dim in (1, -3) or k == "plain" and m.dim in (-1, len(shape) - 1):
            ir.op(name, "act", ins, name="softmax")
            kind[name] = k
        else:
            return f"softmax over dim={m.dim} is not supported (only the channel or last axis)"
    elif isinstance(m, nn.Linear):
        W = _np(m.weight)
        if k == "chw":
            W = chw_columns(W, chw[v])
        elif k not in ("plain", "seq_t"):
            return f"a Linear reading a {k} value is not supported"
        ir.op(name, "dense", ins, W=W, b=_np(m.bias))
        kind[name] = "seq_t" if k == "seq_t" else "plain"
    elif isinstance(m, nn.Conv2d):
        if k != "image":
            return "expects an image input"
        if m.padding_mode != "zeros":
            return f"padding_mode={m.padding_mode!r} is not supported (only 'zeros')"
        pad = m.padding if isinstance(m.padding, str) else tuple(m.padding)
        ir.op(name, "conv", ins, W=conv_weight(_np(m.weight)), b=_np(m.bias), stride=tuple(m.stride),
              padding=pad, dilation=tuple(m.dilation), groups=m.groups)
        kind[name] = "image"
    elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
        image = isinstance(m, nn.BatchNorm2d)
        if k != ("image" if image else "plain") or len(shape) != (4 if image else 2) or m.running_mean is None:
            return f"needs {'an image' if image else 'a (N, features)'} input and running statistics"
        w = _np(m.weight) if m.affine else np.ones(m.num_features)
        b = _np(m.bias) if m.affine else np.zeros(m.num_features)
        scale, shift = bn_scale_shift(w, b, _np(m.running_mean), _np(m.running_var), m.eps)
        ir.op(name, "bn", ins, scale=scale, shift=shift, image=image)
        kind[name] = k
    elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        if k != "image":
            return "expects an image input"
        if m.ceil_mode:
            return "ceil_mode=True is not supported"
        pair = lambda t: (t, t) if isinstance(t, int) else tuple(t)   # noqa: E731
        pad = pair(m.padding)
        if isinstance(m, nn.MaxPool2d):
            if pair(m.dilation) != (1, 1):
                return "dilation is not supported"
            ir.op(name, "maxpool", ins, kernel=pair(m.kernel_size), stride=pair(m.stride), padding=pad)
        else:
            if any(pad) and m.count_include_pad:
                return "padding with count_include_pad=True is not supported (nnc averages the valid cells)"
            if m.divisor_override is not None:
                return "divisor_override is not supported"
            ir.op(name, "avgpool", ins, kernel=pair(m.kernel_size), stride=pair(m.stride), padding=pad)
        kind[name] = "image"
    elif isinstance(m, nn.AdaptiveAvgPool2d):
        if k != "image" or m.output_size not in (1, (1, 1)):
            return "only output_size=1 on an image is supported"
        ir.op(name, "gap", ins)
        kind[name] = "pooled"
    elif isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            return "only start_dim=1, end_dim=-1 is supported"
        _flatten(ir, name, v, kind, chw, alias, shapes)
    elif isinstance(m, (nn.LSTM, nn.GRU, nn.RNN)):
        if k != ("plain" if m.batch_first else "seq_t"):
            return ("expects a (N, T, F) input" if m.batch_first else
                    "with batch_first=False, expects the model input or another time-first RNN's output")
        if getattr(m, "proj_size", 0):
            return "projected LSTMs (proj_size > 0) are not supported"
        suffixes = ("", "_reverse") if m.bidirectional else ("",)
        layers = [[_rnn_params(m, f"l{i}{sfx}", nn) for sfx in suffixes] for i in range(m.num_layers)]
        cell = "lstm" if isinstance(m, nn.LSTM) else "gru" if isinstance(m, nn.GRU) else "rnn"
        ir.op(name, "rnn", ins, cell=cell, layers=layers, return_sequences=True)
        kind[name] = "rnn"
        if not m.batch_first:
            time_first_rnns.add(name)
    else:
        return "this module type is not supported"
    return None


def _rnn_params(m, sfx, nn):
    """The nnc params of one layer and direction (weight suffix ``sfx``,
    e.g. "l1_reverse") of a torch RNN, LSTM or GRU."""
    w_ih, w_hh = _np(getattr(m, f"weight_ih_{sfx}")), _np(getattr(m, f"weight_hh_{sfx}"))
    zeros = np.zeros(w_ih.shape[0])
    b_ih = _np(getattr(m, f"bias_ih_{sfx}")) if m.bias else zeros
    b_hh = _np(getattr(m, f"bias_hh_{sfx}")) if m.bias else zeros
    if isinstance(m, nn.LSTM):
        return lstm_params(w_ih, w_hh, b_ih, b_hh)
    if isinstance(m, nn.GRU):   # torch blocks r, z, n; reset after the recurrent product
        return gru_params(w_ih, w_hh, b_ih, b_hh, 0, 1, 2, True)
    return {"W_x": w_ih, "W_h": w_hh, "b": b_ih + b_hh, "act": m.nonlinearity}
