"""nnc.from_torch: the test models (tests/torch_models.py) and single modules
against PyTorch in float32 and float64 (the module converted to double: the
conversion itself is exact), layouts, save/load, and the errors for what
cannot be converted."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="nnc.from_torch needs PyTorch")
nn = torch.nn

import nnc  # noqa: E402
import torch_models  # noqa: E402
from nnc.interop._build import compare  # noqa: E402

MODELS = torch_models.models()
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}


def _torch_out(module, x, dtype):
    m = copy.deepcopy(module).to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        return m(x.to(torch.float64 if dtype == np.float64 else torch.float32)).numpy()


def _nhwc(x):
    x = x.numpy()
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_matches_torch(name, dtype, tmp_path):
    module, example = MODELS[name]
    model = nnc.from_torch(module, example, dtype=dtype)
    assert type(model) is (nnc.Graph if name in ("resnet", "densenet") else nnc.Sequential)
    assert model.dtype == dtype
    other = torch.randn((7,) + tuple(example.shape[1:]), generator=torch.Generator().manual_seed(1))
    y = model.predict(np.ascontiguousarray(_nhwc(other), dtype=dtype))
    np.testing.assert_allclose(y, _torch_out(module, other, dtype), **TOL[dtype])
    np.testing.assert_array_equal(model.predict(_nhwc(other).astype(dtype), batch_size=2), y)
    model.save(tmp_path / "m.npz")
    again = nnc.load(tmp_path / "m.npz")
    assert type(again) is type(model)
    np.testing.assert_array_equal(again.predict(_nhwc(other).astype(dtype)), y)


@pytest.mark.parametrize("name", ["resnet", "densenet"])
def test_nchw_input_layout(name, rng):
    module, example = MODELS[name]
    model = nnc.from_torch(module, example, input_layout="NCHW")
    x = rng.standard_normal((3,) + tuple(example.shape[1:])).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), _torch_out(module, torch.from_numpy(x), np.float32),
                               **TOL[np.float32])


def test_image_output_returned_in_the_input_layout(rng):
    module = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)).eval()
    x = torch.randn(2, 3, 6, 6)
    nhwc = nnc.from_torch(module, x)
    nchw = nnc.from_torch(module, x, input_layout="NCHW")
    ref = _torch_out(module, x, np.float32)
    np.testing.assert_allclose(nchw.predict(x.numpy()), ref, **TOL[np.float32])
    np.testing.assert_allclose(nhwc.predict(_nhwc(x)), ref.transpose(0, 2, 3, 1), **TOL[np.float32])


def _bn1d(c):
    bn = nn.BatchNorm1d(c)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    return bn


def _bn(c):
    return torch_models.with_random_batchnorm(nn.BatchNorm2d(c), seed=c)


# single modules (in a Sequential) and their input shapes
MODULES = {
    "conv stride dilation groups": (lambda: nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2),
                                    (2, 4, 9, 8)),
    "conv same, no bias": (lambda: nn.Conv2d(3, 5, (3, 2), padding="same", bias=False), (1, 3, 5, 6)),
    "conv + batchnorm + sigmoid": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), _bn(4), nn.Sigmoid()), (2, 3, 6, 6)),
    "batchnorm alone + tanh": (lambda: nn.Sequential(_bn(3), nn.Tanh()), (2, 3, 4, 5)),
    "maxpool padded": (lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 6)),
    "avgpool valid cells": (lambda: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), (2, 3, 5, 5)),
    "avgpool": (lambda: nn.AvgPool2d(2), (2, 3, 6, 4)),
    "softmax over channels": (lambda: nn.Softmax(dim=1), (2, 5, 3, 3)),
    "leaky relu": (lambda: nn.Sequential(nn.Linear(4, 6), nn.LeakyReLU(0.2)), (3, 4)),
    "flatten after conv": (lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 2 * 3, 4)),
                           (2, 2, 4, 5)),
    "linear + batchnorm1d + relu": (lambda: nn.Sequential(nn.Linear(4, 6), _bn1d(6), nn.ReLU()), (5, 4)),
    "linear on sequences": (lambda: nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=-1)), (2, 5, 4)),
    "rnn relu 2 layers": (lambda: nn.RNN(4, 5, num_layers=2, nonlinearity="relu", batch_first=True), (2, 6, 4)),
    "gru 2 layers no bias": (lambda: nn.GRU(4, 5, num_layers=2, bias=False, batch_first=True), (2, 6, 4)),
    "lstm": (lambda: nn.LSTM(4, 5, batch_first=True), (2, 6, 4)),
}


class _First(nn.Module):
    """An RNN's output sequence (the module returns a tuple)."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)[0]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("name", sorted(MODULES))
