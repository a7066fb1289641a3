"""Embedding: a table of vectors looked up by integer ids."""
import numpy as np

from .. import _config, _core
from .._validation import pos_int
from .base import Layer


class Embedding(Layer):
    """Looks up rows of a trainable table: ``y[..., :] = W[ids[...]]``.

    The backward adds the gradient rows of each id into ``grads["W"]`` in
    the order the ids occur (a counting sort in C: each table row is summed
    by one thread), so the gradient is bitwise the same for any thread
    count, repeated ids included.  Ids are checked before anything is
    written: a negative or too large id raises ``ValueError`` naming it.

    Parameters
    ----------
    num_embeddings : int
        Rows of the table (ids lie in ``[0, num_embeddings)``).
    dim : int
        Length of each vector.
    dtype : float32 or float64

    Shape
    -----
    Input: integer ids of any shape ``S``; output ``S + (dim,)``.  A model
    starting with an Embedding takes the ids themselves (e.g. ``(N, T)``
    token ids feeding a recurrent layer).

    Attributes
    ----------
    params : dict
        ``"W"``: the table, ``(num_embeddings, dim)``, initialised from the
        standard normal distribution.
    grads : dict
        ``"W"``, overwritten by each backward (rows no id names are zero).

    Examples
    --------
    >>> import numpy as np, nnc
    >>> emb = nnc.Embedding(10, 4)
    >>> emb.forward(np.array([[1, 2, 2], [0, 9, 1]])).shape
    (2, 3, 4)
    """

    def __init__(self, num_embeddings, dim, dtype=np.float32):
        super().__init__(dtype)
        self.num_embeddings = pos_int(num_embeddings, "num_embeddings", self.name)
        self.dim = pos_int(dim, "dim", self.name)
        self._add_param("W", _config.rng().standard_normal((self.num_embeddings, self.dim)))

    def get_config(self):
        return {"num_embeddings": self.num_embeddings, "dim": self.dim, **super().get_config()}

    def _ids(self, ids):
        """(shape, ids as a flat int64 array), every id checked to lie in [0, num_embeddings)."""
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"{self.name}: expected integer ids, got dtype {ids.dtype}")
        flat = ids.reshape(-1)
        bad = (flat < 0) | (flat >= self.num_embeddings)
        if bad.any():
            raise ValueError(f"{self.name}: expected ids in [0, {self.num_embeddings}), "
                             f"got id {flat[np.argmax(bad)]}")
        return ids.shape, np.ascontiguousarray(flat, dtype=np.int64)

    def _forward(self, ids, training):
        shape, flat = self._ids(ids)
        y = np.empty((flat.size, self.dim), self.dtype)
        _core.embedding_fwd(y, self._param("W"), flat)
        if training:
            self._cache = (shape, flat)
        return y.reshape(shape + (self.dim,))

    def _backward(self, grad_y, input_grad):
        shape, flat = self._cache
        g = self._grad_input(grad_y, shape + (self.dim,)).reshape(flat.size, self.dim)
        work = np.empty(_core.embedding_bwd_workspace_size(flat.size, self.num_embeddings), np.uint8)
        _core.embedding_bwd(self.grads["W"], g, flat, work)
        return None

    def __repr__(self):
        return f"Embedding({self.num_embeddings}, {self.dim})"
