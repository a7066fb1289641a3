"""SimpleRNN, LSTM, GRU with ``lengths=``: the NumPy reference (forward,
BPTT, states), finite differences, PyTorch packed sequences, the padding
ignored, determinism over threads and batch splits, bad lengths."""
import numpy as np
import pytest

import nnc
from helpers import assert_bad_lengths, assert_close, assert_threads_bitwise, check_layer_grads
from test_rnn import CONFIGS, _big, cast_state, f64, is_lstm, make, make_state, reference, state_kwargs

T = 7
KINDS = {  # lengths of a batch of N rows (not sorted: the layer orders them itself)
    "equal": lambda n, rng: np.full(n, T),
    "ones": lambda n, rng: np.ones(n, np.int64),
    "mixed": lambda n, rng: np.resize([3, T, 1, 5, 5, 2, T], n) if n > 1 else np.array([4]),
}


def last_steps(a, lengths):
    """a[n, lengths[n] - 1] for every row n."""
    return a[np.arange(a.shape[0]), np.asarray(lengths) - 1]


def full_grad(dy, lengths, return_sequences, O):
    """The (N, T, O) gradient w.r.t. every output that dy stands for."""
    if return_sequences:
        return f64(dy)
    full = np.zeros((dy.shape[0], T, O))
    full[np.arange(dy.shape[0]), np.asarray(lengths) - 1] = dy
    return full


@pytest.mark.parametrize("cfg", list(CONFIGS))
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("N", [1, 6])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("with_init", [False, True])
def test_forward_backward_vs_reference(cfg, kind, N, return_sequences, with_init, dtype, rng):
    F, H = 3, 5
    layer = make(cfg, F, H, dtype, rng, return_sequences=return_sequences)
    lengths = KINDS[kind](N, rng)
    x = rng.standard_normal((N, T, F)).astype(dtype)
    init = cast_state(make_state(layer, N, rng), dtype) if with_init else None
    y = layer.forward(x, training=True, lengths=lengths, **state_kwargs(init, 0, N))
    O = layer.output_size if getattr(layer, "output_size", None) else H
    dy = rng.standard_normal(y.shape).astype(dtype)   # non-zero past the lengths too: ignored
    hs, yr, dxr, gr, dinit = reference(layer, x.astype(np.float64), full_grad(dy, lengths, return_sequences, O),
                                       init, lengths=lengths)
    if not return_sequences:
        yr = last_steps(yr, lengths)
    assert y.shape == yr.shape and y.dtype == dtype
    scale = np.sqrt(H)
    assert_close(y, yr, dtype, scale=scale, what=f"{cfg} y")
    if return_sequences:
        padded = np.arange(T) >= lengths[:, None]
        assert not y[padded].any()
    dx = layer.backward(dy)
    assert_close(dx, dxr, dtype, scale=scale, what=f"{cfg} dx")
    assert not dx[np.arange(T) >= lengths[:, None]].any()
    for k in layer.params:
        assert_close(layer.grads[k], gr[k], dtype, scale=scale * np.sqrt(N * T), what=f"{cfg} d{k}")
    if is_lstm(layer):
        _, Cs = ref_lstm_cs(layer, x, init, lengths)
        assert_close(layer.state[0], last_steps(hs, lengths), dtype, scale=scale, what="state h")
        assert_close(layer.state[1], last_steps(Cs, lengths), dtype, scale=scale, what="state C")
        for a, b, w in zip(layer.grad_initial_state, dinit, ("dh0", "dC0")):
            assert_close(a, b, dtype, scale=scale, what=w)
    else:
        assert_close(layer.state, last_steps(hs, lengths), dtype, scale=scale, what="state")
        assert_close(layer.grad_initial_state, dinit, dtype, scale=scale, what="dh0")


def ref_lstm_cs(layer, x, init, lengths):
    from nnc.reference import rnn as ref
    P = [layer.params[k].astype(np.float64) for k in ("W_x", "W_h", "b")]
    h0, c0 = (None, None) if init is None else (f64(init[0]), f64(init[1]))
    return ref.lstm_forward(x.astype(np.float64), *P, h0, c0, lengths)


@pytest.mark.parametrize("cfg", list(CONFIGS))
@pytest.mark.parametrize("return_sequences", [True, False])
def test_finite_differences(cfg, return_sequences, rng):
    layer = make(cfg, 3, 4, np.float64, rng, return_sequences=return_sequences)
    check_layer_grads(layer, rng.standard_normal((3, 5, 3)), rng, forward_kwargs={"lengths": [2, 5, 1]})


