"""nnc layers (also re-exported as ``nnc.<Name>``)."""
from .base import Layer
from .conv import Conv2D
from .dense import Dense
from .perceptron import Perceptron

__all__ = ["Layer", "Conv2D", "Dense", "Perceptron"]
