"""Overlap on against off, from alternated pairs of runs: per pair the step of each (per step, the
slowest rank's t_data + t_comp + t_wait + t_update, averaged from step FIRST on, 1-based), the off
run's T_comp (slowest rank) and T_comm (mean over ranks), and the share of the possible saving
that overlap realised,

    realised = (step_off - step_on) / min(T_comp_off, T_comm_off)

then, per case, the median share over the pairs. A pair is two runs with the same options but
overlap: OFF.h5 with --no-overlap, ON.h5 with --overlap, on as many ranks; any other two files
are refused (their step difference would not be overlap's). Beside it, the same share over the on
run's overlapped steps alone (steps/overlapped: without its trial's and reference steps, which are
held back: what overlap does to a long run's steady state, "-" where the trial turned it off), and
the on run's own figure (summary/overlap_hidden: the share of T_comm taken off the step against
its held-back steps).
tools/studies/overlap_pairs.sh prints it at the end.

    PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.overlap_share [--first 5] CASE OFF.h5 ON.h5 [CASE OFF ON ...]
    -> one line per pair, then one per case: median, min and max of the share"""
import argparse
import sys
from collections import OrderedDict

import numpy as np

from .h5files import FileError, MetricsFile


# Options that name where a run writes: they differ between the two runs of a pair by design.
OUTPUT_OPTIONS = ("metrics", "save_weights", "checkpoint", "trace")


def pair_mismatch(m_off, m_on):
    """What keeps two metrics files from being an overlap off/on pair (None when they are one):
    overlap off in the first and on in the second, the same world size, every other option alike."""
    overlap = [m.config.get("overlap", str(m.attrs.get("overlap", ""))) for m in (m_off, m_on)]
    if overlap != ["0", "1"]:
        off, on = ({"0": "off", "1": "on"}.get(v, "unrecorded") for v in overlap)
        return f"overlap is {off} in the first and {on} in the second (want off, then on)"
    diff = [f"world size ({m_off.world_size} vs {m_on.world_size})"] if m_off.world_size != m_on.world_size else []
    for k in sorted(set(m_off.config) | set(m_on.config)):
        if k != "overlap" and k not in OUTPUT_OPTIONS and m_off.config.get(k) != m_on.config.get(k):
            diff.append(f"--{k.replace('_', '-')} ({m_off.config.get(k, 'unrecorded')} vs "
                        f"{m_on.config.get(k, 'unrecorded')})")
    return "they differ in " + ", ".join(diff) if diff else None


def step_means(m, first, overlapped_only=False):
    """Means from step `first` (1-based) on, in ms: step, T_comp (slowest rank), T_comm (mean over
    ranks); with overlapped_only, of the steps steps/overlapped marks alone (None if there are none)."""
    t = {k: v[first - 1:] * 1e3 for k, v in m.timers().items()}
    if not t["t_comp"].size:
        raise FileError(f"metrics file {m.path}: fewer than {first} steps")
    if overlapped_only:
        marks = m.step_column("overlapped")
        if marks is None:
            raise FileError(f"metrics file {m.path}: missing dataset 'steps/overlapped'")
        keep = (np.asarray(marks)[first - 1:] == 1).reshape(len(t["t_comp"]), -1).all(axis=1)  # [steps, ranks]
        if not keep.any():
            return None
        t = {k: v[keep] for k, v in t.items()}
    step = (t["t_data"] + t["t_comp"] + t["t_wait"] + t["t_update"]).max(axis=1)
    return {"step": float(step.mean()), "comp": float(t["t_comp"].max(axis=1).mean()),
            "comm": float(t["t_comm"].mean(axis=1).mean())}


def realised(off, on):
    """(step_off - step_on) / min(T_comp_off, T_comm_off); nan without communication."""
    possible = min(off["comp"], off["comm"])
    return (off["step"] - on["step"]) / possible if possible > 0 else float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m cifar_tools.overlap_share", description=__doc__.split("\n\n")[0])
    ap.add_argument("--first", type=int, default=5, help="first step averaged, 1-based (default 5)")
    ap.add_argument("runs", nargs="+", metavar="CASE OFF.h5 ON.h5", help="triples: a case name and its pair")
    a = ap.parse_args(argv)
    if len(a.runs) % 3 or a.first < 1:
        ap.error("give CASE OFF.h5 ON.h5 triples, and --first >= 1")
    cases = OrderedDict()
    try:
        for i in range(0, len(a.runs), 3):
            case, off_path, on_path = a.runs[i:i + 3]
            m_off, m_on = MetricsFile(off_path), MetricsFile(on_path)
            why = pair_mismatch(m_off, m_on)
            if why:
                raise FileError(f"{case}: {off_path} and {on_path} are not an overlap off/on pair: {why}")
            off, on = step_means(m_off, a.first), step_means(m_on, a.first)
            on_only = step_means(m_on, a.first, overlapped_only=True)
            share = realised(off, on)
            steady = realised(off, on_only) if on_only else float("nan")
            hidden = float(m_on.summary.get("overlap_hidden", float("nan")))
            cases.setdefault(case, []).append((share, steady))
            steady_text = f"{steady:5.2f}" if on_only else "    -"
            print(f"{case:28s} off: step {off['step']:6.2f} ms (T_comp {off['comp']:6.2f}, T_comm {off['comm']:6.2f})"
                  f"  on: step {on['step']:6.2f} ms (T_comp {on['comp']:6.2f}, T_comm {on['comm']:6.2f})"
                  f"  realised {share:5.2f} (overlapped steps {steady_text})  hidden (in-run) {hidden:4.2f}")
    except FileError as e:
        sys.exit(f"overlap_share: error: {e}")
    for case, pairs in cases.items():
        s = np.array([p[0] for p in pairs])
        line = (f"{case:28s} realised share: median {np.median(s):5.2f} (min {s.min():5.2f}, max {s.max():5.2f}, "
                f"{len(s)} pair(s))")
        steady = np.array([p[1] for p in pairs if not np.isnan(p[1])])
        line += f"; overlapped steps alone: median {np.median(steady):5.2f}" if steady.size else "; no overlapped steps"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