@pytest.mark.parametrize("cfg", ["lstm", "gru", "gru_ra", "rnn_tanh", "rnn_out"])
def test_padding_is_never_read(cfg, rng):
    """Whatever the input holds past a row's length (NaN, Inf) changes
    nothing: outputs, gradients and states are bitwise those of zeros there."""
    layer = make(cfg, 4, 6, np.float64, rng)
    lengths = np.array([2, 6, 1, 4])
    x = rng.standard_normal((4, 6, 4))
    dy = rng.standard_normal(layer.forward(x).shape)
    padded = np.arange(6) >= lengths[:, None]
    runs = []
    for fill in (0.0, np.nan, np.inf):
        xf, dyf = x.copy(), dy.copy()
        xf[padded] = fill
        dyf[padded] = fill
        y = layer.forward(xf, training=True, lengths=lengths)
        runs.append((y, layer.backward(dyf), {k: v.copy() for k, v in layer.grads.items()}))
    for y, dx, g in runs[1:]:
        np.testing.assert_array_equal(y, runs[0][0])
        np.testing.assert_array_equal(dx, runs[0][1])
        for k in g:
            np.testing.assert_array_equal(g[k], runs[0][2][k], err_msg=k)


@pytest.mark.parametrize("cfg", ["lstm", "gru", "gru_ra", "rnn_tanh"])
def test_full_lengths_give_the_bits_of_no_lengths(cfg, dtype, rng):
    layer = make(cfg, 5, 8, dtype, rng)
    x = rng.standard_normal((9, T, 5)).astype(dtype)
    dy = rng.standard_normal((9, T, 8)).astype(dtype)
    y0 = layer.forward(x, training=True)
    dx0 = layer.backward(dy)
    g0 = {k: v.copy() for k, v in layer.grads.items()}
    y1 = layer.forward(x, training=True, lengths=np.full(9, T))
    dx1 = layer.backward(dy)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(dx1, dx0)
    for k in g0:   # summed per row instead of over every step at once
        assert_close(layer.grads[k], g0[k], dtype, scale=np.sqrt(9 * T), what=k)


@pytest.mark.parametrize("cfg", ["lstm", "gru", "gru_ra", "rnn_tanh", "rnn_out"])
def test_threads_and_batch_split_bitwise(cfg, dtype, isa, rng):
    N, TT, F, H = _big(cfg)
    layer = make(cfg, F, H, dtype, rng)
    for p in layer.params.values():   # a contracting recurrence: the reference comparison stays meaningful
        p *= 0.3
    x = rng.standard_normal((N, TT, F)).astype(dtype)
    lengths = rng.integers(1, TT + 1, N)
    y, dx, g = assert_threads_bitwise(layer, x, subsets=((0, 1), (1, 5), (5, N)),
                                      forward_kwargs={"lengths": lengths},
                                      subset_kwargs=lambda lo, hi: {"lengths": lengths[lo:hi]})
    # each row alone: the same bits
    for i in (0, 7):
        np.testing.assert_array_equal(layer.forward(x[i:i + 1, :lengths[i]]), y[i:i + 1, :lengths[i]])
    _, yr, dxr, _, _ = reference(layer, x.astype(np.float64), f64(y), None, lengths=lengths)
    assert_close(y, yr, dtype, scale=np.sqrt(H * TT / 10), what=f"{cfg} y")
    assert_close(dx, dxr, dtype, scale=np.sqrt(H * TT / 10), what=f"{cfg} dx")


@pytest.mark.parametrize("cfg,N,H", [("lstm", 3, 128), ("gru", 3, 128), ("gru_ra", 2, 128), ("rnn_tanh", 1, 384)])
def test_small_batch_unit_split(cfg, N, H, dtype, isa, rng):
    """Small batches with a big step (hidden units split over the threads):
    one and two threads give the same bits, and the reference's values."""
    TT, F = 8, 5
    layer = make(cfg, F, H, dtype, rng)
    for p in layer.params.values():
        p *= 0.3
    x = rng.standard_normal((N, TT, F)).astype(dtype)
    lengths = np.array([5, 8, 2][:N])
    init = cast_state(make_state(layer, N, rng), dtype)
    ys = []
    for n in (1, 2):
        with nnc.threads(n):
            ys.append(layer.forward(x, initial_state=init, lengths=lengths))
    np.testing.assert_array_equal(ys[0], ys[1])
    _, yr, _, _, _ = reference(layer, x.astype(np.float64), np.zeros((N, TT, H)), init, lengths=lengths)
    assert_close(ys[1], yr, dtype, scale=np.sqrt(H), what=f"{cfg} y")


