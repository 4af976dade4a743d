"""What tools/elastic_run.sh needs of HDF5 files: whether a checkpoint is valid, and the one
metrics file of a run that was restarted.

    python3 -m cifar_tools.recoveries --check-checkpoint ckpt.h5
        exit 0 and print its global step when every dataset passes its Fletcher-32 checksum and
        holds finite values; exit 1 with one line saying why not.
    python3 -m cifar_tools.recoveries --table attempts.tsv --out metrics.h5
        joins the attempts' metrics files (one row of the launcher's table each) into one: every
        global step once, the steps an attempt lost past its last checkpoint replaced by the next
        attempt's replay of them; and a recoveries/ group, one entry per restart (cause, rank,
        host, steps lost, seconds down). Prints the recoveries.

Steps lost: from the checkpoint the next attempt resumed to the failed attempt's last progress
line (a lower bound by up to --log-every steps). Seconds down: from the failed attempt's last
progress line to the next attempt's first (1 s resolution): detection, restart, set-up.
HDF5 files are opened through cifar_tools.h5files only."""
import argparse
import csv
import os
import re
import shutil
import sys

import numpy as np

from cifar_tools import h5files

CHECKPOINT_FORMAT = "cifar_mpi checkpoint 1"
PROGRESS = re.compile(r"^\[(\d\d):(\d\d):(\d\d)\] epoch (\d+) step +(\d+)/(\d+)")


def check_checkpoint(path):
    """The checkpoint's global step; FileError naming the file unless every dataset reads back."""
    h5py = h5files.h5py()
    with h5files.open_file(path, "checkpoint") as f:
        if h5files.text(f.attrs.get("format", b"")) != CHECKPOINT_FORMAT:
            raise h5files.FileError(f"checkpoint {path}: not a cifar_mpi checkpoint (format attribute)")
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        if not names:
            raise h5files.FileError(f"checkpoint {path}: holds no tensors")
        for n in names:
            try:
                values = f[n][()]  # HDF5 checks the Fletcher-32 checksum on this read
            except OSError as e:
                raise h5files.FileError(f"checkpoint {path}: dataset {n} fails its checksum ({e})") from None
            if not np.all(np.isfinite(values)):
                raise h5files.FileError(f"checkpoint {path}: dataset {n} holds non-finite values")
        return int(h5files.text(f.attrs["global_step"]))


def progress_lines(log):
    """(seconds of the day, global step) of each progress line of an attempt's log."""
    out = []
    if not os.path.exists(log):
        return out
    with open(log, errors="replace") as f:
        for line in f:
            m = PROGRESS.match(line)
            if m:
                h, mi, s, epoch, step, per = (int(g) for g in m.groups())
                out.append((h * 3600 + mi * 60 + s, (epoch - 1) * per + step))
    return out


