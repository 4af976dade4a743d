"""The scaling model against SimGrid SMPI (docs/scaling.md; PYTHONPATH=tools python3 -m
cifar_tools.scaling_model ...): all-reduce times of ring, rhd, mpi
(SimGrid's Open MPI selector), hierarchical ring/rhd and auto at N ranks, the bucket plan of
--bucket-mb auto, and weak-scaling efficiency with overlap on.

  scaling_model.py plan --metrics R1.h5 --np N --algorithm A [--per-host L] [link] -o PLAN
      the step plan that build-smpi/step_sim replays (tools/smpi/smpi_steps.sh runs it)
  scaling_model.py efficiency --metrics R1.h5 [link] [--sim CSV] [--plot PNG] [--md]
      predicted efficiency T_step(1) / T_step(N) per algorithm, N = 2..1024, beside the simulated
      one of tools/smpi/smpi_steps.sh (CSV: ranks,algorithm,per_host,step_s,...)
  scaling_model.py collectives [link] CSV...
      predicted against simulated all-reduce times: tools/smpi/smpi_sweep.sh CSVs
      (ranks,size_bytes,algorithm,time_us) or allreduce_bench CSVs (<algorithm>_time_us columns)
  link: --alpha-us 27 --gbps 10 (plain alpha-beta), or --calib CSV (allreduce_bench under SMPI
      at N=2 over sizes: each message's cost, SMPI's factors included; docs/smpi/calib-np2.csv)
Hierarchical rows: hosts of --per-host ranks (default 4) sharing one NIC; within a host 400 Gbit/s,
0.5 us (cifar_tools.smpi_platform two-level's defaults)."""
import argparse
import csv
import os
import sys

from .cost_model.collectives import CalibratedLink, Collectives, Link
from .cost_model.scaling import Plan, Step
from .h5files import FileError

NS = [2 ** k for k in range(1, 11)]
LINES = ("ring", "rhd", "mpi", "hring", "hrhd", "auto")
LABEL = {"ring": "ring", "rhd": "rhd", "mpi": "mpi (SMPI ompi)", "hring": "hierarchical ring",
         "hrhd": "hierarchical rhd", "auto": "auto"}


def link_of(a):
    if a.calib:
        return CalibratedLink(a.calib)
    return Link(a.alpha_us * 1e-6, 8 / (a.gbps * 1e9))


def collectives(a, n, algorithm):
    per_host = a.per_host if algorithm.startswith("h") and n >= 2 * a.per_host else 1
    return Collectives(link_of(a), n, per_host)


def cmd_plan(a):
    step = Step(a.metrics, a.batch)
    p = Plan(step, collectives(a, a.np, a.algorithm), a.algorithm)
    p.write(a.out, step, f", N={a.np}, {a.algorithm}, predicted step {p.T * 1e3:.3f} ms "
                         f"(efficiency {p.efficiency:.4f})")
    print(f"{a.out}: {len(p.buckets)} buckets {[fl for fl, _, _ in p.buckets]} floats, "
          f"{p.algorithms}, predicted {p.T * 1e3:.3f} ms")


def read_sim(path):
    out = {}
    if path and os.path.isfile(path):
        for r in csv.DictReader(open(path)):
            out[(int(r["ranks"]), r["algorithm"])] = float(r["step_s"])
    return out


def cmd_efficiency(a):
    step = Step(a.metrics, a.batch)
    sim = read_sim(a.sim)
    curves = {}
    print(f"# T_step(1) = {step.C * 1e3:.3f} ms (F {step.F * 1e3:.3f}, B {step.B * 1e3:.3f}, "
          f"U {step.U * 1e3:.3f}) from {step.source}, batch {step.batch}; link {link_of(a).label}")
    print("| N | " + " | ".join(f"{LABEL[x]} model | sim" for x in LINES) + " |")
    print("|---:|" + "---:|---:|" * len(LINES))
    for n in NS:
        cells = []
        for x in LINES:
            p = Plan(step, collectives(a, n, x), x)
            s = sim.get((n, x))
            es = step.C / s if s else None
            curves.setdefault(x, []).append((n, p.efficiency, es))
            cells.append(f"{p.efficiency:.3f} | " + (f"{es:.3f}" if es else "-"))
        print(f"| {n} | " + " | ".join(cells) + " |")
    if a.plot:
        plot(curves, a.plot, step, link_of(a).label)


