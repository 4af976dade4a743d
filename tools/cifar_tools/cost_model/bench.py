"""Reading allreduce_bench CSVs (allreduce_bench --csv FILE): times per call of an in-place float32
all-reduce, MPI_Allreduce and the project's ring, by size. The link comes from the file name
(bench-<link>-np<N>[-rph<R>].csv) or a LINK= prefix, since the CSV itself does not say it."""
import csv
import os
import re

import numpy as np

from .common import InputError, warn
from .fit import BenchFile

BENCH_NAME_RE = re.compile(r"^bench-(?P<link>.+?)-np(?P<n>\d+)(?:-rph(?P<rph>\d+))?\.csv$")
BENCH_COLUMNS = ("ranks", "size_bytes", "mpi_time_us", "ring_time_us")


def load_bench(spec):
    link = None
    path = spec
    if "=" in spec and not os.path.exists(spec):
        link, path = spec.split("=", 1)
        if not link:
            raise InputError(f"--bench {spec}: empty link label before '='")
    if not os.path.exists(path):
        raise InputError(f"bench file {path}: no such file")
    if not os.path.isfile(path):
        raise InputError(f"bench file {path}: not a regular file")
    m = BENCH_NAME_RE.match(os.path.basename(path))
    if link is None:
        if not m:
            raise InputError(f"bench file {path}: cannot tell its link; name it "
                             f"bench-<link>-np<N>[-rph<R>].csv or give --bench LINK=FILE")
        link = m.group("link")
    rph = int(m.group("rph")) if m and m.group("rph") else None
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames
            if not header:
                raise InputError(f"bench file {path}: empty (no header line)")
            header = [h.strip() for h in header]
            for c in BENCH_COLUMNS:
                if c not in header:
                    raise InputError(f"bench file {path}: missing column '{c}'")
            rows = list(reader)
    except UnicodeDecodeError:
        raise InputError(f"bench file {path}: not a text CSV file")
    sizes, mpi_s, ring_s, ranks, ring_hosts = [], [], [], set(), set()
    dropped = 0
    for i, r in enumerate(rows, start=2):
        r = {(k or "").strip(): (v or "").strip() for k, v in r.items()}
        if r.get("check", "ok") not in ("ok", ""):
            dropped += 1
            continue
        try:
            ranks.add(int(r["ranks"]))
            sizes.append(float(r["size_bytes"]))
            mpi_s.append(float(r["mpi_time_us"]) * 1e-6)
            ring_s.append(float(r["ring_time_us"]) * 1e-6)
            if r.get("ring_hosts"):
                ring_hosts.add(int(r["ring_hosts"]))
        except (TypeError, ValueError):
            raise InputError(f"bench file {path} line {i}: not a number in ranks, size_bytes, "
                             f"mpi_time_us, ring_time_us or ring_hosts")
    if dropped:
        warn(f"bench file {path}: {dropped} row(s) whose check is not 'ok' left out")
    if not sizes:
        raise InputError(f"bench file {path}: no data rows")
    if len(ranks) != 1:
        raise InputError(f"bench file {path}: rows of different ranks {sorted(ranks)}; one file per N")
    n = ranks.pop()
    if n < 2:
        raise InputError(f"bench file {path}: ranks = {n}; an all-reduce benchmark needs N >= 2")
    if m and int(m.group("n")) != n:
        raise InputError(f"bench file {path}: its name says np{m.group('n')} but its rows have ranks = {n}")
    sizes, mpi_s, ring_s = map(np.array, (sizes, mpi_s, ring_s))
    if np.any(sizes <= 0) or np.any(mpi_s <= 0) or np.any(ring_s <= 0):
        raise InputError(f"bench file {path}: sizes and times must be > 0")
    if len(ring_hosts) > 1 or (ring_hosts and not 2 <= min(ring_hosts) <= n):
        raise InputError(f"bench file {path}: ring_hosts {sorted(ring_hosts)} is not one value in 2..{n}")
    return BenchFile(path, link, n, rph, sizes, mpi_s, ring_s, ring_hosts.pop() if ring_hosts else None)
