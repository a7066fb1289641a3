"""Draws one run's results as a PNG: nnc's speed relative to each peer.

    python bench/chart.py bench/results/<date>-*.json --log bench/results/<date>.log -o bench/results.png
    python bench/chart.py bench/results --date <date> -o bench/results.png   # the same (log found by date)

One panel per benchmark family, one group of horizontal bars per measured
workload and pass: peer time / nnc time for PyTorch (the faster of its memory
layouts), ONNX Runtime and NumPy, on a log axis with a line at 1 (right of
it: nnc faster).  Shows one machine condition (default idle) and, per family,
one thread count (default the largest measured).  The title names the CPU and
the date (from the run's log, or --cpu / --date-label).  Needs matplotlib
(pip install 'nnc[bench]' or pip install matplotlib).
"""
import argparse
import os
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import (PEERS, best_peer, default_log, expand_inputs, family_title, grouped, load_runs,  # noqa: E402
                      log_section, parse_header)

LABEL_WIDTH = 34     # characters per line of a workload label
LINE_INCH = 0.16     # height of one line of label
FIG_WIDTH = 9.0      # inches
X_MIN, X_MAX = 1 / 8, 16   # the axis; a ratio beyond is drawn to the edge and labelled


def label_of(workload, pass_):
    """'workload pass', without a pass the workload already names; wrapped to LABEL_WIDTH."""
    text = workload if pass_ in workload.split() else f"{workload} {pass_}"
    return "\n".join(textwrap.wrap(text, LABEL_WIDTH)) or text


def panels(runs, condition, threads, stat):
    """[(family title, threads, [(label, {peer: peer time / nnc time})])], families with a peer."""
    out = []
    for run in runs:
        rows = [r for r in run["rows"] if r["condition"] == condition]
        counts = sorted({r["threads"] for r in rows})
        if not counts:
            continue
        t = threads if threads in counts else counts[-1]
        items = []
        for (workload, pass_, nt), libs in grouped(rows).items():
            if nt != t or "nnc" not in libs:
                continue
            speed = {}
            for peer in PEERS:
                p = best_peer(libs, peer, stat)
                if p:
                    speed[peer] = p[stat] / libs["nnc"][stat]
            if speed:
                items.append((label_of(workload, pass_), speed))
        if items:
            out.append((family_title(run["benchmark"]), t, items))
    return out


def layout(items, npeers):
    """Centre (in label lines) of each bar group, top to bottom, and the total: a group takes its label's
    lines or its bars (0.6 line each), whichever is more, and half a line of gap."""
    ys, y = [], 0.0
    for lab, _ in items:
        h = max(lab.count("\n") + 1, 0.6 * npeers) + 0.5
        ys.append(y + h / 2)
        y += h
    return ys, y


