"""Bidirectional: both directions against the NumPy reference (every merge
mode, return_sequences, lengths), PyTorch bidirectional=True on packed
sequences, finite differences, threads, config/save, bad input."""
import numpy as np
import pytest

import nnc
from helpers import assert_close, assert_threads_bitwise, check_layer_grads
from test_rnn import make, reference
from test_rnn_lengths import torch_packed, torch_to_nnc

MERGES = ["concat", "sum", "mul", "ave", None]


def reverse_rows(a, lengths):
    """Each row of a (N, T, ...) reversed within its own length."""
    out = np.array(a, copy=True)
    for n, L in enumerate(lengths):
        out[n, :L] = a[n, :L][::-1]
    return out


def merge(mode, a, b):
    return {"concat": lambda: np.concatenate([a, b], -1), "sum": lambda: a + b, "mul": lambda: a * b,
            "ave": lambda: (a + b) / 2, None: lambda: [a, b]}[mode]()


def direction_ref(layer, x, gy_full, lengths):
    """Reference output sequence (N, T, O), dx and grads of one direction."""
    _, y, dx, g, _ = reference(layer, x, gy_full, None, lengths=lengths)
    return y, dx, g


def last(a, lengths):
    return a[np.arange(a.shape[0]), np.asarray(lengths) - 1]


