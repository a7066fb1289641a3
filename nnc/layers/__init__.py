"""nnc layers (also re-exported as ``nnc.<Name>``)."""
from .base import Layer
from .dense import Dense
from .perceptron import Perceptron
from .residual import Residual

__all__ = ["Layer", "Dense", "Perceptron", "Residual"]
