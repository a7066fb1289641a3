"""GEMM engine (nnc._core.gemm / gemm_pack_b / gemm_packed) vs the float64 reference.

Error bound (forward rounding-error analysis): |c - r| <= 4 (k + 4) u (|alpha| |op(A)| |op(B)| + |beta| |C| + |bias|)
+ tiny, u the unit roundoff of the dtype; smooth activations add a few ulp of the output.
Invariances are bitwise: thread count, packed vs unpacked B, and any subset of rows.
"""
import numpy as np
import pytest

import nnc
from nnc import _core
from nnc.reference import dense as ref

ACTS = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "sign": 4}
UNIT = {np.float32: 2.0 ** -24, np.float64: 2.0 ** -53}
TRANS = [(0, 0), (0, 1), (1, 0), (1, 1)]


def operands(rng, dtype, ta, tb, m, n, k, beta=0.0, bias=False):
    A = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    B = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    # beta == 0 must never read C: NaN there would propagate.
    C = rng.standard_normal((m, n)).astype(dtype) if beta != 0 else np.full((m, n), np.nan, dtype)
    b = rng.standard_normal(n).astype(dtype) if bias else None
    return A, B, C, b


def run(ta, tb, A, B, C, alpha=1.0, beta=0.0, bias=None, act=0, packed=False):
    """The engine's result on a copy of C, through the unpacked or the packed-B path."""
    C = C.copy()
    dtype = C.dtype.type
    m, n = C.shape
    k = A.shape[0] if ta else A.shape[1]
    if packed:
        Bp = np.empty(_core.gemm_packed_b_size(dtype == np.float64, n, k), dtype)
        _core.gemm_pack_b(Bp, tb, n, k, B)
        _core.gemm_packed(ta, A, Bp, k, C, alpha, beta, bias, act)
    else:
        _core.gemm(ta, tb, A, B, C, alpha, beta, bias, act)
    return C


def check(got, ta, tb, A, B, C, alpha=1.0, beta=0.0, bias=None, act="linear", what=""):
    dtype = got.dtype.type
    k = A.shape[0] if ta else A.shape[1]
    z = ref.gemm(A, B, C, alpha, beta, bool(ta), bool(tb), bias)
    mag = abs(alpha) * ref.gemm(np.abs(A), np.abs(B), ta=bool(ta), tb=bool(tb))
    if beta != 0:
        mag = mag + abs(beta) * np.abs(C.astype(np.float64))
    if bias is not None:
        mag = mag + np.abs(bias.astype(np.float64))
    u = UNIT[dtype]
    bound = 4 * (k + 4) * u * mag + 1e-30
    y = ref.act(z, act)
    if act == "sign":
        # Within the rounding bound of z == 0 either side is right.
        sure = np.abs(z) > bound
        np.testing.assert_array_equal(got[sure], y[sure], err_msg=what)
        assert np.isin(got[~sure], [0, 1]).all(), what
        return
    if act in ("sigmoid", "tanh"):
        bound = bound + 8 * u * np.abs(y) + 4 * u  # the function's own error
    err = np.abs(got.astype(np.float64) - y)
    if not (err <= bound).all():
        i = np.unravel_index(np.argmax(err - bound), err.shape)
        raise AssertionError(f"{what}: at {i} got {got[i]!r}, expected {y[i]!r}, |err| {err[i]:.3g} > "
                             f"bound {bound[i]:.3g} (k={k}, {np.dtype(dtype).name})")


def sweep_shapes():
    """Each of m, n, k over 1..70 with the other two small and odd, so every
    remainder of every MR/NR tile and vector width is hit."""
    for d in range(1, 71):
        yield d, 7, 5
        yield 3, d, 9
        yield 5, 6, d


def random_shapes(rng, count):
    # Crossing MC (rows, up to 600: the blocked path), several NR panels and KC slices (k up to 600).
    return [tuple(int(v) for v in (rng.integers(1, 600), rng.integers(1, 140), rng.integers(1, 600)))
            for _ in range(count)]


