"""SimGrid SMPI against the network-namespace hosts of tools/sim_hosts.sh (docs/scaling.md)
(PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.smpi_vs_hosts ...).

  smpi_vs_hosts.py fit HOSTS_NP2.csv [--min-bytes 262144]
      alpha-beta of the namespace link from allreduce_bench at N=2 (mpi, ring and rhd pooled: at
      N=2 each is two exchanges of S/2 bytes, T = 2 (alpha + S/2 beta)), least squares over the rows
      of at least --min-bytes (the tbf burst lets smaller messages through unshaped); prints
      '--alpha-us A --gbps G' for cifar_tools.smpi_platform
  smpi_vs_hosts.py compare --hosts CSV... --smpi CSV...
      per N, algorithm and size: namespace hosts, SMPI, SMPI / hosts (markdown)."""
import argparse
import csv
import sys

ALGOS = ("mpi", "ring", "rhd")


def rows(paths):
    out = {}
    for p in paths:
        for r in csv.DictReader(open(p)):
            for a in ALGOS:
                k = f"{a}_time_us"
                if k in r and r[k]:
                    out[(int(r["ranks"]), a, int(r["size_bytes"]))] = float(r[k]) * 1e-6
    return out


def fit(a):
    import numpy as np
    pts = [(s, t) for (n, _, s), t in rows([a.csv]).items() if n == 2 and s >= a.min_bytes]
    if len(pts) < 2:
        sys.exit(f"smpi_vs_hosts.py: {a.csv}: fewer than two N=2 rows of >= {a.min_bytes} bytes")
    X = np.array([[1.0, s / 2] for s, _ in pts])
    y = np.array([t / 2 for _, t in pts])
    (alpha, beta), *_ = np.linalg.lstsq(X, y, rcond=None)
    alpha = max(alpha, 1e-7)
    print(f"# {len(pts)} rows: alpha {alpha * 1e6:.1f} us, rate {8 / beta / 1e6:.1f} Mbit/s")
    print(f"--alpha-us {alpha * 1e6:.3f} --gbps {8 / beta / 1e9:.6f}")


def compare(a):
    h, s = rows(a.hosts), rows(a.smpi)
    print("| N | algorithm | size (B) | namespace hosts (ms) | SMPI (ms) | SMPI / hosts |")
    print("|---:|---|---:|---:|---:|---:|")
    worst = []
    for k in sorted(h):
        if k in s:
            r = s[k] / h[k]
            worst.append((abs(r - 1), k, r))
            print(f"| {k[0]} | {k[1]} | {k[2]} | {h[k] * 1e3:.1f} | {s[k] * 1e3:.1f} | {r:.3f} |")
    within = sum(1 for d, _, _ in worst if d <= 0.25)
    print(f"\n{within} of {len(worst)} within 25%")


def main():
    ap = argparse.ArgumentParser(prog="python3 -m cifar_tools.smpi_vs_hosts", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit")
    f.add_argument("csv")
    f.add_argument("--min-bytes", type=int, default=262144)
    c = sub.add_parser("compare")
    c.add_argument("--hosts", nargs="+", required=True)
    c.add_argument("--smpi", nargs="+", required=True)
    a = ap.parse_args()
    (fit if a.cmd == "fit" else compare)(a)


if __name__ == "__main__":
    main()
