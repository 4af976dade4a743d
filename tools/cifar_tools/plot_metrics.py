"""Plots and a Markdown table of a scaling sweep, from its HDF5 metrics files alone.

    tools/plot_metrics.py RESULTS_DIR|RUN.h5 ... [--out DIR] [--target A]
    tools/plot_metrics.py RESULTS_DIR|RUN.h5 ... --compare [--out DIR] [--target A]

Reads the cifar_mpi metrics files named, and every *.h5 metrics file in the folders named (one
per run; tools/scaling_sweep.sh makes such a folder), groups the runs by world size N, takes the smallest N (normally 1) as the
baseline, and writes into --out (default: the first folder named, or the folder of the first file):

    speedup.png                  measured speedup vs ideal, efficiency loss shaded, with a table
    time_breakdown.png           mean step time per N: T_data, T_comp, exposed T_wait, T_update, and
                                 what overlap saved against the run's held-back steps
    baseline_vs_distributed.png  the summary metrics of every N side by side (grouped bars)
    step_distribution.png        per-rank step-time distributions of the largest N (stragglers)
    accuracy_vs_time.png         test accuracy vs wall time (and vs epochs), one line per N; the
                                 target accuracy dashed, each run's first evaluation reaching it circled
    summary.md                   the summary metrics as a Markdown table; with a target, also per N the
                                 time to target and the time-to-accuracy speedup T_target(base) / T_target(N);
                                 then where the speedup goes: ideal x compute per image x compute
                                 share of a step (x epochs to target x the rest), factors whose
                                 product is each speedup

With --compare the runs are not a scaling sweep but variants (strategy, bucket size, overlap,
wire type, link rate; tools/studies/link_sweep.sh makes such a folder): every run is kept, one bar each,
and the outputs are time_breakdown.png (the same stacked bars, labelled by variant),
accuracy_vs_time.png (one line per variant) and compare.md (per run: step time, T_comp, T_comm,
exposed T_wait, with overlap the step without it (the run's held-back steps), the share of T_comm
that overlap took off the step ("hidden", docs/metrics.md) and T_comp's inflation, training time;
with a target, the time to target).

Time to accuracy: runs with --target-accuracy A record every evaluation (evals/: step, epochs,
wall time with and without evaluations, accuracy) and when they reached A (summary/time_to_target:
wall seconds from the start of training, evaluations included). The time-to-target columns appear
when some run has a target; "—" = not reached. --target A measures every run at accuracy A instead,
from its evaluations (the first reaching A). Files written before evals/ existed are read from
epochs/ (one evaluation per epoch, at the cumulative training time) and have no target.

Speedup is measured on the same work: S(N) = T(base) / T(N) for runs that train the same number of
epochs (the same images), computed as the ratio of training throughputs (images/s), which is the
same number then and stays meaningful for runs cut short by --max-steps or stopped at a target
(summary.md calls it the throughput speedup). Efficiency = S(N) / (N / base).
Needs numpy, h5py and matplotlib (Debian: python3-numpy python3-h5py python3-matplotlib).
See docs/metrics.md for the file layout and how to read each plot.
"""
import argparse
import glob
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .h5files import FileError, MetricsFile, is_metrics_file, text  # noqa: E402

DPI = 90
STEP_FIELDS = ("t_data", "t_comp", "t_comm", "t_wait", "t_update")
TARGET_OVERRIDE = None  # --target: the accuracy every run's time to target is measured at
# Configuration keys that must agree for runs to be compared (world size and file name aside).
COMPARED_KEYS = ("epochs", "batch_size", "global_batch", "max_steps", "allreduce", "bucket_mb", "overlap",
                 "threads", "lr", "momentum", "seed", "drop_last", "no_shuffle", "eval", "data_dir",
                 "target_accuracy", "eval_every")


class Run:
    """One metrics file as the plots see it: root attributes, summary attributes, per-step arrays
    [step, rank] and every evaluation (h5files.MetricsFile reads it; files of older builds without
    evals/ give their epoch-end evaluations)."""

    def __init__(self, path):
        m = MetricsFile(path)
        if not m.has("summary"):
            raise FileError(f"metrics file {path}: no summary group (the plots need it)")
        self.path = path
        self.attrs, self.summary, self.epochs = m.attrs, m.summary, m.epochs
        self.steps = m.timers(STEP_FIELDS + ("loss",))
        self.step_epoch = np.asarray(m.dataset("steps", "epoch"))
        self.last_rank, self.skew = m.step_column("last_rank"), m.step_column("skew")
        self.has_evals = m.has_evals()
        self.evals = m.evaluations()
        self.n = m.world_size
        self.oversubscribed = bool(int(self.attrs.get("oversubscribed", 0)))
        self.complete = m.complete
        self.start_time = text(self.attrs.get("start_time", ""))

    @property
    def target(self):
        """The accuracy the run aimed at (fraction), NaN without one; the plotter's --target overrides it."""
        if TARGET_OVERRIDE is not None:
            return TARGET_OVERRIDE
        return float(self.attrs.get("target_accuracy", math.nan))

    def first_eval_reaching(self, target):
        """Index of the first evaluation with accuracy >= target, or None."""
        if math.isnan(target):
            return None
        hit = np.flatnonzero(np.nan_to_num(self.evals["test_accuracy"], nan=-1.0) >= target)
        return int(hit[0]) if hit.size else None

    def to_target(self, what="time_to_target"):
        """time_to_target (s, wall incl. evaluations), time_to_target_train (s), steps_to_target or
        epochs_to_target; NaN when the target was not reached or there is none. The file's summary
        value when it has one for its own target; otherwise the first evaluation reaching it."""
        if TARGET_OVERRIDE is None and what in self.summary and "target_reached" in self.summary:
            if not int(self.summary["target_reached"]):
                return math.nan
            v = float(self.summary[what])
            return math.nan if what == "steps_to_target" and v < 0 else v
        i = self.first_eval_reaching(self.target)
        if i is None:
            return math.nan
        column = {"time_to_target": "wall", "time_to_target_train": "train_time", "steps_to_target": "step",
                  "epochs_to_target": "epoch"}[what]
        return float(self.evals[column][i])

    def config(self, key):
        return text(self.attrs.get("config." + key, ""))

    def s(self, key):
        return float(self.summary[key])

    def overlap(self, key):
        """summary/overlap_<key> (what overlap did to the step, docs/metrics.md); NaN for a file of
        a build without it, 0 for saving/hidden/inflation of a run without overlap."""
        return float(self.summary.get("overlap_" + key, math.nan))

    def saved_ms(self):
        """What overlap took off the step, ms, against the run's held-back steps (0 if none or nothing)."""
        v = self.overlap("saving")
        return 0.0 if math.isnan(v) else max(0.0, 1e3 * v)

    def per_step_mean(self, field):
        """Mean over steps and ranks, seconds."""
        a = self.steps[field]
        return float(a.mean()) if a.size else 0.0


