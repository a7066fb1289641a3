"""Graph: a model over a directed acyclic graph of layers (branches, merges,
several inputs and outputs), with the surface of Sequential."""
import sys
import threading

import numpy as np

from . import _core
from ._validation import dtype_name, layer_dtype, pos_int, shape_str
from .layers.activations import RELU
from .layers.base import Layer
from .layers.merge import Add
from .layers.registry import layer_from_config, layer_to_config
from .models import _PREDICT_BATCH, _Model

__all__ = ["Graph"]

_LAYER_API = ("forward", "backward", "params", "grads", "get_config")


class Graph(_Model):
    """Layers wired as a directed acyclic graph.

    Each node applies one layer to the outputs of earlier nodes or to the
    graph's inputs; a node with several inputs (:class:`~nnc.Add`,
    :class:`~nnc.Concat`) receives them as a list, in the order given.
    Nodes run in the order listed (which must be a topological order), and
    an intermediate output is released as soon as the last node reading it
    has run.  ``backward`` adds the gradients of an output read by several
    nodes.  A chain of layers is better served by :class:`~nnc.Sequential`.

    Like Sequential, a Graph trains with :meth:`fit` (one output; several
    inputs as for :meth:`forward`: a list or a dict of arrays with one
    number of samples, split into the same batches, shuffled alike and
    hashed each for checkpoints), predicts in chunks with :meth:`predict`
    (bitwise the same for
    any batch size and thread count), prints a :meth:`summary`, saves with
    :meth:`save` and is restored by :func:`nnc.load`.  With one input and
    one output and layers whose inference is a sequence of kernel calls
    (convolutions, pooling, Dense, Add, Concat, Activation, Flatten), the
    inference forward runs as a recorded plan, without Python between
    layers.

    Parameters
    ----------
    nodes : sequence of tuple
        ``(name, layer, inputs)`` triples: ``name`` a unique str without ".", ``layer`` an nnc layer (each
        layer object in one node only), ``inputs`` a str or a list of
        names of graph inputs or earlier nodes.
    inputs : str or sequence of str, default "x"
        Names of the graph's inputs.
    outputs : str or sequence of str, optional
        Names of the nodes whose outputs the graph returns (default: the
        last node).
    dtype : np.float32 or np.float64, optional
        Default: the first layer's; every layer must have it.

    Attributes
    ----------
    nodes : list of tuple
        The ``(name, layer, inputs)`` triples, ``inputs`` a tuple of names.
    params : dict of str to ndarray
        The layers' very arrays under ``"{node name}.{key}"``.
    grads : dict of str to ndarray
        Likewise for the gradients.

    Shape
    -----
    ``forward(x)`` takes one array per input: an array for a single input,
    else a list (in the order of ``inputs``) or a dict by name.  It returns
    an array for a single output, else a tuple in the order of ``outputs``.

    Examples
    --------
    >>> import numpy as np, nnc
    >>> g = nnc.Graph([("a", nnc.Dense(4, 8, activation="relu"), "x"),
    ...                ("b", nnc.Dense(8, 4), "a"),
    ...                ("sum", nnc.Add(), ["x", "b"])])
    >>> g.predict(np.ones((3, 4), np.float32)).shape
    (3, 4)
    """

    def __init__(self, nodes, inputs="x", outputs=None, dtype=None):
        inputs = _names(inputs, "inputs")
        if not inputs:
            raise ValueError("Graph: expected at least one input name")
        known, layers, parsed = set(), set(), []
        for name in inputs:
            _check_name(name, "input")
            if name in known:
                raise ValueError(f"Graph: input name {name!r} appears twice")
            known.add(name)
        try:
            nodes = list(nodes)
        except TypeError:
            raise TypeError(f"Graph: nodes must be a sequence of (name, layer, inputs), "
                            f"got {type(nodes).__name__}") from None
        if not nodes:
            raise ValueError("Graph: expected at least one node")
        for i, node in enumerate(nodes):
            if not isinstance(node, (tuple, list)) or len(node) != 3:
                raise ValueError(f"Graph: nodes[{i}] must be a (name, layer, inputs) triple, got {node!r:.100}")
            name, layer, srcs = node
            _check_name(name, f"nodes[{i}]")
            if name in known:
                raise ValueError(f"Graph: node name {name!r} is used twice")
            if not all(hasattr(layer, a) for a in _LAYER_API):
                raise TypeError(f"Graph: node {name!r} is not an nnc layer ({type(layer).__name__})")
            if id(layer) in layers:
                raise ValueError(f"Graph: node {name!r} reuses a layer object of an earlier node")
            srcs = _names(srcs, f"inputs of node {name!r}")
            missing = [s for s in srcs if s not in known]
            if not srcs or missing:
                raise ValueError(f"Graph: node {name!r} reads {missing or 'nothing'}: every input must be a graph "
                                 "input or an earlier node")
            known.add(name)
            layers.add(id(layer))
            parsed.append((name, layer, srcs))
        outputs = _names(parsed[-1][0] if outputs is None else outputs, "outputs")
        bad = [o for o in outputs if o not in known]
        if not outputs or bad or len(set(outputs)) != len(outputs):
            raise ValueError(f"Graph: outputs must be distinct names of inputs or nodes, got {list(outputs)}")
        used = {s for _, _, srcs in parsed for s in srcs} | set(outputs)
        unused = [n for n in list(inputs) + [p[0] for p in parsed] if n not in used]
        if unused:
            raise ValueError(f"Graph: {unused} feed no node and no output")
        self.nodes = parsed
        self.inputs, self.outputs = inputs, outputs
        self.dtype = layer_dtype(parsed[0][1].dtype if dtype is None else dtype, "Graph")
        for name, layer, _ in parsed:
            if np.dtype(layer.dtype) != np.dtype(self.dtype):
                raise TypeError(f"Graph: node {name!r} has dtype {dtype_name(layer.dtype)}, "
                                f"expected {dtype_name(self.dtype)}")
        # readers[v]: how many nodes read value v (an output counts as one more)
        readers = {}
        for _, _, srcs in parsed:
            for s in srcs:
                readers[s] = readers.get(s, 0) + 1
        for o in outputs:
            readers[o] = readers.get(o, 0) + 1
        self._readers = readers
        # A node read only by a two-input Add whose other input is ready
        # before it may add that input as it stores its output (a Conv2D
        # does, in the same pass): fuse[node] = (index of the Add, other input)
        order = {n: i for i, n in enumerate(inputs)}
        order.update({p[0]: len(inputs) + i for i, p in enumerate(parsed)})
        self._fuse = {}
        for j, (name, layer, srcs) in enumerate(parsed):
            if isinstance(layer, Add) and len(srcs) == 2 and srcs[0] != srcs[1]:
                last, other = sorted(srcs, key=order.get, reverse=True)
                if order[last] >= len(inputs) and readers[last] == 1:
                    self._fuse[last] = (j, other)
        self._cache = None
        self._lock = threading.Lock()
        self._input_shapes = None
        self._plans = {}   # {input shape: plan entry}, a memo (Layer._memos)

    # -- parameters -----------------------------------------------------
    @property
    def params(self):
        return {f"{n}.{k}": v for n, layer, _ in self.nodes for k, v in layer.params.items()}

    @property
    def grads(self):
        return {f"{n}.{k}": v for n, layer, _ in self.nodes for k, v in layer.grads.items()}

    def __len__(self):
        return len(self.nodes)

    def __getitem__(self, name):
        for n, layer, _ in self.nodes:
            if n == name:
                return layer
        raise KeyError(f"Graph: no node named {name!r}")

    # -- forward / backward ---------------------------------------------
    def _single(self):
        return len(self.inputs) == 1 and len(self.outputs) == 1

    def _forward(self, x, training, **kwargs):
        if kwargs:
            raise TypeError(f"Graph.forward: unexpected arguments {sorted(kwargs)}")
        if not training and self._single():
            y = self._planned(x)
            if y is not None:
                return y
        return self._forward_add(x, training, None)[0]

    def _feed(self, x, where="Graph"):
        """{input name: array} from forward's argument."""
        names = self.inputs
        if isinstance(x, dict):
            if set(x) != set(names):
                missing, extra = [n for n in names if n not in x], sorted(set(x) - set(names), key=str)
                why = "; ".join(f"{w} {v}" for w, v in (("missing", missing), ("unexpected", extra)) if v)
                raise ValueError(f"{where}: expected inputs {list(names)}, got {sorted(x, key=str)} ({why})")
            return {n: x[n] for n in names}
        if len(names) == 1:
            return {names[0]: x}
        if not isinstance(x, (list, tuple)) or len(x) != len(names):
            got = f"{len(x)} arrays" if isinstance(x, (list, tuple)) else type(x).__name__
            raise ValueError(f"{where}: expected a list of {len(names)} inputs {list(names)}, got {got}")
        return dict(zip(names, x))

    def _batch(self, x, where):
        """{input name: ndarray} from forward's argument, checked to be
        batches of one size N; and N."""
        feed = {k: np.asarray(v) for k, v in self._feed(x, where).items()}
        sizes = {v.shape[0] if v.ndim else None for v in feed.values()}
        if len(sizes) != 1 or None in sizes:
            raise ValueError(f"{where}: every input must be a batch (N, ...) with the same N, got "
                             + ", ".join(f"{k} {shape_str(v.shape)}" for k, v in feed.items()))
        return feed, sizes.pop()

    def _forward_add(self, x, training, add, relu=False):
        values = self._feed(x)
        if training:
            self._input_shapes = [tuple(np.shape(values[n])[1:]) for n in self.inputs]
        left = dict(self._readers)
        for name, layer, srcs in self.nodes:
            if name not in values:
                args = [values[s] for s in srcs]
                arg = args[0] if len(args) == 1 else args
                fuse = self._fuse.get(name)
                if fuse is None:
                    values[name] = self._sub_forward(layer, arg, training)
                else:
                    add_name, add_layer, _ = self.nodes[fuse[0]]
                    add_relu = not training and add_layer._act == RELU   # the Add's ReLU in the same pass
                    y, added = self._sub_forward_add(layer, arg, training, values[fuse[1]], add_relu)
                    if added:   # the Add node is done, its activation too with add_relu
                        values[add_name] = y if add_relu else add_layer._activate(y, 2, training)
                    values[name] = y
            for s in srcs:   # release what no later node reads
                left[s] -= 1
                if not left[s]:
                    del values[s]
        out = tuple(values[o] for o in self.outputs)
        if training:
            self._cache = True
        return (out[0] if len(out) == 1 else out), False

    def _backward(self, grad_y, input_grad):
        if len(self.outputs) == 1:
            grad_y = (grad_y,)
        elif not isinstance(grad_y, (list, tuple)) or len(grad_y) != len(self.outputs):
            raise ValueError(f"Graph.backward: expected a list of {len(self.outputs)} output gradients")
        grads = {}
        for o, g in zip(self.outputs, grad_y):
            grads[o] = g
        inputs = set(self.inputs)
        for i in range(len(self.nodes) - 1, -1, -1):
            name, layer, srcs = self.nodes[i]
            g = grads.pop(name)
            need = input_grad or any(s not in inputs for s in srcs)
            dx = self._sub_backward(layer, g, need)
            if not need:
                continue
            for s, d in zip(srcs, dx if len(srcs) > 1 else (dx,)):
                grads[s] = d if s not in grads else self._sum(grads[s], d)
        if not input_grad:
            return None
        out = tuple(grads[n] for n in self.inputs)
        return out[0] if len(out) == 1 else out

    def _sum(self, a, b):
        a = np.ascontiguousarray(a, dtype=self.dtype)
        b = np.ascontiguousarray(b, dtype=self.dtype)
        if a.shape != b.shape:
            raise RuntimeError("Graph.backward: the gradients reaching one output differ in shape")
        s = np.empty_like(a)
        _core.add(s.reshape(-1), a.reshape(-1), b.reshape(-1))
        return s

    # -- inference plans (see _Model) -------------------------------------
    def _can_plan(self):
        return self._single() and all(isinstance(layer, Layer) and layer._can_plan() for _, layer, _ in self.nodes)

    def _leaves(self):
        return [leaf for _, layer, _ in self.nodes
                for leaf in (layer._leaves() if isinstance(layer, Layer) else [layer])]

    # -- prediction with several inputs or outputs --------------------------
    def predict(self, x, batch_size=None):
        """Inference in chunks of ``batch_size`` rows, as
        :meth:`Sequential.predict <nnc.Sequential.predict>`; ``x`` and the
        result as in :meth:`forward` (lists or a dict for several inputs, a
        tuple for several outputs)."""
        if self._single() and not isinstance(x, dict):
            return super().predict(x, batch_size)
        feed, n = self._batch(x, "Graph.predict")
        bs = _PREDICT_BATCH if batch_size is None else pos_int(batch_size, "batch_size", "Graph.predict")
        parts = [_as_tuple(self.forward({k: v[s:s + bs] for k, v in feed.items()}), self.outputs)
                 for s in range(0, max(n, 1), bs)]
        out = tuple(np.concatenate([p[j] for p in parts]) for j in range(len(self.outputs)))
        return out[0] if len(out) == 1 else out

    def _fit_inputs(self, x, where):
        """fit's x: an array for one input, else a dict of arrays in the
        order of ``inputs`` (one batch size, every name given once)."""
        if len(self.outputs) != 1:
            raise ValueError(f"{where}: expected a Graph with one output, this one has {list(self.outputs)}")
        if len(self.inputs) == 1 and not isinstance(x, dict):
            return np.asarray(x)
        feed = self._batch(x, where)[0]
        return feed if len(feed) > 1 else feed[self.inputs[0]]

    # -- description and persistence ---------------------------------------
    def summary(self, input_shape=None, file=None):
        """Print (and return) a table of the nodes: name and layer type,
        output shape, parameter count and inputs.

        Parameters
        ----------
        input_shape : tuple of int or list of them, optional
            The shape of one sample per input (no batch axis).  Default:
            the shapes seen in training; unknown output shapes print as "?".
        file : file-like, optional
            Where to print (default ``sys.stdout``).

        Returns
        -------
        str
            The printed table.
        """
        shapes = input_shape if input_shape is not None else self._input_shapes
        if shapes is not None and len(self.inputs) == 1 and all(isinstance(d, (int, np.integer)) for d in shapes):
            shapes = [shapes]
        values = {}
        if shapes is not None and len(shapes) == len(self.inputs):
            values = {n: np.zeros((0,) + tuple(s), self.dtype) for n, s in zip(self.inputs, shapes)}
        rows, total = [], 0
        for name, layer, srcs in self.nodes:
            args = [values.get(s) for s in srcs]
            y = None
            if all(a is not None for a in args):
                try:
                    y = layer.forward(args[0] if len(args) == 1 else args)
                except (ValueError, TypeError, RuntimeError):
                    y = None
            values[name] = y
            count = sum(int(p.size) for p in layer.params.values())
            total += count
            out = "?" if y is None else shape_str((None,) + y.shape[1:])
            rows.append((f"{name} ({layer.name})", out, f"{count:,}", ", ".join(srcs)))
        head = ("Node (type)", "Output shape", "Params", "Inputs")
        w = [max(len(r[j]) for r in rows + [head]) + 2 for j in range(4)]
        line = "-" * sum(w)
        text = [f"Graph ({dtype_name(self.dtype)}): inputs {', '.join(self.inputs)}; "
                f"outputs {', '.join(self.outputs)}", line,
                "".join(h.ljust(w[j]) for j, h in enumerate(head)), "=" * sum(w)]
        text += ["".join(c.ljust(w[j]) for j, c in enumerate(r)).rstrip() for r in rows]
        text += [line, f"Total params: {total:,}"]
        out = "\n".join(text)
        print(out, file=file or sys.stdout)
        return out

    def get_config(self):
        return {"nodes": [{"name": n, "layer": layer_to_config(layer), "inputs": list(srcs)}
                          for n, layer, srcs in self.nodes],
                "inputs": list(self.inputs), "outputs": list(self.outputs), "dtype": dtype_name(self.dtype)}

    @classmethod
    def from_config(cls, config):
        specs = config.get("nodes")
        if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
            raise ValueError("Graph.from_config: expected a list of node dicts under 'nodes'")
        nodes = [(s.get("name"), layer_from_config(s.get("layer"), "Graph.from_config"), s.get("inputs"))
                 for s in specs]
        return cls(nodes, inputs=config.get("inputs"), outputs=config.get("outputs"), dtype=config.get("dtype"))

    def __repr__(self):
        return ("Graph([" + ", ".join(f"({n!r}, {layer!r}, {list(s)})" for n, layer, s in self.nodes)
                + f"], inputs={list(self.inputs)}, outputs={list(self.outputs)})")


def _names(value, what):
    """A tuple of names from a str or a sequence of str."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"Graph: {what} must be a name or a list of names, got {value!r:.100}")
    return tuple(value)


def _check_name(name, what):
    if not isinstance(name, str) or not name or "." in name:
        raise ValueError(f"Graph: {what} name must be a non-empty str without '.', got {name!r:.100}")


def _as_tuple(y, outputs):
    return (y,) if len(outputs) == 1 else y
