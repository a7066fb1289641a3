"""Model files: reading and writing them, nothing else.

A model file is one ``.npz`` archive as ``np.savez`` writes it (no pickle):
``__nnc__`` holds the UTF-8 JSON header (format, version, the nested
``{"class_name", "config"}`` of the model and, per parameter, its shape, dtype
and SHA-256) and ``p:<key>`` holds each parameter array.  A training
checkpoint (format ``"nnc-checkpoint"``) is a model file whose header also
holds the training state (JSON) and the entries of its other arrays
(``a:<name>``: optimiser slots, the epoch's sample order, ...), and whose
bytes end with a SHA-256 of the whole file.  ``load`` reads it
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
CHECKPOINT_FORMAT = "nnc-checkpoint"
CHECKPOINT_VERSION = 1
_HEADER = "__nnc__"
_PREFIX = "p:"
_ARRAY = "a:"
# A checkpoint ends with this tag and the SHA-256 of every byte before it
# (zip readers ignore bytes after the archive's end record).
_TRAILER = b"nnc-sha256:"
_TRAILER_LEN = len(_TRAILER) + 32
_CHUNK = 1 << 16   # bytes read at a time to digest a file


def _digest(a):
    return hashlib.sha256(np.ascontiguousarray(a)).hexdigest()   # the array's buffer, no copy


def _meta(arrays):
    return {k: {"shape": list(v.shape), "dtype": v.dtype.name, "sha256": _digest(v)} for k, v in arrays.items()}


def _fsync_dir(d):
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:   # a platform without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _savez(f, arrays):
    """What ``np.savez(f, **arrays)`` writes (an uncompressed .npz of .npy
    members), each array's bytes written from the array itself: np.savez
    would copy them, up to 16 MiB at a time."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, a in arrays.items():
            a = np.ascontiguousarray(a)
            with zf.open(name + ".npy", "w", force_zip64=True) as out:
                np.lib.format.write_array_header_1_0(out, np.lib.format.header_data_from_array_1_0(a))
                if a.size:
                    out.write(memoryview(a.reshape(-1)).cast("B"))


def _write(path, header, arrays, trailer=False, keep_previous=False):
    """Write an archive to a temporary file in path's directory, fsync it,
    then rename it to path (first renaming an existing path to path.prev
    when keep_previous).  Writing it allocates no copy of the arrays."""
    blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w+b") as f:
            _savez(f, {_HEADER: blob, **arrays})
            if trailer:
                f.flush()
                f.seek(0)
                h = hashlib.sha256()
                for chunk in iter(lambda: f.read(_CHUNK), b""):
                    h.update(chunk)
                f.write(_TRAILER + h.digest())
            f.flush()
            os.fsync(f.fileno())
        if keep_previous and os.path.exists(path):
            os.replace(path, path + ".prev")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(d)


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
    params = {k: np.ascontiguousarray(v) for k, v in model.params.items()}
    header = {"format": FORMAT, "version": VERSION, "model": layer_to_config(model), "params": _meta(params)}
    _write(os.fspath(path), header, {_PREFIX + k: v for k, v in params.items()})


def save_checkpoint(model, path, training, arrays, keep_previous=True):
    """Write a training checkpoint to ``path``, keeping the one it replaces
    as ``path.prev`` (when ``keep_previous``).

    The file is a model file (so :func:`load` gives the model) whose header
    has format ``"nnc-checkpoint"`` and also holds ``training`` (JSON data)
    and the shape, dtype and SHA-256 of each of ``arrays``; the whole file
    ends with the SHA-256 of its bytes.
    """
    params = {k: np.ascontiguousarray(v) for k, v in model.params.items()}
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    header = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model": layer_to_config(model),
              "params": _meta(params), "arrays": _meta(arrays), "training": training}
    _write(os.fspath(path), header, {**{_PREFIX + k: v for k, v in params.items()},
                                     **{_ARRAY + k: v for k, v in arrays.items()}},
           trailer=True, keep_previous=keep_previous)


def _check_trailer(f, bad):
    """True when the file f ends with an intact whole-file digest, False
    when it has none; ValueError when the digest does not match."""
    size = f.seek(0, os.SEEK_END)
    if size < _TRAILER_LEN:
        return False
    f.seek(size - _TRAILER_LEN)
    tail = f.read(_TRAILER_LEN)
    if not tail.startswith(_TRAILER):
        return False
    f.seek(0)
    h, left = hashlib.sha256(), size - _TRAILER_LEN
    while left:
        chunk = f.read(min(_CHUNK, left))
        if not chunk:
            break
        h.update(chunk)
        left -= len(chunk)
    if left or h.digest() != tail[len(_TRAILER):]:
        raise bad("the file does not match its checksum (truncated or altered)")
    return True


