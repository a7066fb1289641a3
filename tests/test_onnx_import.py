"""nnc.onnx.load: the ONNX exports of the test models (tests/torch_models.py)
against PyTorch and ONNX Runtime in float32 and float64, hand-built graphs
for the operators and attributes PyTorch's exporter does not emit, save/load,
and the errors for unsupported nodes and malformed files."""
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the test models are PyTorch modules exported to ONNX")
onnx = pytest.importorskip("onnx", reason="nnc.onnx.load needs the onnx package")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import nnc  # noqa: E402
import nnc.onnx  # noqa: E402
import torch_models  # noqa: E402

MODELS = torch_models.models()
EXPORTS = {name: torch_models.to_onnx(m, x) for name, (m, x) in MODELS.items()}
F32 = dict(rtol=1e-4, atol=1e-5)


def _ort(data, x):
    ort = pytest.importorskip("onnxruntime", reason="compares with ONNX Runtime")
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_exported_model_matches_torch_and_onnxruntime(name, dtype, tmp_path):
    module, example = MODELS[name]
    model = nnc.onnx.load(EXPORTS[name], dtype=dtype, input_layout="NCHW")
    image = name in ("resnet", "densenet")
    core = model[1] if image else model   # NCHW images: Sequential([Permute, the imported model])
    assert type(core) is (nnc.Graph if image else nnc.Sequential)
    if image:
        assert isinstance(model[0], nnc.Permute) and len(model) == 2
    x = torch.randn((6,) + tuple(example.shape[1:]), generator=torch.Generator().manual_seed(3))
    y = model.predict(x.numpy().astype(dtype))
    assert y.dtype == dtype
    if image:   # the imported model keeps its inference plan behind the transpose
        assert any(entry[0] is not None for entry in core._plans.values())
    with torch.no_grad():
        np.testing.assert_allclose(y, module(x).numpy(), **F32)
    np.testing.assert_allclose(y, _ort(EXPORTS[name], x.numpy()), **F32)
    path = tmp_path / "m.onnx"
    path.write_bytes(EXPORTS[name])
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(nnc.load(tmp_path / "m.npz").predict(x.numpy().astype(dtype)), y)
    np.testing.assert_array_equal(nnc.onnx.load(path, dtype=dtype, input_layout="NCHW").predict(
        x.numpy().astype(dtype)), y)


def test_default_layout_is_nhwc():
    module, example = MODELS["resnet"]
    x = example.numpy()
    nhwc = nnc.onnx.load(EXPORTS["resnet"])
    np.testing.assert_allclose(nhwc.predict(np.ascontiguousarray(x.transpose(0, 2, 3, 1))),
                               _ort(EXPORTS["resnet"], x), **F32)


def _model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def _vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _check_against_ort(data, x, layout="NHWC"):
    y = _ort(data, x)
    for dtype in (np.float32, np.float64):
        xin = x.transpose(0, 2, 3, 1) if x.ndim == 4 and layout == "NHWC" else x
        got = nnc.onnx.load(data, dtype=dtype, input_layout=layout).predict(np.ascontiguousarray(xin, dtype))
        if got.ndim == 4 and layout == "NHWC":
            got = got.transpose(0, 3, 1, 2)
        np.testing.assert_allclose(got, y, **F32)


@pytest.mark.parametrize("lbr", [0, 1])
def test_gru_linear_before_reset(lbr, rng):
    T, N, I, H = 5, 2, 3, 4
    W = rng.standard_normal((1, 3 * H, I)).astype(np.float32) * 0.5
    R = rng.standard_normal((1, 3 * H, H)).astype(np.float32) * 0.5
    B = rng.standard_normal((1, 6 * H)).astype(np.float32) * 0.5
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("GRU", ["xt", "W", "R", "B"], ["Y"], hidden_size=H, linear_before_reset=lbr),
             helper.make_node("Squeeze", ["Y", "one"], ["Ys"]),
             helper.make_node("Transpose", ["Ys"], ["y"], perm=[1, 0, 2])]
    data = _model(nodes, [_vi("x", ["n", T, I])], [_vi("y", ["n", T, H])],
                  [("W", W), ("R", R), ("B", B), ("one", np.array([1], np.int64))])
    _check_against_ort(data, rng.standard_normal((N, T, I)).astype(np.float32))


