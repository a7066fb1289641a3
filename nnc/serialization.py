"""Model files: reading and writing them, nothing else.

A model file is one ``.npz`` archive written with ``np.savez`` (no pickle):
``__nnc__`` holds the UTF-8 JSON header (format, version, the nested
``{"class_name", "config"}`` of the model and, per parameter, its shape, dtype
and SHA-256) and ``p:<key>`` holds each parameter array.  ``load`` reads it
with ``allow_pickle=False``, builds the model through the layer registry
(``nnc/layers/registry.py``: class names are looked up among nnc's layer
classes, never imported or evaluated), checks every array's shape, dtype and
digest against the header, and raises ``ValueError`` for any truncated,
corrupted or tampered file.  No layer imports this module.
"""
import hashlib
import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

from .layers.registry import layer_from_config, layer_to_config, registry  # noqa: F401 (registry: re-export)

FORMAT = "nnc-model"
VERSION = 1
_HEADER = "__nnc__"
_PREFIX = "p:"


def _digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def save(model, path):
    """Write ``model`` (a Sequential or any nnc layer) to exactly ``path``.

    Parameters
    ----------
    model : Layer
        An instance of a registered nnc layer class.
    path : str or os.PathLike
        The file to write (atomically: a temporary file, then a rename).

    Raises
    ------
    TypeError
        If ``model`` or one of its sub-layers is not an nnc layer class.
    """
    path = os.fspath(path)
    params = {k: np.ascontiguousarray(v) for k, v in model.params.items()}
    header = {
        "format": FORMAT, "version": VERSION, "model": layer_to_config(model),
        "params": {k: {"shape": list(v.shape), "dtype": v.dtype.name, "sha256": _digest(v)}
                   for k, v in params.items()},
    }
    blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    arrays = {_HEADER: blob, **{_PREFIX + k: v for k, v in params.items()}}
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".nnc-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:  # a file object: np.savez adds no ".npz"
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _bad(path, why):
    return ValueError(f"nnc.load: {path!s} is not a valid nnc model file: {why}")


def load(path):
    """Rebuild a model saved by :meth:`Sequential.save <nnc.Sequential.save>`.

    The parameters are identical, so predictions are bit-identical.  The
    file is read with ``allow_pickle=False`` and class names are looked up
    among nnc's layer classes only, so loading an untrusted file runs no
    code from it.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Layer
        The model (a :class:`~nnc.Sequential`, or the layer that was saved).

    Raises
    ------
    ValueError
        For a file that is not an intact nnc model file (truncated,
        corrupted, tampered, parameter shape/dtype/digest mismatch).
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = os.fspath(path)
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise _bad(path, "not an .npz archive")
        with z:
            files = {k: z[k] for k in z.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except ValueError as e:
        raise _bad(path, e) from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError) as e:
        raise _bad(path, f"{type(e).__name__}: {e}") from None
    blob = files.pop(_HEADER, None)
    if blob is None or blob.dtype != np.uint8 or blob.ndim != 1:
        raise _bad(path, "no nnc header")
    try:
        header = json.loads(blob.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(path, f"corrupted header ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("version") != VERSION:
        raise _bad(path, "unknown format or version")
    meta = header.get("params")
    if not isinstance(meta, dict):
        raise _bad(path, "corrupted header (params)")
    try:
        model = layer_from_config(header.get("model"))
    except ValueError as e:
        raise _bad(path, e) from None
    params = model.params
    stored = {k[len(_PREFIX):]: v for k, v in files.items() if k.startswith(_PREFIX)}
    if set(stored) != set(params) or set(meta) != set(params) or len(stored) != len(files):
        raise _bad(path, f"parameters {sorted(stored)} do not match the model's {sorted(params)}")
    for key, target in params.items():
        arr, info = stored[key], meta[key]
        if not isinstance(info, dict) or list(arr.shape) != list(target.shape) \
                or info.get("shape") != list(target.shape):
            raise _bad(path, f"params[{key!r}] has shape {arr.shape}, the config implies {target.shape}")
        if arr.dtype != target.dtype or info.get("dtype") != target.dtype.name:
            raise _bad(path, f"params[{key!r}] has dtype {arr.dtype}, the config implies {target.dtype}")
        if info.get("sha256") != _digest(arr):
            raise _bad(path, f"params[{key!r}] does not match its checksum (file altered)")
        target[...] = arr
    return model
