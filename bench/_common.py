"""Helpers shared by the Python benchmarks: timing, peak-memory probes, a loaded core."""
import contextlib
import json
import os
import resource
import subprocess
import sys
import time

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
