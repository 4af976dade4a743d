"""The command line: arguments, inputs (bench CSVs and metrics files, or folders of them), then fits,
predictions and extrapolation in that order. Exit 0; 1 with --strict if a prediction is flagged;
2 on bad input (one line naming the file)."""
import argparse
import glob
import math
import os
import re
import types

from ..h5files import FileError, is_metrics_file
from .bench import BENCH_NAME_RE, load_bench
from .common import PROG, InputError, die, parse_rate, warn
from .extrapolate import baseline, curves, fitted_alpha, pick_model
from .fit import PooledRing
from .model import read_layer_times
from . import plots, report
from .runs import Run


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, like the input errors
        die(f"{message} (see --help)")


def parse_args(argv):
    ap = _Parser(
        prog=PROG, description="alpha-beta cost model of cifar_mpi's all-reduce strategies and step "
        "(docs/cost_model.md)", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="bench file names: bench-<link>-np<N>[-rph<R>].csv, <link> = tc rate (1gbit, 100mbit) or "
        "a label (loopback, none); or --bench LINK=FILE")
    ap.add_argument("dirs", nargs="*", metavar="DIR",
                    help="folder: every bench-*-np*.csv and *.h5 in it")
    ap.add_argument("--bench", action="append", default=[], metavar="[LINK=]FILE",
                    help="allreduce_bench CSV (repeatable); LINK= overrides the link of the file name")
    ap.add_argument("--metrics", action="append", default=[], metavar="FILE|DIR",
                    help="cifar_mpi metrics file, or a folder of them (repeatable)")
    ap.add_argument("--out", metavar="DIR", help="output folder (default: first DIR, else the folder "
                    "of the first bench file)")
    ap.add_argument("--fit-bytes", default="1:4194304", metavar="MIN:MAX",
                    help="bench rows used by the fits, by size_bytes (default 1:4194304)")
    ap.add_argument("--split-bytes", type=float, default=131072, metavar="B",
                    help="two-stage fit: latency from rows below B bytes, rate from rows at or above "
                    "(default 131072, the simulated links' tbf burst); 0: one joint fit")
    ap.add_argument("--compute", choices=("max", "mean", "n1"), default="max",
                    help="per-step compute of a prediction: slowest rank (default), mean over ranks, "
                    "or the N=1 run's mean step")
    ap.add_argument("--default-link", default=None, metavar="LABEL",
                    help="link of metrics files without meta.link_rate (default loopback)")
    ap.add_argument("--compress-rank", type=int, default=4, metavar="R",
                    help="PowerSGD rank of the compression forecast (default 4)")
    ap.add_argument("--powersgd-work-ms", type=float, default=3.0, metavar="MS",
                    help="PowerSGD's local work per step in the forecast (default 3.0; cifar_mpi logs its "
                    "own, timed at start-up)")
    ap.add_argument("--layer-times", metavar="FILE",
                    help="per-layer times (and tensors) for every run and the extrapolation: a metrics file "
                    "(its model/ group; lends its tensors to metrics files without one) or the output of "
                    "train_step_bench --per-layer (default: each run's own model/ group; the extrapolation "
                    "takes the N=1 run's, else the smallest N's)")
    ap.add_argument("--tolerance", type=float, default=0.20, help="flag predictions off by more (0.20)")
    ap.add_argument("--strict", action="store_true", help="exit 1 if a prediction is flagged")
    ap.add_argument("--t-step-ms", type=float, help="compute per step at N=1 for the extrapolation "
                    "(default: the N=1 metrics file's mean t_data + t_comp + t_update)")
    ap.add_argument("--batch", type=int, default=128, help="per-rank batch of the extrapolation (128)")
    ap.add_argument("--alpha-us", type=float, help="alpha of the extrapolation (default: pooled ring "
                    "fit of the fastest shaped bench link)")
    ap.add_argument("--cluster-alpha-us", type=float, default=5.0,
                    help="second, cluster-like alpha of the extrapolation (5 us)")
    ap.add_argument("--extrap-rates", default="10gbit,100gbit", help="link rates (10gbit,100gbit)")
    ap.add_argument("--extrap-bucket-mb", type=float, default=0.1,
                    help="bucket size of the overlap-on curves (0.1); overlap off uses one bucket")
    ap.add_argument("--no-plots", action="store_true", help="tables only")
    args = ap.parse_args(argv)
    m = re.fullmatch(r"\s*([0-9.eE+]+)\s*:\s*([0-9.eE+]+)\s*", args.fit_bytes)
    if not m:
        ap.error(f"--fit-bytes must be MIN:MAX bytes, got '{args.fit_bytes}'")
    args.fit_lo, args.fit_hi = float(m.group(1)), float(m.group(2))
    rates = []
    for tok in args.extrap_rates.split(","):
        r = parse_rate(tok)
        if r is None:
            ap.error(f"--extrap-rates: '{tok}' is not a rate like 10gbit or 100mbit")
        rates.append((tok.strip(), r))
    args.rates = rates
    for name in ("tolerance", "t_step_ms", "alpha_us", "cluster_alpha_us", "extrap_bucket_mb"):
        v = getattr(args, name)
        if v is not None and not (v > 0 and math.isfinite(v)):
            ap.error(f"--{name.replace('_', '-')} must be > 0, got {v}")
    if args.batch < 1:
        ap.error("--batch must be >= 1")
    return args


