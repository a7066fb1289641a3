"""Writes the results page (Markdown) of one benchmark run to standard output.

    python bench/report.py bench/results/<date>-*.json --log bench/results/<date>.log > bench/RESULTS.md
    python bench/report.py bench/results --date <date> > bench/RESULTS.md    # the same (log found by date)

Input: the JSON files the benchmarks write with --json (bash bench/run_all.sh
writes bench/results/<date>-<name>.json) and the run's log, whose header gives
the machine and the library versions (bench/run_all.sh writes it; the `c` step
adds the C harness's measured peak and copy/read bandwidths).  The page: a
header (machine, CPU model and SIMD flags, CPUs, memory, measured peak and
bandwidths, versions, the command that reproduces everything), the chart
(bench/chart.py), a summary per family and peer, then one table per family
and machine condition (idle, one core loaded) with every measured row: nnc's
time, each peer's time and nnc / peer (below 1: nnc faster).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import (PEERS, best_peer, conditions, default_log, expand_inputs, family_title, geomean,  # noqa: E402
                      grouped, library_label, load_runs, local_flags, log_section, parse_header, peer_of, run_day)

REPRODUCE = "bash bench/run_all.sh"


def ms(v):
    """Milliseconds with 3-4 significant digits."""
    if v >= 100:
        return f"{v:.1f}"
    if v >= 10:
        return f"{v:.2f}"
    return f"{v:.3f}" if v >= 0.1 else f"{v:.4f}"


def ratio(v):
    """A ratio with two decimals, or two significant digits below 0.1 (never a bare 0.00)."""
    return f"{v:.2f}" if v >= 0.1 else f"{v:.2g}"


def cell(row):
    """'min / median' ms of a row, or '-'."""
    return f"{ms(row['min_ms'])} / {ms(row['median_ms'])}" if row else "-"


def per_threads(values, unit):
    """'117.2 GFLOP/s on 1 thread, 230.0 on 2' of {threads: value}."""
    items = sorted(values.items())
    first = [f"{v:.1f} {unit} on {t} thread{'s' if t > 1 else ''}" for t, v in items[:1]]
    return ", ".join(first + [f"{v:.1f} on {t}" for t, v in items[1:]])


def md_table(head, body):
    """A Markdown table; | * _ in cells escaped."""
    def row(cells):
        return "| " + " | ".join(c.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_") for c in cells) + " |"
    return "\n".join([row(head), "|" + "---|" * len(head)] + [row(r) for r in body])


def command_of(argv):
    """The benchmark's command line without its --json PATH."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--json":
            skip = True
        elif not a.startswith("--json="):
            out.append(a)
    return "python " + " ".join(out) if out else ""


def peer_libraries(rows):
    """The peer library names of rows, by peer family, then layout."""
    libs = {r["library"] for r in rows if r["library"] != "nnc"}
    return sorted(libs, key=lambda lib: (PEERS.get(peer_of(lib)[0], ("", "", 99))[2], library_label(lib)))


def peers_table(rows, stat):
    """Workload, pass, [threads], nnc ms, then each peer library's ms and nnc / peer."""
    peers = peer_libraries(rows)
    many_threads = len({r["threads"] for r in rows}) > 1
    head = ["workload", "pass"] + (["threads"] if many_threads else []) + ["nnc ms"]
    for lib in peers:
        head += [f"{library_label(lib)} ms", f"nnc / {library_label(lib)}"]
    body, last = [], None
    for (workload, pass_, threads), libs in grouped(rows).items():
        base = libs.get("nnc")
        line = [workload if workload != last else "", pass_] + ([str(threads)] if many_threads else []) + [cell(base)]
        last = workload
        for lib in peers:
            r = libs.get(lib)
            line += [cell(r), ratio(base[stat] / r[stat]) if r and base else "-"]
        body.append(line)
    return md_table(head, body)


def scaling_table(rows, stat):
    """nnc alone at several thread counts: workload, pass, ms per thread count, and time / the fewest threads' time."""
    counts = sorted({r["threads"] for r in rows})
    head = ["workload", "pass"] + [f"nnc ms, {t} thread{'s' if t > 1 else ''}" for t in counts]
    head += [f"{t} / {counts[0]} thread{'s' if counts[0] > 1 else ''}" for t in counts[1:]]
    by = {}
    for r in rows:
        by.setdefault((r["workload"], r["pass"]), {})[r["threads"]] = r
    body, last = [], None
    for (workload, pass_), ts in by.items():
        line = [workload if workload != last else "", pass_] + [cell(ts.get(t)) for t in counts]
        last = workload
        first = ts.get(counts[0])
        line += [ratio(ts[t][stat] / first[stat]) if first and t in ts else "-" for t in counts[1:]]
        body.append(line)
    return md_table(head, body)


