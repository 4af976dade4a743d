"""One run's step in medians over the steps after the second (warm-up), in ms: the step (per step,
the slowest rank's data + compute + exposed comm + update), T_comp (slowest rank), T_comm (fastest
rank: the all-reduce itself) and T_wait (slowest rank). tools/studies/overlap_pairs.sh prints it
for every run.

    PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.step_medians RUN.h5
    -> step_ms 41.2 comp_ms 30.1 comm_ms 9.8 wait_ms 3.0"""
import argparse
import sys

import numpy as np

from .h5files import FileError, MetricsFile

WARMUP_STEPS = 2


def medians(m):
    p = {k: v[WARMUP_STEPS:] * 1e3 for k, v in m.timers().items()}
    step = (p["t_data"] + p["t_comp"] + p["t_wait"] + p["t_update"]).max(axis=1)
    med = lambda a: float(np.median(a)) if a.size else float("nan")  # noqa: E731
    return {"step_ms": med(step), "comp_ms": med(p["t_comp"].max(axis=1)),
            "comm_ms": med(p["t_comm"].min(axis=1)), "wait_ms": med(p["t_wait"].max(axis=1))}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m cifar_tools.step_medians", description=__doc__.split("\n\n")[0])
    ap.add_argument("metrics", metavar="RUN.h5", help="a cifar_mpi metrics file")
    a = ap.parse_args(argv)
    try:
        m = medians(MetricsFile(a.metrics))
    except FileError as e:
        sys.exit(f"step_medians: error: {e}")
    print(" ".join(f"{k} {v:.1f}" for k, v in m.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