def test_rnn_lstm_and_the_last_step(rng):
    T, N, I, H = 4, 3, 3, 5
    arr = {k: rng.standard_normal(s).astype(np.float32) * 0.5 for k, s in
           [("W", (1, H, I)), ("R", (1, H, H)), ("B", (1, 2 * H)),
            ("W2", (1, 4 * H, H)), ("R2", (1, 4 * H, H)), ("B2", (1, 8 * H))]}
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("RNN", ["xt", "W", "R", "B"], ["Y"], hidden_size=H, activations=["Relu"]),
             helper.make_node("Squeeze", ["Y", "one"], ["Ys"]),
             helper.make_node("LSTM", ["Ys", "W2", "R2", "B2"], ["Y2"], hidden_size=H),
             helper.make_node("Squeeze", ["Y2", "one"], ["Y2s"]),
             helper.make_node("Gather", ["Y2s", "last"], ["y"], axis=0)]
    data = _model(nodes, [_vi("x", ["n", T, I])], [_vi("y", ["n", H])],
                  list(arr.items()) + [("one", np.array([1], np.int64)), ("last", np.array(-1, np.int64))])
    _check_against_ort(data, rng.standard_normal((N, T, I)).astype(np.float32))


@pytest.mark.parametrize("cell, layers, batch_first", torch_models.BIDIRECTIONAL)
def test_exported_bidirectional_rnns(cell, layers, batch_first, dtype, tmp_path):
    module, example, other, to_nnc = torch_models.bidirectional_case(cell, layers, batch_first)
    data = torch_models.to_onnx(module, example, batch_axis=0 if batch_first else 1)
    model = nnc.onnx.load(data, dtype=dtype)
    assert sum(isinstance(layer, nnc.Bidirectional) for layer in model.layers) == layers
    x = np.ascontiguousarray(to_nnc(other.numpy()), dtype=dtype)   # the model takes (N, T, F)
    y = model.predict(x)
    assert y.dtype == dtype
    with torch.no_grad():
        np.testing.assert_allclose(to_nnc(y), module(other).numpy(), **F32)
    np.testing.assert_allclose(to_nnc(y), _ort(data, other.numpy()), **F32)
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(nnc.load(tmp_path / "m.npz").predict(x), y)


def _bidirectional_graph(op, rng, direction="bidirectional", **attrs):
    """x (N, T, I) -> op over both directions -> (N, T, 2 H), the exporters' plumbing."""
    T, I, H = 4, 3, 5
    G = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    D = 2 if direction == "bidirectional" else 1
    arr = {k: rng.standard_normal(s).astype(np.float32) * 0.5 for k, s in
           [("W", (D, G * H, I)), ("R", (D, G * H, H)), ("B", (D, 2 * G * H))]}
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node(op, ["xt", "W", "R", "B"], ["Y"], hidden_size=H, direction=direction, **attrs),
             helper.make_node("Transpose", ["Y"], ["Yt"], perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["Yt", "shape"], ["Ys"]),
             helper.make_node("Transpose", ["Ys"], ["y"], perm=[1, 0, 2])]
    return _model(nodes, [_vi("x", ["n", T, I])], [_vi("y", ["n", T, D * H])],
                  list(arr.items()) + [("shape", np.array([0, 0, -1], np.int64))])


@pytest.mark.parametrize("op, attrs", [("LSTM", {}), ("GRU", {"linear_before_reset": 0}),
                                       ("GRU", {"linear_before_reset": 1}), ("RNN", {"activations": ["Relu"] * 2})])
def test_bidirectional_gate_orders(op, attrs, rng):
    """Hand-built bidirectional nodes (gate orders, GRU's reset variants,
    per-direction activations) against ONNX Runtime."""
    _check_against_ort(_bidirectional_graph(op, rng, **attrs), rng.standard_normal((2, 4, 3)).astype(np.float32))


def test_reverse_direction_is_named(rng):
    with pytest.raises(ValueError, match="only the forward and bidirectional directions \\(got 'reverse'\\)"):
        nnc.onnx.load(_bidirectional_graph("GRU", rng, direction="reverse"))


