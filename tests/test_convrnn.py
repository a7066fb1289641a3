"""ConvRNN2D and ConvLSTM2D vs the NumPy reference: forward, BPTT, state,
finite differences, determinism, bad input."""
import json

import numpy as np
import pytest

import nnc
from nnc.reference import convrnn as ref
from nnc.reference.conv import same_padding
from nnc.reference.dense import act_grad
from helpers import assert_close, assert_threads_bitwise, assert_within, check_layer_grads, conv_grad_bounds


def lstm(cin, ch, k, dtype, rng, **kw):
    layer = nnc.ConvLSTM2D(cin, ch, k, dtype=dtype, **kw)
    for key in layer.params:
        layer.params[key][...] = rng.standard_normal(layer.params[key].shape) * 0.3
    return layer


def crnn(cin, ch, k, dtype, rng, **kw):
    layer = nnc.ConvRNN2D(cin, ch, k, dtype=dtype, **kw)
    for key in layer.params:
        layer.params[key][...] = rng.standard_normal(layer.params[key].shape) * 0.3
    return layer


def p64(layer):
    return {k: v.astype(np.float64) for k, v in layer.params.items()}


def _augment(x, p, wx):
    """x with G zero channels appended and p[wx] extended so that each new
    channel feeds one of the G pre-activation channels with weight 1 through
    the tap that reads the output pixel itself: the forward is unchanged and
    the new channels of the input gradient are the gradient of every
    pre-activation (gate) at every pixel."""
    q = dict(p)
    KH, KW, C, G = p[wx].shape
    q[wx] = np.concatenate([p[wx], np.zeros((KH, KW, G, G))], 2)
    q[wx][same_padding(1, KH, 1, 1)[0], same_padding(1, KW, 1, 1)[0], C:] = np.eye(G)
    return np.concatenate([x, np.zeros(x.shape[:-1] + (G,))], -1), q


def _assert_conv_grads(layer, terms, gr, grow):
    """Every parameter gradient within helpers.sum_bound of the reference's;
    terms maps (weight, bias) names to (input, pre-activation gradient);
    grow: the recurrence's error growth with T (depth 16 grow)."""
    assert {k for names in terms for k in names if k} == set(gr)
    for (wk, bk), (inp, dz) in terms.items():
        bw, bb = conv_grad_bounds(layer.dtype, inp, dz, layer.params[wk].shape, depth=16 * grow)
        for k, bound in ((wk, bw), (bk, bb)):
            if k:
                assert_within(layer.grads[k], gr[k], bound, what=f"d{k}")
                # The former per-entry tolerance stays beside the bound: on a few
                # near-zero entries of the growing (linear, ReLU) recurrences' dW_hh
                # at T = 7 it is up to 4.6x the tighter; elsewhere the bound is
                # far the tighter.
                assert_close(layer.grads[k], gr[k], layer.dtype, scale=grow * 100, what=f"d{k}")


@pytest.mark.parametrize("T", [1, 7])
@pytest.mark.parametrize("k", [3, 1, (1, 2), (3, 5)])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("init", [False, True])
def test_convlstm_vs_reference(T, k, return_sequences, init, dtype, isa, rng):
    N, H, W, C, ch = 2, 5, 4, 3, 4
    layer = lstm(C, ch, k, dtype, rng, return_sequences=return_sequences)
    x = rng.standard_normal((N, T, H, W, C))
    h0 = rng.standard_normal((N, H, W, ch)) if init else None
    c0 = rng.standard_normal((N, H, W, ch)) if init else None
    y = layer.forward(x, training=True, initial_state=(h0, c0) if init else None)
    xr = x.astype(dtype).astype(np.float64)
    hs, cs, gates = ref.convlstm_forward(xr, p64(layer), h0, c0)
    scale = max(1.0, T / 2)
    want = hs[:, 1:] if return_sequences else hs[:, -1]
    assert y.shape == want.shape and y.dtype == dtype
    assert_close(y, want, dtype, scale=scale * 10, what="ConvLSTM2D forward")
    assert_close(layer.state[0], hs[:, -1], dtype, scale=scale * 10, what="state h")
    assert_close(layer.state[1], cs[:, -1], dtype, scale=scale * 10, what="state C")
    G = rng.standard_normal(y.shape)
    dx = layer.backward(G)
    dhs = G if return_sequences else np.concatenate([np.zeros((N, T - 1, H, W, ch)), G[:, None]], 1)
    dxr, gr, dh0, dc0 = ref.convlstm_backward(xr, p64(layer), hs, cs, gates, dhs)
    assert_close(dx, dxr, dtype, scale=scale * 30, what="dx")
    xa, pa = _augment(xr, p64(layer), "W_x")
    da = ref.convlstm_backward(xa, pa, hs, cs, gates, dhs)[0][..., C:]
    np.testing.assert_allclose(da.sum((0, 1, 2, 3)), gr["b"], rtol=1e-12, atol=1e-12)
    _assert_conv_grads(layer, {("W_x", "b"): (xr, da), ("W_h", None): (hs[:, :-1], da)}, gr, scale)
    assert_close(layer.grad_initial_state[0], dh0, dtype, scale=scale * 30, what="dh0")
    assert_close(layer.grad_initial_state[1], dc0, dtype, scale=scale * 30, what="dc0")