def meta_lines(run):
    """Notes from a results file's extra fields (clock, copy bandwidth, peak memory)."""
    out = []
    for key, val in run["meta"].items():
        if key == "clock":
            out.append(f"clock: {val}")
        elif key == "copy_gbs":
            out.append(f"one-core copy bandwidth (numpy copyto of the input): {val:.1f} GB/s")
        elif key == "peak_memory_mb" and isinstance(val, dict):
            out.append("peak memory of one training step: "
                       + ", ".join(f"{library_label(k)} {v:.1f} MB" for k, v in val.items()))
        else:
            out.append(f"{key}: {val}")
    return out


def summary(runs, stat):
    """Per family, condition and peer (PyTorch: the faster layout of each row): rows, nnc faster in, geometric
    mean and range of nnc / peer."""
    body = []
    for run in runs:
        for cond in conditions(run["rows"]):
            groups = grouped([r for r in run["rows"] if r["condition"] == cond])
            for peer, (name, _, _) in sorted(PEERS.items(), key=lambda kv: kv[1][2]):
                ratios = []
                for libs in groups.values():
                    p = best_peer(libs, peer, stat)
                    if p and "nnc" in libs:
                        ratios.append(libs["nnc"][stat] / p[stat])
                if ratios:
                    body.append([family_title(run["benchmark"]), cond, name, str(len(ratios)),
                                 str(sum(r < 1 for r in ratios)), ratio(geomean(ratios)),
                                 f"{ratio(min(ratios))} - {ratio(max(ratios))}"])
    head = ["family", "condition", "peer", "rows", "nnc faster", "geometric mean nnc / peer", "range"]
    return md_table(head, body)


def header(h, runs, args):
    """The page's header lines: title, a list of the machine's and the libraries' facts, notes."""
    out = [f"# {args.title}", ""]
    date = h.get("date") or min((r["date"] for r in runs if r["date"]), default="")
    machine = args.machine or ", ".join(x for x in (
        h.get("cpu"), h.get("arch"), f"{h['cpus']} CPUs (nproc)" if "cpus" in h else None,
        f"{h['memory']} memory" if "memory" in h else None) if x)
    flags = h.get("flags") or local_flags(h.get("cpu", ""))
    facts = [("Measured", date), ("Machine", machine), ("CPU (CPUID)", h.get("cpuid")),
             ("nnc's CPU row", h.get("cpu_row")), ("GEMM blocking", h.get("gemm_blocks")), ("CPU SIMD flags", flags)]
    libs = [f"nnc {h['nnc']}" + (f" ({h['isa'].split()[0]} path, {h['compiler']}, OpenMP {h.get('openmp', '?')})"
                                 if "isa" in h and "compiler" in h else "") if "nnc" in h else None,
            f"NumPy {h['numpy']}" if "numpy" in h else None,
            f"PyTorch {h['torch']}" if "torch" in h else None,
            f"ONNX Runtime {h['onnxruntime']}" if "onnxruntime" in h else None]
    facts += [("Libraries", ", ".join(x for x in libs if x)), ("nnc threads", h.get("threads"))]
    if h.get("peak"):
        facts.append(("Peak measured by the C harness (`bench/c/nnc_bench`; float32, float64 half)",
                      "; ".join(f"{isa} {kind}: {per_threads(v, 'GFLOP/s')}" for isa, kind, v in h["peak"])))
    bw = []
    if "copy" in h:
        shape = next(iter(h["copy"].values()))[0]
        bw.append(f"memcpy of the pool input {shape} split over the threads: "
                  + per_threads({t: gbs for t, (_, gbs) in h["copy"].items()}, "GB/s"))
    reads = {}
    for (kib, t), gbs in h.get("read", {}).items():
        reads.setdefault(kib, {})[t] = gbs
    bw += [f"read of {kib} KiB, cache-resident: {per_threads(v, 'GB/s')}" for kib, v in sorted(reads.items())]
    facts.append(("Bandwidth measured by the C harness", "; ".join(bw)))
    out += [f"- **{k}:** {v}" for k, v in facts if v]
    if args.note:
        out += [""] + args.note
    day = args.day or "<date>"
    out += ["", f"Reproduce everything: `{REPRODUCE}` (it writes `bench/results/<date>.log` and one JSON file per "
            "benchmark), then this page and its chart:", "", "```bash",
            f"python bench/report.py bench/results/{day}-*.json --log bench/results/{day}.log > bench/RESULTS.md",
            f"python bench/chart.py bench/results/{day}-*.json --log bench/results/{day}.log -o bench/results.png",
            "```", ""]
    stat = "minima" if args.stat == "min_ms" else "medians"
    out += ["Times are milliseconds per call, `min / median` over the repetitions; a **ratio is nnc's time / the "
            f"peer's time (of the {stat}): below 1 means nnc is faster**, above 1 that the peer is.  Every measured row "
            "is listed, including those where nnc is slower; PyTorch convolution and pooling appear in each memory "
            "layout it was timed in (NCHW, channels_last).  Before timing, every benchmark checks nnc's outputs and "
            "gradients against each peer (where both compute them).  Repeated runs move the ratios by a few "
            "percent; the gap between a row's minimum and median shows how much its calls varied.", ""]
    if args.chart:
        out += [f"![nnc speed relative to its peers]({args.chart})", ""]
    return out