def plot(curves, path, step, link_label):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    markers, styles = "osD^vx", ["-", "-", "-", "-", "--", ":"]
    for i, (x, pts) in enumerate(curves.items()):
        color = f"C{i}"
        ax.plot([n for n, _, _ in pts], [e for _, e, _ in pts], styles[i % 6], color=color, label=f"{LABEL[x]} (model)")
        sims = [(n, es) for n, _, es in pts if es]
        if sims:
            ax.plot(*zip(*sims), markers[i % 6], color=color, mfc="none", ms=7,
                    label=f"{LABEL[x]} (SMPI step_sim)")
    ax.axhline(0.9, color="gray", ls=":", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("ranks N (weak scaling, per-rank batch %d)" % step.batch)
    ax.set_ylabel("efficiency T_step(1) / T_step(N)")
    ax.set_ylim(0.35, 1.01)
    ax.set_title(f"overlap on, --bucket-mb auto plan; {link_label}", fontsize=9)
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def sim_rows(paths):
    for p in paths:
        for r in csv.DictReader(open(p)):
            if "algorithm" in r and "time_us" in r:
                yield int(r["ranks"]), int(r["size_bytes"]), r["algorithm"], float(r["time_us"]), int(r.get("ring_hosts") or 0), p
                continue
            for k in r:
                if k.endswith("_time_us"):
                    yield int(r["ranks"]), int(r["size_bytes"]), k[:-8], float(r[k]), int(r.get("ring_hosts") or 0), p


def cmd_collectives(a):
    link = link_of(a)
    print(f"# model: {link.label}")
    print("| N | hosts x ranks | size (B) | algorithm | SMPI (ms) | model (ms) | SMPI/model |")
    print("|---:|---|---:|---|---:|---:|---:|")
    seen = set()
    for n, s, algo, t, ring_hosts, _ in sorted(sim_rows(a.csv)):
        # allreduce_bench's ring_hosts < N: a two-level platform (every algorithm ran on it)
        per_host = n // ring_hosts if 0 < ring_hosts < n else 1
        key = (n, per_host, s, algo)
        if key in seen:
            continue
        seen.add(key)
        name = "hring" if per_host > 1 and algo == "ring" else algo
        m = Collectives(link, n, per_host).time(name, s)
        shape = f"{n // per_host} hosts x {per_host}" if per_host > 1 else "flat"
        print(f"| {n} | {shape} | {s} | {LABEL[name]} | {t / 1e3:.2f} | {m * 1e3:.2f} | {t * 1e-6 / m:.3f} |")


def main():
    ap = argparse.ArgumentParser(prog="python3 -m cifar_tools.scaling_model", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    ps = {c: sub.add_parser(c) for c in ("plan", "efficiency", "collectives")}
    for p in ps.values():
        p.add_argument("--alpha-us", type=float, default=27.0)
        p.add_argument("--gbps", type=float, default=10.0)
        p.add_argument("--calib", help="allreduce_bench CSV at N=2 under SMPI (per-message costs)")
        p.add_argument("--per-host", type=int, default=4, help="ranks per host of the hierarchical rows (4)")
    for c in ("plan", "efficiency"):
        ps[c].add_argument("--metrics", required=True, help="metrics file of an N=1 run (model/ group, steps)")
        ps[c].add_argument("--batch", type=int, default=128, help="per-rank batch (128): layer times scaled")
    ps["plan"].add_argument("--np", type=int, required=True)
    ps["plan"].add_argument("--algorithm", choices=LINES, required=True)
    ps["plan"].add_argument("-o", "--out", required=True)
    ps["efficiency"].add_argument("--sim", help="tools/smpi/smpi_steps.sh CSV")
    ps["efficiency"].add_argument("--plot", help="PNG: efficiency against N")
    ps["collectives"].add_argument("csv", nargs="+")
    a = ap.parse_args()
    try:
        {"plan": cmd_plan, "efficiency": cmd_efficiency, "collectives": cmd_collectives}[a.cmd](a)
    except FileError as e:
        sys.exit(f"scaling_model: error: {e}")
    return 0


if __name__ == "__main__":
    main()
