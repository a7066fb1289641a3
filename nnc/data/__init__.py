"""Small datasets shipped inside the package (no download needed)."""
import os

import numpy as np

__all__ = ["load_digits"]

_DIR = os.path.dirname(os.path.abspath(__file__))


def load_digits(dtype=np.float32):
    """The 1,797 8x8 handwritten digits of the UCI "Optical Recognition of
    Handwritten Digits" test set, shipped with nnc (source and licence:
    CC BY 4.0, see ``nnc/data/README.md``).

    Parameters
    ----------
    dtype : np.float32 or np.float64, default np.float32

    Returns
    -------
    images : ndarray, shape (1797, 8, 8, 1)
        NHWC images of ``dtype``, the original 0..16 pixel counts scaled to [0, 1].
    labels : ndarray, shape (1797,)
        int64 digits 0..9.
    """
    with np.load(os.path.join(_DIR, "digits.npz"), allow_pickle=False) as z:
        images, labels = z["images"], z["labels"]
    x = (images.astype(np.float64) / 16.0).astype(dtype)[..., None]
    return x, labels.astype(np.int64)
