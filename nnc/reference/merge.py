"""Reference merge, activation and layout layers (float64 NumPy), from the
formulas: Add, Concat, LeakyReLU, Permute, and a graph evaluator."""
import numpy as np

from .dense import act


def add(xs, activation=None):
    """act(x_0 + x_1 + ...), summed left to right."""
    s = np.asarray(xs[0], np.float64).copy()
    for x in xs[1:]:
        s = s + np.asarray(x, np.float64)
    return act(s, activation)


def concat(xs):
    """Concatenation along the last axis."""
    return np.concatenate([np.asarray(x, np.float64) for x in xs], axis=-1)


def leaky_relu(x, slope):
    x = np.asarray(x, np.float64)
    return np.where(x > 0, x, slope * x)


def leaky_relu_grad(x, dy, slope):
    return np.where(np.asarray(x) > 0, dy, slope * np.asarray(dy, np.float64))


def permute(x, dims):
    return np.transpose(np.asarray(x, np.float64), (0,) + tuple(dims))


def run_graph(nodes, feeds, outputs):
    """Evaluate nodes [(name, fn, input names)] in order from the dict feeds;
    fn takes one array (one input) or a list."""
    values = dict(feeds)
    for name, fn, srcs in nodes:
        args = [values[s] for s in srcs]
        values[name] = fn(args[0] if len(args) == 1 else args)
    return [values[o] for o in outputs]