@pytest.mark.parametrize("ta,tb", TRANS)
def test_sizes_sweep(ta, tb, dtype, isa, rng):
    for m, n, k in sweep_shapes():
        A, B, C, _ = operands(rng, dtype, ta, tb, m, n, k)
        check(run(ta, tb, A, B, C), ta, tb, A, B, C, what=f"{isa} ta={ta} tb={tb} {m}x{n}x{k}")


@pytest.mark.parametrize("ta,tb", TRANS)
def test_random_shapes_alpha_beta_bias(ta, tb, dtype, isa, rng):
    for m, n, k in random_shapes(rng, 12):
        alpha, beta = float(rng.choice([1.0, -0.5, 2.0])), float(rng.choice([0.0, 1.0, 0.75]))
        A, B, C, b = operands(rng, dtype, ta, tb, m, n, k, beta, bias=True)
        check(run(ta, tb, A, B, C, alpha, beta, b), ta, tb, A, B, C, alpha, beta, b,
              what=f"{isa} ta={ta} tb={tb} {m}x{n}x{k} alpha={alpha} beta={beta}")


@pytest.mark.parametrize("k", [127, 128, 129, 255, 256, 257, 383, 384, 385, 511, 512, 513, 1100])
def test_k_slices(k, dtype, isa, rng):
    """k around every plausible KC multiple: the partial-sum epilogue of later slices."""
    for beta in (0.0, 0.5):
        A, B, C, b = operands(rng, dtype, 0, 0, 13, 37, k, beta, bias=True)
        check(run(0, 0, A, B, C, 1.5, beta, b, ACTS["tanh"]), 0, 0, A, B, C, 1.5, beta, b, "tanh",
              what=f"{isa} k={k} beta={beta}")


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_bias_activation_epilogue(act, beta, dtype, isa, rng):
    for m, n, k in [(1, 1, 1), (3, 17, 8), (13, 40, 33), (29, 70, 300)]:
        A, B, C, b = operands(rng, dtype, 0, 1, m, n, k, beta, bias=True)
        check(run(0, 1, A, B, C, 1.0, beta, b, ACTS[act]), 0, 1, A, B, C, 1.0, beta, b, act,
              what=f"{isa} {act} {m}x{n}x{k}")
        check(run(0, 1, A, B, C, 1.0, beta, None, ACTS[act]), 0, 1, A, B, C, 1.0, beta, None, act,
              what=f"{isa} {act} no bias {m}x{n}x{k}")


@pytest.mark.parametrize("act", list(ACTS))
def test_k_zero_and_alpha_zero(act, dtype, isa, rng):
    """An empty product leaves act(beta * C + bias); beta == 0 gives act(bias) without reading C."""
    m, n = 5, 19
    for beta in (0.0, 2.0):
        A, B, C, b = operands(rng, dtype, 0, 0, m, n, 0, beta, bias=True)
        got = run(0, 0, A, B, C, 1.0, beta, b, ACTS[act])
        check(got, 0, 0, A, B, C, 1.0, beta, b, act, what=f"k=0 beta={beta}")
        got = run(0, 0, A, B, C, 1.0, beta, b, ACTS[act], packed=True)
        check(got, 0, 0, A, B, C, 1.0, beta, b, act, what=f"k=0 packed beta={beta}")
        A, B, C, b = operands(rng, dtype, 0, 0, m, n, 7, beta, bias=True)
        check(run(0, 0, A, B, C, 0.0, beta, b, ACTS[act]), 0, 0, A, B, C, 0.0, beta, b, act,
              what=f"alpha=0 beta={beta}")


def test_nan_inf_propagate(dtype, isa):
    A = np.ones((4, 3), dtype)
    B = np.ones((3, 20), dtype)
    A[1, 2], A[2, 0] = np.nan, np.inf
    C = np.zeros((4, 20), dtype)
    for act in ("linear", "relu", "sigmoid", "tanh", "sign"):
        got = run(0, 0, A, B, C, act=ACTS[act])
        assert np.isnan(got[1]).all(), act
        assert np.isfinite(got[[0, 3]]).all(), act
        assert not np.isnan(got[2]).any(), act


