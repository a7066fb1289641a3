# cython: freethreading_compatible = False
"""Cython bindings of the nnc C core.

Design note: every wrapper is thin.  It checks what the C core relies on
(dtype, shapes, layout; the Python layer has already given user-facing
messages), picks the float32 or float64 entry point through a fused type,
releases the GIL around the C call and turns the C status into a Python
exception.  The wrappers of the calls that run per layer and per step of a
small model (GEMMs, activations, convolutions) read ndarrays through the
NumPy C API (_args.pxi): a fused def function's signature matching and
memoryview acquisition cost most of a microsecond per call.  The others
take typed memoryviews.  There are no numeric loops here.  One .pxi per
kernel family is included below.
"""
from cython cimport floating
from libc.stdint cimport int64_t, uint64_t

include "_capi.pxi"   # the C API, generated from the C headers (build_tools/gen_pxi.py)


cdef int _raise(int status) except -1 with gil:
    if status == NNC_ENOMEM:
        raise MemoryError("nnc: out of memory in the C core")
    if status == NNC_EOVERFLOW:
        raise ValueError("nnc: array sizes too large (size computation overflows)")
    raise RuntimeError(f"nnc: the C core rejected its arguments (status {status})")


cdef inline int _ck(int status) except -1 nogil:
    if status != NNC_OK:
        _raise(status)
    return 0


_init_status = nnc_init()
ISA_NAMES = tuple(nnc_isa_name(i).decode() for i in range(NNC_ISA_COUNT))


def init_status():
    """0 if NNC_ISA was absent or valid, else the C status of nnc_init."""
    return _init_status


def isa_supported(name):
    return bool(nnc_isa_supported(ISA_NAMES.index(name)))


def get_isa():
    return ISA_NAMES[nnc_get_isa()]


def set_isa(name):
    """Switch every kernel to another ISA path (tests and benchmarks only:
    not safe while other threads run kernels)."""
    if name not in ISA_NAMES or nnc_set_isa(ISA_NAMES.index(name)) != NNC_OK:
        raise ValueError(f"ISA {name!r} is not supported on this CPU; available: "
                         f"{[n for n in ISA_NAMES if isa_supported(n)]}")


def cpu_rows():
    """The names of the CPU table's rows (runtime/cpu.c)."""
    return tuple(nnc_cpu_row_name(i).decode() for i in range(nnc_cpu_row_count()))


def cpu_info():
    """The CPU row in use and what this machine reported, as a dict."""
    cdef const nnc_cpu_model *c = nnc_cpu()
    return {"row": c.row.decode(), "detected_row": nnc_cpu_detected_row().decode(),
            "vendor": c.vendor.decode(), "family": c.family, "model": c.model,
            "l1d_kib": c.l1d_kib, "l2_kib": c.l2_kib, "l3_kib": c.l3_kib, "fma512_pipes": c.fma512_pipes,
            "kc_l1_pct": c.kc_l1_pct, "mc_l2_pct": c.mc_l2_pct, "detected_l1d_kib": c.detected_l1d_kib,
            "detected_l2_kib": c.detected_l2_kib, "detected_l3_kib": c.detected_l3_kib}


def set_cpu(name):
    """Switch to another CPU row (None: the one detected); tests and
    benchmarks only: not safe while other threads run kernels."""
    cdef bytes b = (name or "").encode()
    if nnc_set_cpu(b) != NNC_OK:
        raise ValueError(f"unknown CPU row {name!r}; rows: {list(cpu_rows())}")


def set_num_threads(int n):
    nnc_set_num_threads(n)


def get_num_threads():
    return nnc_get_num_threads()


def effective_num_threads():
    return nnc_effective_num_threads()


def omp_pause():
    return nnc_omp_pause()


def stall_threshold_ns(long long ns):
    return nnc_stall_threshold_ns(ns)


def stall_solo_calls():
    return nnc_stall_solo_calls()


def stall_note(bint stalled):
    """A timed parallel region's verdict (the guard's input; for tests)."""
    nnc_stall_note(stalled)


def compiler():
    return nnc_compiler().decode()


def openmp_version():
    return nnc_openmp_version()


include "_args.pxi"
include "_memory.pxi"
include "_gemm.pxi"
include "_conv.pxi"
include "_pool.pxi"
include "_rnn.pxi"
include "_convrnn.pxi"
include "_train.pxi"
include "_clip.pxi"
include "_dropout.pxi"
include "_embedding.pxi"
include "_plan.pxi"