def load_runs(inputs):
    """Runs of the files named and of every *.h5 in the folders named. A file named on the command
    line must be a metrics file (an error otherwise); other files in a folder are skipped with a note."""
    runs = []
    for item in inputs:
        if os.path.isdir(item):
            for path in sorted(glob.glob(os.path.join(item, "*.h5"))):
                if not is_metrics_file(path):
                    print(f"plot_metrics: skipping {path}: not a cifar_mpi metrics file", file=sys.stderr)
                    continue
                try:
                    runs.append(Run(path))
                except FileError as e:
                    print(f"plot_metrics: skipping {path}: {e}", file=sys.stderr)
        elif os.path.exists(item):
            try:
                runs.append(Run(item))
            except FileError as e:
                sys.exit(f"plot_metrics: error: {e}")
        else:
            sys.exit(f"plot_metrics: error: {item}: no such file or folder")
    return runs


def one_per_n(runs):
    """The most recent run of each world size (others are named and left out)."""
    by_n = {}
    for r in sorted(runs, key=lambda r: r.start_time):
        if r.n in by_n:
            print(f"plot_metrics: N={r.n}: using {r.path}, not the older {by_n[r.n].path}", file=sys.stderr)
        by_n[r.n] = r
    return [by_n[n] for n in sorted(by_n)]


def warn_if_not_comparable(runs):
    base = runs[0]
    for r in runs[1:]:
        diff = [k for k in COMPARED_KEYS if r.config(k) != base.config(k)]
        if diff:
            print(f"plot_metrics: warning: {os.path.basename(r.path)} differs from {os.path.basename(base.path)} in "
                  + ", ".join(f"{k} ({base.config(k)} vs {r.config(k)})" for k in diff), file=sys.stderr)
    for r in runs:
        if not r.complete:
            print(f"plot_metrics: warning: {r.path} is from an unfinished run ({len(r.epochs['epoch'])} epoch(s))",
                  file=sys.stderr)


def derive(runs):
    """Per run: speedup, ideal, efficiency against the smallest N."""
    base = runs[0]
    rows = []
    for r in runs:
        ideal = r.n / base.n
        speedup = r.s("images_per_second") / base.s("images_per_second") if base.s("images_per_second") > 0 else math.nan
        rows.append({"run": r, "ideal": ideal, "speedup": speedup, "efficiency": speedup / ideal})
    return rows


def label(r):
    return f"N={r.n}" + ("\n(oversub.)" if r.oversubscribed else "")


