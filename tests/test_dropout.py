"""Dropout against the NumPy reference (nnc/reference/dropout.py): forward and
backward in both dtypes on every ISA, determinism, statistics, gradients, bad
input, models and saving."""
import math

import numpy as np
import pytest

import nnc
from helpers import numeric_grad
from nnc.reference.dropout import dropout as ref_dropout
from nnc.reference.dropout import keep_mask

SHAPES = [(1, 1), (1, 7), (3, 5, 7), (2, 4, 4, 3), (5, 4097), (1, 16), (1, 17), (33, 31)]
RATES = [0.0, 0.1, 0.5, 0.9]


def _train(layer, x, dy):
    y = layer.forward(x, training=True)
    key = layer._cache[0]
    return y, layer.backward(dy), key


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("rate", RATES)
def test_forward_and_backward_vs_reference(shape, rate, dtype, isa, rng):
    layer = nnc.Dropout(rate, dtype=dtype)
    x = rng.standard_normal(shape).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    y, dx, key = _train(layer, x, dy)
    assert y.dtype == dtype and y.shape == x.shape and dx.shape == x.shape
    # The same element-wise product as the reference: exactly equal.
    np.testing.assert_array_equal(y, ref_dropout(x, key, rate))
    np.testing.assert_array_equal(dx, ref_dropout(dy, key, rate))


def test_mask_is_the_same_for_every_dtype_thread_count_and_isa(rng):
    x = rng.standard_normal((64, 257))
    masks = set()
    for dtype in (np.float32, np.float64):
        for n in (1, 2):
            for isa in [i for i in nnc._core.ISA_NAMES if nnc._core.isa_supported(i)]:
                old = nnc._core.get_isa()
                nnc._core.set_isa(isa)
                try:
                    nnc.seed(7)
                    with nnc.threads(n):
                        y = nnc.Dropout(0.4, dtype=dtype).forward(x.astype(dtype), training=True)
                finally:
                    nnc._core.set_isa(old)
                masks.add((y != 0).tobytes())
    assert len(masks) == 1


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_drop_fraction_matches_the_rate(rate):
    # 10^6 Bernoulli draws: the dropped fraction is within 5 standard deviations.
    n = 10 ** 6
    for key in (0, 1, 2 ** 63 + 12345):
        dropped = 1.0 - keep_mask(n, key, rate).mean()
        assert abs(dropped - rate) < 5 * math.sqrt(rate * (1 - rate) / n), (key, dropped)


def test_reference_mask_is_not_trivially_periodic():
    # Neighbouring elements and consecutive keys are decorrelated.
    m = keep_mask(2 ** 16, 99, 0.5)
    assert 0.45 < np.mean(m[1:] == m[:-1]) < 0.55
    assert 0.45 < np.mean(keep_mask(4096, 5, 0.5) == keep_mask(4096, 6, 0.5)) < 0.55


def test_masks_differ_between_calls_and_seed_reproduces_them(rng):
    x = np.ones((8, 100), np.float32)
    layer = nnc.Dropout(0.5)
    nnc.seed(3)
    a = layer.forward(x, training=True)
    b = layer.forward(x, training=True)
    assert not np.array_equal(a, b)
    nnc.seed(3)
    np.testing.assert_array_equal(layer.forward(x, training=True), a)


def test_values_kept_are_scaled_and_rate_zero_is_identity(rng):
    x = rng.standard_normal((16, 50)).astype(np.float32)
    y = nnc.Dropout(0.2).forward(x, training=True)
    kept = y != 0
    np.testing.assert_array_equal(y[kept], x[kept] * np.float32(1 / 0.8))
    np.testing.assert_array_equal(nnc.Dropout(0.0).forward(x, training=True), x)


def test_inference_returns_the_input_and_does_not_write_to_the_layer(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    layer = nnc.Dropout(0.5)
    before = dict(layer.__dict__)
    y = layer.forward(x)
    assert y is x
    assert layer.__dict__ == before


def test_nan_and_inf_stay_nan_where_dropped():
    x = np.full((4, 1000), np.nan, np.float64)
    x[1] = np.inf
    layer = nnc.Dropout(0.5, dtype=np.float64)
    y = layer.forward(x, training=True)
    assert np.isnan(y[0]).all()
    assert np.isinf(y[1][keep_mask(x.size, layer._cache[0], 0.5).reshape(x.shape)[1]]).all()


def test_finite_differences(rng):
    # L = sum(y * G); the mask is fixed by re-seeding before every forward.
    x = rng.standard_normal((3, 11))
    G = rng.standard_normal(x.shape)
    layer = nnc.Dropout(0.3, dtype=np.float64)

    def loss():
        nnc.seed(11)
        return float(np.sum(layer.forward(x, training=True) * G))

    loss()
    dx = layer.backward(G)
    for idx in [(0, 0), (1, 5), (2, 10), (2, 3)]:
        np.testing.assert_allclose(dx[idx], numeric_grad(loss, x, idx), rtol=1e-6, atol=1e-9)


def test_backward_without_input_grad_and_overwrite(rng):
    layer = nnc.Dropout(0.5)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    layer.forward(x, training=True)
    assert layer.backward(x, input_grad=False) is None
    assert layer.params == {} and layer.grads == {}


@pytest.mark.parametrize("rate, exc", [(1.0, ValueError), (-0.1, ValueError), (float("nan"), ValueError),
                                       (True, TypeError), ("0.5", TypeError), (None, TypeError)])
def test_bad_rate(rate, exc):
    with pytest.raises(exc, match="Dropout.*rate"):
        nnc.Dropout(rate)


def test_bad_input():
    layer = nnc.Dropout(0.5)
    with pytest.raises(RuntimeError, match="Dropout.backward"):
        layer.backward(np.zeros((2, 2), np.float32))
    with pytest.raises(TypeError, match="Dropout"):
        layer.forward(np.zeros((2, 2), np.int32), training=True)
    layer.forward(np.zeros((2, 3), np.float32), training=True)
    with pytest.raises(ValueError, match=r"Dropout.backward: expected grad_y \(2, 3\), got \(3, 2\)"):
        layer.backward(np.zeros((3, 2), np.float32))


def test_config_save_load_and_training_in_a_model(tmp_path, rng):
    layer = nnc.Dropout(0.25, dtype=np.float64)
    assert nnc.Dropout.from_config(layer.get_config()).get_config() == {"rate": 0.25, "dtype": "float64"}
    nnc.seed(0)
    model = nnc.Sequential([nnc.Dense(6, 16), nnc.Dropout(0.5), nnc.Dense(16, 3, activation="softmax")])
    x = rng.standard_normal((64, 6)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    hist = model.fit(x, labels, epochs=3, batch_size=16, loss="sparse_categorical_crossentropy",
                     optimizer=nnc.optim.Adam(lr=0.01), verbose=0)
    assert np.isfinite(hist["loss"]).all()
    model.save(tmp_path / "m.nnc")
    loaded = nnc.load(tmp_path / "m.nnc")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
