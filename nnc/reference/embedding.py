"""Reference embedding lookup and its gradient in NumPy, from the definition."""
import numpy as np


def embedding(table, ids):
    """y[..., :] = table[ids[...]]."""
    return np.asarray(table)[np.asarray(ids)]


def embedding_grad(dy, ids, num_embeddings):
    """dtable[k] = sum of dy rows whose id is k (zeros for ids that do not occur)."""
    dy = np.asarray(dy)
    ids = np.asarray(ids).reshape(-1)
    dtable = np.zeros((num_embeddings, dy.shape[-1]), dy.dtype)
    np.add.at(dtable, ids, dy.reshape(ids.size, dy.shape[-1]))
    return dtable
