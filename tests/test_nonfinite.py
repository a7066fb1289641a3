"""fit's non-finite guard: a NaN/Inf loss or gradient stops the run (or
skips the batch) before the optimiser step, naming epoch, batch and key."""
import numpy as np
import pytest

import nnc
from nnc import optim, training


def _data(n=24, seed=0):
    g = np.random.default_rng(seed)
    return g.standard_normal((n, 4)), g.integers(0, 3, n)


def _model(dtype=np.float64):
    nnc.seed(5)
    return nnc.Sequential([nnc.Dense(4, 6, activation="tanh", dtype=dtype), nnc.Dense(6, 3, dtype=dtype)])


FIT = dict(loss="cross_entropy", batch_size=8, verbose=0, shuffle=False)


def _after_steps(x, y, steps, opt):
    """The model after the first `steps` batches of an epoch (no shuffling)."""
    model = _model()
    model.fit(x[:8 * steps], y[:8 * steps], optimizer=opt, epochs=1, **FIT)
    return model


def _assert_params(a, b):
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k], err_msg=k)


@pytest.mark.parametrize("value,what", [(np.nan, "the loss is nan"),
                                        (np.inf, r"the gradient of params\['0.W'\] is not finite")])
def test_nan_in_the_data_stops_before_the_step(value, what):
    x, y = _data()
    x[17, 2] = value                  # sample 17: batch 3 (from 1); tanh(Inf) is finite, Inf * 0 in dW is not
    model, opt = _model(), optim.Adam(0.01)
    with pytest.raises(FloatingPointError, match=what + r" at epoch 1, batch 3 \(of 3\).*last finite"):
        model.fit(x, y, optimizer=opt, epochs=2, **FIT)
    _assert_params(model, _after_steps(x, y, 2, optim.Adam(0.01)))
    assert opt.steps == {k: 2 for k in model.params}


def test_nan_appearing_in_a_later_epoch():
    x, y = _data()

    class Poison(nnc.Callback):
        def on_epoch_end(self, epoch, logs=None):
            x[0, 0] = np.nan          # fit trains on the caller's array: batch 1 of epoch 2 sees it

    with pytest.raises(FloatingPointError, match="epoch 2, batch 1 "):
        _model().fit(x, y, optimizer=optim.SGD(0.1), epochs=3, callbacks=[Poison()], **FIT)


def _poison_grads(model, key, value, at):
    """Make backward number `at` (from 1) put `value` into grads[key]."""
    backward, calls = model.backward, [0]

    def poisoned(*args, **kwargs):
        out = backward(*args, **kwargs)
        calls[0] += 1
        if calls[0] == at:
            model.grads[key].reshape(-1)[1] = value
        return out

    model.backward = poisoned


@pytest.mark.parametrize("clip", [{}, dict(clip_value=0.5), dict(clip_norm=1.0), dict(clip_value=0.5, clip_norm=1.0)],
                         ids=["none", "value", "norm", "both"])
@pytest.mark.parametrize("value", [np.nan, -np.inf])
def test_nan_in_a_gradient_names_its_key(clip, value):
    x, y = _data()
    model, opt = _model(), optim.SGD(0.1, momentum=0.9)
    _poison_grads(model, "1.W", value, at=5)     # epoch 2, batch 2
    with pytest.raises(FloatingPointError, match=r"gradient of params\['1.W'\] is not finite at epoch 2, batch 2"):
        model.fit(x, y, optimizer=opt, epochs=3, **clip, **FIT)
    ref, ref_opt = _model(), optim.SGD(0.1, momentum=0.9)
    ref.fit(x, y, optimizer=ref_opt, epochs=1, **clip, **FIT)
    ref.fit(x[:8], y[:8], optimizer=ref_opt, epochs=1, **clip, **FIT)
    _assert_params(model, ref)                   # 4 steps, the 5th never happened
    for k in ref_opt.state:
        np.testing.assert_array_equal(opt.state[k][0], ref_opt.state[k][0])


def test_skip_batch_warns_and_trains_on_the_others():
    x, y = _data()
    x[20, 0] = np.nan                 # batch 3 of every epoch
    model = _model()
    with pytest.warns(RuntimeWarning, match="batch 3 .*skipped") as caught:
        h = model.fit(x, y, optimizer=optim.SGD(0.1), epochs=2, on_nonfinite="skip_batch", **FIT)
    assert len([w for w in caught if "skipped" in str(w.message)]) == 2
    ref = _model()
    h_ref = ref.fit(x[:16], y[:16], optimizer=optim.SGD(0.1), epochs=2, **FIT)
    _assert_params(model, ref)
    assert h == h_ref                 # the epoch means over the batches that were stepped

    model = _model()
    _poison_grads(model, "0.b", np.nan, at=2)
    with pytest.warns(RuntimeWarning, match=r"params\['0.b'\].*epoch 1, batch 2 .*skipped"):
        model.fit(x[:16], y[:16], optimizer=optim.SGD(0.1), epochs=1, on_nonfinite="skip_batch", **FIT)
    _assert_params(model, _after_steps(x, y, 1, optim.SGD(0.1)))


def test_finite_gradients_whose_squares_overflow_are_not_flagged():
    x, y = _data()
    model = _model()
    _poison_grads(model, "1.b", 1e200, at=1)     # finite; its square is not (float64)
    model.fit(x, y, optimizer=optim.SGD(1e-300), epochs=1, **FIT)
    assert all(np.isfinite(v).all() for v in model.params.values())


def test_sum_of_squares_matches_numpy(rng):
    grads = [rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal(7), np.zeros(0, np.float32)]
    want = sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads)
    assert training._sumsq(grads) == pytest.approx(want, rel=1e-6)   # float32 sums in float32 blocks
    grads[1][3] = np.inf
    assert training._sumsq(grads) == np.inf
    assert np.isnan(training._sumsq([np.full(2, np.nan, np.float32), np.zeros(3)]))
    odd = [np.ones((4, 4))[:, ::2], np.ones(3, np.float16)]      # non-contiguous, float16: the slow path
    assert training._sumsq(odd) == 11.0 and np.isnan(training._sumsq([np.array([np.nan], np.float16)]))


def test_bad_on_nonfinite():
    with pytest.raises(ValueError, match="on_nonfinite"):
        _model().fit(*_data(), on_nonfinite="ignore", **FIT)


def test_gradient_check_follows_replaced_and_edited_arrays(rng):
    grads = {"a": rng.standard_normal((3, 4)).astype(np.float32), "b": rng.standard_normal(5).astype(np.float32)}
    check = training._GradSumsq()
    want = training._sumsq(grads.values())
    assert check(grads) == want and check(grads) == want
    grads["a"][1, 2] = np.nan                     # an in-place edit: the same views see it
    assert np.isnan(check(grads))
    grads["a"] = np.ones((3, 4), np.float32)      # a replaced array: new views
    assert check(grads) == training._sumsq(grads.values())
    grads["c"] = np.full(2, np.inf)               # another dtype: the per-array path
    assert check(grads) == np.inf
    del grads["c"]
    grads["b"] = np.ones((4, 4), np.float32)[:, ::2]
    assert check(grads) == 20.0