@pytest.mark.parametrize("T", [1, 7])
@pytest.mark.parametrize("act", ["tanh", "relu", "sigmoid", "linear"])
@pytest.mark.parametrize("out", [None, (5, "sigmoid"), (2, None)])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_convrnn_vs_reference(T, act, out, return_sequences, dtype, isa, rng):
    N, H, W, C, ch = 2, 3, 5, 2, 3
    kw = {} if out is None else dict(out_channels=out[0], output_activation=out[1])
    layer = crnn(C, ch, 3, dtype, rng, activation=act, return_sequences=return_sequences, **kw)
    x = rng.standard_normal((N, T, H, W, C))
    h0 = rng.standard_normal((N, H, W, ch))
    y = layer.forward(x, training=True, initial_state=h0)
    xr = x.astype(dtype).astype(np.float64)
    oact = None if out is None else out[1]
    ys, hs = ref.convrnn_forward(xr, p64(layer), h0, act, oact)
    want = ys if return_sequences else ys[:, -1]
    scale = max(1.0, T / 2)
    assert_close(y, want, dtype, scale=scale * 10, what="ConvRNN2D forward")
    assert_close(layer.state, hs[:, -1], dtype, scale=scale * 10, what="state")
    G = rng.standard_normal(y.shape)
    dx = layer.backward(G)
    dys = G if return_sequences else np.concatenate([np.zeros(ys.shape[:1] + (T - 1,) + ys.shape[2:]),
                                                     G[:, None]], 1)
    dxr, gr, dh0 = ref.convrnn_backward(xr, p64(layer), ys, hs, dys, act, oact)
    assert_close(dx, dxr, dtype, scale=scale * 30, what="dx")
    xa, pa = _augment(xr, p64(layer), "W_xh")
    dz = ref.convrnn_backward(xa, pa, ys, hs, dys, act, oact)[0][..., C:]
    np.testing.assert_allclose(dz.sum((0, 1, 2, 3)), gr["b_h"], rtol=1e-12, atol=1e-12)
    terms = {("W_xh", "b_h"): (xr, dz), ("W_hh", None): (hs[:, :-1], dz)}
    if out is not None:
        terms[("W_hy", "b_y")] = (hs[:, 1:], act_grad(ys, dys, oact))
    _assert_conv_grads(layer, terms, gr, scale)
    assert_close(layer.grad_initial_state, dh0, dtype, scale=scale * 30, what="dh0")