def fmt(v, spec):
    """v formatted by spec; a spec ending in % gets the sign appended (v is already in per cent)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return format(v, spec[:-1]) + "%" if spec.endswith("%") else format(v, spec)


# ---- speedup -------------------------------------------------------------------------------

def plot_speedup(rows, out):
    base = rows[0]["run"]
    ns = np.array([row["run"].n for row in rows], dtype=float)
    measured = np.array([row["speedup"] for row in rows])
    ideal = np.array([row["ideal"] for row in rows])
    # Layout in inches: plot, then the table (one row per run), then its caption.
    row_h, plot_h, cap_h = 0.27, 4.2, 0.55
    table_h = row_h * (len(rows) + 1)
    height = 0.45 + plot_h + 0.75 + table_h + cap_h
    fig = plt.figure(figsize=(7.2, height))
    ax = fig.add_axes([0.12, (cap_h + table_h + 0.75) / height, 0.83, plot_h / height])
    hw = int(base.attrs.get("hardware_threads", 0))
    if hw and ns.max() > hw:
        ax.axvspan(hw + 0.5, ns.max() + 0.5, color="0.92", zorder=0)
        ax.text(ns.max() + 0.4, 0.97, f"N > {hw} hardware threads:\noversubscribed", ha="right", va="top",
                fontsize=8, color="0.35", transform=ax.get_xaxis_transform())
    ax.plot(ns, ideal, "--", color="0.3", label=f"ideal (S = N/{base.n})" if base.n != 1 else "ideal (S = N)")
    ax.plot(ns, measured, "o-", color="tab:blue", lw=2, label="measured")
    for row, x, y in zip(rows, ns, measured):
        if row["run"].oversubscribed:
            ax.plot([x], [y], "o", ms=12, mfc="none", mec="tab:red", mew=1.5)
        ax.annotate(f"{y:.2f}x ({100 * row['efficiency']:.0f}%)", (x, y), textcoords="offset points",
                    xytext=(6, -14), fontsize=8)
    ax.fill_between(ns, measured, ideal, where=ideal >= measured, interpolate=True, color="tab:red", alpha=0.18,
                    label="efficiency loss (ideal - measured)")
    if np.any(measured > ideal):
        ax.fill_between(ns, measured, ideal, where=measured > ideal, interpolate=True, color="tab:green",
                        alpha=0.18, label="above ideal")
    if any(row["run"].oversubscribed for row in rows):
        ax.plot([], [], "o", ms=10, mfc="none", mec="tab:red", label="oversubscribed run")
    ax.set_xticks(ns)
    ax.set_xlim(ns.min() - 0.5, ns.max() + 0.5)
    ax.set_ylim(0, max(ideal.max(), np.nanmax(measured)) * 1.15)
    ax.set_xlabel("workers N (MPI ranks)")
    ax.set_ylabel(f"speedup over N={base.n}")
    ax.set_title(f"Speedup, same epochs: {base.config('allreduce')} all-reduce, overlap "
                 f"{'on' if int(base.attrs.get('overlap', 0)) else 'off'}, {int(base.attrs['threads_per_rank'])} "
                 f"thread(s)/rank, batch {int(base.attrs['batch_per_rank'])}/rank", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    tax = fig.add_axes([0.12, cap_h / height, 0.83, table_h / height])
    tax.axis("off")
    cells = [[str(row["run"].n) + (" *" if row["run"].oversubscribed else ""),
              f"{row['run'].s('total_train_time'):.2f}", f"{row['run'].s('images_per_second'):.0f}",
              f"{row['speedup']:.2f}", f"{row['ideal']:.0f}", f"{100 * row['efficiency']:.1f}%"] for row in rows]
    tax.table(cellText=cells, colLabels=["workers", "time (s)", "images/s", "speedup", "ideal", "efficiency"],
              cellLoc="center", bbox=[0, 0, 1, 1])
    fig.text(0.5, cap_h / height - 0.05 / height, "time = training time of the same epochs (evaluation excluded); "
             "speedup = T(base) / T(N), via images/s;\nefficiency = speedup / ideal; * = oversubscribed "
             "(more ranks than hardware threads)", ha="center", va="top", fontsize=8)
    fig.savefig(os.path.join(out, "speedup.png"), dpi=DPI)
    plt.close(fig)


# ---- time breakdown ------------------------------------------------------------------------

def plot_time_breakdown(rows, out, labeler=None):
    labeler = labeler or label
    runs = [row["run"] for row in rows]
    x = np.arange(len(runs))
    ms = lambda r, k: 1e3 * r.per_step_mean(k)  # noqa: E731
    comp = np.array([ms(r, "t_comp") for r in runs])
    wait = np.array([ms(r, "t_wait") for r in runs])
    data = np.array([ms(r, "t_data") for r in runs])
    upd = np.array([ms(r, "t_update") for r in runs])
    saved = np.array([r.saved_ms() for r in runs])
    wall = np.array([1e3 * r.s("avg_iteration_time") for r in runs])
    fig, ax = plt.subplots(figsize=(max(7.2, 0.9 * len(runs) + 1.5), 4.8))
    bottom = np.zeros(len(runs))
    for vals, name, color, hatch in ((comp, "T_comp (forward + backward)", "tab:blue", None),
                                     (wait, "exposed comm (T_wait)", "tab:red", None),
                                     (data, "T_data", "tab:gray", None),
                                     (upd, "T_update", "tab:olive", None),
                                     (saved, "saved by overlap (against the run's held-back steps)", "white",
                                      "//")):
        ax.bar(x, vals, 0.55, bottom=bottom, label=name, color=color, hatch=hatch,
               edgecolor="tab:red" if hatch else "none", lw=0.8)
        bottom += vals
    ax.hlines(wall, x - 0.34, x + 0.34, colors="k", lw=2, label="measured iteration time (epoch wall / steps)")
    for xi, c, w, top in zip(x, comp, wait, np.maximum(bottom, wall)):
        ax.text(xi, top * 1.02, f"comp {c:.1f}\nwait {w:.1f}", ha="center", va="bottom", fontsize=7.5)
    ax.set_xticks(x, [labeler(r) for r in runs], fontsize=7.5 if len(runs) > 6 else None)
    ax.set_ylabel("ms per step (mean over steps and ranks)")
    ax.set_ylim(0, max(bottom.max(), wall.max()) * 1.3)
    ax.set_title("Where a step's time goes: compute vs communication", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "time_breakdown.png"), dpi=DPI)
    plt.close(fig)


# ---- baseline vs distributed ---------------------------------------------------------------

PANELS = (("total_train_time", "training time (s)", 1.0, ".2f"),
          ("images_per_second", "images/s (all ranks)", 1.0, ".0f"),
          ("avg_iteration_time", "avg iteration time (ms)", 1e3, ".1f"),
          ("total_comp_time", "total T_comp (s)", 1.0, ".1f"),
          ("total_comm_time", "total T_comm (s)", 1.0, ".2f"),
          ("total_wait_time", "exposed T_wait (s)", 1.0, ".2f"),
          ("comm_calls_per_epoch", "comm calls / epoch", 1.0, ".0f"),
          ("compute_to_comm_ratio", "compute : comm", 1.0, ".2f"))


def plot_baseline_vs_distributed(rows, out):
    runs = [row["run"] for row in rows]
    colors = ["0.55"] + [plt.cm.viridis(0.25 + 0.6 * i / max(1, len(runs) - 2)) for i in range(len(runs) - 1)]
    fig, axes = plt.subplots(2, 4, figsize=(10.5, 5.2))
    x = np.arange(len(runs))
    for ax, (key, title, scale, spec) in zip(axes.flat, PANELS):
        vals = np.array([r.s(key) * scale for r in runs])
        shown = np.nan_to_num(vals, nan=0.0)
        bars = ax.bar(x, shown, 0.7, color=colors, hatch=None)
        for b, r in zip(bars, runs):
            if r.oversubscribed:
                b.set_hatch("..")
                b.set_edgecolor("white")
        for xi, v in zip(x, vals):
            ax.text(xi, (0 if math.isnan(v) else v), fmt(float(v), spec), ha="center", va="bottom", fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(x, [f"N={r.n}" for r in runs], fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        top = np.nanmax(shown) if shown.size else 0
        ax.set_ylim(0, top * 1.2 if top > 0 else 1)
    fig.suptitle(f"Baseline (N={runs[0].n}, grey) vs distributed runs; dotted = oversubscribed; "
                 "per-rank totals are means over ranks", fontsize=9.5)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(os.path.join(out, "baseline_vs_distributed.png"), dpi=DPI)
    plt.close(fig)


# ---- per-rank step distribution ------------------------------------------------------------

def plot_step_distribution(rows, out):
    r = rows[-1]["run"]
    st = r.steps
    total = 1e3 * (st["t_data"] + st["t_comp"] + st["t_wait"] + st["t_update"])  # [step, rank], ms
    comp, wait = 1e3 * st["t_comp"], 1e3 * st["t_wait"]
    body = slice(1, None) if total.shape[0] > 1 else slice(None)  # step 1 is warm-up (primitive creation)
    ranks = np.arange(r.n)
    fig, axes = plt.subplots(1, 3, figsize=(11.5, 4.4), gridspec_kw={"width_ratios": [1, 1.3, 1.5]})

    def clip_top(ax, *arrays):
        """A y range for the boxes; rare outliers (a batch size's first use) are counted, not drawn."""
        his = []
        for a in arrays:
            v = a[body].ravel() if a.size else np.zeros(1)
            q1, q3 = np.percentile(v, [25, 75])
            his.append(min(v.max(), q3 + 4 * max(q3 - q1, 1e-3)))
        hi = max(his)
        vals = np.concatenate([a[body].ravel() for a in arrays]) if total.size else np.zeros(1)
        ax.set_ylim(0, hi * 1.1)
        n_out = int((vals > hi * 1.1).sum())
        if n_out:
            ax.text(0.98, 0.98, f"{n_out} outlier(s) above the axis", transform=ax.transAxes, ha="right",
                    va="top", fontsize=7, color="0.4")

    ax = axes[0]
    ax.boxplot([total[body, k] for k in ranks], labels=[str(k) for k in ranks], showmeans=True,
               flierprops={"markersize": 3, "alpha": 0.5})
    clip_top(ax, total)
    ax.set_xlabel("rank")
    ax.set_ylabel("ms")
    ax.set_title("step time per rank\n(T_data + T_comp + T_wait + T_update)", fontsize=9)

    ax = axes[1]
    w = 0.35
    b1 = ax.boxplot([comp[body, k] for k in ranks], positions=ranks - w / 2, widths=w * 0.9, patch_artist=True,
                    flierprops={"markersize": 3, "alpha": 0.5})
    b2 = ax.boxplot([wait[body, k] for k in ranks], positions=ranks + w / 2, widths=w * 0.9, patch_artist=True,
                    flierprops={"markersize": 3, "alpha": 0.5})
    for patch in b1["boxes"]:
        patch.set_facecolor("tab:blue")
        patch.set_alpha(0.6)
    for patch in b2["boxes"]:
        patch.set_facecolor("tab:red")
        patch.set_alpha(0.6)
    ax.set_xticks(ranks, [str(k) for k in ranks])
    clip_top(ax, comp, wait)
    ax.legend([b1["boxes"][0], b2["boxes"][0]], ["T_comp", "T_wait"], fontsize=8, loc="upper left")
    med = np.median(comp[body], axis=0) if comp.size else np.zeros(r.n)
    slow = int(np.argmax(med))
    ax.set_xlabel("rank")
    ax.set_title(f"compute vs wait per rank: slowest compute on rank {slow}\n"
                 f"(median T_comp {med[slow]:.1f} ms vs {med.min():.1f} ms fastest)", fontsize=9)

    ax = axes[2]
    steps = np.arange(1, total.shape[0] + 1)
    for k in ranks:
        ax.plot(steps, total[:, k], lw=0.7, alpha=0.8, label=f"rank {k}")
    starts = np.flatnonzero(np.diff(r.step_epoch)) + 1.5  # between an epoch's last step and the next's first
    for b in starts:
        ax.axvline(b, color="0.6", ls=":", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("step" + (" (dotted: epoch boundaries)" if starts.size else ""))
    ax.set_ylabel("ms (log)")
    ax.set_title("step time over the run, every rank", fontsize=9)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    ax.grid(alpha=0.3)
    fig.suptitle(f"Per-step time distribution, N={r.n}" + (" (oversubscribed)" if r.oversubscribed else "")
                 + f", {total.shape[0]} steps; boxes leave out step 1 (warm-up)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(os.path.join(out, "step_distribution.png"), dpi=DPI)
    plt.close(fig)


# ---- accuracy vs time ----------------------------------------------------------------------

def plot_accuracy_vs_time(runs, out, labeler=None):
    """Test accuracy against wall time (left) and epochs (right), one line per run; each run's target
    dashed, its first evaluation reaching it circled."""
    labeler = labeler or (lambda r: f"N={r.n}" + (" (oversub.)" if r.oversubscribed else ""))
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.6), gridspec_kw={"width_ratios": [1.35, 1]})
    colors = [plt.cm.viridis(0.1 + 0.75 * i / max(1, len(runs) - 1)) for i in range(len(runs))]
    drawn = False
    for r, color in zip(runs, colors):
        ev = r.evals
        ok = np.isfinite(ev["test_accuracy"])
        if not ok.any():
            continue
        drawn = True
        name = labeler(r).replace("\n", ", ")
        t = r.to_target("time_to_target")
        if not math.isnan(r.target):
            name += f": target at {t:.3g} s" if not math.isnan(t) else ": target not reached"
        for ax, x in ((axes[0], ev["wall"]), (axes[1], ev["epoch"])):
            ax.plot(x[ok], 100 * ev["test_accuracy"][ok], "o-", ms=3, lw=1.5, color=color,
                    label=name if ax is axes[0] else None)
        i = r.first_eval_reaching(r.target)
        if i is not None:
            for ax, x in ((axes[0], ev["wall"]), (axes[1], ev["epoch"])):
                ax.plot([x[i]], [100 * ev["test_accuracy"][i]], "o", ms=11, mfc="none", mec=color, mew=2)
            axes[0].annotate(f"{ev['wall'][i]:.3g} s", (ev["wall"][i], 100 * ev["test_accuracy"][i]),
                             textcoords="offset points", xytext=(6, -14), fontsize=8, color=color)
            axes[1].annotate(f"{ev['epoch'][i]:.2f} ep", (ev["epoch"][i], 100 * ev["test_accuracy"][i]),
                             textcoords="offset points", xytext=(6, -14), fontsize=8, color=color)
    targets = sorted({r.target for r in runs if not math.isnan(r.target)})
    for tgt in targets:
        for ax in axes:
            ax.axhline(100 * tgt, ls="--", color="tab:red", lw=1.2,
                       label=(f"target {100 * tgt:g}%" if ax is axes[0] else None))
    if not drawn:
        for ax in axes:
            ax.text(0.5, 0.5, "no evaluations recorded\n(--no-eval?)", ha="center", va="center",
                    transform=ax.transAxes, color="0.4")
    axes[0].set_xlabel("wall time since the start of training (s, evaluations included)")
    axes[1].set_xlabel("epochs trained")
    for ax in axes:
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    for ax in axes:  # room on the right for the crossing's label
        lo, hi = ax.get_xlim()
        ax.set_xlim(0, hi + 0.06 * (hi - min(lo, 0)))
    if drawn or targets:
        axes[0].legend(fontsize=7.5, loc="lower right")
    axes[0].set_title("Time to accuracy: test accuracy vs wall time", fontsize=9.5)
    axes[1].set_title("per epoch (statistical efficiency: more ranks = bigger global batch)", fontsize=9.5)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "accuracy_vs_time.png"), dpi=DPI)
    plt.close(fig)


