# Embedding kernels: bindings (included by _core.pyx).

def embedding_fwd(floating[:, ::1] y, const floating[:, ::1] table, const int64_t[::1] ids):
    """y[i] = table[ids[i]] (see ops/embedding.def); ids checked by the caller."""
    if y.shape[0] == 0 or y.shape[1] == 0:
        return
    with nogil:
        _ck(op_embedding_fwd(&y[0, 0], &table[0, 0], &ids[0], ids.shape[0], table.shape[0], table.shape[1]))


def embedding_bwd_workspace_size(nnc_ssize n, nnc_ssize v):
    """Bytes of the workspace embedding_bwd needs for n ids and v table rows."""
    cdef nnc_ssize s = op_embedding_bwd_workspace_size(False, n, v)
    if s < 0:
        raise ValueError("nnc: embedding workspace too large")
    return s


def embedding_bwd(floating[:, ::1] dtable, const floating[:, ::1] dy, const int64_t[::1] ids,
                  unsigned char[::1] work):
    """dtable[k] = sum of dy[i] over ids[i] == k, in increasing i (see
    ops/embedding.def); work holds embedding_bwd_workspace_size bytes."""
    cdef nnc_ssize n = ids.shape[0]
    if dtable.shape[0] == 0 or dtable.shape[1] == 0:
        return
    with nogil:
        _ck(op_embedding_bwd(&dtable[0, 0], &dy[0, 0] if n else NULL, &ids[0] if n else NULL, n, dtable.shape[0],
                             dtable.shape[1], &work[0]))