@pytest.mark.parametrize("ta,tb", TRANS)
def test_packed_b_bitwise_equal_unpacked(ta, tb, dtype, isa, rng):
    # (40, 64, 64), (100, 96, 30): row-major B small enough to be read in place by the unpacked path.
    shapes = [(1, 1, 1), (1, 70, 33), (4, 100, 257), (37, 45, 8), (2, 129, 600), (40, 64, 64),
              (100, 96, 30)] + random_shapes(rng, 4)
    for m, n, k in shapes:
        A, B, C, b = operands(rng, dtype, ta, tb, m, n, k, 0.5, bias=True)
        for act in (0, ACTS["sigmoid"]):
            want = run(ta, tb, A, B, C, 1.25, 0.5, b, act)
            got = run(ta, tb, A, B, C, 1.25, 0.5, b, act, packed=True)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} {m}x{n}x{k} act={act}")


# Big enough for a thread team (the engine stays serial below ~2 Mflop).
TEAM_SHAPES = [(150, 130, 300), (2, 600, 900), (64, 1030, 40), (300, 33, 257), (1, 2100, 600)]


@pytest.mark.parametrize("ta,tb", TRANS)
def test_threads_bitwise_equal(ta, tb, dtype, isa, rng):
    old = nnc.get_num_threads()
    try:
        for m, n, k in TEAM_SHAPES:
            A, B, C, b = operands(rng, dtype, ta, tb, m, n, k, 1.0, bias=True)
            out = []
            for nt in (1, 2):
                nnc.set_num_threads(nt)
                out.append((run(ta, tb, A, B, C, 1.0, 1.0, b, ACTS["relu"]),
                            run(ta, tb, A, B, C, 1.0, 1.0, b, ACTS["relu"], packed=True)))
            np.testing.assert_array_equal(out[0][0], out[1][0], err_msg=f"{isa} {m}x{n}x{k}")
            np.testing.assert_array_equal(out[0][1], out[1][1], err_msg=f"{isa} packed {m}x{n}x{k}")
            if (ta, tb) == (0, 0):
                check(out[1][0], ta, tb, A, B, C, 1.0, 1.0, b, "relu", what=f"{isa} 2 threads {m}x{n}x{k}")
    finally:
        nnc.set_num_threads(old)