def time_to_accuracy_rows(rows):
    """Adds time to target and the time-to-accuracy speedup T_target(base) / T_target(N) to each row."""
    base_t = rows[0]["run"].to_target("time_to_target")
    for row in rows:
        t = row["run"].to_target("time_to_target")
        row["time_to_target"] = t
        row["tta_speedup"] = base_t / t if not (math.isnan(t) or math.isnan(base_t)) and t > 0 else math.nan
    return rows


def speedup_factors(rows):
    """Where each N's speedup goes, as factors whose product is the speedup (exactly, by construction):

        throughput speedup = ideal (N / base) x compute per image (c_base / c_N)
                             x compute share (share_N / share_base)
        time-to-accuracy speedup = throughput speedup x epochs to target (e_base / e_N) x the rest

    c = a rank's T_comp per image it trains (total_comp_time / (images / N)): below 1 when a rank
    computes an image slower beside the others (shared cache, memory, a busy host) or when its
    smaller batch is less efficient. share = total_comp_time / total_train_time, the step's share
    spent computing: below 1 when waiting for the other ranks, communication, data and update take a
    larger share at N. e = epochs to target: below 1 when the bigger global batch needs more epochs.
    The rest: what lies outside the training steps up to the target (evaluations, which shrink with
    N only as far as they are split across ranks) and how the throughput up to the target differs
    from the whole run's."""
    base = rows[0]["run"]

    def total(r, field):  # a rank's total of a step time, the mean over ranks (as the summary's totals)
        a = r.steps[field]
        return float(a.sum(axis=0).mean()) if a.size else 0.0

    def per_image(r):
        return total(r, "t_comp") / (r.s("images") / r.n) if r.s("images") > 0 else math.nan

    def share(r):
        return total(r, "t_comp") / r.s("total_train_time") if r.s("total_train_time") > 0 else math.nan

    for row in rows:
        r = row["run"]
        row["f_compute"] = per_image(base) / per_image(r)
        row["f_share"] = share(r) / share(base)
        row["outside"] = {k: total(r, "t_" + k) / r.s("total_train_time") for k in ("wait", "data", "update")} \
            if r.s("total_train_time") > 0 else {}
        e_base, e = base.to_target("epochs_to_target"), r.to_target("epochs_to_target")
        row["f_epochs"] = e_base / e if e > 0 else math.nan
        tta = row.get("tta_speedup", math.nan)
        row["f_rest"] = tta / (row["speedup"] * row["f_epochs"]) if row["speedup"] * row["f_epochs"] > 0 else math.nan
    return rows


