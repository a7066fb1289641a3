"""Importing models from other frameworks: :func:`nnc.from_torch` and
:func:`nnc.onnx.load`.  Neither framework is imported with nnc: PyTorch is
imported by ``from_torch`` (it receives a torch module), the ``onnx``
package by ``nnc.onnx.load``."""
from ._torch import from_torch

__all__ = ["from_torch"]
