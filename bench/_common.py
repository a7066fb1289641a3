"""Helpers shared by the Python benchmarks: timing, peak-memory probes, a loaded core,
the output checks against the peer library and the --json results."""
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone

import numpy as np


# Before each contender: other runtimes' worker threads (ORT's pool, torch's
# and numpy's OpenMP/OpenBLAS threads) spin for a while after their last job
# and would take the cores the next contender's threads need.
SETTLE_S = 0.1


def timeit_all(fn, repeat):
    """Seconds of each of ``repeat`` runs of fn() after a pause (SETTLE_S) and
    one warm-up."""
    time.sleep(SETTLE_S)
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


def min_median_ms(ts):
    """(min, median) milliseconds of a list of seconds."""
    return 1e3 * min(ts), 1e3 * float(np.median(ts))


def timeit(fn, repeat):
    """(min, median) milliseconds of fn() over ``repeat`` runs after a pause
    (SETTLE_S) and one warm-up."""
    return min_median_ms(timeit_all(fn, repeat))


@contextlib.contextmanager
def one_core_busy(cpu=1):
    """Another process spinning on CPU ``cpu`` meanwhile: a loaded machine."""
    busy = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        busy.kill()
        busy.wait()


def _status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise KeyError(field)


def reset_peak_rss():
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM);
    returns the current RSS in MB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_mb("VmRSS")


def peak_rss_mb():
    """Peak resident set size since the last reset_peak_rss(), in MB."""
    try:
        return _status_mb("VmHWM")
    except (OSError, KeyError):   # not Linux: whole-process peak (ru_maxrss is KiB)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_contenders(fns, reps, clock=time.perf_counter, budget=None, rounds=1):
    """Times {name: fn}; returns {name: sorted list of seconds}.

    Order (env NNC_BENCH_ORDER): "blocked" (default) runs each contender's
    repetitions back to back after a pause (SETTLE_S) and two warm-up
    calls; "interleaved" runs one call of each per round, so a load change
    hits all alike.  Blocked is the
    default because at 2 threads on 2 cores interleaving lets one runtime's
    spin-waiting workers (OpenBLAS, libgomp, torch's pool) steal the cores
    the next contender needs.  ``budget`` (seconds) caps each contender
    (blocked) or the whole run (interleaved) after 5 repetitions.  Blocked
    with ``rounds`` > 1: the blocks of all contenders, ``rounds`` times over
    (``reps`` in each block), so that a slow stretch of a shared machine
    falls on every contender's blocks alike rather than on one of them.
    """
    times = {k: [] for k in fns}
    if os.environ.get("NNC_BENCH_ORDER", "blocked") == "interleaved":
        for f in fns.values():
            f()
            f()
        start = time.perf_counter()
        for r in range(reps):
            for k, f in fns.items():
                t = clock()
                f()
                times[k].append(clock() - t)
            if budget and r >= 4 and time.perf_counter() - start > budget:
                break
    else:
        for _ in range(rounds):
            for k, f in fns.items():
                time.sleep(SETTLE_S)
                f()
                f()
                start = time.perf_counter()
                for r in range(reps):
                    t = clock()
                    f()
                    times[k].append(clock() - t)
                    if budget and r >= 4 and time.perf_counter() - start > budget:
                        break
    return {k: sorted(v) for k, v in times.items()}


def report_peak(lib, step):
    """Runs step() once and prints the growth of the peak RSS (MB) as JSON:
    the body of a --memory-probe child process."""
    before = reset_peak_rss()
    step()
    print(json.dumps({"lib": lib, "peak_mb": peak_rss_mb() - before}))


def probe_peaks(script, threads, libs):
    """{lib: MB}: ``script --threads T --memory-probe lib``, each in a fresh process."""
    mem = {}
    for lib in libs:
        out = subprocess.run([sys.executable, script, "--threads", str(threads), "--memory-probe", lib],
                             capture_output=True, text=True, check=True).stdout
        mem[lib] = json.loads(out.strip().splitlines()[-1])["peak_mb"]
    return mem


# -- output checks: every benchmark compares nnc with its peer once per workload before timing --

EPS32 = float(np.finfo(np.float32).eps)


class MismatchError(AssertionError):
    """nnc and the peer library disagree beyond the float32 tolerance."""