def test_image_ops(rng):
    C = 4
    arr = {"W": rng.standard_normal((C, 3, 3, 3)).astype(np.float32), "b": rng.standard_normal(C).astype(np.float32),
           "g": rng.random(C).astype(np.float32) + 0.5, "beta": rng.standard_normal(C).astype(np.float32),
           "mean": rng.standard_normal(C).astype(np.float32), "var": rng.random(C).astype(np.float32) + 0.5,
           "M": rng.standard_normal((C * 2 * 2, 3)).astype(np.float32), "c": rng.standard_normal(3).astype(np.float32),
           "shape": np.array([0, -1], np.int64)}
    nodes = [helper.make_node("Conv", ["x", "W", "b"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c1", "g", "beta", "mean", "var"], ["bn"]),
             helper.make_node("LeakyRelu", ["bn"], ["lr"], alpha=0.1),
             helper.make_node("AveragePool", ["lr"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["ap", "g", "beta", "mean", "var"], ["bn2"]),
             helper.make_node("MaxPool", ["bn2"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Reshape", ["mp", "shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "M"], ["mm"]),
             helper.make_node("Add", ["mm", "c"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["y"])]
    data = _model(nodes, [_vi("x", ["n", 3, 4, 4])], [_vi("y", ["n", 3])], list(arr.items()))
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    _check_against_ort(data, x)
    _check_against_ort(data, x, layout="NCHW")


def test_unsupported_nodes_are_all_listed(rng):
    nodes = [helper.make_node("Erf", ["x"], ["e"], name="erf1"),
             helper.make_node("Relu", ["e"], ["r"]),
             helper.make_node("Mul", ["r", "r"], ["m"], name="square"),
             helper.make_node("Conv", ["x", "W"], ["c"], pads=[0, 0, 0, 1], name="lopsided"),
             helper.make_node("Add", ["m", "c"], ["y"])]
    data = _model(nodes, [_vi("x", ["n", 2, 4, 4])], [_vi("y", ["n", 2, 4, 4])],
                  [("W", rng.standard_normal((2, 2, 1, 2)).astype(np.float32))])
    with pytest.raises(ValueError) as e:
        nnc.onnx.load(data)
    msg = str(e.value)
    assert "cannot convert 3 part(s)" in msg
    for part in ("'erf1' (Erf)", "'square' (Mul)", "'lopsided' (Conv): asymmetric pads"):
        assert part in msg, msg


@pytest.mark.parametrize("data", [b"", b"not an onnx file", b"\x08\x07\x12\xff\xff\xff\xff\x0f" * 8,
                                  EXPORTS["mlp"][:len(EXPORTS["mlp"]) // 2], b"\x0a" * 1000])
def test_malformed_bytes_raise_value_error(data):
    with pytest.raises(ValueError, match="nnc.onnx.load: "):
        nnc.onnx.load(data)


def test_external_data_is_refused(rng):
    t = numpy_helper.from_array(rng.standard_normal((3, 2)).astype(np.float32), "M")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="/etc/passwd")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "M"], ["y"])], "g", [_vi("x", ["n", 3])],
                          [_vi("y", ["n", 2])], [t])
    data = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    with pytest.raises(ValueError, match="external data is not read"):
        nnc.onnx.load(data)


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="nnc.onnx.load: expected a path or bytes"):
        nnc.onnx.load(12)
    with pytest.raises(FileNotFoundError):
        nnc.onnx.load(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="input_layout must be 'NHWC' or 'NCHW'"):
        nnc.onnx.load(EXPORTS["mlp"], input_layout="CHW")


def test_onnx_is_imported_only_by_load():
    code = ("import sys, nnc, nnc.onnx; assert 'onnx' not in sys.modules and 'torch' not in sys.modules; "
            "print('ok')")
    root = os.path.dirname(os.path.dirname(os.path.abspath(nnc.__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=root), cwd=root)
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("name", ["resnet", "lstm"])
def test_corrupted_files_load_or_raise_value_error(name):
    """Random byte edits of a valid file: a model or ValueError, nothing else."""
    rng = np.random.default_rng(11)
    good = np.frombuffer(EXPORTS[name], np.uint8)
    for _ in range(40):
        bad = good.copy()
        where = rng.integers(0, bad.size, 4)
        bad[where] = rng.integers(0, 256, 4)
        try:
            nnc.onnx.load(bad.tobytes())
        except ValueError as e:
            assert str(e).startswith("nnc.onnx.load: ")


def test_softmax_axis_by_opset(rng):
    x = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    over_channels = _model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [_vi("x", ["n", 3, 2, 2])],
                           [_vi("y", ["n", 3, 2, 2])])
    _check_against_ort(over_channels, x)
    before_13 = _model([helper.make_node("Softmax", ["x"], ["y"])], [_vi("x", ["n", 3, 2, 2])],
                       [_vi("y", ["n", 3, 2, 2])], opset=11)
    with pytest.raises(ValueError, match=r"softmax over the axes from 1 on is not supported \(opset 11\)"):
        nnc.onnx.load(before_13)
    rows = _model([helper.make_node("Softmax", ["x"], ["y"])], [_vi("x", ["n", 5])], [_vi("y", ["n", 5])], opset=11)
    _check_against_ort(rows, rng.standard_normal((3, 5)).astype(np.float32))


@pytest.mark.parametrize("hidden, wrows", [(0, 12), (5, 12), (4, 13)])
def test_inconsistent_rnn_attributes_raise_value_error(hidden, wrows, rng):
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("GRU", ["xt", "W", "R"], ["Y"], hidden_size=hidden)]
    data = _model(nodes, [_vi("x", ["n", 3, 2])], [_vi("Y", [3, 1, "n", 4])],
                  [("W", rng.standard_normal((1, wrows, 2)).astype(np.float32)),
                   ("R", rng.standard_normal((1, wrows, 4)).astype(np.float32))])
    with pytest.raises(ValueError, match="nnc.onnx.load: cannot convert"):
        nnc.onnx.load(data)


