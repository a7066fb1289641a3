"""Perceptron: y = sign(x @ W.T + b), trained by the perceptron rule."""
import numpy as np

from .. import _config, _core
from .._validation import dtype_name, pos_int, shape_str
from .dense import Dense


class Perceptron(Dense):
    """Rosenblatt perceptron ``y = sign(x @ W.T + b)`` with outputs in {0, 1}.

    ``sign(z)`` is 1 where ``z >= 0`` else 0 (NaN stays NaN).  :meth:`fit`
    trains online with ``W += lr * (t - y) x`` and ``b += lr * (t - y)``,
    shuffling each epoch with the library RNG and stopping after an epoch
    without mistakes.  As a layer, ``backward`` takes sign' = 0 (zero
    gradients).

    Parameters
    ----------
    in_features : int
    out_features : int, default 1
    dtype : np.float32 or np.float64, default np.float32

    Shape
    -----
    Input ``(N, ..., in_features)``; output ``(N, ..., out_features)`` of 0/1.

    Attributes
    ----------
    params : dict
        ``"W"`` ``(out_features, in_features)`` and ``"b"``
        ``(out_features,)``, initialised to zeros.
    mistakes_ : list of int
        The number of misclassified samples per epoch of the last ``fit``.

    Examples
    --------
    >>> import numpy as np, nnc
    >>> x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    >>> p = nnc.Perceptron(2).fit(x, np.array([0., 0., 0., 1.]), epochs=20)   # AND
    >>> p.forward(x).ravel()
    array([0., 0., 0., 1.], dtype=float32)
    """

    def __init__(self, in_features, out_features=1, dtype=np.float32):
        super().__init__(in_features, out_features, activation="sign", dtype=dtype)
        self.params["W"][...] = 0
        self.mistakes_ = []

    def get_config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "dtype": dtype_name(self.dtype)}

    def fit(self, x, y, epochs=100, lr=1.0):
        """Train with the perceptron rule, starting from the current weights.

        For each sample in a shuffled order: ``y = sign(W x + b)``, then
        ``W += lr * (t - y) x`` and ``b += lr * (t - y)``.

        Parameters
        ----------
        x : array_like, shape (N, in_features)
        y : array_like, shape (N, out_features), or (N,) when out_features == 1
            Targets in {0, 1}, as a float array.
        epochs : int, default 100
            At most this many passes; stops after an epoch without mistakes.
        lr : float, default 1.0

        Returns
        -------
        Perceptron
            ``self``.
        """
        epochs = pos_int(epochs, "epochs", f"{self.name}.fit", minimum=0)
        x = self._check(x)
        if x.ndim != 2:
            raise self._shape_error(f"(N, {self.in_features})", x.shape)
        t = self._input(y, "targets")
        if t.ndim == 1 and self.out_features == 1:
            t = t.reshape(-1, 1)
        if t.shape != (x.shape[0], self.out_features):
            raise ValueError(f"{self.name}.fit: expected targets ({x.shape[0]}, {self.out_features})"
                             f"{' or (N,)' if self.out_features == 1 else ''}, got {shape_str(np.shape(y))}")
        if not np.all((t == 0) | (t == 1)):
            raise ValueError(f"{self.name}.fit: targets must be 0 or 1")
        W, b = self._param("W"), self._param("b")
        self.mistakes_ = []
        for _ in range(epochs):
            order = _config.rng().permutation(x.shape[0]).astype(np.int64)
            wrong = _core.perceptron_epoch(W, b, x, t, order, self.dtype(lr))
            self.mistakes_.append(int(wrong))
            if wrong == 0:
                break
        return self

    def __repr__(self):
        return f"Perceptron({self.in_features} -> {self.out_features})"