def test_single_modules(name, dtype):
    make, shape = MODULES[name]
    torch.manual_seed(2)
    module = make()
    if isinstance(module, nn.RNNBase):
        module = _First(module)
    module.eval()
    x = torch.randn(shape)
    model = nnc.from_torch(module, x, dtype=dtype)
    y = model.predict(np.ascontiguousarray(_nhwc(x), dtype=dtype))
    ref = _torch_out(module, x, dtype)
    np.testing.assert_allclose(y.transpose(0, 3, 1, 2) if y.ndim == 4 else y, ref, **TOL[dtype])


class _TimeFirst(nn.Module):
    """batch_first=False: (T, N, F) in; a Linear on the last step, or the sequence."""

    def __init__(self, last):
        super().__init__()
        self.lstm = nn.LSTM(3, 5, batch_first=False)
        self.gru = nn.GRU(5, 4, batch_first=False)
        self.fc = nn.Linear(4, 2)
        self.last = last

    def forward(self, x):
        h = self.gru(self.lstm(x)[0])[0]
        return self.fc(h[-1]) if self.last else torch.tanh(self.fc(h))


@pytest.mark.parametrize("last", [True, False])
def test_time_first_rnns_take_batch_first_input(last, dtype):
    torch.manual_seed(4)
    module = _TimeFirst(last).eval()
    x = torch.randn(6, 2, 3)   # (T, N, F)
    model = nnc.from_torch(module, x, dtype=dtype)
    y = model.predict(np.ascontiguousarray(x.numpy().transpose(1, 0, 2), dtype=dtype))   # (N, T, F)
    ref = _torch_out(module, x, dtype)
    np.testing.assert_allclose(y if last else y.transpose(1, 0, 2), ref, **TOL[dtype])


@pytest.mark.parametrize("cell, layers, batch_first", torch_models.BIDIRECTIONAL)
def test_bidirectional_rnns(cell, layers, batch_first, dtype, tmp_path):
    module, example, other, to_nnc = torch_models.bidirectional_case(cell, layers, batch_first)
    model = nnc.from_torch(module, example, dtype=dtype)
    bis = [layer for layer in model.layers if isinstance(layer, nnc.Bidirectional)]
    assert len(bis) == layers and all(b.merge_mode == "concat" for b in bis)
    assert [b.forward_layer.params["W_x"].shape[1] for b in bis] == [3, 8][:layers]   # then 2 * hidden inputs
    x = np.ascontiguousarray(to_nnc(other.numpy()), dtype=dtype)   # (N, T, F) whatever batch_first
    y = model.predict(x)
    np.testing.assert_allclose(to_nnc(y), _torch_out(module, other, dtype), **TOL[dtype])
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(nnc.load(tmp_path / "m.npz").predict(x), y)


class _BiLastStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 4, batch_first=True, bidirectional=True)

    def forward(self, x):
        return self.rnn(x)[0][:, -1]


def test_last_step_of_a_bidirectional_rnn_is_named():
    """The backward direction's output at the last step is not a
    Bidirectional's return_sequences=False output: refused, not mis-converted."""
    with pytest.raises(ValueError, match="taking the last time step is supported only directly after a "
                                         "one-direction RNN"):
        nnc.from_torch(_BiLastStep().eval(), torch.randn(2, 5, 3))


class _Views(nn.Module):
    """Flattening with view/reshape and the batch size read from the tensor;
    one Linear applied twice."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 3 * 2, 2)

    def forward(self, x):
        y = self.conv(x)
        return self.fc(y.view(y.size(0), -1)) + self.fc(torch.reshape(y, (y.shape[0], -1)))


def test_view_and_reshape_to_flatten(dtype):
    torch.manual_seed(5)
    module = _Views().eval()
    x = torch.randn(2, 3, 5, 4)
    model = nnc.from_torch(module, x, dtype=dtype)
    other = torch.randn(5, 3, 5, 4)
    np.testing.assert_allclose(model.predict(_nhwc(other).astype(dtype)), _torch_out(module, other, dtype),
                               **TOL[dtype])
    pytest.importorskip("onnx", reason="nnc.onnx.load needs the onnx package")
    from nnc.onnx import load as onnx_load
    data = torch_models.to_onnx(module, x)   # the same idioms through the exporter's Shape/Gather/Concat
    np.testing.assert_allclose(onnx_load(data, dtype=dtype).predict(_nhwc(other).astype(dtype)),
                               _torch_out(module, other, dtype), **TOL[np.float32])


class _MeanPool(nn.Module):
    """Global average pools written as means over the spatial axes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return self.fc(y.mean((2, 3))) + self.fc(torch.flatten(torch.mean(y, dim=(-1, -2), keepdim=True), 1))


