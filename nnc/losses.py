"""Loss functions: ``loss(pred, target) -> float`` then ``loss.backward() ->
grad_pred`` (the gradient of that mean loss w.r.t. ``pred``, averaging factor
included).  Each call is one fused C kernel computing both (see
kernels/train/); sums are deterministic whatever the thread count."""
import numpy as np

from . import _core
from ._validation import shape_str

__all__ = ["Loss", "MeanSquaredError", "SoftmaxCrossEntropy", "BinaryCrossEntropy", "get"]


def _pred(x, where):
    if not isinstance(x, np.ndarray):
        if x is None or isinstance(x, (str, bytes)):
            raise TypeError(f"{where}: expected a float array as pred, got {type(x).__name__}")
        x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{where}: expected a floating-point pred (float32/float64), got dtype {x.dtype}")
    dt = np.float64 if x.dtype == np.float64 else np.float32
    return np.ascontiguousarray(x, dtype=dt)


def _float_target(t, pred, where):
    t = np.asarray(t)
    if t.dtype.kind not in "fiub":
        raise TypeError(f"{where}: expected a numeric target, got dtype {t.dtype}")
    if t.shape != pred.shape:
        raise ValueError(f"{where}: expected target {shape_str(pred.shape)} (the shape of pred), "
                         f"got {shape_str(t.shape)}")
    return np.ascontiguousarray(t, dtype=pred.dtype)


class Loss:
    """Base class: subclasses implement ``_compute(pred, target) -> (loss, grad)``."""

    def __init__(self):
        self._grad = None

    def __call__(self, pred, target):
        loss, self._grad = self._compute(pred, target)
        return float(loss)

    def backward(self):
        """Gradient of the last computed loss w.r.t. ``pred`` (same shape and dtype)."""
        if self._grad is None:
            raise RuntimeError(f"{self.name}.backward: call the loss on (pred, target) first")
        return self._grad.copy()

    @property
    def name(self):
        return type(self).__name__

    def get_config(self):
        return {}

    def _elementwise(self, pred, target, kernel, *args):
        """Mean of an element-wise loss over every element: one fused kernel
        call ``kernel(p, t, grad, 1/size, *args) -> loss`` on flat views."""
        p = _pred(pred, self.name)
        t = _float_target(target, p, self.name)
        g = np.empty_like(p)
        if p.size == 0:
            return float("nan"), g
        return kernel(p.reshape(-1), t.reshape(-1), g.reshape(-1), 1.0 / p.size, *args), g

    def __repr__(self):
        return f"{self.name}()"


class MeanSquaredError(Loss):
    """``mean((pred - target)^2)`` over every element."""

    def _compute(self, pred, target):
        return self._elementwise(pred, target, _core.mse)


class SoftmaxCrossEntropy(Loss):
    """Softmax + cross-entropy on logits, fused and numerically stable.

    ``pred``: logits ``(N, C)`` or ``(N, T, C)``.  ``target``: integer labels of
    any integer dtype, shape ``pred.shape[:-1]`` and values in ``[0, C)``, or
    class probabilities (e.g. one-hot) of ``pred``'s shape.  The loss is the
    mean over every labelled position (N, or N*T); ``backward`` returns
    ``(softmax(pred) - target) / positions``.
    """

    def _compute(self, pred, target):
        z = _pred(pred, self.name)
        if z.ndim < 2:
            raise ValueError(f"{self.name}: expected logits (N, C) or (N, T, C), got {shape_str(z.shape)}")
        c = z.shape[-1]
        t = np.asarray(target)
        labels = probs = None
        if t.dtype.kind in "iu" and t.shape == z.shape[:-1]:
            labels = np.ascontiguousarray(t, dtype=np.int64).reshape(-1)
            if labels.size and (labels.min() < 0 or labels.max() >= c):
                bad = labels[(labels < 0) | (labels >= c)][0]
                raise ValueError(f"{self.name}: labels must lie in [0, {c}), got {bad}")
        elif t.dtype.kind in "fiub" and t.shape == z.shape:
            probs = np.ascontiguousarray(t, dtype=z.dtype).reshape(-1, c)
        elif t.dtype.kind in "fiub":
            raise ValueError(f"{self.name}: expected integer labels {shape_str(z.shape[:-1])} or "
                             f"probabilities {shape_str(z.shape)}, got {shape_str(t.shape)} ({t.dtype})")
        else:
            raise TypeError(f"{self.name}: expected integer labels or float probabilities, got dtype {t.dtype}")
        z2 = z.reshape(-1, c)
        g = np.empty_like(z2)
        if z2.shape[0] == 0:
            return float("nan"), g.reshape(z.shape)
        loss = _core.softmax_xent(z2, labels, probs, g, 1.0 / z2.shape[0])
        return loss, g.reshape(z.shape)


class BinaryCrossEntropy(Loss):
    """Mean binary cross-entropy over every element.

    ``from_logits=False``: ``pred`` are probabilities in [0, 1]; each log is
    clamped at -100 (as PyTorch), so p = 0 or 1 gives a finite loss.
    ``from_logits=True``: ``pred`` are logits, computed stably
    (``max(x, 0) - x t + log(1 + exp(-|x|))``).
    """

    def __init__(self, from_logits=False):
        super().__init__()
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {"from_logits": self.from_logits}

    def __repr__(self):
        return f"{self.name}(from_logits={self.from_logits})"

    def _compute(self, pred, target):
        return self._elementwise(pred, target, _core.bce, self.from_logits)


_NAMES = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "cross_entropy": SoftmaxCrossEntropy, "softmax_cross_entropy": SoftmaxCrossEntropy,
    "categorical_crossentropy": SoftmaxCrossEntropy, "sparse_categorical_crossentropy": SoftmaxCrossEntropy,
    "bce": BinaryCrossEntropy, "binary_cross_entropy": BinaryCrossEntropy,
    "binary_crossentropy": BinaryCrossEntropy,
}


def get(loss):
    """A Loss object from a Loss instance or a name such as ``"mse"`` or ``"cross_entropy"``."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss.lower() in _NAMES:
        return _NAMES[loss.lower()]()
    raise ValueError(f"unknown loss {loss!r}; expected a nnc.losses.Loss or one of {sorted(_NAMES)}")
