"""Small batches of the recurrent layers: the batch-1 GEMV over the packed
W_h gate blocks and the column split of the hidden units over the threads.
H = 300 is more than the GEMM's KC slice (256) and not a multiple of any
panel width, so the GEMV restarts its chains at KC and ends on partial
panels.  Checked against the reference (forward and BPTT), bitwise across
thread counts, and bitwise against the same rows run in a big batch (the
GEMM's row-block path)."""
import numpy as np
import pytest

import nnc
from helpers import assert_close, assert_threads_bitwise
from test_rnn import assert_param_grads, cast_state, is_lstm, make, make_state, reference, state_kwargs, state_rows

H = 300
F = 5


def _contract(layer, rng):
    """Recurrent weights with spectral radius about 0.5: a 57-step recurrence
    that neither explodes nor amplifies rounding chaotically."""
    for k in ("W_h", "W_hh"):
        if k in layer.params:
            p = layer.params[k]
            p[...] = rng.standard_normal(p.shape) * (0.5 / np.sqrt(H))


def _run(layer, x, init, nt, training):
    with nnc.threads(nt):
        kw = {} if init is None else {"initial_state": init}
        return layer.forward(x, training=training, **kw)


@pytest.mark.parametrize("cfg", ["lstm", "gru", "gru_ra", "rnn_tanh"])
@pytest.mark.parametrize("N", [1, 2])
@pytest.mark.parametrize("T", [1, 57])
@pytest.mark.parametrize("with_init", [False, True])
def test_small_batch_vs_reference_and_bitwise(cfg, N, T, with_init, dtype, isa, rng):
    layer = make(cfg, F, H, dtype, rng)
    _contract(layer, rng)
    xb = rng.standard_normal((N + 7, T, F)).astype(dtype)
    x = xb[:N]
    initb = cast_state(make_state(layer, N + 7, rng), dtype) if with_init else None
    init = state_rows(initb, 0, N)
    # training forward + BPTT at 1 and 2 threads: bitwise the same
    dy = np.random.default_rng(5).standard_normal(_run(layer, x, init, 1, False).shape).astype(dtype)
    # (and inference gives the training forward's output)
    y1, dx1, g1 = assert_threads_bitwise(layer, x, dy, subsets=((0, N),), forward_kwargs=state_kwargs(init, 0, N),
                                         subset_kwargs=lambda lo, hi: state_kwargs(init, lo, hi))
    # the same rows of a big batch (row blocks through the GEMM) bitwise
    np.testing.assert_array_equal(_run(layer, xb, initb, 2, False)[:N], y1)
    # vs the reference
    hs, yr, dxr, gr, _ = reference(layer, x.astype(np.float64), dy.astype(np.float64), init)
    grow = max(1.0, T / 10)
    assert_close(y1, yr, dtype, scale=grow * np.sqrt(H), what=f"{cfg} y")
    assert_close(dx1, dxr, dtype, scale=grow * np.sqrt(H), what=f"{cfg} dx")
    assert_param_grads(layer, g1, gr, x, dy, init, cfg)


@pytest.mark.parametrize("cfg", ["lstm", "gru", "gru_ra"])
def test_batch1_stateful_two_calls(cfg, dtype, isa, rng):
    """Carried state across calls on the batch-1 path: two calls equal one,
    at 1 and 2 threads alike."""
    layer = make(cfg, F, H, dtype, rng, stateful=True)
    _contract(layer, rng)
    full = make(cfg, F, H, dtype, rng)
    for k in layer.params:
        full.params[k][...] = layer.params[k]
    x = rng.standard_normal((1, 40, F)).astype(dtype)
    for nt in (1, 2):
        with nnc.threads(nt):
            y_full = full.forward(x)
            layer.reset_state()
            y = np.concatenate([layer.forward(x[:, :17]), layer.forward(x[:, 17:])], axis=1)
        np.testing.assert_array_equal(y, y_full)
        st = layer.state
        h_last = st[0] if is_lstm(layer) else st
        np.testing.assert_array_equal(h_last, y_full[:, -1])


@pytest.mark.parametrize("cfg", ["lstm", "gru", "gru_ra"])
@pytest.mark.parametrize("N,T,Hs", [(3, 100, 128), (8, 70, 32)])
def test_long_sequences_in_thread_blocks(cfg, N, T, Hs, dtype, rng):
    """More than one GEMM row block (MC = 264 rows) of input projection per
    thread, inside the kernel's parallel region: unit slices over n*t = 300
    rows (N=3), and row blocks of 4*70 = 280 rows (N=8)."""
    layer = make(cfg, F, Hs, dtype, rng)
    for k in ("W_h",):
        layer.params[k][...] = rng.standard_normal(layer.params[k].shape) * (0.5 / np.sqrt(Hs))
    x = rng.standard_normal((N, T, F)).astype(dtype)
    y1 = _run(layer, x, None, 1, False)
    y2 = _run(layer, x, None, 2, False)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(_run(layer, x[:1], None, 2, False), y1[:1])
    _, yr, _, _, _ = reference(layer, x.astype(np.float64), np.zeros((N, T, Hs)), None)
    assert_close(y2, yr, dtype, scale=max(1.0, T / 10) * np.sqrt(Hs), what=f"{cfg} y")


def test_unit_split_under_a_busy_core(rng):
    """With a busy process on one core the column split meets descheduled
    partners, stalls, a lead finishing alone and one-thread calls (the
    library's stall guard, on here: the suite turns it off); every call
    still gives bitwise the one-thread result."""
    import os
    import subprocess
    import sys
    from nnc import _core
    layer = make("lstm", F, 256, np.float32, rng)
    _contract(layer, rng)
    x = rng.standard_normal((1, 50, F)).astype(np.float32)
    y1 = _run(layer, x, None, 1, False)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    busy = subprocess.Popen([sys.executable, "-c",
                             f"import os\nif hasattr(os, 'sched_setaffinity'): os.sched_setaffinity(0, {{{cpus[-1]}}})\n"
                             "while True: pass"])
    old = nnc.set_stall_threshold(5e-4)
    try:
        for _ in range(60):
            np.testing.assert_array_equal(_run(layer, x, None, 2, False), y1)
        _core.stall_note(True)                  # the guard's one-thread calls: the same bits
        left = _core.stall_solo_calls()
        np.testing.assert_array_equal(_run(layer, x, None, 2, False), y1)
        assert _core.stall_solo_calls() < left, "the call did not take the guard's one-thread path"
    finally:
        nnc.set_stall_threshold(old)
        busy.kill()
        busy.wait()
