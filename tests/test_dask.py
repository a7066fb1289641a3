"""nnc.dask.predict: lazy chunked inference on Dask's threads and on a
distributed LocalCluster (worker processes, one killed mid-run), bitwise
equal to local predict; the model in the graph once; bad input."""
import os
import signal
import time

import numpy as np
import pytest

import nnc

da = pytest.importorskip("dask.array", reason="nnc.dask needs the dask extra (pip install 'nnc[dask]')")
import dask  # noqa: E402
import dask.core  # noqa: E402

import nnc.dask  # noqa: E402


def _sequence_model():
    nnc.seed(2)
    return nnc.Sequential([nnc.Embedding(30, 8), nnc.Bidirectional(nnc.GRU(8, 16, reset_after=True,
                                                                          return_sequences=False)),
                           nnc.Dense(32, 3, activation="softmax")])


def test_threaded_scheduler_bitwise_equal_to_local(rng):
    model = _sequence_model()
    ids = rng.integers(0, 30, (300, 12))
    lengths = rng.integers(1, 13, 300)
    x = da.from_array(ids, chunks=(70, 5))     # split along T too: joined per chunk
    y = nnc.dask.predict(model, x, batch_size=32, lengths=da.from_array(lengths, chunks=100))
    assert y.chunks == ((70, 70, 70, 70, 20), (3,)) and y.dtype == np.float32
    with dask.config.set(scheduler="threads"):
        got = y.compute()
    np.testing.assert_array_equal(got, model.predict(ids, lengths=lengths))
    # lengths as a NumPy array too
    with dask.config.set(scheduler="threads"):
        np.testing.assert_array_equal(nnc.dask.predict(model, x, lengths=lengths).compute(), got)


def test_the_model_is_one_task_of_the_graph(rng):
    model = nnc.Sequential([nnc.Dense(6, 4)])
    y = nnc.dask.predict(model, da.ones((50, 6), chunks=10, dtype=np.float32))
    graph = dict(y.__dask_graph__())
    holders = [k for k in graph if str(k).startswith("nnc-model-")]
    assert len(holders) == 1
    runs = [k for k in graph if not isinstance(k, str) and str(k[0]).startswith("nnc-predict-")]
    assert len(runs) == 5 and len(graph) == 11   # x's 5 chunks, the model, one task per chunk


def test_the_model_is_shipped_without_its_gradients(rng):
    """The graph's model node pickles to about the parameters' bytes (no
    gradients, which a trained model would carry), loads as a model that
    predicts bitwise the same and can still train."""
    import pickle
    model = nnc.Sequential([nnc.Dense(64, 128, activation="relu"), nnc.Dense(128, 4)])
    x = rng.standard_normal((16, 64)).astype(np.float32)
    model.forward(x, training=True)
    model.backward(np.ones((16, 4), np.float32))
    y = nnc.dask.predict(model, da.from_array(x, chunks=8))
    (node,) = [v for k, v in dict(y.__dask_graph__()).items() if str(k).startswith("nnc-model-")]
    node = getattr(node, "value", node)      # a literal task wraps its object in newer Dask
    param_bytes = sum(p.nbytes for p in model.params.values())
    shipped = pickle.dumps(node)
    assert param_bytes < len(shipped) < param_bytes + 16384 < len(pickle.dumps(model))
    clone = pickle.loads(shipped).model
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))
    for k, g in clone.grads.items():
        assert g.shape == model.grads[k].shape and g.dtype == model.grads[k].dtype and not g.any(), k
    assert any(g.any() for g in model.grads.values())   # the original keeps its gradients
    clone.forward(x, training=True)
    clone.backward(np.ones((16, 4), np.float32))
    for k in model.grads:
        np.testing.assert_array_equal(clone.grads[k], model.grads[k], err_msg=k)


def test_bad_input(rng):
    model = nnc.Sequential([nnc.Dense(6, 4)])
    with pytest.raises(TypeError, match=r"nnc.dask.predict: expected x as a dask.array.Array .*got numpy.ndarray"):
        nnc.dask.predict(model, np.ones((4, 6), np.float32))
    with pytest.raises(TypeError, match="nnc.dask.predict: expected an nnc model, got str"):
        nnc.dask.predict("model", da.ones((4, 6), chunks=2))
    seq = _sequence_model()
    x = da.zeros((10, 5), chunks=5, dtype=np.int64)
    with pytest.raises(ValueError, match=r"nnc.dask.predict: expected integer lengths of shape \(10,\)"):
        nnc.dask.predict(seq, x, lengths=np.ones(9, np.int64))
    with pytest.raises(ValueError, match=r"nnc.dask.predict: expected integer lengths"):
        nnc.dask.predict(seq, x, lengths=np.ones(10))
    with pytest.raises(ValueError, match=r"Sequential: expected|Dense: expected"):
        nnc.dask.predict(model, da.ones((4, 7), chunks=2, dtype=np.float32))


@pytest.fixture
def environ_restored():
    """os.environ as it was after the test: a LocalCluster sets
    OMP_NUM_THREADS=1 and more in this process's environment for its workers,
    which later subprocesses of the suite would inherit."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_local_cluster_survives_a_killed_worker(environ_restored):
    """Two worker processes; once chunks are done, one worker is killed (the
    chunks it computed or held are lost): Dask reruns their tasks and the
    result is still bitwise local predict's."""
    distributed = pytest.importorskip("distributed", reason="the distributed scheduler (nnc[dask])")
    nnc.seed(3)
    model = nnc.Sequential([nnc.Dense(256, 256, activation="relu"), nnc.Dense(256, 16)])
    n = 160_000     # 164 MB of float32 input, in 40 chunks
    x = da.random.default_rng(0).standard_normal((n, 256), chunks=(4_000, 256), dtype=np.float32)
    y = nnc.dask.predict(model, x)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        held = client.persist(y)
        chunks = set(dask.core.flatten(held.__dask_keys__()))
        deadline = time.monotonic() + 60
        while True:
            has_what = client.has_what()
            if sum(len(chunks & set(keys)) for keys in has_what.values()) >= 3:
                break
            assert time.monotonic() < deadline, "no chunk finished within 60 s"
            time.sleep(0.02)
        victim = max(has_what, key=lambda w: len(chunks & set(has_what[w])))
        os.kill(client.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)
        result = client.compute(held).result(timeout=120)
        assert victim not in client.scheduler_info()["workers"]
    np.testing.assert_array_equal(result, model.predict(x.compute(scheduler="sync")))