@pytest.mark.parametrize("return_sequences", [True, False])
def test_convlstm_finite_differences(return_sequences, rng):
    layer = lstm(2, 3, 3, np.float64, rng, return_sequences=return_sequences)
    x = rng.standard_normal((2, 3, 4, 3, 2))
    h0, c0 = rng.standard_normal((2, 2, 4, 3, 3))
    check_layer_grads(layer, x, rng, forward_kwargs=dict(initial_state=(h0, c0)))
    # the initial-state gradient too
    G = rng.standard_normal(layer.forward(x, training=True, initial_state=(h0, c0)).shape)
    layer.backward(G)
    dh0, dc0 = (a.copy() for a in layer.grad_initial_state)
    from helpers import numeric_grad
    for arr, an in [(h0, dh0), (c0, dc0)]:
        idx = (1, 2, 0, 1)
        num = numeric_grad(lambda: float(np.sum(layer.forward(x, initial_state=(h0, c0)) * G)), arr, idx)
        np.testing.assert_allclose(an[idx], num, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("kw", [dict(activation="tanh"), dict(activation="relu", out_channels=2,
                                                                 output_activation="tanh")])
def test_convrnn_finite_differences(kw, rng):
    layer = crnn(2, 3, (3, 2), np.float64, rng, **kw)
    check_layer_grads(layer, rng.standard_normal((2, 3, 3, 4, 2)), rng)


def test_stateful_two_calls_equal_one_long_call(dtype, rng):
    a = lstm(2, 3, 3, dtype, rng, stateful=True)
    b = lstm(2, 3, 3, dtype, rng)
    for k in a.params:
        b.params[k][...] = a.params[k]
    x = rng.standard_normal((2, 6, 4, 5, 2)).astype(dtype)
    y1 = a(x[:, :2])
    y2 = a(x[:, 2:])
    y = b(x)
    assert_close(np.concatenate([y1, y2], 1), y, dtype, what="stateful")
    a.reset_state()
    np.testing.assert_array_equal(a(x[:, :2]), y1)
    with pytest.raises(ValueError, match="reset_state"):
        a(x[:1, :2])


def test_threads_and_batch_split_bitwise(dtype, rng):
    layer = lstm(3, 4, 3, dtype, rng)
    assert_threads_bitwise(layer, rng.standard_normal((3, 4, 5, 6, 3)).astype(dtype))


def test_inference_does_not_touch_cache_and_matches_training(rng):
    layer = crnn(2, 3, 3, np.float32, rng, return_sequences=False)
    x = rng.standard_normal((2, 5, 3, 3, 2)).astype(np.float32)
    y_train = layer.forward(x, training=True)
    cache = layer._cache
    np.testing.assert_array_equal(layer(x), y_train)
    assert layer._cache is cache


def test_empty_batch_and_config(rng):
    layer = lstm(2, 3, 3, np.float64, rng)
    y = layer.forward(np.zeros((0, 2, 3, 3, 2)), training=True)
    assert y.shape == (0, 2, 3, 3, 3)
    dx = layer.backward(np.zeros_like(y))
    assert dx.shape == (0, 2, 3, 3, 2) and not any(g.any() for g in layer.grads.values())
    for cls, kw in [(nnc.ConvLSTM2D, {}), (nnc.ConvRNN2D, dict(out_channels=2, activation="relu"))]:
        a = cls(2, 3, (3, 1), dtype=np.float64, **kw)
        b = cls.from_config(json.loads(json.dumps(a.get_config())))
        assert b.get_config() == a.get_config()
        assert {k: v.shape for k, v in a.params.items()} == {k: v.shape for k, v in b.params.items()}


def test_bad_input():
    layer = nnc.ConvLSTM2D(3, 4, 3)
    with pytest.raises(ValueError, match=r"ConvLSTM2D: expected input \(N, T, H, W, 3\), got \(2, 5, 5, 3\)"):
        layer(np.zeros((2, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"ConvLSTM2D: expected input \(N, T, H, W, 3\), got \(2, 1, 5, 5, 2\)"):
        layer(np.zeros((2, 1, 5, 5, 2), np.float32))
    with pytest.raises(ValueError, match="T, H, W >= 1"):
        layer(np.zeros((2, 0, 5, 5, 3), np.float32))
    with pytest.raises(TypeError, match="ConvLSTM2D"):
        layer(np.zeros((2, 1, 5, 5, 3), np.int32))
    with pytest.raises(ValueError, match=r"ConvLSTM2D.*\(2, 5, 5, 4\).*\(2, 5, 4, 4\)"):
        layer(np.zeros((2, 1, 5, 5, 3), np.float32), initial_state=(np.zeros((2, 5, 4, 4)), np.zeros((2, 5, 5, 4))))
    with pytest.raises(ValueError, match="pair"):
        layer(np.zeros((2, 1, 5, 5, 3), np.float32), initial_state=np.zeros((2, 5, 5, 4)))
    with pytest.raises(RuntimeError, match="ConvLSTM2D.backward"):
        nnc.ConvLSTM2D(3, 4, 3).backward(np.zeros((2, 1, 5, 5, 4)))
    layer.forward(np.zeros((2, 2, 5, 5, 3), np.float32), training=True)
    with pytest.raises(ValueError, match=r"expected grad_y \(2, 2, 5, 5, 4\)"):
        layer.backward(np.zeros((2, 2, 5, 5, 3)))
    with pytest.raises(ValueError, match="kernel_size"):
        nnc.ConvRNN2D(3, 4, 0)
    with pytest.raises(ValueError, match="activation"):
        nnc.ConvRNN2D(3, 4, 3, activation="softmax")


@pytest.mark.parametrize("cls", ["lstm", "rnn"])
def test_backward_twice_gives_the_same_result_stateful(cls, rng):
    make = lstm if cls == "lstm" else crnn
    layer = make(2, 3, 3, np.float64, rng, stateful=True, **({} if cls == "lstm" else dict(out_channels=2)))
    x = rng.standard_normal((2, 3, 4, 3, 2))
    layer(x)   # carries a non-zero state into the training call
    y = layer.forward(x, training=True)
    G = rng.standard_normal(y.shape)
    dx1 = layer.backward(G)
    g1 = {k: v.copy() for k, v in layer.grads.items()}
    s1 = layer.grad_initial_state
    state = layer.state
    dx2 = layer.backward(G)
    np.testing.assert_array_equal(dx1, dx2)
    np.testing.assert_array_equal(dx1, layer.backward(G))
    for k in g1:
        np.testing.assert_array_equal(g1[k], layer.grads[k])
    for a, b in zip(np.atleast_1d(s1) if cls == "rnn" else s1, np.atleast_1d(layer.grad_initial_state)
                    if cls == "rnn" else layer.grad_initial_state):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(state if cls == "lstm" else [state], layer.state if cls == "lstm" else [layer.state]):
        np.testing.assert_array_equal(a, b)
