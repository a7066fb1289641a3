"""Process-wide settings: thread count, random seed, ISA report, memory
cache, fork safety.

The thread count lives in the C core (a global applied with num_threads(...)
on every parallel region), so it reaches every Python thread.  Default:
NNC_NUM_THREADS, else OMP_NUM_THREADS, else the CPUs this process may use.
"""
import contextlib
import os
import sys

import numpy as np

from . import _core
from ._version import __version__

if _core.init_status() != 0:
    if os.environ.get("NNC_CPU") and os.environ["NNC_CPU"] not in _core.cpu_rows():
        raise ImportError(f"nnc: NNC_CPU={os.environ['NNC_CPU']!r} is not a CPU row; "
                          f"use one of {list(_core.cpu_rows())}")
    raise ImportError(
        f"nnc: NNC_ISA={os.environ.get('NNC_ISA')!r} is not a supported ISA on this CPU; "
        f"use one of {[n for n in _core.ISA_NAMES if _core.isa_supported(n)]}")


def _default_threads():
    for var in ("NNC_NUM_THREADS", "OMP_NUM_THREADS"):
        val = os.environ.get(var, "").split(",")[0].strip()
        if val.isdigit() and int(val) > 0:
            return int(val)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_num_threads(n):
    """Set the number of OpenMP threads every nnc kernel may use.

    The setting is process-wide: it reaches kernels called from every Python
    thread (it is not ``omp_set_num_threads``, which acts on the calling OS
    thread only).  Small problems still run on one thread.  Results do not
    depend on it by a single bit.

    Parameters
    ----------
    n : int
        Number of threads, ``>= 1``.  The default at import is
        ``NNC_NUM_THREADS``, else ``OMP_NUM_THREADS``, else the number of CPUs
        this process may run on.

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    _core.set_num_threads(int(n))


def get_num_threads():
    """The number of threads nnc kernels use (see :func:`set_num_threads`).

    Code running under an OpenMP thread limit in its own OS thread
    (``threadpoolctl.threadpool_limits``, ``omp_set_num_threads``) runs the
    kernels on at most that many.

    Returns
    -------
    int
    """
    return _core.get_num_threads()


@contextlib.contextmanager
def threads(n):
    """Context manager: run the block with ``n`` nnc threads, then restore
    the previous count.

    The count is process-wide (see :func:`set_num_threads`), so it also
    applies to other Python threads while the block runs.

    Examples
    --------
    >>> import nnc
    >>> with nnc.threads(1):
    ...     pass   # every nnc kernel here runs on one thread
    """
    old = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(old)


def set_stall_threshold(seconds):
    """Set the threshold of the stall guard (default 0.5 ms; 0 turns it off).

    When a thread of a convolution's (or a recurrent layer's batch blocks')
    parallel region starts its share this late, or the first thread waits at
    the end longer than this and longer than its own share took (a batch-1
    recurrent layer: a thread waits this long for a slice its partner holds,
    or at the end), a thread was descheduled (another process is busy on its
    core); the next calls then run on one thread (2, 4, ... 256 calls while
    the stalls go on) instead of waiting a scheduler time slice each.
    Results do not change by a bit.

    Parameters
    ----------
    seconds : float
        Threshold in seconds, ``>= 0``.

    Returns
    -------
    float
        The previous threshold in seconds.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.integer, np.floating)) \
            or not seconds >= 0 or seconds > 1e9:
        raise ValueError(f"set_stall_threshold: expected seconds >= 0, got {seconds!r}")
    return _core.stall_threshold_ns(round(seconds * 1e9)) / 1e9