@pytest.mark.parametrize("cfg", ["lstm", "gru", "gru_ra", "rnn_tanh"])
@pytest.mark.parametrize("merge_mode", MERGES)
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_vs_reference(cfg, merge_mode, return_sequences, with_lengths, dtype, rng):
    N, T, F, H = 4, 6, 3, 5
    bi = nnc.Bidirectional(make(cfg, F, H, dtype, rng, return_sequences=return_sequences), merge_mode)
    for k, p in bi.params.items():
        p[...] = rng.standard_normal(p.shape) * 0.5
    lengths = np.array([4, 6, 1, 3]) if with_lengths else np.full(N, T)
    x = rng.standard_normal((N, T, F)).astype(dtype)
    y = bi.forward(x, training=True, **({"lengths": lengths} if with_lengths else {}))
    x64 = x.astype(np.float64)
    # forward values of the two directions, in time order
    yf, _, _ = direction_ref(bi.forward_layer, x64, np.zeros((N, T, H)), lengths)
    yb_rev, _, _ = direction_ref(bi.backward_layer, reverse_rows(x64, lengths), np.zeros((N, T, H)), lengths)
    if return_sequences:
        of, ob = yf, reverse_rows(yb_rev, lengths)
    else:
        of, ob = last(yf, lengths), last(yb_rev, lengths)
    expected = merge(merge_mode, of, ob)
    got = y if merge_mode is not None else y
    if merge_mode is None:
        for a, b in zip(got, expected):
            assert_close(a, b, dtype, scale=np.sqrt(H), what="y")
    else:
        assert_close(got, expected, dtype, scale=np.sqrt(H), what="y")
    # backward: the output gradient split per direction by the merge
    dy = [rng.standard_normal(of.shape) for _ in range(2)] if merge_mode is None else \
        rng.standard_normal(np.shape(expected))
    gf, gb = {"concat": lambda: (dy[..., :H], dy[..., H:]), "sum": lambda: (dy, dy),
              "mul": lambda: (dy * ob, dy * of), "ave": lambda: (dy / 2, dy / 2), None: lambda: dy}[merge_mode]()

    def full(g):   # the gradient w.r.t. every output step
        if return_sequences:
            return g
        out = np.zeros((N, T, H))
        out[np.arange(N), lengths - 1] = g
        return out

    _, dxf, grf = direction_ref(bi.forward_layer, x64, full(gf), lengths)
    gb_full = reverse_rows(full(gb), lengths) if return_sequences else full(gb)
    _, dxb, grb = direction_ref(bi.backward_layer, reverse_rows(x64, lengths), gb_full, lengths)
    dx = bi.backward([a.astype(dtype) for a in dy] if merge_mode is None else dy.astype(dtype))
    assert_close(dx, dxf + reverse_rows(dxb, lengths), dtype, scale=np.sqrt(H), what="dx")
    for k in bi.forward_layer.params:
        assert_close(bi.grads["forward." + k], grf[k], dtype, scale=np.sqrt(N * T * H), what="forward." + k)
        assert_close(bi.grads["backward." + k], grb[k], dtype, scale=np.sqrt(N * T * H), what="backward." + k)


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_matches_torch_bidirectional(cls, with_lengths, dtype, rng):
    torch = pytest.importorskip("torch", reason="PyTorch cross-check of bidirectional=True")
    torch.manual_seed(1)
    N, T, F, H = 5, 8, 4, 6
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    module = getattr(torch.nn, cls)(F, H, batch_first=True, bidirectional=True).to(tdt)
    bi = nnc.Bidirectional(torch_to_nnc(cls, module, dtype))
    back = torch_to_nnc(cls, module, dtype, suffix="l0_reverse")
    for k, v in back.params.items():
        bi.params["backward." + k][...] = v
    x = rng.standard_normal((N, T, F)).astype(dtype)
    lengths = np.array([3, 8, 1, 6, 8]) if with_lengths else np.full(N, T)
    xt = torch.tensor(x, requires_grad=True)
    out, state = torch_packed(torch, module, xt, lengths)
    y = bi.forward(x, training=True, lengths=lengths)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=tol, atol=tol)
    G = rng.standard_normal(y.shape).astype(dtype)
    (out * torch.tensor(G)).sum().backward()
    dx = bi.backward(G)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=10 * tol, atol=10 * tol)
    for suffix, prefix in (("l0", "forward."), ("l0_reverse", "backward.")):
        g = getattr(module, f"weight_hh_{suffix}").grad.numpy().copy()
        if cls == "GRU":
            g[H:2 * H] *= -1
        np.testing.assert_allclose(bi.grads[prefix + "W_h"], g, rtol=10 * tol, atol=10 * tol)
    # return_sequences=False: the forward's last state and the backward's state at the first step (torch h_n)
    last_bi = nnc.Bidirectional(torch_to_nnc(cls, module, dtype))
    last_bi.forward_layer.return_sequences = last_bi.backward_layer.return_sequences = False
    for k, v in back.params.items():
        last_bi.params["backward." + k][...] = v
    h_n = state[0] if cls == "LSTM" else state
    np.testing.assert_allclose(last_bi.forward(x, lengths=lengths),
                               np.concatenate([h_n[0].detach().numpy(), h_n[1].detach().numpy()], -1),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("merge_mode", ["concat", "mul", "ave"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_finite_differences(merge_mode, return_sequences, rng):
    bi = nnc.Bidirectional(make("lstm", 3, 4, np.float64, rng, return_sequences=return_sequences), merge_mode)
    check_layer_grads(bi, rng.standard_normal((3, 5, 3)), rng, forward_kwargs={"lengths": [2, 5, 1]})


def test_threads_and_batch_split_bitwise(dtype, rng):
    bi = nnc.Bidirectional(make("gru_ra", 8, 32, dtype, rng))
    x = rng.standard_normal((12, 30, 8)).astype(dtype)
    lengths = rng.integers(1, 31, 12)
    assert_threads_bitwise(bi, x, subsets=((0, 1), (1, 5), (5, 12)), forward_kwargs={"lengths": lengths},
                           subset_kwargs=lambda lo, hi: {"lengths": lengths[lo:hi]})


def test_conv_recurrent_without_lengths(rng):
    bi = nnc.Bidirectional(nnc.ConvLSTM2D(2, 3, 3, dtype=np.float64), merge_mode="sum")
    x = rng.standard_normal((2, 4, 5, 5, 2))
    y = bi.forward(x)
    np.testing.assert_array_equal(y, bi.forward_layer.forward(x) + bi.backward_layer.forward(x[:, ::-1])[:, ::-1])
    check_layer_grads(bi, x, rng, n_coords=6)


def test_config_save_load_and_params(tmp_path, rng):
    bi = nnc.Bidirectional(nnc.GRU(3, 4, reset_after=True), merge_mode="ave")
    assert sorted(bi.params) == sorted(f"{d}.{k}" for d in ("forward", "backward")
                                       for k in ("W_x", "W_h", "b_x", "b_h"))
    assert bi.params["forward.W_x"] is bi.forward_layer.params["W_x"]
    assert not np.array_equal(bi.params["forward.W_x"], bi.params["backward.W_x"])   # initialised apart
    again = nnc.Bidirectional.from_config(bi.get_config())
    assert again.get_config() == bi.get_config()
    model = nnc.Sequential([bi, nnc.Dense(4, 2)])
    x = rng.standard_normal((5, 6, 3)).astype(np.float32)
    model.save(tmp_path / "bi.nnc")
    loaded = nnc.load(tmp_path / "bi.nnc")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_bad_input(rng):
    with pytest.raises(TypeError, match="Bidirectional: expected a recurrent layer .* got Dense"):
        nnc.Bidirectional(nnc.Dense(3, 4))
    with pytest.raises(ValueError, match="Bidirectional: expected a layer with stateful=False"):
        nnc.Bidirectional(nnc.LSTM(3, 4, stateful=True))
    with pytest.raises(ValueError, match="Bidirectional: expected merge_mode in"):
        nnc.Bidirectional(nnc.LSTM(3, 4), merge_mode="max")
    bi = nnc.Bidirectional(nnc.LSTM(3, 4))
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"Bidirectional: expected lengths in \[1, 5\] \(the input's T\), got 6"):
        bi.forward(x, lengths=[6, 2])
    with pytest.raises(ValueError, match=r"Bidirectional: expected lengths of shape \(2,\), got \(3,\)"):
        bi.forward(x, lengths=[1, 2, 3])
    with pytest.raises(ValueError, match=r"LSTM: expected input \(N, T, 3\), got \(2, 5, 4\)"):
        bi.forward(np.zeros((2, 5, 4), np.float32))
    bi.forward(x, training=True)
    with pytest.raises(ValueError, match=r"Bidirectional.backward: expected grad_y \(2, 5, 8\), got \(2, 5, 4\)"):
        bi.backward(np.zeros((2, 5, 4), np.float32))
    none = nnc.Bidirectional(nnc.GRU(3, 4), merge_mode=None)
    none.forward(x, training=True)
    with pytest.raises(ValueError, match=r"Bidirectional.backward: expected grad_y as a list"):
        none.backward(np.zeros((2, 5, 4), np.float32))
