"""Markdown table of a tools/smpi/smpi_sweep.sh CSV: one row per (factors, N, size), the simulated time
of each algorithm in ms and, for ring and rhd, the alpha-beta prediction, simulated/predicted,
and the prediction with SMPI's message-size factors (rows of factors "smpi"): each message of m
bytes costs lat_factor(m) alpha + m beta / bw_factor(m), SimGrid 3.32's default smpi/lat-factor
and smpi/bw-factor (piecewise in m, calibrated by SimGrid on a TCP cluster).

  PYTHONPATH=tools python3 -m cifar_tools.smpi_table SWEEP.csv [SWEEP2.csv ...] [--alpha-us 27] [--gbps 10]
"""
import argparse
import csv
import math
from collections import defaultdict

BW = [(65472, 0.940694), (15424, 0.697866), (9376, 0.58729), (5776, 1.08739), (3484, 0.77493), (1426, 0.608902),
      (732, 0.341987), (257, 0.338112), (0, 0)]
LAT = [(65472, 11.6436), (15424, 3.48845), (9376, 2.59299), (5776, 2.18796), (3484, 1.88101), (1426, 1.61075),
       (732, 1.9503), (257, 1.95341), (0, 2.01467)]


def factor(table, m):
    return next(v for t, v in table if m >= t)


def calibrated_us(algo, n, size, alpha_us, gbps):
    """Sum over a rank's messages of lat_factor(m) alpha + m beta / bw_factor(m)."""
    beta = 8 / (gbps * 1e3)
    count = size // 4
    if algo == "ring":
        msgs = [4 * math.ceil(count / n)] * (2 * (n - 1))
    else:  # rhd at a power of two: S/2, S/4, ..., S/N, then back
        half = [4 * math.ceil(count / 2 ** k) for k in range(1, int(math.log2(n)) + 1)]
        msgs = half + half
    return sum(factor(LAT, m) * alpha_us + m * beta / factor(BW, m) for m in msgs)


def main():
    ap = argparse.ArgumentParser(prog="python3 -m cifar_tools.smpi_table", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--alpha-us", type=float, default=27.0)
    ap.add_argument("--gbps", type=float, default=10.0)
    args = ap.parse_args()
    rows = defaultdict(dict)
    for path in args.csv:
        for r in csv.DictReader(open(path)):
            rows[(r["factors"], int(r["size_bytes"]), int(r["ranks"]))][r["algorithm"]] = r
    print("| factors | size (B) | N | mpi (ms) | rhd (ms) | rhd model (ms) | rhd sim/model | rhd calibrated (ms) "
          "| ring (ms) | ring model (ms) | ring sim/model | ring calibrated (ms) | ring/rhd | check |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for (factors, size, n) in sorted(rows):
        a = rows[(factors, size, n)]

        def ms(algo, key="time_us"):
            return f"{float(a[algo][key]) / 1e3:.2f}" if algo in a and a[algo][key] else "-"

        def ratio(algo):
            return a[algo]["sim_over_model"] if algo in a and a[algo]["sim_over_model"] else "-"

        def cal(algo):
            if algo not in a or factors != "smpi":
                return "-"
            return f"{calibrated_us(algo, n, size, args.alpha_us, args.gbps) / 1e3:.2f}"

        ring_over = (f"{float(a['ring']['time_us']) / float(a['rhd']['time_us']):.2f}"
                     if "ring" in a and "rhd" in a else "-")
        checks = sorted({r["check"] for r in a.values()})
        print(f"| {factors} | {size} | {n} | {ms('mpi')} | {ms('rhd')} | {ms('rhd', 'model_us')} | {ratio('rhd')} | {cal('rhd')} "
              f"| {ms('ring')} | {ms('ring', 'model_us')} | {ratio('ring')} | {cal('ring')} | {ring_over} | {','.join(checks)} |")


if __name__ == "__main__":
    main()
