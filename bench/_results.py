"""Reading one run's results for bench/report.py and bench/chart.py: the JSON
files the benchmarks write with --json (bench/_common.Results) and the
header of the run's log (bench/run_all.sh), including the C harness's
measured peak and bandwidths when the run had the `c` step."""
import glob
import json
import math
import os
import re
import sys
from datetime import datetime

# Benchmark -> (family title, order on the page and in the chart).
FAMILIES = {
    "bench_gemm": ("GEMM and Dense", 0),
    "bench_conv": ("Convolution", 1),
    "bench_conv_scaling": ("Convolution thread scaling (nnc only)", 2),
    "bench_pool": ("Pooling", 3),
    "bench_rnn": ("Recurrent layers", 4),
    "bench_convrnn": ("ConvLSTM2D", 5),
    "bench_densenet": ("DenseBlock", 6),
    "bench_models": ("Demo residual CNN (whole model)", 7),
    "bench_import": ("Imported models (from ONNX and PyTorch)", 8),
    "bench_seq": ("Padded sequences, Bidirectional, Embedding, Dask", 9),
    "bench_checkpoint": ("Training checkpoints and the non-finite guard (overhead)", 10),
    "bench_sweep": ("Shape sweep (shapes drawn at random, every family)", 11),
}
# Peer families: display name, chart colour, order.
PEERS = {"torch": ("PyTorch", "#ee4c2c", 0), "ort": ("ONNX Runtime", "#5b6abf", 1), "numpy": ("NumPy", "#4dabcf", 2)}


def peer_of(library):
    """(peer family key, layout or "") of a row's library name, None for nnc:
    the benchmarks name torch's layouts "torch-nchw", "torch-cl", "torch NCHW",
    "torch channels_last", "torch-channels_last"..., ONNX Runtime "ort" or
    "onnxruntime"."""
    name = library.strip()
    if name == "nnc":
        return None
    m = re.match(r"(torch|ort|onnxruntime|numpy)(?:[- ](.+))?$", name, re.IGNORECASE)
    if not m:
        return (name, "")
    fam = {"onnxruntime": "ort"}.get(m.group(1).lower(), m.group(1).lower())
    layout = (m.group(2) or "").lower()
    layout = {"nchw": "NCHW", "cl": "channels_last", "channels_last": "channels_last"}.get(layout, m.group(2) or "")
    return (fam, layout)


def library_label(library):
    """Display name of a row's library: "nnc", "PyTorch NCHW", "ONNX Runtime"..."""
    p = peer_of(library)
    if p is None:
        return "nnc"
    name = PEERS.get(p[0], (p[0],))[0]
    return f"{name} {p[1]}" if p[1] else name


def expand_inputs(inputs, date=None):
    """JSON paths from a list of files, glob patterns and directories; a
    directory gives its <date>-*.json (date None: the newest date there)."""
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(glob.glob(os.path.join(item, "????-??-??-*.json")))
            if not date and found:
                date = max(os.path.basename(f)[:10] for f in found)
            paths += [f for f in found if os.path.basename(f).startswith(f"{date}-")]
        elif any(ch in item for ch in "*?["):
            paths += sorted(glob.glob(item))
        else:
            paths.append(item)
    if not paths:
        raise SystemExit(f"no results JSON found in {' '.join(inputs)}" + (f" for {date}" if date else ""))
    return paths


def run_day(paths):
    """The YYYY-MM-DD of <dir>/<date>-<name>.json file names when they all share it, else None."""
    days = {os.path.basename(p)[:10] for p in paths}
    day = days.pop() if len(days) == 1 else None
    return day if day and re.match(r"\d{4}-\d{2}-\d{2}$", day) else None


def default_log(paths):
    """<dir>/<date>.log of <dir>/<date>-<name>.json files, if it exists."""
    day = run_day(paths)
    log = os.path.join(os.path.dirname(paths[0]), f"{day}.log") if day else None
    return log if log and os.path.exists(log) else None


def load_runs(paths):
    """[{benchmark, date, argv, meta, rows}] of the JSON files, one per
    benchmark (the newest when a benchmark appears twice), in page order."""
    runs = {}
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        if not isinstance(doc, dict) or "rows" not in doc:
            raise SystemExit(f"{path}: not a benchmark results file (no 'rows')")
        run = {"benchmark": doc.get("benchmark", os.path.basename(path)), "date": doc.get("date", ""),
               "argv": doc.get("argv", []), "path": path, "rows": doc["rows"],
               "meta": {k: v for k, v in doc.items() if k not in ("benchmark", "date", "argv", "ratios", "rows")}}
        for r in run["rows"]:
            r.setdefault("condition", "idle")
        old = runs.get(run["benchmark"])
        if old is not None:
            print(f"{path}: {run['benchmark']} also in {old['path']}; keeping the newer", file=sys.stderr)
            if old["date"] > run["date"]:
                continue
        runs[run["benchmark"]] = run
    return sorted(runs.values(), key=lambda r: (FAMILIES.get(r["benchmark"], ("", 99))[1], r["benchmark"]))


def family_title(benchmark):
    return FAMILIES.get(benchmark, (benchmark,))[0]


def conditions(rows):
    """The conditions of rows in order of appearance ("idle" first)."""
    seen = []
    for r in rows:
        if r["condition"] not in seen:
            seen.append(r["condition"])
    return sorted(seen, key=lambda c: c != "idle")