def has_target(runs):
    return any(not math.isnan(r.target) for r in runs)


def dash(v, spec):
    """v formatted, or an em dash when not reached (NaN)."""
    return "—" if v is None or math.isnan(v) else format(v, spec)


# ---- Markdown -------------------------------------------------------------------------------

def write_summary_md(rows, out):
    base = rows[0]["run"]
    a = base.attrs
    tta = has_target([row["run"] for row in rows])
    lines = [
        "# Scaling sweep summary",
        "",
        f"Host(s) `{text(a.get('hosts', '?'))}`, {int(a.get('hardware_threads', 0))} hardware threads; "
        f"{int(a['threads_per_rank'])} thread(s) per rank; all-reduce `{text(a['strategy'])}`, "
        f"bucket {'auto' if float(a['bucket_mb']) == 0 else format(float(a['bucket_mb']), 'g')} MB, overlap {'on' if int(a.get('overlap', 0)) else 'off'}; "
        f"per-rank batch {int(a['batch_per_rank'])}; {int(a['parameter_count'])} parameters "
        f"({int(a['gradient_bytes'])} gradient bytes); commit `{text(a.get('git_commit', '?'))}`.",
        "",
        "| N | oversubscribed | epochs (steps) | training time (s) | images/s | avg iteration time (ms) "
        "| comm calls / epoch | total comm time (s) | exposed wait (s) | compute : comm | throughput speedup (images/s) "
        "| efficiency |" + (" time to target (s) | epochs to target | time-to-accuracy speedup |" if tta else ""),
        "|---:|:---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if tta else ""),
    ]
    for row in rows:
        r = row["run"]
        lines.append(
            f"| {r.n} | {'yes' if r.oversubscribed else 'no'} | {int(r.summary['epochs'])} ({int(r.summary['steps'])}) "
            f"| {r.s('total_train_time'):.3f} | {r.s('images_per_second'):.1f} | {1e3 * r.s('avg_iteration_time'):.3f} "
            f"| {r.s('comm_calls_per_epoch'):.1f} | {r.s('total_comm_time'):.3f} | {r.s('total_wait_time'):.3f} "
            f"| {fmt(r.s('compute_to_comm_ratio'), '.2f')} | {row['speedup']:.3f} | {100 * row['efficiency']:.1f}% |"
            + (f" {dash(row['time_to_target'], '.3f')} | {dash(r.to_target('epochs_to_target'), '.2f')} "
               f"| {dash(row['tta_speedup'], '.3f')} |" if tta else ""))
    lines += [
        "",
        f"Throughput speedup = T({base.n}) / T(N) for the same epochs (the same images; the per-rank batch is "
        "fixed, so N ranks take 1/N of the steps), computed as the ratio of images/s; efficiency = throughput "
        f"speedup / (N / {base.n}). Training time excludes evaluation. Comm and wait times are per-rank totals "
        "averaged over the ranks; compute : comm = total T_comp / total T_comm (n/a without communication). "
        "Oversubscribed = more ranks on a node than hardware threads.",
    ]
    if tta:
        targets = ", ".join(sorted({f"{100 * row['run'].target:g}%" for row in rows
                                    if not math.isnan(row["run"].target)}))
        lines += [
            "",
            f"Target test accuracy {targets}. Time to target = wall time from the start of training to the first "
            "evaluation reaching it, evaluations included; time-to-accuracy speedup = T_target"
            f"({base.n}) / T_target(N), the speedup that counts for training to a given accuracy: it is lower than "
            "the throughput speedup when more ranks (a bigger global batch) need more epochs, or when the "
            "evaluations, which do not shrink with N, take a larger share. — = target not reached.",
        ]
    lines += [
        "",
        "Where the speedup goes: each factor multiplies the ideal N / base; their product is the speedup "
        "(throughput" + (", then time to accuracy" if tta else "") + "):",
        "",
        "| N | ideal | x compute per image | x compute share of a step (outside compute: wait, data, update) "
        "| = throughput speedup |" + (" x epochs to target | x evaluations and the rest | = time-to-accuracy speedup |"
                                      if tta else ""),
        "|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if tta else ""),
    ]
    for row in speedup_factors(rows):
        o = row["outside"]
        outside = ", ".join(f"{100 * o[k]:.1f}%" for k in ("wait", "data", "update")) if o else "n/a"
        lines.append(f"| {row['run'].n} | {row['ideal']:.3g} | {fmt(row['f_compute'], '.3f')} "
                     f"| {fmt(row['f_share'], '.3f')} ({outside}) | {row['speedup']:.3f} |"
                     + (f" {dash(row['f_epochs'], '.3f')} | {dash(row['f_rest'], '.3f')} | {dash(row['tta_speedup'], '.3f')} |"
                        if tta else ""))
    lines += [
        "",
        "Compute per image = T_comp per image on one rank, base over N: below 1 when ranks computing side by "
        "side slow each other (shared cache and memory, a busy host) or a smaller per-rank batch is less "
        "efficient; no all-reduce can win it back. Compute share = the part of a step spent computing, N over "
        "base: what waiting for the slowest rank, communication, data and the update cost. "
        + ("Epochs to target = base over N: what a bigger global batch costs in samples. Evaluations and the "
           "rest = what remains (evaluations, split across the ranks, and the throughput before the target "
           "against the whole run's). " if tta else ""),
        "",
        "Per-step means (ms, over steps and ranks):",
        "",
        "| N | T_data | T_comp | T_comm | exposed T_wait | saved by overlap | T_update | iteration (wall) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        r = row["run"]
        lines.append(f"| {r.n} | " + " | ".join(f"{1e3 * r.per_step_mean(k):.2f}" for k in
                                                   ("t_data", "t_comp", "t_comm", "t_wait"))
                     + f" | {r.saved_ms():.2f} | {1e3 * r.per_step_mean('t_update'):.2f} "
                     f"| {1e3 * r.s('avg_iteration_time'):.2f} |")
    lines += ["", "Files: " + ", ".join(f"`{os.path.basename(row['run'].path)}`" for row in rows), ""]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines))


