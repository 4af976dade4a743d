"""Time to accuracy and bytes per step of plain all-reduce, bf16 on the wire, PowerSGD and local SGD
across link rates, from the metrics files of tools/studies/send_less_sweep.sh (or any runs of the
time-to-accuracy recipe on simulated hosts: the method is read from config.compress,
config.local_sgd and config.wire_dtype, the rate from meta.link_rate).

    PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.send_less_sweep DIR [--target 0.70] [--out DIR]

Writes send_less.md (a table per rate: time to the target (evaluations included), its ratio to
plain fp32 at that rate, bytes per step sent by rank 0, final accuracy) and send_less.png (time to
target and bytes per step against the link rate). Exit 2 on a bad input (one line naming the file)."""
import argparse
import glob
import math
import os
import sys

import numpy as np

from .h5files import FileError, MetricsFile, is_metrics_file

RATES = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}


def rate_bps(label):
    for unit, v in RATES.items():
        if label.endswith(unit):
            return float(label[: -len(unit)]) * v
    return math.nan


def method(m):
    c = m.config
    if c.get("compress", "none") != "none":
        return f"PowerSGD R={c.get('compress_rank', '4')}"
    if c.get("local_sgd", "0") not in ("0", ""):
        return f"local SGD K={c['local_sgd']}"
    return "bf16" if c.get("wire_dtype") == "bf16" else "plain fp32"


def row(path, target):
    m = MetricsFile(path)
    ev = m.evaluations()
    acc = np.asarray(ev["test_accuracy"], dtype=float)
    hit = np.nonzero(acc >= target)[0]
    t = float(ev["wall"][hit[0]]) if len(hit) else math.nan
    b = m.step_column("comm_bytes")
    b = np.array([]) if b is None else (np.asarray(b)[:, 0] if np.ndim(b) == 2 else np.asarray(b))
    steps = len(b)
    start = int(m.config.get("compress_start", "0")) if m.config.get("compress_start", "auto") != "auto" else \
        (int(m.attrs.get("steps_per_epoch", 0)) + 9) // 10
    later = b[start:] if steps > start else b
    # Mean timers (rank 0) over the steps after the start (and after 40: warm-up), up to 780.
    lo, hi = max(start, 40), min(steps, 780)
    means = {}
    for k in ("t_data", "t_comp", "t_comm", "t_wait", "t_update"):
        col = m.step_column(k)
        col = np.asarray(col)[:, 0] if col is not None and np.ndim(col) == 2 else np.asarray(col if col is not None else [])
        means[k] = float(np.mean(col[lo:hi])) if hi > lo and len(col) >= hi else math.nan
    means["step"] = means["t_data"] + means["t_comp"] + means["t_wait"] + means["t_update"]
    return {**means,"file": os.path.basename(path), "rate": m.meta.get("link_rate", "?"), "method": method(m),
            "time": t, "bytes": float(np.mean(later)) if len(later) else math.nan,
            "final": float(acc[-1]) if len(acc) else math.nan, "evals": len(acc), "steps": steps}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="send_less_sweep", description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", metavar="DIR")
    ap.add_argument("--target", type=float, default=0.70)
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-plots", action="store_true")
    a = ap.parse_args(argv)
    paths = sorted(p for d in a.dirs for p in glob.glob(os.path.join(d, "*.h5")) if is_metrics_file(p))
    if not paths:
        print(f"send_less_sweep: error: no metrics files in {' '.join(a.dirs)}", file=sys.stderr)
        return 2
    try:
        rows = [row(p, a.target) for p in paths]
    except FileError as e:
        print(f"send_less_sweep: error: {e}", file=sys.stderr)
        return 2
    out = a.out or a.dirs[0]
    md = [f"# Sending less: time to {100 * a.target:.0f}% and bytes per step", ""]
    order = ["plain fp32", "bf16"]
    for rate in sorted({r["rate"] for r in rows}, key=rate_bps):
        here = sorted((r for r in rows if r["rate"] == rate),
                      key=lambda r: (order.index(r["method"]) if r["method"] in order else 2, r["method"], r["file"]))
        base = [r["time"] for r in here if r["method"] == "plain fp32" and not math.isnan(r["time"])]
        md += [f"## {rate}", "", "| run | method | time to target (s) | vs plain | bytes/step (rank 0, after the "
               "start) | step, compute, T_comm, T_wait (ms, mean) | final accuracy | steps |",
               "|---|---|---|---|---|---|---|---|"]
        for r in here:
            ratio = f"{r['time'] / min(base):.2f}x" if base and not math.isnan(r["time"]) else "-"
            t = "not reached" if math.isnan(r["time"]) else f"{r['time']:.1f}"
            ms = ", ".join(f"{1e3 * r[k]:.1f}" for k in ("step", "t_comp", "t_comm", "t_wait"))
            md.append(f"| {r['file']} | {r['method']} | {t} | {ratio} | {r['bytes']:,.0f} | {ms} | "
                      f"{100 * r['final']:.2f}% | {r['steps']} |")
        md.append("")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "send_less.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    if not a.no_plots:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        for meth in sorted({r["method"] for r in rows}):
            pts = sorted((rate_bps(r["rate"]), r["time"], r["bytes"]) for r in rows if r["method"] == meth)
            xs = [p[0] / 1e6 for p in pts]
            ax1.plot(xs, [p[1] for p in pts], "o-", label=meth)
            ax2.plot(xs, [p[2] for p in pts], "o-", label=meth)
        for ax, what in ((ax1, f"time to {100 * a.target:.0f}% (s)"), (ax2, "bytes sent per step (rank 0)")):
            ax.set_xscale("log")
            ax.set_xlabel("link rate (Mbit/s)")
            ax.set_ylabel(what)
            ax.grid(True, alpha=0.3)
        ax2.set_yscale("log")
        ax1.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out, "send_less.png"), dpi=110)
        print(f"wrote {os.path.join(out, 'send_less.md')}, {os.path.join(out, 'send_less.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
