"""Embedding against the NumPy reference (nnc/reference/embedding.py) and
PyTorch: lookup and gradient in both dtypes on every ISA, determinism with
repeated ids, finite differences, bad ids, models and saving."""
import numpy as np
import pytest

import nnc
from helpers import numeric_grad
from nnc.reference.embedding import embedding as ref_embedding
from nnc.reference.embedding import embedding_grad as ref_embedding_grad

# (num_embeddings, dim, ids shape)
CASES = [(1, 1, (1,)), (5, 3, (2, 7)), (50, 17, (4, 9)), (7, 64, (3, 2, 5)), (1000, 8, (300,)), (3, 5, (0, 4))]


@pytest.mark.parametrize("v, d, shape", CASES)
def test_forward_and_backward_vs_reference(v, d, shape, dtype, isa, rng):
    layer = nnc.Embedding(v, d, dtype=dtype)
    ids = rng.integers(0, v, shape)
    dy = rng.standard_normal(shape + (d,)).astype(dtype)
    y = layer.forward(ids, training=True)
    assert y.dtype == dtype and y.shape == shape + (d,)
    np.testing.assert_array_equal(y, ref_embedding(layer.params["W"], ids))
    assert layer.backward(dy) is None
    # Sums in the order the ids occur, as the reference's np.add.at: exactly equal.
    np.testing.assert_array_equal(layer.grads["W"], ref_embedding_grad(dy, ids, v))


@pytest.mark.parametrize("dtype_ids", [np.int8, np.uint8, np.int32, np.uint64, np.int64])
def test_every_integer_id_dtype(dtype_ids, rng):
    layer = nnc.Embedding(100, 4)
    ids = rng.integers(0, 100, (3, 5)).astype(dtype_ids)
    np.testing.assert_array_equal(layer.forward(ids), layer.params["W"][ids.astype(np.int64)])


def test_repeated_ids_are_bitwise_the_same_for_any_thread_count(rng):
    # Few distinct ids, many repeats, big enough to run on several threads.
    v, d = 300, 96
    ids = rng.integers(0, 20, (64, 200))
    ids[:, ::7] = 299
    dy = rng.standard_normal(ids.shape + (d,)).astype(np.float32)
    grads = []
    for n in (1, 2, 3):
        with nnc.threads(n):
            layer = nnc.Embedding(v, d)
            layer.forward(ids, training=True)
            layer.backward(dy)
            grads.append(layer.grads["W"].copy())
    for g in grads[1:]:
        assert g.tobytes() == grads[0].tobytes()
    np.testing.assert_array_equal(grads[0], ref_embedding_grad(dy, ids, v))


def test_backward_matches_torch(dtype, rng):
    torch = pytest.importorskip("torch", reason="PyTorch cross-check")
    v, d = 40, 12
    ids = rng.integers(0, v, (6, 25))
    layer = nnc.Embedding(v, d, dtype=dtype)
    dy = rng.standard_normal(ids.shape + (d,)).astype(dtype)
    layer.forward(ids, training=True)
    layer.backward(dy)
    w = torch.tensor(layer.params["W"], requires_grad=True)
    out = torch.nn.functional.embedding(torch.tensor(ids), w)
    out.backward(torch.tensor(dy))
    np.testing.assert_array_equal(layer.forward(ids), out.detach().numpy())
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(layer.grads["W"], w.grad.numpy(), rtol=rtol, atol=rtol)


def test_finite_differences(rng):
    layer = nnc.Embedding(9, 5, dtype=np.float64)
    ids = np.array([[0, 3, 3, 8], [3, 1, 0, 3]])
    G = rng.standard_normal(ids.shape + (5,))
    layer.forward(ids, training=True)
    layer.backward(G)
    W = layer.params["W"]

    def loss():
        return float(np.sum(layer.forward(ids) * G))

    for idx in [(3, 0), (3, 4), (0, 2), (8, 1), (1, 3), (5, 2)]:
        np.testing.assert_allclose(layer.grads["W"][idx], numeric_grad(loss, W, idx), rtol=1e-7, atol=1e-9)
    assert not layer.grads["W"][[2, 4, 5, 6, 7]].any()


@pytest.mark.parametrize("bad", [-1, 10, 2 ** 40, -2 ** 62])
def test_out_of_range_ids_raise_before_any_write(bad, rng):
    layer = nnc.Embedding(10, 3, dtype=np.float64)
    ids = rng.integers(0, 10, (2, 6))
    layer.forward(ids, training=True)
    layer.backward(np.ones((2, 6, 3)))
    before = (layer.params["W"].copy(), layer.grads["W"].copy(), layer._cache)
    ids[1, 4] = bad
    with pytest.raises(ValueError, match=rf"Embedding: expected ids in \[0, 10\), got id {bad}"):
        layer.forward(ids, training=True)
    assert layer._cache is before[2]
    np.testing.assert_array_equal(layer.params["W"], before[0])
    np.testing.assert_array_equal(layer.grads["W"], before[1])


def test_the_kernels_reject_bad_ids_themselves():
    table = np.ones((4, 3), np.float32)
    y = np.zeros((2, 3), np.float32)
    for bad in (-1, 4):
        ids = np.array([1, bad], np.int64)
        with pytest.raises(Exception):
            nnc._core.embedding_fwd(y, table, ids)
        assert not y.any()
        dt = np.full_like(table, 7)
        work = np.empty(nnc._core.embedding_bwd_workspace_size(2, 4), np.uint8)
        with pytest.raises(Exception):
            nnc._core.embedding_bwd(dt, y, ids, work)
        assert (dt == 7).all()


def test_bad_input():
    layer = nnc.Embedding(10, 3)
    with pytest.raises(TypeError, match="Embedding: expected integer ids, got dtype float32"):
        layer.forward(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="Embedding: expected integer ids, got dtype bool"):
        layer.forward(np.zeros((2, 3), bool))
    with pytest.raises(RuntimeError, match="Embedding.backward"):
        layer.backward(np.zeros((2, 3, 3), np.float32))
    layer.forward(np.zeros((2, 3), np.int64), training=True)
    with pytest.raises(ValueError, match=r"Embedding.backward: expected grad_y \(2, 3, 3\), got \(2, 3\)"):
        layer.backward(np.zeros((2, 3), np.float32))
    for args, exc in [((0, 3), ValueError), ((3, 0), ValueError), ((2.5, 3), TypeError), ((3, True), TypeError)]:
        with pytest.raises(exc, match="Embedding"):
            nnc.Embedding(*args)


def test_config_save_load_and_training_in_a_model(tmp_path, rng):
    layer = nnc.Embedding(7, 2, dtype=np.float64)
    assert nnc.Embedding.from_config(layer.get_config()).get_config() == {"num_embeddings": 7, "dim": 2,
                                                                         "dtype": "float64"}
    nnc.seed(0)
    model = nnc.Sequential([nnc.Embedding(20, 8), nnc.Flatten(), nnc.Dense(8 * 5, 2, activation="softmax")])
    ids = rng.integers(0, 20, (128, 5))
    labels = (ids[:, 0] >= 10).astype(np.int64)
    hist = model.fit(ids, labels, epochs=15, batch_size=32, loss="sparse_categorical_crossentropy",
                     optimizer=nnc.optim.Adam(lr=0.05), verbose=0)
    assert hist["accuracy"][-1] > 0.9
    model.save(tmp_path / "m.nnc")
    loaded = nnc.load(tmp_path / "m.nnc")
    np.testing.assert_array_equal(loaded.predict(ids), model.predict(ids))
    np.testing.assert_array_equal(model.predict(ids, batch_size=7), model.predict(ids))