# ---- variants (--compare) -------------------------------------------------------------------

def meta(r, key, default="?"):
    return text(r.attrs.get("meta." + key, default))


def strategy_name(r):
    """the strategy, with the ring's layout when it is not the default hierarchical one"""
    s = text(r.attrs["strategy"])
    return s + " flat" if s == "ring" and text(r.attrs.get("config.ring_layout", "hosts")) == "flat" else s


def model_name(r):
    """--model of the run (files of builds before the option trained the reference CNN)"""
    return text(r.attrs.get("config.model", "simplecnn")) or "simplecnn"


def variant_label(r):
    topo = f"{meta(r, 'hosts')}x{meta(r, 'ranks_per_host')}" if "meta.hosts" in r.attrs else f"N={r.n}"
    wire = text(r.attrs.get("wire_dtype", "fp32"))
    batch = int(r.attrs["batch_per_rank"])
    return (("" if model_name(r) == "simplecnn" else model_name(r) + " ")
            + f"{topo} {meta(r, 'link_rate', '')}\n{strategy_name(r)} {int(r.attrs['buckets'])}b"
            + ("" if batch == 128 else f" B{batch}") + "\n"
            f"overlap {'on' if int(r.attrs.get('overlap', 0)) else 'off'}" + ("" if wire == "fp32" else f"\n{wire}")
            + (f"\nranks {meta(r, 'rank_order')}" if "meta.rank_order" in r.attrs else ""))