def _check(bad, meta, arrays, what, expect=None):
    """Every array against its header entry (and against expect, the
    {key: (shape, dtype)} the config implies, when given)."""
    if not isinstance(meta, dict) or set(meta) != set(arrays) or (expect is not None and set(expect) != set(arrays)):
        want = sorted(expect if expect is not None else meta) if isinstance(meta, dict) else "?"
        raise bad(f"{what} {sorted(arrays)} do not match the expected {want}")
    for key, arr in arrays.items():
        info = meta[key]
        shape, dtype = expect[key] if expect is not None else (tuple(arr.shape), arr.dtype)
        if not isinstance(info, dict) or arr.shape != shape or info.get("shape") != list(shape):
            raise bad(f"{what}[{key!r}] has shape {arr.shape}, the header implies {shape}")
        if arr.dtype != dtype or info.get("dtype") != np.dtype(dtype).name:
            raise bad(f"{what}[{key!r}] has dtype {arr.dtype}, the header implies {dtype}")
        if info.get("sha256") != _digest(arr):
            raise bad(f"{what}[{key!r}] does not match its checksum (file altered)")


def _read(path, where="nnc.load", what="nnc model file"):
    """(header, model, arrays) of a model or checkpoint file, every byte
    checked; arrays are a checkpoint's extra arrays ({} for a model)."""
    path = os.fspath(path)

    def bad(why):
        return ValueError(f"{where}: {path} is not a valid {what}: {why}")
    try:
        with open(path, "rb") as f:   # closed whatever np.load makes of it
            digested = _check_trailer(f, bad)
            f.seek(0)
            z = np.load(f, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise bad("not an .npz archive")
            with z:
                files = {k: z[k] for k in z.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except ValueError as e:
        raise (e if str(e).startswith(f"{where}: {path} ") else bad(e)) from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError) as e:
        raise bad(f"{type(e).__name__}: {e}") from None
    blob = files.pop(_HEADER, None)
    if blob is None or blob.dtype != np.uint8 or blob.ndim != 1:
        raise bad("no nnc header")
    try:
        header = json.loads(blob.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"corrupted header ({e})") from None
    kinds = {(FORMAT, VERSION), (CHECKPOINT_FORMAT, CHECKPOINT_VERSION)}
    if not isinstance(header, dict) or (header.get("format"), header.get("version")) not in kinds:
        raise bad("unknown format or version")
    checkpoint = header["format"] == CHECKPOINT_FORMAT
    if checkpoint and not digested:
        raise bad("no checksum at the end of the file (truncated?)")
    stored = {k[len(_PREFIX):]: v for k, v in files.items() if k.startswith(_PREFIX)}
    extra = {k[len(_ARRAY):]: v for k, v in files.items() if checkpoint and k.startswith(_ARRAY)}
    if len(stored) + len(extra) != len(files):
        raise bad(f"unexpected members {sorted(set(files) - {_PREFIX + k for k in stored})}")
    try:
        model = layer_from_config(header.get("model"))
    except ValueError as e:
        raise bad(e) from None
    params = model.params
    _check(bad, header.get("params"), stored, "params", {k: (v.shape, v.dtype) for k, v in params.items()})
    if checkpoint:
        _check(bad, header.get("arrays"), extra, "arrays")
    for key, target in params.items():
        target[...] = stored[key]
    return header, model, extra


def load(path):
    """Rebuild a model saved by :meth:`Sequential.save <nnc.Sequential.save>`
    (or the model of a training checkpoint, ``fit(checkpoint=...)``).

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
        For a file that is not an intact nnc model file or checkpoint
        (truncated, corrupted, tampered, parameter shape/dtype/digest
        mismatch).
    FileNotFoundError
        If ``path`` does not exist.
    """
    return _read(path)[1]


def read_checkpoint(path, where="read_checkpoint"):
    """(training, model, arrays) of a checkpoint written by
    :func:`save_checkpoint`, every byte checked; ValueError naming the file
    when it is not an intact checkpoint."""
    header, model, arrays = _read(path, where, "nnc training checkpoint")
    if header["format"] != CHECKPOINT_FORMAT or not isinstance(header.get("training"), dict):
        raise ValueError(f"{where}: {os.fspath(path)} is a model file, not a training checkpoint")
    return header["training"], model, arrays