def test_shape_plumbing_is_folded(rng):
    """A flatten whose target shape is computed from constants (Constant,
    Cast, Unsqueeze, Concat) and from the input's Shape (batch unknown)."""
    M = rng.standard_normal((6, 4)).astype(np.float32)
    nodes = [helper.make_node("Constant", [], ["minus1"], value_floats=[-1.0]),
             helper.make_node("Cast", ["minus1"], ["m1"], to=TensorProto.INT64),
             helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
             helper.make_node("Concat", ["n1", "m1"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["flat"]),
             helper.make_node("Gemm", ["flat", "M"], ["y"])]
    data = _model(nodes, [_vi("x", ["n", 2, 3])], [_vi("y", ["n", 4])],
                  [("M", M), ("zero", np.array(0, np.int64)), ("axes", np.array([0], np.int64))])
    _check_against_ort(data, rng.standard_normal((5, 2, 3)).astype(np.float32))


def test_batchnorm_of_features_folded_into_the_gemm(rng):
    from torch import nn
    torch.manual_seed(6)
    bn = nn.BatchNorm1d(6)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 1.5)
    module = nn.Sequential(nn.Linear(4, 6), bn, nn.ReLU(), nn.Linear(6, 2)).eval()
    data = torch_models.to_onnx(module, torch.randn(3, 4))
    assert "BatchNormalization" in [n.op_type for n in onnx.load_from_string(data).graph.node]
    model = nnc.onnx.load(data)
    assert [type(layer) for layer in model] == [nnc.Dense, nnc.Dense]   # folded, relu fused
    _check_against_ort(data, rng.standard_normal((5, 4)).astype(np.float32))


def test_squeeze_of_a_global_pool(rng):
    M = rng.standard_normal((3, 2)).astype(np.float32)
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["p"]),
             helper.make_node("Squeeze", ["p", "axes"], ["s"]),
             helper.make_node("MatMul", ["s", "M"], ["y"])]
    data = _model(nodes, [_vi("x", ["n", 3, 4, 5])], [_vi("y", ["n", 2])],
                  [("M", M), ("axes", np.array([2, 3], np.int64))])
    _check_against_ort(data, rng.standard_normal((2, 3, 4, 5)).astype(np.float32))