@pytest.mark.parametrize("cfg", ["lstm", "gru_ra", "rnn_tanh"])
def test_stateful_carries_each_rows_last_valid_state(cfg, rng):
    layer = make(cfg, 3, 4, np.float64, rng, stateful=True)
    x = rng.standard_normal((3, 6, 3))
    lengths = np.array([6, 2, 4])
    layer.forward(x, lengths=lengths)
    first = layer.state
    x2 = rng.standard_normal((3, 3, 3))
    y2 = layer.forward(x2)
    plain = make(cfg, 3, 4, np.float64, rng)
    for k in plain.params:
        plain.params[k][...] = layer.params[k]
    np.testing.assert_array_equal(y2, plain.forward(x2, initial_state=first))
    h = first[0] if is_lstm(layer) else first
    np.testing.assert_array_equal(h[1], plain.forward(x[1:2, :2])[0, -1])


TORCH_CELLS = ["LSTM", "GRU", "RNN"]


def torch_to_nnc(cls, module, dtype, suffix="l0"):
    """The nnc layer with the weights of direction `suffix` of a torch
    LSTM / GRU / RNN (tanh) module (the mappings of the user guide)."""
    w = {k: getattr(module, f"{k}_{suffix}").detach().numpy().astype(np.float64)
         for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    F, H = module.input_size, module.hidden_size
    if cls == "LSTM":
        layer = nnc.LSTM(F, H, dtype=dtype)
        layer.params.update(W_x=w["weight_ih"], W_h=w["weight_hh"], b=w["bias_ih"] + w["bias_hh"])
    elif cls == "GRU":
        layer = nnc.GRU(F, H, reset_after=True, dtype=dtype)
        for k in w:   # u = 1 - z: the z block negated
            w[k][H:2 * H] *= -1
        layer.params.update(W_x=w["weight_ih"], W_h=w["weight_hh"], b_x=w["bias_ih"], b_h=w["bias_hh"])
    else:
        layer = nnc.SimpleRNN(F, H, dtype=dtype)
        layer.params.update(W_xh=w["weight_ih"], W_hh=w["weight_hh"], b_h=w["bias_ih"] + w["bias_hh"])
    return layer


def torch_packed(torch, module, x, lengths):
    """(padded outputs, last states h) of module on x packed with lengths (unsorted)."""
    x = x if isinstance(x, torch.Tensor) else torch.tensor(x)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), batch_first=True,
                                                     enforce_sorted=False)
    out, state = module(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, state


@pytest.mark.parametrize("cls", TORCH_CELLS)
def test_matches_torch_packed_sequences(cls, dtype, rng):
    torch = pytest.importorskip("torch", reason="PyTorch cross-check of packed sequences")
    torch.manual_seed(0)
    N, TT, F, H = 5, 9, 4, 6
    module = getattr(torch.nn, cls)(F, H, batch_first=True).to(torch.float64 if dtype == np.float64 else
                                                                torch.float32)
    layer = torch_to_nnc(cls, module, dtype)
    x = rng.standard_normal((N, TT, F)).astype(dtype)
    lengths = np.array([3, 9, 1, 6, 9])
    out, state = torch_packed(torch, module, x, lengths)
    y = layer.forward(x, training=True, lengths=lengths)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=tol, atol=tol)
    h = state[0] if cls == "LSTM" else state
    np.testing.assert_allclose(layer.state[0] if cls == "LSTM" else layer.state, h[0].detach().numpy(),
                               rtol=tol, atol=tol)
    if cls == "LSTM":
        np.testing.assert_allclose(layer.state[1], state[1][0].detach().numpy(), rtol=tol, atol=tol)
    # gradients: loss = sum(out * G)
    G = rng.standard_normal(y.shape).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    out, _ = torch_packed(torch, module, xt, lengths)
    (out * torch.tensor(G)).sum().backward()
    dx = layer.backward(G)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol * 10, atol=tol * 10)
    wx = "W_x" if cls != "RNN" else "W_xh"
    g = module.weight_ih_l0.grad.numpy().copy()
    if cls == "GRU":
        g[H:2 * H] *= -1
    np.testing.assert_allclose(layer.grads[wx], g, rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize("cfg", ["lstm", "gru", "rnn_out"])
def test_bad_lengths(cfg, rng):
    layer = make(cfg, 3, 4, np.float32, rng)
    name = CONFIGS[cfg][0]
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    assert_bad_lengths(layer, x, name)


def test_the_kernel_rejects_unsorted_or_out_of_range_lengths(rng):
    layer = nnc.GRU(3, 4)
    Wx, Wh, bx, bh = layer._weights()
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    hs = np.zeros((3, 5, 4), np.float32)
    aux = np.empty_like(hs)
    work = np.empty(nnc._core.rnn_fwd_workspace_size(False, 2, 0, 3, 5, 3, 4), np.float32)
    for bad in ([2, 5, 1], [5, 6, 1], [5, 0, 0]):
        with pytest.raises(Exception):
            nnc._core.rnn_fwd(2, 0, 0, 0, x, Wx, Wh, bx, bh, None, None, hs, None, None, aux, work,
                              np.array(bad, np.intp))
        assert not hs.any()


def test_the_kernel_rejects_a_bad_order(rng):
    layer = nnc.LSTM(3, 4)
    Wx, Wh, b, _ = layer._weights()
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    hs, cs = np.zeros((3, 5, 4), np.float32), np.zeros((3, 5, 4), np.float32)
    gates = np.empty((3, 5, 16), np.float32)
    work = np.empty(nnc._core.rnn_fwd_workspace_size(False, 1, 0, 3, 5, 3, 4), np.float32)
    lengths = np.array([5, 3, 1], np.intp)
    hs_out = np.zeros_like(hs)
    for lens, order in ((lengths, [0, 3, 1]), (lengths, [-1, 0, 1]), (None, [2, 1, 0]), (lengths, [0, 1]),
                        (lengths, None)):   # the last: hs_out without order
        with pytest.raises((RuntimeError, ValueError)):
            nnc._core.rnn_fwd(1, 0, 0, 0, x, Wx, Wh, b, None, None, None, hs, cs, gates, None, work, lens,
                              None if order is None else np.array(order, np.intp), hs_out)
        assert not hs.any() and not hs_out.any()


def _sequence_model():
    return nnc.Sequential([nnc.Embedding(12, 6), nnc.Bidirectional(nnc.GRU(6, 8, reset_after=True,
                                                                          return_sequences=False)),
                           nnc.Dense(16, 2, activation="softmax")])


def test_predict_splits_lengths_with_the_batch(rng):
    nnc.seed(5)
    model = _sequence_model()
    ids = rng.integers(1, 12, (40, 9))
    lengths = rng.integers(1, 10, 40)
    whole = model.forward(ids, lengths=lengths)
    for bs in (1, 7, 40, 64):
        np.testing.assert_array_equal(model.predict(ids, batch_size=bs, lengths=lengths), whole)
    # padding past the lengths is never read
    padded = ids.copy()
    padded[np.arange(9) >= lengths[:, None]] = 0
    np.testing.assert_array_equal(model.predict(padded, lengths=lengths), whole)
    assert not np.array_equal(model.predict(ids), whole)


def test_fit_with_lengths_learns_a_task_that_needs_them(rng):
    """The label is the last valid token's parity: without the lengths the
    padding hides it."""
    nnc.seed(6)
    model = _sequence_model()
    n, t = 256, 8
    lengths = rng.integers(1, t + 1, n)
    ids = rng.integers(1, 12, (n, t))
    ids[np.arange(t) >= lengths[:, None]] = 0
    labels = ids[np.arange(n), lengths - 1] % 2
    hist = model.fit(ids, labels, epochs=12, batch_size=32, loss="sparse_categorical_crossentropy",
                     optimizer=nnc.optim.Adam(lr=0.02), verbose=0, lengths=lengths,
                     validation_data=(ids[:64], labels[:64], lengths[:64]))
    assert hist["accuracy"][-1] > 0.95 and hist["val_accuracy"][-1] > 0.95


def test_model_lengths_bad_input(rng):
    model = _sequence_model()
    ids = rng.integers(1, 12, (6, 5))
    with pytest.raises(ValueError, match=r"Sequential.predict: expected lengths of shape \(6,\) \(one per sample\), "
                                         r"got \(5,\)"):
        model.predict(ids, lengths=[1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match=r"Sequential.fit: expected lengths of shape \(6,\)"):
        model.fit(ids, np.zeros(6, np.int64), lengths=np.ones((6, 1), np.int64), verbose=0)
    with pytest.raises(ValueError, match=r"Bidirectional: expected lengths in \[1, 5\] \(the input's T\), got 0"):
        model.predict(ids, lengths=[1, 2, 0, 4, 5, 5])
    with pytest.raises(ValueError, match="Sequential: lengths given, but no layer takes lengths"):
        nnc.Sequential([nnc.Dense(3, 2)]).forward(np.ones((2, 3), np.float32), lengths=[1, 1])


def test_demo_sequences_quick(capsys):
    from nnc.__main__ import demo_sequences
    result = demo_sequences(quick=True)
    assert result["accuracy"] > 0.8   # the majority class is about 56%
    assert "held-out accuracy" in capsys.readouterr().out
