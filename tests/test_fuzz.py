"""Property-based fuzzing of every public layer (hypothesis, derandomized):
random valid configurations match the NumPy reference in float64 and give
finite gradients of the right shapes; random (possibly invalid) input shapes
either work or raise ValueError/TypeError, never crash.  Edge sizes are in
the strategies: batch 0, 1x1 images, kernels as large as the padded input,
sequence length 1, many channels on tiny images."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnc
from nnc.reference import conv as rconv
from nnc.reference import dense as rdense
from nnc.reference import densenet as rdense_block
from nnc.reference import pool as rpool
from nnc.reference import rnn as rrnn

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
F64 = np.float64


def randn(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape)


def close(a, b, what):
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10, err_msg=what)


def exercise_backward(layer, y, seed):
    dx = layer.backward(randn(seed + 1, y.shape))
    for k, g in layer.grads.items():
        assert g.shape == layer.params[k].shape and np.all(np.isfinite(g)), k
    return dx


@FUZZ
@given(n=st.integers(0, 4), extra=st.integers(0, 3), fin=st.integers(1, 40), fout=st.integers(1, 40),
       act=st.sampled_from([None, "relu", "sigmoid", "tanh", "softmax"]), seed=st.integers(0, 2**16))
def test_dense(n, extra, fin, fout, act, seed):
    layer = nnc.Dense(fin, fout, activation=act, dtype=F64)
    shape = (n,) + (2,) * extra + (fin,)
    x = randn(seed, shape)
    y = layer.forward(x, training=True)
    close(y, rdense.dense_forward(x, layer.params["W"], layer.params["b"], act), "Dense")
    assert exercise_backward(layer, y, seed).shape == shape


@st.composite
def conv_case(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin = groups * draw(st.integers(1, 3))
    cout = groups * draw(st.integers(1, 3)) if draw(st.booleans()) else cin
    if draw(st.booleans()) and groups == 1:
        groups = cin = cout = draw(st.integers(1, 5))   # depthwise
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(["same", "valid", 0, 1, (2, 1)]))
    hw = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    return dict(cin=cin, cout=cout, k=k, s=s, d=d, padding=padding, groups=groups, hw=hw,
                n=draw(st.integers(0, 3)), seed=draw(st.integers(0, 2**16)))


@FUZZ
@given(conv_case())
def test_conv2d(c):
    layer = nnc.Conv2D(c["cin"], c["cout"], c["k"], c["s"], c["padding"], c["d"], c["groups"], dtype=F64)
    x = randn(c["seed"], (c["n"],) + c["hw"] + (c["cin"],))
    H, W = c["hw"]
    if c["padding"] == "same":
        pads = rconv.same_padding(H, c["k"][0], c["s"][0], c["d"][0]) + \
            rconv.same_padding(W, c["k"][1], c["s"][1], c["d"][1])
    elif c["padding"] == "valid":
        pads = (0, 0, 0, 0)
    else:
        ph, pw = (c["padding"], c["padding"]) if isinstance(c["padding"], int) else c["padding"]
        pads = (ph, ph, pw, pw)
    fits = all(dd * (kk - 1) + 1 <= size + p0 + p1 for dd, kk, size, p0, p1 in
               zip(c["d"], c["k"], c["hw"], pads[::2], pads[1::2]))
    if not fits:
        with pytest.raises(ValueError, match="Conv2D"):
            layer(x)
        return
    y = layer.forward(x, training=True)
    ref = rconv.conv2d_forward(x, layer.params["W"], layer.params["b"], c["s"], pads, c["d"], c["groups"])
    close(y, ref, "Conv2D")
    assert exercise_backward(layer, y, c["seed"]).shape == x.shape


@FUZZ
@given(kind=st.sampled_from(["max", "avg"]), pool=st.integers(1, 4), stride=st.integers(1, 4),
       pad=st.integers(0, 2), hw=st.tuples(st.integers(1, 8), st.integers(1, 8)), c=st.integers(1, 20),
       n=st.integers(0, 3), seed=st.integers(0, 2**16))
def test_pooling(kind, pool, stride, pad, hw, c, n, seed):
    cls = nnc.MaxPool2D if kind == "max" else nnc.AvgPool2D
    x = randn(seed, (n,) + hw + (c,))
    if pad > pool // 2 or any((s + 2 * pad - pool) // stride + 1 < 1 for s in hw):
        with pytest.raises(ValueError, match="Pool2D"):
            cls(pool, stride, pad, dtype=F64)(x)
        return
    layer = cls(pool, stride, pad, dtype=F64)
    y = layer.forward(x, training=True)
    if n:   # the reference needs a non-empty batch
        fwd = rpool.maxpool_forward if kind == "max" else rpool.avgpool_forward
        ref = fwd(x, (pool, pool), (stride, stride), (pad, pad))
        close(y, ref[0] if isinstance(ref, tuple) else ref, f"{kind}pool")
    assert layer.backward(np.ones_like(y)).shape == x.shape


@FUZZ
@given(kind=st.sampled_from(["SimpleRNN", "LSTM", "GRU", "GRU1"]), n=st.integers(0, 3), T=st.integers(1, 6),
       fin=st.integers(1, 9), h=st.integers(1, 9), seq=st.booleans(), seed=st.integers(0, 2**16))
def test_recurrent(kind, n, T, fin, h, seq, seed):
    if kind == "SimpleRNN":
        layer = nnc.SimpleRNN(fin, h, return_sequences=seq, dtype=F64)
    elif kind == "LSTM":
        layer = nnc.LSTM(fin, h, return_sequences=seq, dtype=F64)
    else:
        layer = nnc.GRU(fin, h, reset_after=kind == "GRU1", return_sequences=seq, dtype=F64)
    x = randn(seed, (n, T, fin))
    y = layer.forward(x, training=True)
    p = layer.params
    if kind == "SimpleRNN":
        hs = rrnn.simple_rnn_forward(x, p["W_xh"], p["W_hh"], p["b_h"])
    elif kind == "LSTM":
        hs = rrnn.lstm_forward(x, p["W_x"], p["W_h"], p["b"])[0]
    else:
        hs = rrnn.gru_forward(x, p["W_x"], p["W_h"], p["b_x"], p["b_h"], reset_after=kind == "GRU1")
    close(y, hs if seq else hs[:, -1], kind)
    assert exercise_backward(layer, y, seed).shape == x.shape


@FUZZ
@given(kind=st.sampled_from(["ConvRNN2D", "ConvLSTM2D"]), n=st.integers(0, 2), T=st.integers(1, 3),
       hw=st.tuples(st.integers(1, 5), st.integers(1, 5)), cin=st.integers(1, 3), ch=st.integers(1, 3),
       k=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_conv_recurrent(kind, n, T, hw, cin, ch, k, seed):
    layer = getattr(nnc, kind)(cin, ch, k, dtype=F64)
    x = randn(seed, (n, T) + hw + (cin,))
    y = layer.forward(x, training=True)
    assert y.shape == (n, T) + hw + (ch,) and np.all(np.isfinite(y))
    assert exercise_backward(layer, y, seed).shape == x.shape


@FUZZ
@given(n=st.integers(0, 2), hw=st.tuples(st.integers(1, 5), st.integers(1, 5)), c=st.integers(1, 4),
       L=st.integers(1, 3), g=st.integers(1, 5), k=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_denseblock(n, hw, c, L, g, k, seed):
    layer = nnc.DenseBlock(c, L, g, kernel_size=k, dtype=F64)
    x = randn(seed, (n,) + hw + (c,))
    y = layer.forward(x, training=True)
    Ws = [layer.params[f"layer{i}.W"] for i in range(L)]
    bs = [layer.params[f"layer{i}.b"] for i in range(L)]
    close(y, rdense_block.denseblock_forward(x, Ws, bs), "DenseBlock")
    assert exercise_backward(layer, y, seed).shape == x.shape


LAYERS = [
    lambda: nnc.Dense(4, 3), lambda: nnc.Perceptron(4, 2), lambda: nnc.Conv2D(3, 4, 3),
    lambda: nnc.Conv2D(4, 4, 3, groups=4, padding="same"), lambda: nnc.MaxPool2D(2), lambda: nnc.AvgPool2D(3, 1, 1),
    lambda: nnc.GlobalAvgPool2D(), lambda: nnc.Flatten(), lambda: nnc.SimpleRNN(4, 3, output_size=2),
    lambda: nnc.LSTM(4, 3), lambda: nnc.GRU(4, 3), lambda: nnc.ConvRNN2D(3, 2, 3), lambda: nnc.ConvLSTM2D(3, 2, 3),
    lambda: nnc.DenseBlock(3, 2, 2), lambda: nnc.Residual(nnc.Dense(4, 4)),
]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(which=st.integers(0, len(LAYERS) - 1), shape=st.lists(st.integers(0, 6), min_size=0, max_size=6),
       dtype=st.sampled_from(["float32", "float64", "int32", "bool", "complex64", "object"]))
def test_arbitrary_input_never_crashes(which, shape, dtype):
    layer = LAYERS[which]()
    x = np.ones(shape, dtype=dtype)
    try:
        y = layer.forward(x, training=True)
    except (ValueError, TypeError) as e:
        assert type(layer).__name__ in str(e), str(e)
        return
    assert np.asarray(y).dtype == np.float32
    try:
        layer.backward(np.ones_like(y))
    except (ValueError, TypeError) as e:   # e.g. a layer whose output gradient shape differs
        assert type(layer).__name__ in str(e), str(e)
