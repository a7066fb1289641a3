"""nnc layers (also re-exported as ``nnc.<Name>``)."""
from .base import Layer
from .dense import Dense
from .perceptron import Perceptron
from .pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .reshape import Flatten

__all__ = ["Layer", "Dense", "Perceptron", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Flatten"]
