"""nnc layers (also re-exported as ``nnc.<Name>``)."""
from .activation import Activation, LeakyReLU, Permute
from .base import Layer
from .bidirectional import Bidirectional
from .conv import Conv2D
from .conv_recurrent import ConvLSTM2D, ConvRNN2D
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding
from .densenet import DenseBlock
from .merge import Add, Concat
from .perceptron import Perceptron
from .pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .recurrent import GRU, LSTM, SimpleRNN
from .reshape import Flatten
from .residual import Residual

__all__ = ["Layer", "Dense", "Perceptron", "Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Flatten",
           "SimpleRNN", "LSTM", "GRU", "ConvRNN2D", "ConvLSTM2D",
           "Residual", "DenseBlock", "Dropout", "Embedding", "Bidirectional",
           "Activation", "LeakyReLU", "Permute", "Add", "Concat"]