def set_memory_cache_limit(nbytes):
    """Bound the bytes of freed arrays nnc keeps resident for reuse.

    Parameters
    ----------
    nbytes : int
        The limit in bytes (default 512 MiB); 0 turns the cache off and
        empties it.

    Returns
    -------
    int
        The previous limit in bytes.
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 0:
        raise ValueError(f"set_memory_cache_limit: expected a non-negative integer, got {nbytes!r}")
    return _core.set_cache_limit(min(int(nbytes), 2**63 - 1))


def clear_memory_cache():
    """Give every block held by nnc's memory cache back to the system.

    Arrays still in use are not affected; the cache refills as layers
    allocate again (see :func:`set_memory_cache_limit`).
    """
    _core.clear_cache()


_rng = np.random.default_rng()


def seed(s):
    """Seed the library random generator.

    Every parameter initialisation, ``Perceptron.fit`` and ``Sequential.fit``
    shuffle draws from it, so the same seed gives the same weights and the
    same training run.

    Parameters
    ----------
    s : int or None
        Any seed ``numpy.random.default_rng`` accepts.
    """
    global _rng
    _rng = np.random.default_rng(s)


def rng():
    """The library random generator (reset by :func:`seed`)."""
    return _rng


def get_rng_state():
    """The library generator's state as JSON-compatible data (what a
    training checkpoint stores): ``bit_generator.state`` with its arrays as
    lists."""
    state = _rng.bit_generator.state

    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v.tolist() if isinstance(v, np.ndarray) else v
    return plain(state)


_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def set_rng_state(state):
    """Continue the library generator from a :func:`get_rng_state` result:
    the next draws are those that followed it.

    Raises
    ------
    ValueError
        For a state that is not one of numpy's bit generators'.
    """
    global _rng
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise ValueError(f"set_rng_state: expected the state of one of numpy's bit generators "
                         f"{list(_BIT_GENERATORS)}, got {name!r}")
    gen = np.random.Generator(getattr(np.random, name)())
    try:
        gen.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise ValueError(f"set_rng_state: invalid {name} state ({e})") from None
    _rng = gen


def _stall_guard():
    ns = _core.stall_threshold_ns(-1)
    if not ns:
        return "off"
    solo = _core.stall_solo_calls()
    return f"{ns / 1e6:g} ms" + (f", next {solo} calls on one thread" if solo else "")


def show_config(file=None):
    """Print the build and run-time configuration.

    The lines show the nnc version, the instruction set in use and the ones
    this CPU supports, the CPU (vendor, family and model, the caches it
    reported) and the row of nnc's CPU table in use with the GEMM blocking it
    gives, the thread count and stall guard, the compiler, the OpenMP
    version, the NumPy version and the memory cache.

    Parameters
    ----------
    file : file-like, optional
        Where to print (default ``sys.stdout``).
    """
    supported = [n for n in _core.ISA_NAMES if _core.isa_supported(n)]
    cpu = _core.cpu_info()
    blocks = ["{} MRxNR {}x{} KC {} MC {} NC {}".format(name, *_core.gemm_block_sizes(f64))
              for name, f64 in (("float32", False), ("float64", True))]
    lines = [
        f"nnc {__version__}",
        f"  isa:         {_core.get_isa()} (supported: {', '.join(supported)}; NNC_ISA to force)",
        f"  cpu:         {cpu['vendor']} family 0x{cpu['family']:x} model 0x{cpu['model']:x}; caches "
        f"L1d {cpu['detected_l1d_kib']} KiB, L2 {cpu['detected_l2_kib']} KiB, "
        f"L3 {cpu['detected_l3_kib']} KiB a core (0: not reported)",
        f"  cpu row:     {cpu['row']} (detected: {cpu['detected_row']}; NNC_CPU to force): L1d "
        f"{cpu['l1d_kib']} KiB, L2 {cpu['l2_kib']} KiB, L3 {cpu['l3_kib']} KiB a core, "
        f"{cpu['fma512_pipes']} 512-bit FMA pipes",
        f"  gemm blocks: {blocks[0]}; {blocks[1]}",
        f"  threads:     {get_num_threads()} (stall guard: {_stall_guard()})",
        f"  compiler:    {_core.compiler()}",
        f"  openmp:      {_core.openmp_version()}",
        f"  numpy:       {np.__version__}",
        f"  mem cache:   {_core.cached_bytes() / 2**20:.1f} MiB held (limit {_core.get_cache_limit() / 2**20:.0f} MiB)",
    ]
    print("\n".join(lines), file=file or sys.stdout)


# libgomp hangs in a forked child once the parent has run a parallel region:
# pause the OpenMP runtime before fork; if that is impossible, the child runs
# nnc on one thread.
_paused = False


def _before_fork():
    global _paused
    _paused = _core.omp_pause() == 0


def _after_fork_child():
    if not _paused:
        _core.set_num_threads(1)


set_num_threads(_default_threads())
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_child)