def read_attempts(table):
    with open(table, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def recoveries_of(attempts):
    """One dict per restart: the failed attempt's cause and what it cost."""
    out = []
    for a, b in zip(attempts, attempts[1:]):
        pa, pb = progress_lines(a["log"]), progress_lines(b["log"])
        resumed = int(b["resume_step"] or 0)
        reached = pa[-1][1] if pa else int(a["resume_step"] or 0)
        down = float("nan")
        if pa and pb:
            down = (pb[0][0] - pa[-1][0]) % 86400
        elif pb:
            down = (pb[0][0] - int(float(a["end"])) % 86400) % 86400
        out.append({"attempt": int(a["attempt"]), "cause": a["cause"],
                    "rank": int(a["rank"]) if a["rank"].isdigit() else -1,
                    "host": a["host"] if a["host"] != "-" else "",
                    "exit_code": int(a["exit"]), "ranks": int(a["ranks"]),
                    "failed_after_step": reached, "resumed_at_step": resumed,
                    "steps_lost": max(0, reached - resumed), "seconds_down": float(down)})
    return out


def _pad(a, width):
    """A [steps, ranks] array widened to `width` ranks (NaN or 0 where a run had fewer)."""
    if a.ndim != 2 or a.shape[1] == width:
        return a
    fill = np.nan if a.dtype.kind == "f" else 0
    out = np.full((a.shape[0], width), fill, dtype=a.dtype)
    out[:, :a.shape[1]] = a
    return out


def join(table, out):
    attempts = read_attempts(table)
    h5py = h5files.h5py()
    parts = []  # (attempt, its steps datasets, first global step, rows kept, epochs, evals)
    for i, a in enumerate(attempts):
        path = a["metrics"]
        if not h5files.is_metrics_file(path):
            continue
        start = int(a["resume_step"] or 0)
        stop = int(attempts[i + 1]["resume_step"] or 0) if i + 1 < len(attempts) else None
        with h5files.open_file(path, "metrics file") as f:
            start = int(f.attrs.get("start_global_step", start))
            steps = {k: d[()] for k, d in f["steps"].items() if isinstance(d, h5py.Dataset)} if "steps" in f else {}
            epochs = {k: d[()] for k, d in f["epochs"].items()} if "epochs" in f else {}
            evals = {k: d[()] for k, d in f["evals"].items() if isinstance(d, h5py.Dataset)} if "evals" in f else {}
        rows = len(steps.get("epoch", []))
        keep = rows if stop is None else max(0, min(rows, stop - start))
        if stop is not None and rows < stop - start:
            print(f"recoveries.py: warning: {path} ends at step {start + rows}, the next attempt resumed "
                  f"at step {stop}: steps {start + rows + 1}-{stop} are missing from the joined file",
                  file=sys.stderr)
        # Epochs finished before the next attempt's checkpoint; evaluations up to it.
        ends = start + np.cumsum(epochs.get("steps", np.zeros(0, dtype=np.int64)))
        keep_epochs = len(ends) if stop is None else int(np.sum(ends <= stop))
        keep_evals = None if stop is None or "step" not in evals else evals["step"] <= stop
        parts.append((path, steps, keep, epochs, keep_epochs, evals, keep_evals))
    if not parts:
        raise h5files.FileError(f"{table}: no attempt left a metrics file")
    last = parts[-1][0]
    tmp = f"{out}.tmp.{os.getpid()}"
    shutil.copyfile(last, tmp)
    width = max(p[1]["t_comp"].shape[1] for p in parts if "t_comp" in p[1]) if any("t_comp" in p[1] for p in parts) else 1
    with h5files.open_for_update(tmp, "metrics file") as f:
        def replace(group, name, value):
            attrs = dict(f[group][name].attrs) if name in f[group] else {}
            del f[group][name]
            d = f[group].create_dataset(name, data=value)
            for k, v in attrs.items():
                d.attrs[k] = v
        if "steps" in f:
            for name in list(f["steps"].keys()):
                if not isinstance(f["steps"][name], h5py.Dataset):
                    continue
                pieces = [_pad(p[1][name][:p[2]], width) for p in parts if name in p[1]]
                replace("steps", name, np.concatenate(pieces))
        if "epochs" in f:
            for name in list(f["epochs"].keys()):
                replace("epochs", name, np.concatenate([p[3][name][:p[4]] for p in parts if name in p[3]]))
        if "evals" in f:
            for name in list(f["evals"].keys()):
                if isinstance(f["evals"][name], h5py.Dataset):
                    replace("evals", name, np.concatenate(
                        [p[5][name] if p[6] is None else p[5][name][p[6]] for p in parts if name in p[5]]))
        rec = recoveries_of(attempts)
        if "recoveries" in f:
            del f["recoveries"]
        g = f.create_group("recoveries")
        g.attrs["description"] = ("one entry per restart by tools/elastic_run.sh: the failed attempt's cause, "
                                  "rank, host, steps lost past its checkpoint, seconds down")
        g.attrs["attempts"] = len(attempts)
        for key in ("attempt", "rank", "exit_code", "ranks", "failed_after_step", "resumed_at_step", "steps_lost"):
            g.create_dataset(key, data=np.array([r[key] for r in rec], dtype=np.int64))
        g.create_dataset("seconds_down", data=np.array([r["seconds_down"] for r in rec], dtype=np.float64))
        for key in ("cause", "host"):
            g.create_dataset(key, data=np.array([r[key].encode() for r in rec], dtype=h5py.string_dtype()))
        wall = sum(float(a["end"]) - float(a["start"]) for a in attempts)
        g.attrs["launcher_wall"] = wall
    os.replace(tmp, out)
    return rec, wall


def main(argv=None):
    ap = argparse.ArgumentParser(prog="recoveries.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check-checkpoint", metavar="FILE", help="check a checkpoint; print its global step")
    ap.add_argument("--table", metavar="TSV", help="the launcher's table of attempts")
    ap.add_argument("--out", metavar="FILE", help="the joined metrics file to write")
    a = ap.parse_args(argv)
    try:
        if a.check_checkpoint:
            print(check_checkpoint(a.check_checkpoint))
            return 0
        if not (a.table and a.out):
            ap.error("give --check-checkpoint FILE, or --table TSV and --out FILE")
        rec, wall = join(a.table, a.out)
        for r in rec:
            print(f"recovery after attempt {r['attempt']}: {r['cause']}, rank {r['rank']} on {r['host'] or '?'}: "
                  f"{r['steps_lost']} step(s) lost, {r['seconds_down']:.0f} s down, resumed at step {r['resumed_at_step']} "
                  f"on {r['ranks']} rank(s)")
        print(f"{len(rec)} recovery(ies), {wall:.1f} s in all attempts; metrics written to {a.out}")
        return 0
    except (h5files.FileError, OSError, KeyError, ValueError) as e:
        print(f"recoveries.py: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
