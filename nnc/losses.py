"""Loss functions: ``loss(pred, target) -> float`` then ``loss.backward() ->
grad_pred`` (the gradient of that mean loss w.r.t. ``pred``, averaging factor
included).  Each call is one fused C kernel computing both (see
kernels/train/); sums are deterministic whatever the thread count."""
import numpy as np

from . import _core
from ._validation import instance_or_named, shape_str

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
    """Base class of the losses.

    ``loss(pred, target)`` returns the mean loss as a Python float and keeps
    its gradient; :meth:`backward` returns that gradient.  Subclasses
    implement ``_compute(pred, target) -> (loss, grad)``.
    """

    def __init__(self):
        self._grad = None

    def __call__(self, pred, target):
        loss, self._grad = self._compute(pred, target)
        return float(loss)

    def backward(self):
        """Gradient of the last computed loss w.r.t. ``pred``.

        Returns
        -------
        ndarray
            Same shape and dtype as ``pred`` (float64 for a float64 ``pred``,
            else float32); the averaging factor is included.

        Raises
        ------
        RuntimeError
            If the loss has not been called yet.
        """
        if self._grad is None:
            raise RuntimeError(f"{self.name}.backward: call the loss on (pred, target) first")
        return self._grad.copy()

    @property
    def name(self):
        """The class name, used in error messages."""
        return type(self).__name__

    def get_config(self):
        """The constructor arguments as a dict."""
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
    """Mean squared error over every element.

    ``L = sum((pred - target)**2) / n`` with ``n = pred.size``; the gradient
    is ``2 * (pred - target) / n``.  ``target`` has the shape of ``pred``.
    An empty ``pred`` gives NaN.
    """

    def _compute(self, pred, target):
        return self._elementwise(pred, target, _core.mse)


class SoftmaxCrossEntropy(Loss):
    """Softmax + cross-entropy on logits, fused and numerically stable.

    With ``R`` labelled positions (``N``, or ``N*T``) and ``p = softmax(z)``
    over the last axis, ``L = -sum(t * log p) / R`` and the gradient is
    ``(p - t) / R``, ``t`` being the one-hot labels or the given
    probabilities.

    Shape
    -----
    - ``pred``: logits ``(N, C)`` or ``(N, T, C)``.
    - ``target``: integer labels of any integer dtype, shape
      ``pred.shape[:-1]``, values in ``[0, C)`` (others raise ``ValueError``);
      or class probabilities (e.g. one-hot) of ``pred``'s shape.
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

    Parameters
    ----------
    from_logits : bool, default False
        False: ``pred`` are probabilities in [0, 1];
        ``L = -mean(t*max(log p, -100) + (1-t)*max(log(1-p), -100))`` (the
        logs clamped as in PyTorch, so p = 0 or 1 gives a finite loss), with
        gradient ``(p - t) / max(p*(1-p), 1e-12) / n``.  True: ``pred`` are
        logits ``x``; ``L = mean(max(x, 0) - x*t + log(1 + exp(-|x|)))``,
        gradient ``(sigmoid(x) - t) / n``.

    Shape
    -----
    ``pred`` any shape; ``target`` the same shape, values in [0, 1].
    """

    def __init__(self, from_logits=False):
        super().__init__()
        self.from_logits = bool(from_logits)

    def get_config(self):
        """``{"from_logits": ...}``."""
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
    """A :class:`Loss` from an instance or a name.

    Parameters
    ----------
    loss : Loss or str
        An instance (returned as is) or one of ``"mse"``,
        ``"mean_squared_error"``, ``"cross_entropy"``,
        ``"softmax_cross_entropy"``, ``"categorical_crossentropy"``,
        ``"sparse_categorical_crossentropy"``, ``"bce"``,
        ``"binary_cross_entropy"``, ``"binary_crossentropy"`` (any case).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    return instance_or_named(loss, Loss, _NAMES, "loss")