@pytest.mark.parametrize("ta,tb", TRANS)
@pytest.mark.parametrize("packed", [False, True], ids=["unpacked", "packed"])
def test_row_subsets_bitwise_equal(ta, tb, packed, dtype, isa, nthreads, rng):
    """predict() contract: any block of rows, computed alone, equals those rows of the full product
    (blocks of 1-3 rows run kernels over several B panels at once)."""
    # Small-m path (m <= MC) and the blocked path (m > MC) alike: any subset equals the full run.
    # n = 256, 512: whole groups of panels for 1-3 rows, whose A is then read in place.
    for m, n, k in [(70, 45, 300), (200, 300, 64), (130, 1030, 20), (300, 45, 300), (700, 70, 20), (90, 64, 48),
                    (40, 256, 70), (30, 512, 700)]:
        A, B, C, b = operands(rng, dtype, ta, tb, m, n, k, 1.0, bias=True)
        full = run(ta, tb, A, B, C, 1.0, 1.0, b, ACTS["tanh"], packed)
        cuts = sorted({0, m, *(int(c) for c in rng.integers(1, m, 4))})
        blocks = [(r, r + w) for r in (0, m // 2, m - 3) for w in (1, 2, 3)]   # 1-3 rows: the group kernels
        for i0, i1 in list(zip(cuts, cuts[1:])) + blocks:
            As = np.ascontiguousarray(A[:, i0:i1] if ta else A[i0:i1])
            part = run(ta, tb, As, B, C[i0:i1], 1.0, 1.0, b, ACTS["tanh"], packed)
            np.testing.assert_array_equal(part, full[i0:i1], err_msg=f"{isa} rows {i0}:{i1} of {m}x{n}x{k}")


def _threads_and_packing_agree(ta, tb, dtype, isa, rng, shapes):
    """Each product of shapes on 1 and 2 threads, B packed per call and
    prepacked: the reference checks the first, the others are its bits."""
    old = nnc.get_num_threads()
    try:
        for m, n, k in shapes:
            A, B, C, b = operands(rng, dtype, ta, tb, m, n, k, 0.5, bias=True)
            out = []
            for nt in (1, 2):
                nnc.set_num_threads(nt)
                out += [run(ta, tb, A, B, C, 1.0, 0.5, b, ACTS["relu"], packed) for packed in (False, True)]
            check(out[0], ta, tb, A, B, C, 1.0, 0.5, b, "relu", what=f"{isa} {m}x{n}x{k}")
            for o in out[1:]:
                np.testing.assert_array_equal(o, out[0], err_msg=f"{isa} {m}x{n}x{k}")
    finally:
        nnc.set_num_threads(old)


@pytest.mark.parametrize("ta,tb", TRANS)
def test_small_products_split_by_rows_or_panels(ta, tb, dtype, isa, rng):
    """A product of up to MC rows on 2 threads splits B's panels or, when its
    row tiles split more evenly (a few panels, many rows), its rows: both give
    the 1-thread bits; the reference checks the values."""
    _threads_and_packing_agree(ta, tb, dtype, isa, rng,
                               [(100, 96, 200), (96, 96, 96), (200, 96, 128), (150, 40, 33), (64, 128, 64)])


@pytest.mark.parametrize("ta,tb", TRANS)
def test_short_k_products(ta, tb, dtype, isa, rng):
    """Products with k = 1 .. a few (a dense layer's dW at a small batch):
    their tiles run rows outer; reference, packed == unpacked and 1 == 2
    threads, bitwise."""
    _threads_and_packing_agree(ta, tb, dtype, isa, rng,
                               [(40, 1030, 1), (300, 33, 2), (700, 200, 7), (13, 45, 3), (290, 2100, 1)])

# -- the unpacked dot-product path C = act(alpha A B^T + beta C + bias) ----------

def run_nt(A, B, C, alpha=1.0, beta=0.0, bias=None, act=0):
    C = C.copy()
    _core.gemm_nt(A, B, C, alpha, beta, bias, act)
    return C


def test_nt_sizes_sweep(dtype, isa, rng):
    for m, n, k in list(sweep_shapes()) + random_shapes(rng, 6):
        A, B, C, _ = operands(rng, dtype, 0, 1, m, n, k)
        check(run_nt(A, B, C), 0, 1, A, B, C, what=f"{isa} nt {m}x{n}x{k}")


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_nt_epilogue(act, beta, dtype, isa, rng):
    for m, n, k in [(1, 1, 1), (9, 50, 33), (70, 13, 300)]:
        A, B, C, b = operands(rng, dtype, 0, 1, m, n, k, beta=beta, bias=True)
        got = run_nt(A, B, C, 0.75, beta, b, ACTS[act])
        check(got, 0, 1, A, B, C, 0.75, beta, b, act, what=f"{isa} nt {act} beta={beta} {m}x{n}x{k}")


def test_nt_threads_and_row_subsets_bitwise(dtype, isa, rng):
    m, n, k = 300, 130, 517
    A, B, C, b = operands(rng, dtype, 0, 1, m, n, k, bias=True)
    with nnc.threads(1):
        one = run_nt(A, B, C, bias=b, act=3)
    with nnc.threads(2):
        two = run_nt(A, B, C, bias=b, act=3)
    np.testing.assert_array_equal(one, two)
    for lo, hi in [(0, 1), (1, 4), (5, 70), (64, 129), (299, 300)]:
        np.testing.assert_array_equal(run_nt(A[lo:hi], B, C[lo:hi], bias=b, act=3), one[lo:hi])


def test_nt_row_groups_and_partitions_bitwise(dtype, isa, rng):
    """Every row of a dot-product product is the same bits whatever group of
    1-4 rows it falls in (m = 1..9; 2-3 rows left over with a long k run in
    a group of 4 with a row repeated), and whatever the work items are (the
    column chunks and row blocks change with m, n and the thread count)."""
    for n, k in [(789, 50), (216, 37), (7, 70), (130, 5), (789, 300), (100, 160)]:
        A, B, C, b = operands(rng, dtype, 0, 1, 9, n, k, bias=True)
        rows = [run_nt(A[i:i + 1], B, C[i:i + 1], bias=b, act=1) for i in range(9)]
        for m in range(1, 10):
            for nt in (1, 2):
                with nnc.threads(nt):
                    got = run_nt(A[:m], B, C[:m], bias=b, act=1)
                for i in range(m):
                    np.testing.assert_array_equal(got[i:i + 1], rows[i], err_msg=f"{isa} m={m} n={n} k={k} {nt}T")
        check(np.concatenate(rows), 0, 1, A, B, C, 1.0, 0.0, b, "relu", what=f"{isa} nt {n}x{k}")


def test_nt_path_choice_depends_on_n_and_k_only(dtype, isa, rng):
    """gemm_nt runs the packed GEMM for a short k (and B wide enough) and the
    dot products otherwise: shapes on both sides of each bound (4 and 8
    vectors of k, B of 64 KiB, B narrower than a micro-tile) match the
    reference, and each row is the same bits at m = 1..9 and 1 or 2
    threads; on the packed side gemm_nt is bitwise gemm(0, 1, ...)."""
    vlen = {"avx512": 64, "avx2": 32, "scalar": np.dtype(dtype).itemsize}[isa] // np.dtype(dtype).itemsize
    nr = _core.gemm_block_sizes(np.dtype(dtype) == np.float64)[1]
    wide = 65536 // (8 * vlen * np.dtype(dtype).itemsize)     # B columns that fill 64 KiB at k = 8 vectors
    shapes = [(nr, 4 * vlen), (nr - 1, 4 * vlen), (3 * nr + 5, 4 * vlen + 1), (wide, 8 * vlen),
              (wide + 1, 8 * vlen), (nr, 8 * vlen + 1)]
    for n, k in shapes:
        packs = n >= nr and (k <= 4 * vlen or (k <= 8 * vlen and n * k * np.dtype(dtype).itemsize <= 65536))
        A, B, C, b = operands(rng, dtype, 0, 1, 9, n, k, bias=True)
        rows = [run_nt(A[i:i + 1], B, C[i:i + 1], bias=b, act=1) for i in range(9)]
        what = f"{isa} nt {n}x{k} ({'packed' if packs else 'dot'})"
        check(np.concatenate(rows), 0, 1, A, B, C, 1.0, 0.0, b, "relu", what=what)
        for m in (1, 2, 5, 9):
            for nt in (1, 2):
                with nnc.threads(nt):
                    got = run_nt(A[:m], B, C[:m], bias=b, act=1)
                np.testing.assert_array_equal(got, np.concatenate(rows[:m]), err_msg=f"{what} m={m} {nt}T")
        gemm = C.copy()
        _core.gemm(0, 1, A, B, gemm, 1.0, 0.0, b, 1)
        assert np.array_equal(gemm, np.concatenate(rows)) == packs or vlen == 1, what


def _bad_calls(dtype):
    """(description, call) pairs of kernel bindings given arrays that do not
    fit together: each must raise before the C core runs."""
    f = np.dtype(dtype).type
    other = np.float64 if f is np.float32 else np.float32
    A, B, C, b = np.ones((4, 5), f), np.ones((3, 5), f), np.zeros((4, 3), f), np.ones(3, f)
    ro = C.copy()
    ro.flags.writeable = False
    return [
        ("gemm_nt B rows", lambda: _core.gemm_nt(A, np.ones((2, 5), f), C)),
        ("gemm_nt B cols", lambda: _core.gemm_nt(A, np.ones((3, 6), f), C)),
        ("gemm_nt A rows", lambda: _core.gemm_nt(np.ones((5, 5), f), B, C)),
        ("gemm_nt bias", lambda: _core.gemm_nt(A, B, C, 1.0, 0.0, np.ones(4, f))),
        ("gemm_nt dtype", lambda: _core.gemm_nt(A.astype(other), B, C)),
        ("gemm_nt strided", lambda: _core.gemm_nt(np.ones((4, 10), f)[:, ::2], B, C)),
        ("gemm_nt read-only C", lambda: _core.gemm_nt(A, B, ro)),
        ("gemm_nt rank", lambda: _core.gemm_nt(A.ravel(), B, C)),
        ("gemm_nt list", lambda: _core.gemm_nt(A.tolist(), B, C)),
        ("gemm k", lambda: _core.gemm(0, 1, np.ones((4, 6), f), B, C)),
        ("gemm ta", lambda: _core.gemm(1, 1, A, B, C)),
        ("gemm tb", lambda: _core.gemm(0, 0, A, B, C)),
        ("colsum width", lambda: _core.colsum(np.zeros(4, f), C)),
        ("colsum dtype", lambda: _core.colsum(np.zeros(3, other), C)),
        ("act_fwd shape", lambda: _core.act_fwd(C, np.ones((4, 4), f), 1)),
        ("act_fwd overlapping rows", lambda: _core.act_fwd(
            np.lib.stride_tricks.as_strided(C, (4, 3), (4, C.itemsize)), C, 1)),
        ("act_fwd column stride", lambda: _core.act_fwd(np.zeros((4, 6), f)[:, ::2], C, 1)),
        ("act_bwd shape", lambda: _core.act_bwd(C, C, np.ones((3, 3), f), 1)),
        ("act_bwd dtype", lambda: _core.act_bwd(C, C.astype(other), C, 1)),
    ]


def test_bindings_reject_mismatched_arrays(dtype):
    """The kernel bindings check dtype, rank, shapes, layout and
    writability of every array themselves (the C core trusts them)."""
    for what, call in _bad_calls(dtype):
        with pytest.raises((TypeError, ValueError)):
            call()
            pytest.fail(f"{what}: no exception")


@pytest.mark.parametrize("ta,tb", TRANS)
def test_few_columns_transposed_bitwise(ta, tb, dtype, isa, rng):
    """A plain product with few columns and many rows runs as its transpose
    (C^T = op(B)^T op(A)^T): the same bits as the rows computed a few at a
    time the direct way, on 1 and 2 threads, and the reference."""
    for m, n, k in [(200, 4, 300), (130, 16, 77), (64, 1, 9), (97, 7, 600)]:
        A, B, C, _ = operands(rng, dtype, ta, tb, m, n, k)
        with nnc.threads(1):
            full = run(ta, tb, A, B, C, 0.5, 0.0, None, 0, False)
        with nnc.threads(2):
            np.testing.assert_array_equal(run(ta, tb, A, B, C, 0.5, 0.0, None, 0, False), full)
        check(full, ta, tb, A, B, C, 0.5, 0.0, None, "linear", what=f"{isa} {m}x{n}x{k}")
        for lo in range(0, m, 10):
            hi = min(m, lo + 10)
            a = A[:, lo:hi] if ta else A[lo:hi]
            np.testing.assert_array_equal(run(ta, tb, np.ascontiguousarray(a), B, C[lo:hi], 0.5, 0.0, None, 0, False),
                                          full[lo:hi], err_msg=f"{isa} {m}x{n}x{k} rows {lo}:{hi}")
