"""nnc layers (also re-exported as ``nnc.<Name>``)."""
from .base import Layer
from .dense import Dense
from .perceptron import Perceptron
from .recurrent import GRU, LSTM, SimpleRNN

__all__ = ["Layer", "Dense", "Perceptron", "SimpleRNN", "LSTM", "GRU"]