def check_close(what, got, ref, k):
    """Max |got - ref| (float64), raising MismatchError unless it is at most
    k * EPS32 * max|ref|: the float32 rounding of sums of k terms of that size,
    in any order (k = the reduction length: inputs per output, summed over
    chained layers).  Shapes must match; NaN or inf fails."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        raise MismatchError(f"{what}: nnc shape {got.shape} != peer shape {ref.shape}")
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    tol = k * EPS32 * scale
    err = float(np.abs(got - ref).max()) if ref.size else 0.0
    if not (np.isfinite(err) and np.isfinite(scale)) or err > tol:
        raise MismatchError(f"{what}: max |nnc - peer| = {err:.3e} exceeds the float32 tolerance {tol:.3e} "
                            f"(reduction length {k}, max |peer| = {scale:.3e})")
    return err


def nhwc(a):
    """(N, C, H, W) array or torch tensor (any memory format) -> C-contiguous NHWC numpy."""
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def nchw(a):
    """(N, H, W, C) numpy -> C-contiguous (N, C, H, W) numpy."""
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def hwio_to_oihw(w):
    """nnc conv weights (KH, KW, C/groups, K) -> torch's (K, C/groups, KH, KW), C-contiguous."""
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def torch_conv(layer, memory_format=None):
    """torch.nn.Conv2d with nnc Conv2D ``layer``'s geometry, weights and bias,
    in ``memory_format`` (default contiguous): its own module per layout."""
    import torch
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    pad = layer.padding if isinstance(layer.padding, str) else tuple(layer.padding)   # "same", "valid", (h, w)
    conv = torch.nn.Conv2d(layer.in_channels, layer.out_channels, (kh, kw), stride=(sh, sw), padding=pad,
                           dilation=(dh, dw), groups=layer.groups, bias=layer.use_bias)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(hwio_to_oihw(layer.params["W"])))
        if layer.use_bias:
            conv.bias.copy_(torch.from_numpy(layer.params["b"]))
    return conv.to(memory_format=memory_format or torch.contiguous_format)


def check_torch_conv(what, layer, module, x, gy, memory_format):
    """One forward + backward of nnc Conv2D ``layer`` and of the torch ``module``
    (same weights; x, gy NHWC numpy) compared: y, dx, dW, db (check_close).
    Asserts the module's weight and the input are in ``memory_format`` first.
    Leaves the module's and the layer's gradients set; returns torch's
    {"y", "dx", "dW", "db"} (nnc layouts) and the reduction length of each."""
    import torch
    if not module.weight.is_contiguous(memory_format=memory_format):
        raise MismatchError(f"{what}: torch weight strides {module.weight.stride()} not in {memory_format}")
    xt = torch.from_numpy(nchw(x)).contiguous(memory_format=memory_format).requires_grad_(True)
    gt = torch.from_numpy(nchw(gy)).contiguous(memory_format=memory_format)
    if not xt.is_contiguous(memory_format=memory_format):
        raise MismatchError(f"{what}: torch input strides {xt.stride()} not in {memory_format}")
    module.zero_grad(set_to_none=True)
    yt = module(xt)
    yt.backward(gt)
    y = layer.forward(x, training=True)
    dx = layer.backward(gy)
    (kh, kw), n_out = layer.kernel_size, y.shape[0] * y.shape[1] * y.shape[2]
    k_fwd = kh * kw * layer.in_channels // layer.groups
    ref = {"y": (nhwc(yt), k_fwd + 1), "dx": (nhwc(xt.grad), kh * kw * layer.out_channels // layer.groups),
           "dW": (module.weight.grad.permute(2, 3, 1, 0).numpy(), n_out)}
    if layer.use_bias:
        ref["db"] = (module.bias.grad.numpy(), n_out)
    for name, got in (("y", y), ("dx", dx), ("dW", layer.grads["W"]), ("db", layer.grads.get("b"))):
        if name in ref:
            check_close(f"{what} {name}", got, *ref[name])
    return ref


# -- results: every measured row, printed by each script and written by --json --

def add_json_arg(ap):
    """The --json PATH option of every benchmark."""
    ap.add_argument("--json", metavar="PATH", help="also write every measured row to PATH as JSON")


class Results:
    """Every timed row of a run: (workload, pass, threads, library, min_ms,
    median_ms[, condition]).  write() adds each row's ratios to nnc's row of
    the same workload, pass, threads and condition."""

    def __init__(self, benchmark):
        self.benchmark = benchmark
        self.rows = []
        self.meta = {}

    def add(self, workload, pass_, threads, library, min_ms, median_ms, condition="idle"):
        self.rows.append({"workload": workload, "pass": pass_, "threads": threads, "library": library,
                          "min_ms": float(min_ms), "median_ms": float(median_ms), "condition": condition})

    def add_times(self, workload, pass_, threads, times_s, condition="idle"):
        """{library: seconds of every call} -> one row each."""
        for lib, ts in times_s.items():
            self.add(workload, pass_, threads, lib, *min_median_ms(ts), condition=condition)

    def with_ratios(self):
        """The rows, each with nnc_over_min / nnc_over_median = nnc's time / this
        row's (< 1: nnc faster; absent without an nnc row)."""
        key = lambda r: (r["workload"], r["pass"], r["threads"], r["condition"])  # noqa: E731
        nnc_rows = {key(r): r for r in self.rows if r["library"] == "nnc"}
        out = []
        for r in self.rows:
            r = dict(r)
            base = nnc_rows.get(key(r))
            if base is not None:
                r["nnc_over_min"] = base["min_ms"] / r["min_ms"]
                r["nnc_over_median"] = base["median_ms"] / r["median_ms"]
            out.append(r)
        return out

    def write(self, path):
        """Writes the rows (with ratios) and self.meta as JSON to path (None: nothing)."""
        if not path:
            return
        doc = {"benchmark": self.benchmark, "argv": sys.argv,
               "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "ratios": "nnc_over_min = nnc min_ms / this row's min_ms (< 1: nnc faster); same for median",
               **self.meta, "rows": self.with_ratios()}
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