def collect_inputs(args):
    bench_specs = list(args.bench)
    metric_paths = []
    for d in args.dirs:
        if not os.path.isdir(d):
            raise InputError(f"{d}: no such directory (files go with --bench or --metrics)")
        bench_specs += sorted(p for p in glob.glob(os.path.join(d, "bench-*.csv"))
                              if BENCH_NAME_RE.match(os.path.basename(p)))
        metric_paths += [(p, True) for p in sorted(glob.glob(os.path.join(d, "*.h5")))]
    for m in args.metrics:
        if os.path.isdir(m):
            metric_paths += [(p, True) for p in sorted(glob.glob(os.path.join(m, "*.h5")))]
        else:
            metric_paths.append((m, False))
    if not bench_specs:
        raise InputError("no bench files: give --bench FILE or a DIR holding bench-<link>-np<N>.csv")
    return bench_specs, metric_paths


def main(argv):
    args = parse_args(argv)
    try:
        return run(args)
    except FileError as e:  # InputError is one too
        die(str(e))


def load_benches(specs, args):
    """Bench files, fitted; pooled ring fits per link."""
    benches = [load_bench(s) for s in specs]
    for b in benches:
        b.fit(args.fit_lo, args.fit_hi, args.split_bytes or None)
    seen = {}
    for b in benches:
        k = (b.key, b.n, b.rph)
        if k in seen:
            raise InputError(f"bench files {seen[k]} and {b.path} are both {b.label()}")
        seen[k] = b.path
    pooled = {}
    for b in benches:
        pooled.setdefault(b.key, []).append(b)
    return benches, {k: PooledRing(v) for k, v in pooled.items()}


def load_runs(metric_paths, args, override):
    runs = []
    for p, from_dir in metric_paths:
        if from_dir and not is_metrics_file(p):
            # a folder may hold other HDF5 files (checkpoints, weights): skip those, loudly
            warn(f"{p}: not a cifar_mpi metrics file (no 'format' attribute 'cifar_mpi metrics ...'); skipped")
            continue
        r = Run(p, args.default_link)
        r.use_layer_times(override)
        runs.append(r)
    return runs


def extrapolate(args, runs, pooled, override):
    """The extrapolation's inputs and curves, or None (with a warning) without a model or a T1."""
    model = pick_model(override, runs)
    if model is None:
        warn("no metrics file and no --layer-times FILE.h5 (tensors, layer times): extrapolation skipped")
        return None
    base = baseline(args, runs, model)
    if base is None:
        warn("no N=1 metrics file and no --t-step-ms: extrapolation skipped")
        return None
    T1, B1, batch0, t1_src = base
    scale = args.batch / batch0
    alpha_fit, alpha_src = fitted_alpha(args, pooled)
    alphas = [(f"alpha {alpha_fit * 1e6:.3g} us (fitted)", alpha_fit),
              (f"alpha {args.cluster_alpha_us:g} us (cluster-like)", args.cluster_alpha_us * 1e-6)]
    ex = types.SimpleNamespace(T1=T1 * scale, B1=B1 * scale, scale=scale, t1_src=t1_src, alpha_src=alpha_src,
                               alphas=alphas, model=model)
    ex.curves = curves(ex.T1, ex.B1, alphas, args, model)
    return ex


def output_dir(args, benches):
    out_dir = args.out or (args.dirs[0] if args.dirs else os.path.dirname(os.path.abspath(benches[0].path)))
    if not os.path.isdir(out_dir):
        raise InputError(f"output folder {out_dir}: no such directory")
    if not os.access(out_dir, os.W_OK):
        raise InputError(f"output folder {out_dir}: not writable")
    return out_dir


def run(args):
    override = read_layer_times(args.layer_times) if args.layer_times else None
    bench_specs, metric_paths = collect_inputs(args)
    benches, pooled = load_benches(bench_specs, args)
    runs = load_runs(metric_paths, args, override)
    out_dir = output_dir(args, benches)
    rep = report.Report()
    report.fits(rep, benches, pooled, args, out_dir)
    if pooled:
        report.compression(rep, pooled, args)
    flagged = report.predictions(rep, runs, benches, pooled, args, out_dir) if runs else 0
    ex = extrapolate(args, runs, pooled, override)
    if ex is not None:
        report.extrapolation(rep, ex, args)
    md_path = os.path.join(out_dir, "cost_model.md")
    rep.write(md_path)
    written = [md_path, os.path.join(out_dir, "fits.csv")] + (
        [os.path.join(out_dir, "predictions.csv")] if runs else [])
    if not args.no_plots:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        model = ex.model if ex else (runs[0].model if runs else None)
        gradient_bytes = model.gradient_floats * 4 if model else None
        written.append(plots.plot_bench(plt, benches, os.path.join(out_dir, "bench_fit.png"), gradient_bytes))
        if ex is not None:
            written.append(plots.plot_extrap(plt, ex.curves, ex.alphas, args, os.path.join(out_dir, "cost_model.png")))
    print(f"\nwrote {', '.join(written)}")
    return 1 if (flagged and args.strict) else 0