def draw(data, title, out_path, dpi):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    peers_of = [[p for p in PEERS if any(p in s for _, s in items)] for _, _, items in data]
    spans = [layout(items, len(peers))[1] for (_, _, items), peers in zip(data, peers_of)]
    heights = [LINE_INCH * sp for sp in spans]
    gap, top, bottom = 0.55, 0.85, 0.55   # inches: above each panel (its title), figure title, x axis
    fig_h = sum(heights) + gap * len(data) + top + bottom
    fig, axes = plt.subplots(len(data), 1, figsize=(FIG_WIDTH, fig_h), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": heights, "hspace": gap * len(data) / sum(heights)})
    for ax, (family, threads, items), peers in zip(axes[:, 0], data, peers_of):
        ys, span = layout(items, len(peers))
        bar = 0.6
        for i, (lab, speed) in enumerate(items):
            for k, peer in enumerate(peers):
                if peer not in speed:
                    continue
                yy = ys[i] + (k - (len(peers) - 1) / 2) * bar
                v = speed[peer]
                shown = min(max(v, X_MIN), X_MAX)   # beyond the axis: drawn to its edge, labelled with the value
                # from the line at 1 to the value, either side
                ax.barh(yy, abs(shown - 1.0), height=bar * 0.9, left=min(shown, 1.0), color=PEERS[peer][1],
                        zorder=2)
                if X_MIN < v < X_MAX:   # the number printed just outside the value it labels
                    ax.text(v * (1.03 if v >= 1 else 1 / 1.03), yy, f"{v:.2f}", va="center",
                            ha="left" if v >= 1 else "right", fontsize=6.5, color="#222222", zorder=4)
                else:                   # inside the clipped bar, at the axis edge
                    ax.text(shown / 1.03 if v >= 1 else shown * 1.03, yy, f"{v:.3g}", va="center",
                            ha="right" if v >= 1 else "left", fontsize=6.5, color="white", fontweight="bold", zorder=4)
        ax.set_yticks(ys)
        ax.set_yticklabels([lab for lab, _ in items], fontsize=7.5)
        ax.set_ylim(span, 0)
        ax.set_xscale("log")
        ax.set_xlim(X_MIN, X_MAX)
        ax.axvline(1.0, color="black", lw=0.9, zorder=3)
        ax.grid(axis="x", which="major", color="#dddddd", lw=0.6, zorder=0)
        ax.set_title(f"{family}, {threads} thread{'s' if threads > 1 else ''}", loc="left", fontsize=9,
                     fontweight="bold", pad=4)
        ax.tick_params(axis="y", length=0)
        ax.tick_params(axis="x", labelbottom=True, labelsize=7)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    ax = axes[-1, 0]
    ax.xaxis.set_major_locator(FixedLocator([t for t in (1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16) if X_MIN <= t <= X_MAX]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x" if v >= 1 else f"1/{1 / v:g}"))
    ax.tick_params(axis="x", labelsize=8.5)
    ax.set_xlabel("peer time / nnc time (log scale): right of 1 nnc is faster, left of 1 the peer is", fontsize=8.5)
    used = [p for p in PEERS if any(p in peers for peers in peers_of)]
    handles = [plt.Rectangle((0, 0), 1, 1, color=PEERS[p][1]) for p in used]
    names = [PEERS[p][0] + (" (faster layout)" if p == "torch" else "") for p in used]
    fig.legend(handles, names, loc="upper right", ncol=len(names), fontsize=8, frameon=False,
               bbox_to_anchor=(0.99, 1 - 0.5 / fig_h))
    fig.suptitle(title, x=0.01, y=1 - 0.08 / fig_h, ha="left", va="top", fontsize=10)
    fig.subplots_adjust(left=0.3, right=0.95, top=1 - top / fig_h, bottom=bottom / fig_h)
    fig.savefig(out_path, dpi=dpi)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", help="results JSON files, glob patterns or directories")
    ap.add_argument("--date", help="with a directory: the run's date (YYYY-MM-DD; default: the newest)")
    ap.add_argument("--log", help="the run's log, for the CPU and the date in the title "
                                  "(default: <dir>/<date>.log next to the JSON files, if present)")
    ap.add_argument("-o", "--output", default="bench/results.png")
    ap.add_argument("--condition", default="idle", help="machine condition to show (default idle)")
    ap.add_argument("--threads", type=int, help="thread count to show where measured (default: each family's largest)")
    ap.add_argument("--stat", choices=("min", "median"), default="min", help="the statistic compared")
    ap.add_argument("--cpu", help="CPU name for the title (default: the log's)")
    ap.add_argument("--date-label", help="date for the title (default: the log's, else the results')")
    ap.add_argument("--dpi", type=int, default=110)
    args = ap.parse_args(argv)
    stat = "min_ms" if args.stat == "min" else "median_ms"
    paths = expand_inputs(args.inputs, args.date)
    runs = load_runs(paths)
    log = args.log or default_log(paths)
    h = parse_header(log_section(log, runs)) if log else {}
    data = panels(runs, args.condition, args.threads, stat)
    if not data:
        raise SystemExit(f"no row with nnc and a peer under condition {args.condition!r}")
    cpu = args.cpu or h.get("cpu", "")
    date = args.date_label or h.get("date") or min((r["date"] for r in runs if r["date"]), default="")
    where = ", ".join(x for x in (cpu, f"{h['cpus']} CPUs" if "cpus" in h else "", date) if x)
    cond = "idle machine" if args.condition == "idle" else args.condition
    title = (f"nnc speed relative to its peers ({'minimum' if args.stat == 'min' else 'median'} times, {cond})"
             + (f"\n{where}" if where else ""))
    draw(data, title, args.output, args.dpi)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
