"""Compares runs that differ in one option (e.g. --wire-dtype): loss curves and final numbers.

    tools/compare_runs.py BASE.h5 OTHER.h5 [...] [--out DIR] [--label-attr wire_dtype]

The first file is the baseline. For every file it prints a Markdown row: the label (a root
attribute of the metrics file, default wire_dtype), steps, bytes each rank fed into the
all-reduce, final training loss, test accuracy after the last epoch, and how far its per-step loss
curve (mean over ranks) lies from the baseline's: max and mean |difference|, and the largest
difference of a 20-step moving average (the trend, without the step-to-step noise). With --out
it also writes loss_curves.png (the curves, and their difference from the baseline) and
compare.md there. Needs numpy, h5py, matplotlib (Debian: python3-numpy python3-h5py python3-matplotlib).
"""
import argparse
import os
import sys

import numpy as np

from .h5files import FileError, MetricsFile, text


def load(path, label_attr):
    try:
        m = MetricsFile(path)
        acc = m.dataset("epochs", "test_accuracy")
        for key in ("final_train_loss", "comm_bytes_per_rank"):
            if key not in m.summary:
                raise FileError(f"metrics file {path}: no summary attribute '{key}' (not a complete run?)")
        return {
            "path": path,
            "label": text(m.attrs.get(label_attr, os.path.basename(path))),
            "loss": m.timer("loss").mean(axis=1),
            "accuracy": float(acc[-1]) if len(acc) else float("nan"),
            "train_loss": float(m.summary["final_train_loss"]),
            "bytes": float(m.summary["comm_bytes_per_rank"]),
        }
    except FileError as e:
        sys.exit(f"compare_runs: error: {e}")


def moving_average(x, w=20):
    return np.convolve(x, np.ones(w) / w, mode="valid") if len(x) >= w else x


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", help="metrics files; the first is the baseline")
    ap.add_argument("--out", help="folder for loss_curves.png and compare.md")
    ap.add_argument("--label-attr", default="wire_dtype", help="root attribute naming each run")
    a = ap.parse_args()
    runs = [load(p, a.label_attr) for p in a.files]
    base = runs[0]
    rows = ["| run | steps | bytes/rank | final train loss | test accuracy | max abs d-loss | mean abs d-loss | max d(20-step mean) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        n = min(len(r["loss"]), len(base["loss"]))
        d = np.abs(r["loss"][:n] - base["loss"][:n])
        dm = np.abs(moving_average(r["loss"][:n]) - moving_average(base["loss"][:n]))
        rows.append(f"| {r['label']} | {len(r['loss'])} | {r['bytes'] / 1e6:.1f} MB | {r['train_loss']:.4f} | "
                    f"{100 * r['accuracy']:.2f}% | {d.max():.4f} | {d.mean():.5f} | {dm.max():.5f} |")
    table = "\n".join(rows)
    print(table)
    if a.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        os.makedirs(a.out, exist_ok=True)
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True, height_ratios=[2, 1])
        for i, r in enumerate(runs):
            color = f"C{i}"  # the same colour for a run in both panels
            top.plot(moving_average(r["loss"]), color=color, lw=1.2, label=f"{r['label']} ({100 * r['accuracy']:.2f}%)")
            n = min(len(r["loss"]), len(base["loss"]))
            if r is not base:
                bottom.plot(r["loss"][:n] - base["loss"][:n], color=color, lw=0.8, label=f"{r['label']} - {base['label']}")
        top.set_ylabel("training loss (20-step mean)")
        top.legend(title="run (test accuracy)")
        top.grid(alpha=0.3)
        bottom.axhline(0, color="k", lw=0.5)
        bottom.set_xlabel("step")
        bottom.set_ylabel("loss - baseline")
        bottom.legend()
        bottom.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(a.out, "loss_curves.png"), dpi=110)
        with open(os.path.join(a.out, "compare.md"), "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