def test_mean_over_spatial_axes(dtype):
    torch.manual_seed(7)
    module = _MeanPool().eval()
    x = torch.randn(2, 3, 5, 4)
    other = torch.randn(3, 3, 5, 4)
    ref = _torch_out(module, other, dtype)
    model = nnc.from_torch(module, x, dtype=dtype)
    np.testing.assert_allclose(model.predict(_nhwc(other).astype(dtype)), ref, **TOL[dtype])
    pytest.importorskip("onnx", reason="nnc.onnx.load needs the onnx package")
    from nnc.onnx import load as onnx_load
    exported = onnx_load(torch_models.to_onnx(module, x), dtype=dtype)   # ReduceMean
    np.testing.assert_allclose(exported.predict(_nhwc(other).astype(dtype)), ref, **TOL[np.float32])


class _Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1d = nn.Conv1d(3, 3, 1)
        self.fc = nn.Linear(3, 3)
        self.norm = nn.LayerNorm(3)

    def forward(self, x):
        return self.norm(self.fc(self.conv1d(x).sum(-1) * 2))


def test_unsupported_modules_are_named():
    with pytest.raises(ValueError) as e:
        nnc.from_torch(_Unsupported().eval(), torch.randn(2, 3, 4))
    msg = str(e.value)
    assert msg.startswith("nnc.from_torch: cannot convert 4 part(s)")
    assert "'fc'" not in msg   # a supported module downstream of the others is not named
    for part in ("'conv1d' (torch.nn.modules.conv.Conv1d)", "'norm' (torch.nn.modules.normalization.LayerNorm)",
                 "sum", "mul"):
        assert part in msg, (part, msg)


@pytest.mark.parametrize("module, shape, why", [
    (lambda: nn.LSTM(3, 4, batch_first=True, proj_size=2), (2, 5, 3), r"proj_size > 0\) are not supported"),
    (lambda: nn.LSTM(3, 4, batch_first=True, bidirectional=True, proj_size=2), (2, 5, 3), "proj_size"),
    (lambda: nn.AvgPool2d(3, padding=1), (1, 2, 5, 5), "count_include_pad=True"),
    (lambda: nn.MaxPool2d(2, ceil_mode=True), (1, 2, 5, 5), "ceil_mode"),
    (lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), (1, 2, 5, 5), "padding_mode"),
    (lambda: nn.AdaptiveAvgPool2d(2), (1, 2, 5, 5), "output_size=1"),
    (lambda: nn.Softmax(dim=2), (1, 2, 5, 5), "softmax over dim=2"),
    (lambda: nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)), (4, 3), "supported only directly after a Linear"),
    (lambda: nn.BatchNorm1d(3), (4, 3, 5), r"needs a \(N, features\) input"),
])
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_unsupported_settings_are_named(module, shape, why):
    m = module()
    if isinstance(m, nn.RNNBase):
        m = _First(m)
    with pytest.raises(ValueError, match=why):
        nnc.from_torch(m.eval(), torch.randn(shape))


def test_bad_arguments():
    m = nn.Linear(3, 2)
    with pytest.raises(TypeError, match="nnc.from_torch: expected a torch.nn.Module"):
        nnc.from_torch("model", torch.randn(1, 3))
    with pytest.raises(TypeError, match="example_input must be a floating-point torch.Tensor"):
        nnc.from_torch(m, np.zeros((1, 3)))
    with pytest.raises(TypeError, match="example_input must be a floating-point torch.Tensor"):
        nnc.from_torch(m, torch.zeros((1, 3), dtype=torch.int64))
    with pytest.raises(ValueError, match="input_layout must be 'NHWC' or 'NCHW'"):
        nnc.from_torch(m, torch.randn(1, 3), input_layout="NWHC")
    with pytest.raises(TypeError, match="nnc.from_torch: dtype must be float32 or float64"):
        nnc.from_torch(m, torch.randn(1, 3), dtype=np.int32)


def test_mode_is_restored_and_the_check_compares():
    m = torch_models.mlp().train()
    nnc.from_torch(m, torch.randn(2, 20))
    assert m.training
    compare("check", np.ones(3), np.ones(3) + 1e-6)
    with pytest.raises(ValueError, match="check: the imported model differs from the source"):
        compare("check", np.ones(3), np.ones(3) + 1e-3)
    with pytest.raises(ValueError, match="check: the imported model gives shape"):
        compare("check", np.ones(3), np.ones(4))