def sweep_tables(rows, stat, top=5):
    """The shape sweep (bench/bench_sweep.py) as its summary: per family, pass
    and thread count the geometric mean and the worst of nnc / best peer over
    its shapes, then the worst shapes; every row stays in the JSON file."""
    from bench_sweep import FAMILIES, family_of, family_summary, shape_ratios   # imports nnc: only for a sweep
    ratios = shape_ratios(rows, stat=stat)
    summ = family_summary(ratios)
    keys = sorted({(p, t) for _, p, t in summ}, key=lambda k: (k[1], k[0] != "fwd"))
    fams = [f for f in FAMILIES if any(k[0] == f for k in summ)]
    head = ["family", "shapes"] + [f"{p} {t}T: geomean (worst)" for p, t in keys]
    body = [[fam, str(max(summ[(fam, p, t)]["n"] for p, t in keys if (fam, p, t) in summ))]
            + [f"{summ[(fam, p, t)]['geomean']:.2f} ({summ[(fam, p, t)]['worst']:.2f})"
               if (fam, p, t) in summ else "-" for p, t in keys] for fam in fams]
    out = ["nnc / best peer (PyTorch in its faster layout, ONNX Runtime, NumPy) at the same thread count, "
           f"{'minimum' if stat == 'min_ms' else 'median'} times; below 1: nnc faster.", "",
           md_table(head, body), "", f"Worst {top} shapes per family and pass:", ""]
    for fam in fams:
        for p, t in keys:
            worst = sorted(((r, w, peer) for (w, pp, tt), (r, peer) in ratios.items()
                            if family_of(w) == fam and pp == p and tt == t), reverse=True)[:top]
            if worst:
                out.append(f"- {fam} {p} {t}T: " + "; ".join(f"{w.split(' ', 1)[1]} {r:.2f} ({peer})"
                                                              for r, w, peer in worst))
    return "\n".join(out)


def page(runs, h, args):
    out = header(h, runs, args)
    out += ["## Summary", "",
            "Per family and peer: the rows measured against that peer (PyTorch: the faster of its layouts in each "
            "row), how many nnc is faster in, and the geometric mean and range of nnc / peer.", "",
            summary(runs, args.stat), ""]
    for run in runs:
        out += [f"## {family_title(run['benchmark'])}", ""]
        cmd = command_of(run["argv"])
        notes = ([f"`{cmd}`"] if cmd else []) + ([run["date"]] if run["date"] else []) + meta_lines(run)
        if notes:
            out += ["; ".join(notes) + ".", ""]
        if run["benchmark"] == "bench_sweep":
            out += [sweep_tables(run["rows"], args.stat), ""]
            continue
        for cond in conditions(run["rows"]):
            rows = [r for r in run["rows"] if r["condition"] == cond]
            out += [f"### {'Idle machine' if cond == 'idle' else cond[0].upper() + cond[1:]}", ""]
            has_peers = any(r["library"] != "nnc" for r in rows)
            out += [peers_table(rows, args.stat) if has_peers or len({r["threads"] for r in rows}) == 1
                    else scaling_table(rows, args.stat), ""]
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", help="results JSON files, glob patterns or directories")
    ap.add_argument("--date", help="with a directory: the run's date (YYYY-MM-DD; default: the newest)")
    ap.add_argument("--log", help="the run's log (default: <dir>/<date>.log next to the JSON files, if present)")
    ap.add_argument("--stat", choices=("min", "median"), default="min", help="the statistic of the ratios")
    ap.add_argument("--title", default="nnc benchmark results")
    ap.add_argument("--machine", help="the machine, instead of the log header's (e.g. '2 cores of ..., idle')")
    ap.add_argument("--note", action="append", help="a line added to the header (repeatable)")
    ap.add_argument("--chart", default="results.png", help="the chart's path relative to the page ('' for none)")
    args = ap.parse_args(argv)
    args.stat = "min_ms" if args.stat == "min" else "median_ms"
    paths = expand_inputs(args.inputs, args.date)
    args.day = args.date or run_day(paths)
    runs = load_runs(paths)
    log = args.log or default_log(paths)
    h = parse_header(log_section(log, runs)) if log else {}
    sys.stdout.write(page(runs, h, args) + "\n")




if __name__ == "__main__":
    main()