def variant_key(r):
    return (model_name(r), r.n, meta(r, "link_rate", ""), meta(r, "hosts", ""), strategy_name(r), int(r.attrs["buckets"]),
            int(r.attrs.get("overlap", 0)), text(r.attrs.get("wire_dtype", "fp32")), meta(r, "rank_order", ""),
            int(r.attrs["batch_per_rank"]))


def run_name(r, runs):
    """the file's name, with its folder's when another run of the table has the same name"""
    base = os.path.basename(r.path)
    if sum(os.path.basename(o.path) == base for o in runs) > 1:
        return os.path.join(os.path.basename(os.path.dirname(os.path.abspath(r.path))), base)
    return base


def write_compare_md(runs, out):
    tta = has_target(runs)
    lines = ["| run | model | N | hosts x ranks | link | strategy | buckets | overlap | wire | batch/rank | steps | step (ms) | T_comp (ms) "
             "| T_comm (ms) | exposed T_wait (ms) | without overlap (ms) | hidden | T_comp inflation | training time (s) |"
             + (" time to target (s) |" if tta else ""),
             "|---|---|---:|---|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if tta else "")]
    for r in runs:
        comm = r.per_step_mean("t_comm")
        lines.append(
            f"| `{run_name(r, runs)}` | {model_name(r)} | {r.n} | {meta(r, 'hosts', '1')} x {meta(r, 'ranks_per_host', r.n)} "
            f"| {meta(r, 'link_rate', 'shared memory')} | {strategy_name(r)} | {int(r.attrs['buckets'])} "
            f"| {'on' if int(r.attrs.get('overlap', 0)) else 'off'} | {text(r.attrs.get('wire_dtype', 'fp32'))} "
            f"| {int(r.attrs['batch_per_rank'])} | {int(r.summary['steps'])} | {1e3 * r.s('avg_iteration_time'):.1f} | {1e3 * r.per_step_mean('t_comp'):.1f} "
            f"| {1e3 * comm:.1f} | {1e3 * r.per_step_mean('t_wait'):.1f} "
            f"| {fmt(1e3 * r.overlap('no_overlap_step'), '.1f')} | {fmt(100 * r.overlap('hidden'), '.0f%')} "
            f"| {fmt(100 * r.overlap('comp_inflation'), '+.0f%')} | {r.s('total_train_time'):.2f} |"
            + (f" {dash(r.to_target('time_to_target'), '.2f')} |" if tta else ""))
    lines += ["", "Per-step means over steps and ranks. Without overlap, hidden and T_comp inflation: from the run's "
              "own held-back steps (summary/overlap_*, docs/metrics.md): the step without overlap = their T_data + "
              "T_update + T_comp + T_comm; hidden = max(0, that - the overlapped step) / their T_comm, so a slower "
              "step never shows more; T_comp inflation = T_comp overlapped / held back - 1. n/a for files of builds "
              "before the figure."
              + (" Time to target = wall time from the start of training to the first evaluation reaching the "
                 "target accuracy, evaluations included (— = not reached)." if tta else ""), ""]
    with open(os.path.join(out, "compare.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


# ---- who was late: per-rank lateness at the first gradient reduction --------------------------

def plot_lateness(rows, out):
    """lateness.png for the largest N: how often each rank arrived last at a step's first gradient
    reduction, and how long the others waited for it (steps/last_rank and steps/skew; a step's
    latecomer is the last_rank of the rank that waited longest). Skipped for files without them."""
    r = rows[-1]["run"]
    if r.last_rank is None or r.skew is None or r.n < 2:
        return
    last = np.asarray(r.last_rank)
    skew = 1e3 * np.asarray(r.skew, dtype=np.float64)  # [step, rank], ms
    if last.size == 0:
        return
    waiter = np.argmax(skew, axis=1)
    late = last[np.arange(last.shape[0]), waiter]
    waited = skew[np.arange(skew.shape[0]), waiter]
    ranks = np.arange(r.n)
    count = np.array([(late == k).sum() for k in ranks])
    total = np.array([waited[late == k].sum() for k in ranks])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].bar(ranks, count, color="tab:orange")
    axes[0].set_xlabel("rank")
    axes[0].set_ylabel("steps")
    axes[0].set_title("steps at which the rank arrived last", fontsize=9)
    axes[1].bar(ranks, total / 1e3, color="tab:red")
    axes[1].set_xlabel("rank")
    axes[1].set_ylabel("s")
    axes[1].set_title("time the others waited for it (longest wait per step)", fontsize=9)
    for ax in axes:
        ax.set_xticks(ranks, [str(k) for k in ranks])
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"Who was late at the first gradient reduction, N={r.n}, {last.shape[0]} steps "
                 f"(median longest wait {np.median(waited):.2f} ms)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(os.path.join(out, "lateness.png"), dpi=DPI)
    plt.close(fig)
    print(os.path.join(out, "lateness.png"))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", metavar="RESULTS_DIR|RUN.h5",
                   help="cifar_mpi metrics files, or folders of them (*.h5)")
    p.add_argument("--out", help="where the PNGs and summary.md go (default: the first folder named, or the "
                   "folder of the first file)")
    p.add_argument("--compare", action="store_true", help="variants, not a scaling sweep: one bar per run")
    p.add_argument("--target", type=float, metavar="A",
                   help="measure time to accuracy A (fraction, e.g. 0.6) from the runs' evaluations, instead "
                   "of each file's own target_accuracy")
    args = p.parse_args()
    if args.target is not None:
        if not 0 < args.target <= 1:
            sys.exit(f"plot_metrics: error: --target {args.target}: not an accuracy fraction in (0, 1]")
        global TARGET_OVERRIDE
        TARGET_OVERRIDE = args.target
    first = args.inputs[0]
    out = args.out or (first if os.path.isdir(first) else os.path.dirname(os.path.abspath(first)))
    runs = load_runs(args.inputs)
    if not runs:
        sys.exit(f"plot_metrics: error: no cifar_mpi metrics files (*.h5) in {' '.join(args.inputs)}")
    # --out names where everything goes: a path that cannot be (or is not) a writable folder, such as
    # an existing file or a read-only file system, is the user's mistake, not a crash.
    where = f"--out {out}" if args.out else f"the output folder {out}"
    try:
        os.makedirs(out, exist_ok=True)
    except FileExistsError:
        sys.exit(f"plot_metrics: error: {where}: exists and is not a folder")
    except OSError as e:
        sys.exit(f"plot_metrics: error: {where}: cannot create it ({e.strerror})")
    try:
        write_outputs(args, runs, out)
    except OSError as e:
        sys.exit(f"plot_metrics: error: {where}: cannot write {e.filename or 'into it'} ({e.strerror})")


def write_outputs(args, runs, out):
    """The plots and the Markdown table into the folder out (which exists); prints their paths."""
    if args.compare:
        runs = sorted(runs, key=variant_key)
        plot_time_breakdown([{"run": r} for r in runs], out, labeler=variant_label)
        plot_accuracy_vs_time(runs, out, labeler=variant_label)
        write_compare_md(runs, out)
        for name in ("time_breakdown.png", "accuracy_vs_time.png", "compare.md"):
            print(os.path.join(out, name))
        return
    runs = one_per_n(runs)
    warn_if_not_comparable(runs)
    rows = time_to_accuracy_rows(derive(runs))
    plot_speedup(rows, out)
    plot_time_breakdown(rows, out)
    plot_baseline_vs_distributed(rows, out)
    plot_step_distribution(rows, out)
    plot_accuracy_vs_time(runs, out)
    plot_lateness(rows, out)
    write_summary_md(rows, out)
    for name in ("speedup.png", "time_breakdown.png", "baseline_vs_distributed.png", "step_distribution.png",
                 "accuracy_vs_time.png", "summary.md"):
        print(os.path.join(out, name))


if __name__ == "__main__":
    main()