def grouped(rows):
    """{(workload, pass, threads): {library: row}} in order of appearance."""
    out = {}
    for r in rows:
        out.setdefault((r["workload"], r["pass"], r["threads"]), {})[r["library"]] = r
    return out


def best_peer(libs, peer, stat="min_ms"):
    """The fastest row (by stat) of peer family ``peer`` among {library: row}
    (PyTorch: the faster of its layouts), or None."""
    rows = [r for lib, r in libs.items() if (peer_of(lib) or ("",))[0] == peer]
    return min(rows, key=lambda r: r[stat]) if rows else None


def geomean(values):
    values = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


# -- the log: run header (run_all.sh) and the C harness's header lines --

_RUN_HEAD = re.compile(r"^# (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC on (\S+), (\d+) CPUs:\s*(.*)$")


def _parse_date(text):
    try:
        return datetime.strptime(text[:16], "%Y-%m-%d %H:%M")
    except ValueError:
        return None


def log_section(log_path, runs):
    """The lines of the run of log_path (run_all.sh appends each run under a
    '# <date> UTC on ...' line) that produced ``runs``: the last run started
    at or before the earliest JSON date; the last run when no date fits."""
    with open(log_path, errors="replace") as f:
        lines = f.read().splitlines()
    starts = [i for i, line in enumerate(lines) if _RUN_HEAD.match(line)]
    if not starts:
        return lines
    dates = [d for d in (_parse_date(r["date"]) for r in runs) if d]
    first = min(dates) if dates else None
    pick = starts[-1]
    if first:
        fitting = [i for i in starts if _parse_date(_RUN_HEAD.match(lines[i]).group(1)) <= first]
        pick = fitting[-1] if fitting else starts[0]
    end = next((i for i in starts if i > pick), len(lines))
    return lines[pick:end]


def parse_header(lines):
    """Machine and versions from a run's log lines: date, arch, cpus, cpu,
    flags, memory, nnc (version, isa, CPU identification, CPU row and GEMM
    blocking, threads, compiler, openmp, numpy),
    torch, onnxruntime, the C harness's peak line and its bandwidth lines."""
    h = {}
    for line in lines:
        m = _RUN_HEAD.match(line)
        if m and "date" not in h:
            h.update(date=m.group(1) + " UTC", arch=m.group(2), cpus=int(m.group(3)), cpu=m.group(4).strip())
            continue
        if line.startswith("# cpu flags:"):
            h.setdefault("flags", line.split(":", 1)[1].strip())
        elif line.startswith("# memory:"):
            h.setdefault("memory", line.split(":", 1)[1].strip())
        elif re.match(r"^nnc \d", line):
            h.setdefault("nnc", line.split()[1])
        elif re.match(r"^  (isa|threads|compiler|openmp|numpy):", line):
            key, val = line.strip().split(":", 1)
            h.setdefault(key, val.strip())
        elif re.match(r"^  (cpu|cpu row|gemm blocks):", line):   # nnc.show_config's CPU lines
            key, val = line.strip().split(":", 1)
            h.setdefault({"cpu": "cpuid", "cpu row": "cpu_row", "gemm blocks": "gemm_blocks"}[key], val.strip())
        elif line.startswith("torch ") and "onnxruntime" in line:
            m = re.match(r"torch (\S+) \| onnxruntime (\S+)", line)
            if m:
                h.setdefault("torch", m.group(1))
                h.setdefault("onnxruntime", m.group(2))
        elif line.startswith("# peak measured at start-up"):
            h.setdefault("peak", peaks(line.rsplit("thread count:", 1)[-1]))
        elif "copy bandwidth" in line and not line.startswith("one-core"):
            m = re.match(r"^(\S+)\s+(\d+)\s+.*?(\S+)\s+copy bandwidth ([\d.]+) GB/s", line)
            if m:   # isa, threads, shape: the first shape's figure per thread count
                h.setdefault("copy", {}).setdefault(int(m.group(2)), (m.group(3), float(m.group(4))))
        elif "a read of as many bytes" in line:
            m = re.match(r"^(\S+)\s+(\d+)\s+\S+\s+.*?B (\d+) KiB at [\d.]+ GB/s; a read of as many bytes ([\d.]+) GB/s",
                         line)
            if m:
                h.setdefault("read", {})[(int(m.group(3)), int(m.group(2)))] = float(m.group(4))
    return h


def peaks(text):
    """[(isa, kind, {threads: GFLOP/s})] of the C harness's peak line tail,
    e.g. "avx512 (FMA) 1T 117.2 2T 230.0; avx2 (FMA) 1T 58.6 2T 117.0"."""
    out = []
    for part in text.split(";"):
        m = re.match(r"\s*(\S+)\s*\(([^)]*)\)\s*(.*)$", part)
        if m:
            per = {int(t): float(v) for t, v in re.findall(r"(\d+)T ([\d.]+)", m.group(3))}
            out.append((m.group(1), m.group(2), per))
    return out


def local_flags(cpu):
    """The SIMD flags of this machine's /proc/cpuinfo when its model name is
    ``cpu`` (the log's), else None."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return None
    model = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", info, re.M)
    if not model or not flags or model.group(1).strip() != cpu:
        return None
    keep = re.compile(r"^(sse4_2|avx|avx2|fma|f16c|avx512.*|amx.*)$")
    return " ".join(f for f in flags.group(1).split() if keep.match(f))
