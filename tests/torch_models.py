"""The PyTorch models the import tests (and bench/bench_import.py) convert:
a ResNet-style CNN with BatchNorm and residual adds, a DenseNet-style block
with concatenations, an MLP, a 2-layer LSTM and a GRU classifier.  Import
this module only after torch is known to be installed."""
import io
import warnings

import torch
from torch import nn


class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the input (or a strided 1x1 conv-BN projection), then ReLU."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        y += x if self.shortcut is None else self.shortcut(x)   # in place, as torchvision writes it
        return torch.relu(y)


class ResNet(nn.Module):
    def __init__(self, width=8, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.layer1 = BasicBlock(width, width)
        self.layer2 = BasicBlock(width, 2 * width, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layer2(self.layer1(self.stem(x)))), 1))


class DenseNet(nn.Module):
    """A stem, a dense block (each layer's maps concatenated to its input),
    max pooling, then a flatten of the (C, H, W) maps into a Linear and softmax."""

    def __init__(self, width=8, growth=4, layers=2, size=8, classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.convs = nn.ModuleList(nn.Conv2d(width + i * growth, growth, 3, padding=1) for i in range(layers))
        self.pool = nn.MaxPool2d(2)
        c = width + layers * growth
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * (size // 2) ** 2, classes), nn.Softmax(dim=1))

    def forward(self, x):
        x = torch.relu(self.stem(x))
        for conv in self.convs:
            x = torch.cat([x, torch.relu(conv(x))], 1)
        return self.head(self.pool(x))


def mlp(features=20, hidden=32, classes=5):
    return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Dropout(0.1), nn.Linear(hidden, classes))


class LSTMNet(nn.Module):
    """A 2-layer LSTM; a Linear on the last step."""

    def __init__(self, features=6, hidden=12, classes=3):
        super().__init__()
        self.rnn = nn.LSTM(features, hidden, num_layers=2, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


class GRUNet(nn.Module):
    """A GRU classifier: softmax of a Linear on the last step."""

    def __init__(self, features=6, hidden=10, classes=4):
        super().__init__()
        self.rnn = nn.GRU(features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return torch.softmax(self.fc(out[:, -1]), dim=-1)


class BiRNNTagger(nn.Module):
    """A bidirectional LSTM / GRU / RNN classifying every step: softmax of a
    Linear on the directions' concatenated outputs."""

    def __init__(self, cell="LSTM", layers=1, batch_first=True, features=3, hidden=4, classes=3):
        super().__init__()
        self.rnn = getattr(nn, cell)(features, hidden, num_layers=layers, batch_first=batch_first,
                                     bidirectional=True)
        self.fc = nn.Linear(2 * hidden, classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return torch.softmax(self.fc(out), dim=-1)


# (cell, layers, batch_first) of the bidirectional import tests
BIDIRECTIONAL = [(cell, layers, bf) for cell in ("LSTM", "GRU") for layers in (1, 2) for bf in (True, False)]


def bidirectional_case(cell, layers, batch_first):
    """(BiRNNTagger in eval mode, an example input, another input of batch 3
    and the same length, the swap between the source's sequence layout and
    nnc's (N, T, ...): identity for batch_first)."""
    torch.manual_seed(8)
    module = BiRNNTagger(cell, layers, batch_first).eval()
    shape = (2, 5, 3) if batch_first else (5, 2, 3)
    other = (3, 5, 3) if batch_first else (5, 3, 3)
    swap = (lambda a: a) if batch_first else (lambda a: a.transpose(1, 0, 2))
    return module, torch.randn(shape), torch.randn(other, generator=torch.Generator().manual_seed(9)), swap


def with_random_batchnorm(model, seed=0):
    """Non-trivial running statistics and affine parameters, in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return model.eval()


def models(image=8, steps=5):
    """{name: (module in eval mode, example input)} with small shapes."""
    torch.manual_seed(0)
    return {
        "resnet": (with_random_batchnorm(ResNet()), torch.randn(2, 3, image, image)),
        "densenet": (DenseNet(size=image).eval(), torch.randn(2, 3, image, image)),
        "mlp": (mlp().eval(), torch.randn(4, 20)),
        "lstm": (LSTMNet().eval(), torch.randn(3, steps, 6)),
        "gru": (GRUNet().eval(), torch.randn(3, steps, 6)),
    }


def to_onnx(module, example, batch_axis=0):
    """The module's ONNX export (TorchScript exporter, dynamic batch along
    ``batch_axis`` of the input and output) as bytes."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), buf, dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {batch_axis: "n"}, "y": {batch_axis: "n"}})
    return buf.getvalue()
