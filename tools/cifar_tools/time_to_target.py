"""The time-to-accuracy table of a scaling sweep, from its metrics files (the same numbers as
summary.md's columns): per world size N, the throughput speedup, the wall time to the target
accuracy and the time-to-accuracy speedup T_target(smallest N) / T_target(N).

    PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.time_to_target RESULTS_DIR TARGET

TARGET is the accuracy fraction (e.g. 0.6) every run's time is measured at: the first evaluation
reaching it (evals/, or epochs/ for files without it), as plot_metrics --target does. Runs that
aimed at TARGET themselves (--target-accuracy) give their summary/time_to_target, the numbers in
summary.md. tools/scaling_sweep.sh --target prints this table after the plots."""
import argparse
import math
import sys

from . import plot_metrics as pm


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m cifar_tools.time_to_target",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("results", metavar="RESULTS_DIR", help="folder of the sweep's metrics files (*.h5)")
    ap.add_argument("target", type=float, metavar="TARGET", help="target accuracy, a fraction in (0, 1]")
    a = ap.parse_args(argv)
    if not 0 < a.target <= 1:
        ap.error(f"TARGET {a.target}: not an accuracy fraction in (0, 1]")
    runs = pm.load_runs([a.results])
    if not runs:
        sys.exit(f"time_to_target: error: no cifar_mpi metrics files (*.h5) in {a.results}")
    runs = pm.one_per_n(runs)
    # A run's summary holds its time to its own target only; any other accuracy is read from its
    # evaluations, for every run alike so that the speedups compare like with like.
    if any(not math.isclose(r.target, a.target, rel_tol=0, abs_tol=1e-9) for r in runs):
        pm.TARGET_OVERRIDE = a.target
    rows = pm.time_to_accuracy_rows(pm.derive(runs))
    print(f"scaling_sweep: time to {100 * a.target:g}% test accuracy (wall s, evaluations included; "
          "- = not reached)")
    print(f"{'N':>4} {'throughput speedup':>19} {'time to target (s)':>19} {'time-to-accuracy speedup':>25}")
    for row in rows:
        t, s = row["time_to_target"], row["tta_speedup"]
        print(f"{row['run'].n:>4} {row['speedup']:>19.3f} {'-' if math.isnan(t) else format(t, '.3f'):>19} "
              f"{'-' if math.isnan(s) else format(s, '.3f'):>25}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
