"""Pooling (MaxPool2D, AvgPool2D, GlobalAvgPool2D) and Flatten: C core vs the
NumPy reference over the option grid, every ISA, thread counts, ties, NaN,
finite differences, contract and bad input."""
import json

import numpy as np
import pytest

import nnc
from nnc import _core
from nnc.reference import pool as ref
from helpers import assert_close, check_layer_grads

POOLS = [1, 2, 3, (2, 3)]
STRIDES = [None, 1, 2, 3, (1, 2)]
PADS = [0, 1, (1, 0)]


def _pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


GRID = [(k, s, p) for k in POOLS for s in STRIDES for p in PADS
        if all(pp <= kk // 2 for pp, kk in zip(_pair(p), _pair(k)))]
LAYERS = {"max": nnc.MaxPool2D, "avg": nnc.AvgPool2D}


def run_ref(kind, x, dy, k, s, p):
    """Reference forward and backward (float64) of one pooling layer."""
    k, p = _pair(k), _pair(p)
    s = k if s is None else _pair(s)
    if kind == "max":
        y, arg = ref.maxpool_forward(x, k, s, p)
        return y, (None if dy is None else ref.maxpool_backward(dy, arg, x.shape))
    y = ref.avgpool_forward(x, k, s, p)
    return y, (None if dy is None else ref.avgpool_backward(dy, x.shape, k, s, p))


def run(layer, x, dy_seed=0):
    y = layer.forward(x, training=True)
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(layer.dtype)
    return y, dy, layer.backward(dy)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("k, s, p", GRID)
def test_grid_vs_reference(kind, k, s, p, dtype, isa, rng):
    for shape in [(1, 5, 6, 1), (5, 7, 4, 3), (1, 4, 7, 17), (2, 6, 5, 64)]:
        layer = LAYERS[kind](k, s, p, dtype=dtype)
        x = rng.standard_normal(shape).astype(dtype)
        y, dy, dx = run(layer, x)
        yr, dxr = run_ref(kind, x.astype(np.float64), dy.astype(np.float64), k, s, p)
        what = f"{kind} k={k} s={s} p={p} shape={shape}"
        assert y.dtype == dtype and dx.dtype == dtype and dx.shape == shape
        if kind == "max":   # a max is exact
            np.testing.assert_array_equal(y, yr.astype(dtype), err_msg=what)
        else:
            assert_close(y, yr, dtype, what=what + " forward")
        assert_close(dx, dxr, dtype, what=what + " backward")


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("shape, k, s, p", [
    ((1, 64, 64, 64), 3, 1, 1),            # one image: backward split into row bands
    ((5, 64, 38, 67), (2, 3), (1, 2), (1, 0)),
    ((32, 30, 30, 40), 3, 2, 1),
    ((32, 48, 48, 32), 2, None, 0),
])
def test_threads_and_isas_bitwise(kind, shape, k, s, p, dtype, isa, rng):
    """Large enough to run on 2 threads (> 2e6 cell visits, nnc_threads_for):
    bitwise equal to 1 thread, and to the scalar ISA (pooling has no FMA:
    every path rounds the same)."""
    x = rng.standard_normal(shape).astype(dtype)
    results = {}
    for name, isa_name, nt in [("t1", isa, 1), ("t2", isa, 2), ("scalar", "scalar", 1)]:
        _core.set_isa(isa_name)
        with nnc.threads(nt):
            results[name] = run(LAYERS[kind](k, s, p, dtype=dtype), x)
    _core.set_isa(isa)
    for name in ["t2", "scalar"]:
        for a, b in zip(results["t1"], results[name]):
            np.testing.assert_array_equal(a, b, err_msg=f"{kind} {name} vs t1")
    if dtype == np.float64 and shape[0] <= 5:
        y, dy, dx = results["t2"]
        yr, dxr = run_ref(kind, x, dy, k, s, p)
        assert_close(y, yr, dtype, what="forward")
        assert_close(dx, dxr, dtype, what="backward")


def test_first_maximum_wins_ties():
    # equal values: each window's gradient goes to its first cell inside the input
    x = np.ones((1, 4, 4, 3))
    dx = run(nnc.MaxPool2D(2, dtype=np.float64), x)[2]
    mask = np.zeros((4, 4), bool)
    mask[::2, ::2] = True
    assert np.all(dx[0][~mask] == 0) and np.all(dx[0][mask] != 0)
    layer = nnc.MaxPool2D(3, stride=1, padding=1, dtype=np.float64)
    layer.forward(x, training=True)
    dx = layer.backward(np.ones((1, 4, 4, 3)))
    # windows start at rows/cols -1..2; their first inside cell is max(start, 0)
    expected = np.zeros((4, 4))
    for i in range(4):
        for j in range(4):
            expected[max(i - 1, 0), max(j - 1, 0)] += 1
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)
    # a hand-made window [[2, 5], [5, 1]]: the first 5 wins; -0.0 before +0.0
    x = np.array([[[2.0, 0.0], [5.0, -0.0]], [[5.0, 0.0], [1.0, 0.0]]]).reshape(1, 2, 2, 2)
    x[0, 0, 0, 1], x[0, 0, 1, 1] = -0.0, 0.0
    layer = nnc.MaxPool2D(2, dtype=np.float64)
    y = layer.forward(x, training=True)
    assert y[0, 0, 0, 0] == 5.0 and np.signbit(y[0, 0, 0, 1])
    dx = layer.backward(np.array([[[[3.0, 4.0]]]]))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 3], [0, 0]])
    np.testing.assert_array_equal(dx[0, :, :, 1], [[4, 0], [0, 0]])
    _, arg = ref.maxpool_forward(x, (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(ref.maxpool_backward(np.array([[[[3.0, 4.0]]]]), arg, x.shape), dx)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_nan_and_inf_propagate(kind, dtype, isa, rng):
    # 67 channels: NaN in a block of slices kept in registers together (3, 40),
    # in a single slice and in the partial last slice (66)
    x = rng.standard_normal((2, 6, 6, 67)).astype(dtype)
    x[0, 1, 1, 3] = np.nan
    x[0, 1, 2, 3] = np.nan
    x[1, 3, 3, 40] = np.nan
    x[0, 5, 0, 66] = np.nan
    x[1, 4, 5, 18] = np.inf
    x[1, 0, 0, 0] = -np.inf
    layer = LAYERS[kind](3, 2, 1, dtype=dtype)
    y, dy, dx = run(layer, x)
    yr, dxr = run_ref(kind, x.astype(np.float64), dy.astype(np.float64), 3, 2, 1)
    assert np.isnan(y[0, :2, :2, 3]).all() and np.isnan(y[1, 1:, 1:, 40]).all() and np.isnan(y[0, 2:, 0, 66]).all()
    assert np.isnan(y).sum() == np.isnan(yr).sum() == 9
    assert y[1, 2, 2, 18] == np.inf
    if kind == "max":
        np.testing.assert_array_equal(y, yr.astype(dtype))
        assert y[1, 0, 0, 0] != -np.inf       # -inf never wins over a finite cell
        # the gradient of a NaN window goes to its first NaN, nowhere else in it
        assert dx[0, 1, 1, 3] != 0 and dx[0, 1, 2, 3] == 0
    assert_close(dx, dxr, dtype)


def test_padding_never_wins_and_is_not_counted(dtype):
    x = -np.arange(1, 1 + 5 * 5, dtype=dtype).reshape(1, 5, 5, 1)
    y = nnc.MaxPool2D(3, stride=2, padding=1, dtype=dtype)(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[-1, -2, -4], [-6, -7, -9], [-16, -17, -19]])
    y = nnc.AvgPool2D(3, stride=1, padding=1, dtype=dtype)(np.ones((2, 4, 5, 3), dtype))
    np.testing.assert_array_equal(y, np.ones((2, 4, 5, 3)))
    y = nnc.AvgPool2D((2, 3), stride=(1, 2), padding=(1, 1), dtype=dtype)(x)
    assert y[0, 0, 0, 0] == dtype(-1.5)          # the cells 1, 2 only


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("k, s, p", [(2, None, 0), (3, 1, 1), ((2, 3), (1, 2), (1, 0)), (3, 2, 1), (2, 3, 1)])
def test_finite_differences(kind, k, s, p, rng):
    shape = (2, 5, 6, 3)
    # distinct values 0.01 apart: no ties within eps of each other
    x = rng.permutation(np.prod(shape)).reshape(shape) * 0.01
    check_layer_grads(LAYERS[kind](k, s, p, dtype=np.float64), x, rng, n_coords=20)


def test_global_avg_pool(dtype, isa, rng):
    for shape in [(1, 1, 1, 1), (3, 5, 4, 17), (2, 7, 9, 64)]:
        layer = nnc.GlobalAvgPool2D(dtype=dtype)
        x = rng.standard_normal(shape).astype(dtype)
        y, dy, dx = run(layer, x)
        assert y.shape == (shape[0], shape[3]) and dx.shape == shape
        assert_close(y, ref.global_avgpool_forward(x), dtype, scale=np.sqrt(shape[1] * shape[2]))
        assert_close(dx, ref.global_avgpool_backward(dy, shape), dtype)
    check_layer_grads(nnc.GlobalAvgPool2D(dtype=np.float64), rng.standard_normal((2, 3, 4, 5)), rng)
    with nnc.threads(1):
        y1 = run(nnc.GlobalAvgPool2D(dtype=dtype), x)
    with nnc.threads(2):
        y2 = run(nnc.GlobalAvgPool2D(dtype=dtype), x)
    for a, b in zip(y1, y2):
        np.testing.assert_array_equal(a, b)


def test_flatten(dtype, rng):
    layer = nnc.Flatten(dtype=dtype)
    x = rng.standard_normal((3, 2, 4, 5))
    y = layer.forward(x, training=True)
    assert y.shape == (3, 40) and y.dtype == dtype
    np.testing.assert_array_equal(y, x.astype(dtype).reshape(3, 40))
    g = rng.standard_normal((3, 40))
    np.testing.assert_array_equal(layer.backward(g), g.astype(dtype).reshape(x.shape))
    assert nnc.Flatten()(np.zeros(4, np.float32)).shape == (4, 1)
    y = layer.forward(np.zeros((0, 3, 2), dtype), training=True)
    assert y.shape == (0, 6) and layer.backward(np.zeros((0, 6))).shape == (0, 3, 2)
    check_layer_grads(nnc.Flatten(dtype=np.float64), rng.standard_normal((2, 3, 4)), rng)
    with pytest.raises(ValueError, match=r"Flatten: expected input \(N, \.\.\.\), got \(\)"):
        layer(np.float64(1.0))
    layer.forward(x, training=True)
    with pytest.raises(ValueError, match=r"Flatten.backward: expected grad_y \(3, 40\), got \(3, 39\)"):
        layer.backward(np.zeros((3, 39)))
    with pytest.raises(TypeError, match="Flatten"):
        layer(np.zeros((2, 3), np.int32))


@pytest.mark.parametrize("make", [lambda d: nnc.MaxPool2D(3, 2, 1, dtype=d), lambda d: nnc.AvgPool2D(2, dtype=d),
                                  lambda d: nnc.GlobalAvgPool2D(dtype=d)])
def test_empty_batch_and_channels(make, dtype):
    for shape in [(0, 6, 6, 4), (2, 6, 6, 0)]:
        layer = make(dtype)
        y = layer.forward(np.zeros(shape, dtype), training=True)
        assert y.size == 0 and y.shape[0] == shape[0] and y.shape[-1] == shape[-1]
        dx = layer.backward(np.zeros(y.shape))
        assert dx.shape == shape and dx.dtype == dtype


def test_inference_does_not_write_to_the_layer(rng):
    layer = nnc.MaxPool2D(2, stride=1)
    x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    layer.forward(x, training=True)
    dx = layer.backward(np.ones((2, 4, 4, 3)))
    before = dict(vars(layer))
    idx = layer._idx.copy()
    layer.forward(rng.standard_normal((2, 5, 5, 3)), training=False)
    layer.forward(rng.standard_normal((3, 7, 7, 3)), training=False)
    assert vars(layer) == before and all(vars(layer)[k] is v for k, v in before.items())
    np.testing.assert_array_equal(layer._idx, idx)
    np.testing.assert_array_equal(layer.backward(np.ones((2, 4, 4, 3))), dx)   # backward twice: same
    for fresh in [nnc.MaxPool2D(2), nnc.AvgPool2D(2), nnc.GlobalAvgPool2D(), nnc.Flatten()]:
        before = dict(vars(fresh))
        fresh(x)
        assert vars(fresh) == before


def test_training_buffer_reuse_keeps_results(rng):
    layer = nnc.MaxPool2D(3, stride=2, dtype=np.float64)
    xs = [rng.standard_normal((2, 7, 7, 5)) for _ in range(2)]
    ys = []
    for x in xs + [rng.standard_normal((1, 9, 9, 5))] + xs:
        y, dy, dx = run(layer, x)
        yr, dxr = run_ref("max", x, dy, 3, 2, 0)
        np.testing.assert_array_equal(y, yr)
        assert_close(dx, dxr, np.float64)
        ys.append(y)
    np.testing.assert_array_equal(ys[0], ys[3])


def test_input_layouts_are_accepted_and_never_written(rng):
    layer = nnc.MaxPool2D(2, dtype=np.float64)
    base = rng.standard_normal((2, 4, 6, 3))
    expected = layer(base)
    readonly = base.copy()
    readonly.flags.writeable = False
    for x in [np.asfortranarray(base), np.repeat(base, 2, axis=2)[:, :, ::2], readonly, base.astype(">f8"),
              base.tolist()]:
        before = np.array(x, copy=True)
        np.testing.assert_array_equal(layer(x), expected)
        np.testing.assert_array_equal(np.asarray(x), before)
    assert nnc.AvgPool2D(2)(base).dtype == np.float32


def test_config_round_trip():
    for layer in [nnc.MaxPool2D((2, 3), stride=(1, 2), padding=(1, 0), dtype=np.float64),
                  nnc.AvgPool2D(3, padding=1), nnc.GlobalAvgPool2D(), nnc.Flatten(dtype=np.float64)]:
        cfg = json.loads(json.dumps(layer.get_config()))
        clone = type(layer).from_config(cfg)
        assert clone.get_config() == layer.get_config() and clone.dtype == layer.dtype
    layer = nnc.MaxPool2D(3)
    assert layer.stride == (3, 3) and layer.padding == (0, 0) and layer.params == {} == layer.grads


@pytest.mark.parametrize("args, exc, pattern", [
    ((0,), ValueError, "MaxPool2D.*pool_size"),
    ((2.5,), TypeError, "MaxPool2D.*pool_size"),
    ((True,), TypeError, "MaxPool2D.*pool_size"),
    (((1, 2, 3),), ValueError, "MaxPool2D.*pool_size"),
    ((2, 0), ValueError, "MaxPool2D.*stride"),
    ((2, 1, -1), ValueError, "MaxPool2D.*padding"),
    ((2, 1, 2), ValueError, r"MaxPool2D: padding must be at most pool_size // 2"),
    ((3, 1, (1, 2)), ValueError, r"padding.*\(1, 2\).*pool_size.*\(3, 3\)"),
    ((1, 1, 1), ValueError, "padding"),
    ((5000,), ValueError, "MaxPool2D.*16777216"),
])
def test_bad_construction(args, exc, pattern):
    with pytest.raises(exc, match=pattern):
        nnc.MaxPool2D(*args)


@pytest.mark.parametrize("layer", [nnc.MaxPool2D(2), nnc.AvgPool2D(2), nnc.GlobalAvgPool2D()],
                         ids=["max", "avg", "global"])
def test_bad_input(layer):
    name = layer.name
    with pytest.raises(ValueError, match=rf"{name}: expected input \(N, H, W, C\).*, got \(32, 32, 3\)"):
        layer(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=rf"{name}.*\(1, 0, 4, 2\)"):
        layer(np.zeros((1, 0, 4, 2), np.float32))
    for bad in [np.zeros((1, 4, 4, 1), np.int64), np.zeros((1, 4, 4, 1), bool), np.zeros((1, 4, 4, 1), complex),
                None, "x"]:
        with pytest.raises(TypeError, match=name):
            layer(bad)
    with pytest.raises(RuntimeError, match=rf"{name}.backward"):
        layer.backward(np.zeros((1, 2, 2, 1)))
    layer(np.zeros((1, 4, 4, 1)))                      # inference only: still no training cache
    with pytest.raises(RuntimeError, match=rf"{name}.backward"):
        layer.backward(np.zeros((1, 2, 2, 1)))
    y = layer.forward(np.zeros((1, 4, 4, 1)), training=True)
    wrong = y.shape[:-1] + (2,)
    with pytest.raises(ValueError, match=rf"{name}.backward: expected grad_y \({', '.join(map(str, y.shape))}\)"):
        layer.backward(np.zeros(wrong))


def test_output_smaller_than_one():
    with pytest.raises(ValueError, match=r"MaxPool2D: pool_size \(5, 5\).*output size \(0, 0\).*\(1, 3, 3, 2\)"):
        nnc.MaxPool2D(5)(np.zeros((1, 3, 3, 2), np.float32))
    with pytest.raises(ValueError, match=r"AvgPool2D.*output size \(1, 0\).*\(2, 4, 2, 1\)"):
        nnc.AvgPool2D((4, 3), stride=1)(np.zeros((2, 4, 2, 1)))
    assert nnc.MaxPool2D(3, padding=1)(np.zeros((1, 1, 1, 1))).shape == (1, 1, 1, 1)


def test_c_core_rejects_inconsistent_problems():
    """The C core checks the problem again (a caller bypassing the layer)."""
    x = np.zeros((1, 4, 4, 2), np.float32)
    for y, window in [(np.zeros((1, 3, 2, 2), np.float32), (2, 2, 2, 2, 0, 0)),   # wrong output size
                      (np.zeros((1, 2, 2, 2), np.float32), (2, 2, 2, 2, 2, 0)),   # padding > k // 2
                      (np.zeros((1, 2, 2, 2), np.float32), (2, 2, 0, 2, 0, 0))]:  # stride 0
        with pytest.raises(RuntimeError, match="rejected"):
            _core.maxpool2d_fwd(y, x, window)
        with pytest.raises(RuntimeError, match="rejected"):
            _core.avgpool2d_bwd(x.copy(), y, window)


def test_bindings_reject_inconsistent_shapes():
    """Batch, channel and idx shapes are checked before any C call."""
    x, y = np.zeros((2, 4, 4, 3), np.float32), np.zeros((2, 2, 2, 3), np.float32)
    w = (2, 2, 2, 2, 0, 0)
    for bad_y in [np.zeros((1, 2, 2, 3), np.float32), np.zeros((2, 2, 2, 4), np.float32)]:
        for call in [lambda: _core.maxpool2d_fwd(bad_y, x, w), lambda: _core.avgpool2d_fwd(bad_y, x, w),
                     lambda: _core.avgpool2d_bwd(x.copy(), bad_y, w),
                     lambda: _core.maxpool2d_bwd(x.copy(), bad_y, bad_y, w)]:
            with pytest.raises(ValueError, match="inconsistent shapes"):
                call()
    small_idx = np.zeros((2, 1, 2, 3), np.float32)
    with pytest.raises(ValueError, match="idx"):
        _core.maxpool2d_fwd(y, x, w, small_idx)
    with pytest.raises(ValueError, match="idx"):
        _core.maxpool2d_bwd(x.copy(), y, small_idx, w)
