"""Inference over Dask arrays: :func:`predict` runs a model's ``predict`` on
every chunk of a ``dask.array`` chunked along the batch axis, on Dask's
threads or on a ``distributed`` cluster.

Needs the optional dependencies (``pip install "nnc[dask]"``); ``import
nnc`` does not import Dask, ``import nnc.dask`` does.
"""
import os
import pickle
import uuid

import dask
import dask.array as da
import numpy as np

from . import _config
from .layers.base import dumps_for_inference

_threads_follow_worker = [False]   # set once per worker process


def _follow_worker_threads():
    """In a ``distributed`` worker, nnc runs as many threads as the worker
    has (``nthreads``), unless the user set ``NNC_NUM_THREADS``."""
    if _threads_follow_worker[0] or "NNC_NUM_THREADS" in os.environ:
        return
    try:
        from distributed import get_worker
        worker = get_worker()
    except (ImportError, ValueError):   # not in a worker: the threaded scheduler
        return
    _config.set_num_threads(max(1, int(worker.state.nthreads)))
    _threads_follow_worker[0] = True


class _ModelNode:
    """The model as one node of the task graph, pickled without its
    gradients (prediction needs none; they would double the bytes sent to
    the scheduler and the workers)."""

    __slots__ = ("model",)

    def __init__(self, model):
        self.model = model

    def __reduce__(self):
        return _ModelNode._loads, (dumps_for_inference(self.model),)

    @staticmethod
    def _loads(data):
        return _ModelNode(pickle.loads(data))


def _predict_block(x, lengths, node, batch_size):
    _follow_worker_threads()
    return node.model.predict(x, batch_size=batch_size, **({} if lengths is None else {"lengths": lengths}))


def predict(model, x, batch_size=None, lengths=None):
    """``model.predict`` over a Dask array, lazily, chunk by chunk.

    The model enters the task graph once (one task holding it, pickled
    without its gradients): a ``distributed`` worker fetches it once, not
    once per chunk.  Each chunk
    runs ``model.predict(chunk, batch_size=batch_size)``, so the result is
    bitwise that of ``model.predict`` on the whole array (nnc's results do
    not depend on the batch split or the thread count).  On a
    ``distributed`` worker nnc uses the worker's ``nthreads`` threads unless
    ``NNC_NUM_THREADS`` is set there.

    Parameters
    ----------
    model : nnc.Sequential or any nnc model with ``predict``
    x : dask.array.Array, shape (N, ...)
        Chunked along the batch axis (chunks along other axes are joined).
    batch_size : int, optional
        ``predict``'s batch size inside each chunk.
    lengths : dask.array.Array or array_like of int, shape (N,), optional
        Sequence lengths (padded sequences), split like ``x``'s chunks.

    Returns
    -------
    dask.array.Array
        ``(N, ...)``, one chunk per chunk of ``x``, of the model's output
        dtype; ``.compute()`` (or a ``distributed`` client) runs it.

    Examples
    --------
    >>> import dask.array as da, numpy as np, nnc, nnc.dask
    >>> model = nnc.Sequential([nnc.Dense(4, 2)])
    >>> x = da.ones((10, 4), chunks=(3, 4), dtype=np.float32)
    >>> y = nnc.dask.predict(model, x)
    >>> y.chunks, y.dtype
    (((3, 3, 3, 1), (2,)), dtype('float32'))
    >>> bool((y.compute() == model.predict(np.ones((10, 4), np.float32))).all())
    True
    """
    where = "nnc.dask.predict"
    if not hasattr(model, "predict") or not hasattr(model, "forward"):
        raise TypeError(f"{where}: expected an nnc model, got {type(model).__name__}")
    if not isinstance(x, da.Array):
        raise TypeError(f"{where}: expected x as a dask.array.Array chunked along the batch axis, "
                        f"got {type(x).__module__}.{type(x).__name__}")
    if x.ndim < 1:
        raise ValueError(f"{where}: expected x of shape (N, ...), got shape {x.shape}")
    if any(len(c) > 1 for c in x.chunks[1:]):
        x = x.rechunk({axis: -1 for axis in range(1, x.ndim)})
    if lengths is not None:
        if not isinstance(lengths, da.Array):
            lengths = np.asarray(lengths)
        if lengths.shape != x.shape[:1] or lengths.dtype.kind not in "iu" or x.ndim < 2:
            raise ValueError(f"{where}: expected integer lengths of shape {x.shape[:1]} for x (N, T, ...), "
                             f"got {lengths.dtype} of shape {lengths.shape} for x of shape {x.shape}")
        lengths = da.asarray(lengths).rechunk((x.chunks[0],))
    # The output's shape and dtype: the model on one row of zeros.
    probe = np.zeros((1,) + x.shape[1:], x.dtype)
    out = model.predict(probe, **({} if lengths is None else {"lengths": np.full(1, x.shape[1])}))
    if x.shape[0] == 0:
        return da.zeros((0,) + out.shape[1:], out.dtype)
    node = dask.delayed(_ModelNode(model), name=f"nnc-model-{uuid.uuid4().hex}")
    # One task per chunk of x in one blockwise layer (the lightest graph for
    # the scheduler): axis 0 is the batch, x's other axes are consumed, the
    # output's other axes are new.
    x_axes = tuple(range(x.ndim))
    out_axes = (0,) + tuple(range(x.ndim, x.ndim + out.ndim - 1))
    return da.blockwise(_predict_block, out_axes, x, x_axes, lengths, None if lengths is None else (0,),
                        node, None, batch_size, None, dtype=out.dtype, meta=out[:0], concatenate=True,
                        new_axes=dict(zip(out_axes[1:], out.shape[1:])), name=f"nnc-predict-{uuid.uuid4().hex}")
