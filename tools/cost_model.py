#!/usr/bin/env python3
"""Cost model of cifar_mpi's data-parallel step: an alpha-beta model of each all-reduce strategy,
fitted to allreduce_bench CSVs, and a step model that predicts a run's training wall time from its
measured compute; then an extrapolation to 8..1024 ranks at 10 and 100 Gbit/s.
Full text, with how to read the plot: docs/cost_model.md.

    python3 tools/cost_model.py SWEEP_DIR                    # bench-*.csv and *.h5 in SWEEP_DIR
    python3 tools/cost_model.py --bench bench-1gbit-np2.csv --bench 10gbit=my.csv \\
                                --metrics run.h5 --metrics runs/ --out OUT_DIR

INPUTS
  Bench CSVs (allreduce_bench --csv FILE), one per link and N (and host layout). Columns used:
  ranks, size_bytes, mpi_time_us, ring_time_us (time per call of a float32 in-place all-reduce of
  size_bytes per rank; rows whose `check` is not "ok" are dropped), and ring_hosts if present (the
  ranks of the ring that crosses the links: H for the hierarchical ring at H hosts x R ranks, else
  N). The link of a file is told by
  its name or by a LINK= prefix:
      bench-<link>-np<N>.csv          e.g. bench-1gbit-np2.csv, bench-100mbit-np4.csv
      bench-<link>-np<N>-rph<R>.csv   R ranks per host, e.g. bench-1gbit-np4-rph2.csv
      --bench LINK=FILE               any file name; N from its `ranks` column
  <link> is a tc rate, <number>kbit|mbit|gbit|tbit (= the link rate in bit/s, as tools/sim_hosts.sh
  --rate takes it), or a label without a rate: `loopback` (all ranks on one host: shared memory),
  `none` (unshaped simulated hosts), anything else. Linkless labels are fitted but have no nominal rate.

  Metrics files (*.h5 of cifar_mpi, docs/metrics.md). Root attributes used: world_size, strategy,
  bucket_mb, overlap, gradient_bytes, batch_per_rank, (buckets, wire_dtype, meta.link_rate,
  meta.hosts, meta.ranks_per_host); datasets steps/t_data, t_comp, t_update, t_wait, epochs/wall.
  A run is matched to the bench file of the same link (meta.link_rate; a run on one host, meta.hosts
  = 1 or no meta.link_rate, is `loopback`; --default-link changes the latter), the same N, and the
  same ranks per host (meta.ranks_per_host) if a bench file names it, else the file without -rph
  (else one of another layout, noted in the table). A ring run without a bench file of its N uses
  the link's pooled ring fit (noted); an mpi/naive run without one is skipped with a warning.

  A directory argument stands for every bench-*-np*.csv and *.h5 in it (not recursive).

MODEL (S = bytes per rank of one all-reduce, N = ranks; times in seconds)
  ring   t(S) = 2(N-1) alpha + 2(N-1)/N S beta       (src/comm/ring_allreduce.cpp: 2(N-1) MPI_Sendrecv
                                                       steps of S/N bytes each)
         hierarchical (R > 1 ranks on each of H hosts, bench column ring_hosts = H): the same with
         H in place of N; the within-host reduce-scatter and all-gather (shared memory) are left out.
  mpi    t(S) = a + b S, fitted per (link, N) as measured. Open MPI 4.1's tuned component picks by N
         and S (coll_tuned_decision_fixed.c, commutative op): N < 4: recursive doubling below 4 KiB
         (and 8-16 KiB), ring up to 64 KiB, segmented ring to 256 KiB, Rabenseifner (reduce-scatter
         + all-gather, ~2 log2(N) alpha + 2(N-1)/N S beta) above; 4 <= N < 8: recursive doubling
         below 8 KiB, Rabenseifner above. At N = 2 every one of these is ~1-2 alpha + S beta, so
         one line is the model; the fit's error columns say how well it holds.
         Beside each fit-based prediction the tool also prints one that uses the bench's measured
         times themselves (log-log interpolation, ring and mpi alike): the difference between the
         two is the error of the alpha-beta line, the rest is the step model's.
  naive  sum over the 8 gradient tensors of t_mpi(tensor bytes)  (one MPI_Allreduce per tensor)
  Fits: least squares of the relative error, min sum_i ln(model(S_i) / t_i)^2 (symmetric: a model
  2x too slow costs what one 2x too fast does; every size counts alike, so small messages matter),
  over the rows with --fit-bytes MIN:MAX; coefficients constrained >= 0. beta is reported as an
  effective rate 8/beta bit/s (for mpi: b = 2(N-1)/N beta_eff, so it compares with the ring's).
  One ring fit per bench file (link, N) and one per link over all its files ("pooled").

  Buckets: as src/comm/bucket_plan.cpp: tensors in backward order fc2.bias 10, fc2.weight 1280,
  fc1.bias 128, fc1.weight 294912, conv2.bias 64, conv2.weight 18432, conv1.bias 32, conv1.weight
  864 floats; a bucket closes once it holds >= bucket_mb*1e6 bytes (4-byte floats); naive = one
  bucket per tensor. Bytes on the wire = floats x 4 (fp32) or x 2 (bf16/fp16: same alpha-beta,
  half the bytes; the encode/decode is not modelled).

  Step: C = t_data + t_comp + t_update (measured), backward B = f_bwd t_comp, comm c_k per bucket.
    overlap off: T_step = C + sum_k c_k
    overlap on:  bucket k is ready at r_k B after backward starts (r_k: fraction of backward done
                 when the last layer of the bucket has its gradients; the last bucket, which holds
                 conv1, is handed over when backward ends, r = 1); one communication thread:
                 start_k = max(r_k B, end_{k-1}), end_k = start_k + c_k,
                 exposed = max(0, end_last - B),   T_step = C + exposed
  f_bwd and r_k come from per-layer times (LAYER_MS below; or --layer-times FILE, the output of
  build/train_step_bench --per-layer). Predicted wall = sum over the run's steps of T_step, with
  C per step from --compute: max (default: the slowest rank of each step, as a synchronous
  all-reduce makes every rank wait for it), mean (mean over ranks), n1 (the N=1 run's mean step,
  same batch, from the metrics inputs). Measured wall = sum of epochs/wall. Rows off by more than
  --tolerance (20%) are flagged.

  Extrapolation (weak scaling, per-rank batch --batch 128 fixed): T1 = the N=1 run's mean step
  C (steps after the first) or --t-step-ms; T_N = T1 + exposed comm of the ring at N ranks with
  beta = 8 / link rate (nominal, no protocol overhead) and alpha = the pooled ring alpha of the
  fastest shaped bench link (or --alpha-us), and a "cluster-like" alpha (--cluster-alpha-us 5);
  overlap off: one bucket (the whole gradient, cifar_mpi's default 25 MB bucket); overlap on:
  --extrap-bucket-mb (0.1: buckets fc2+fc1 and conv2+conv1). Speedup S(N) = N T1 / T_N (images/s
  relative to one rank), efficiency E = T1 / T_N. The batch at which E = 50% assumes compute linear
  in the batch, C(b) = T1 b / 128 (small batches are in fact less efficient per image, so the real
  threshold is somewhat lower); the link rate at which E = 50% is at the given batch.

OUTPUT (stdout and --out DIR, default: the first directory argument, else the folder of the first
  bench file): cost_model.md (fit, prediction and extrapolation tables), fits.csv (the fitted
  numbers, s and s/byte), predictions.csv (per metrics file), cost_model.png (speedup and
  efficiency vs N), bench_fit.png (bench times and the fitted models). Exit 0; 1 with --strict if a
  prediction is off by more than --tolerance; 2 on bad input, with one line
  "cost_model.py: error: ..." naming the file and what is wrong.
Needs numpy, h5py and matplotlib (Debian: python3-numpy python3-h5py python3-matplotlib).
"""
import argparse
import csv
import glob
import math
import os
import re
import sys

import numpy as np

PROG = "cost_model.py"

# Gradient tensors in backward order (= arena order, src/model/param_arena.cpp finalize() lays the
# tensors out in reverse registration order), float counts, and the layer whose backward writes them.
TENSORS = [("fc2.bias", 10, "fc2"), ("fc2.weight", 1280, "fc2"),
           ("fc1.bias", 128, "fc1"), ("fc1.weight", 294912, "fc1"),
           ("conv2.bias", 64, "conv2"), ("conv2.weight", 18432, "conv2"),
           ("conv1.bias", 32, "conv1"), ("conv1.weight", 864, "conv1")]
GRADIENT_FLOATS = sum(t[1] for t in TENSORS)  # 315,722 = 1,262,888 bytes

# Per-layer forward and backward times (ms), batch 128, 1 thread: the mean of three runs of
#   build/train_step_bench --per-layer --threads 1 --steps 20|40|40 --warmup 5
# on the 2-core development VM (shared, loaded; only the fractions below are used, not the times).
# Backward runs the layers in reverse: fc2, relu3, fc1, relu2, pool2, conv2, relu1, pool1, conv1.
LAYER_MS = {  # layer: (forward, backward)
    "conv1": (3.659, 3.708), "pool1": (2.159, 3.145), "relu1": (0.128, 0.823),
    "conv2": (10.560, 22.523), "pool2": (1.452, 0.984), "relu2": (0.141, 0.167),
    "fc1": (1.802, 1.583), "relu3": (0.006, 0.007), "fc2": (0.028, 0.071),
}
FORWARD_ORDER = ["conv1", "pool1", "relu1", "conv2", "pool2", "relu2", "fc1", "relu3", "fc2"]
PARAM_LAYERS = ("fc2", "fc1", "conv2", "conv1")

EXTRAP_NS = [2 ** k for k in range(1, 11)]  # 2 .. 1024
THRESHOLD_NS = (64, 256, 1024)


class InputError(Exception):
    pass


def die(msg):
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    sys.exit(2)


def warn(msg):
    print(f"{PROG}: warning: {msg}", file=sys.stderr)


# ------------------------------------------------------------------------------------------------
# Rates and labels

RATE_RE = re.compile(r"(\d+(?:\.\d+)?)([kmgt]?)bit(?:/s)?")


def parse_rate(label):
    """tc-style rate '<num>kbit|mbit|gbit|tbit' -> bit/s, or None for a label without a rate."""
    m = RATE_RE.fullmatch(label.strip().lower())
    if not m:
        return None
    return float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}[m.group(2)]


def link_key(label):
    r = parse_rate(label)
    return f"rate:{r:.6g}" if r else label.strip().lower()


def fmt_rate(bps):
    if bps is None or not math.isfinite(bps):
        return "-"
    for unit, v in (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= v:
            return f"{bps / v:.3g} {unit}"
    return f"{bps:.3g} bit/s"


# ------------------------------------------------------------------------------------------------
# Per-layer times -> backward fraction of t_comp and gradient-ready fractions of backward


def read_layer_times(path):
    if not os.path.isfile(path):
        raise InputError(f"layer times file {path}: no such file")
    out = {}
    pat = re.compile(r"^\s*(\w+)\s+forward\s+([0-9.]+)\s*ms\s+backward\s+([0-9.]+)\s*ms")
    with open(path, errors="replace") as f:
        for line in f:
            m = pat.match(line)
            if m:
                out[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    missing = [name for name in FORWARD_ORDER if name not in out]
    if missing:
        raise InputError(f"layer times file {path}: no line '<layer> forward X ms backward Y ms' for "
                         f"{', '.join(missing)} (expected the output of train_step_bench --per-layer)")
    return out


class Timing:
    """f_bwd = backward / (forward + backward); ready[layer] = fraction of backward done when that
    parameter layer's gradients are final."""

    def __init__(self, layer_ms):
        fwd = sum(layer_ms[n][0] for n in FORWARD_ORDER)
        bwd = sum(layer_ms[n][1] for n in FORWARD_ORDER)
        self.f_bwd = bwd / (fwd + bwd)
        self.ready = {}
        acc = 0.0
        for name in reversed(FORWARD_ORDER):
            acc += layer_ms[name][1]
            if name in PARAM_LAYERS:
                self.ready[name] = acc / bwd
        self.ready["conv1"] = 1.0  # the last bucket is handed over when backward ends


# ------------------------------------------------------------------------------------------------
# Buckets (src/comm/bucket_plan.cpp)


def plan_buckets(bucket_mb, per_tensor):
    """[(floats, layer of its last tensor)] in backward order."""
    bucket_bytes = int(bucket_mb * 1e6)  # static_cast<size_t>(cfg.bucket_mb * 1e6)
    buckets, count = [], 0
    for _, n, layer in TENSORS:
        count += n
        if per_tensor or count * 4 >= bucket_bytes:
            buckets.append((count, layer))
            count = 0
    if count:
        buckets.append((count, TENSORS[-1][2]))
    return buckets


# ------------------------------------------------------------------------------------------------
# Fits


def _lin_relative(X, t):
    """min sum(((X c - t) / t)^2) with c >= 0 (small problems: try every active set)."""
    A = X / t[:, None]
    y = np.ones(len(t))
    k = X.shape[1]
    best = None
    for mask in range(1, 2 ** k):
        cols = [j for j in range(k) if mask >> j & 1]
        c_sub, *_ = np.linalg.lstsq(A[:, cols], y, rcond=None)
        if np.any(c_sub < 0):
            continue
        c = np.zeros(k)
        c[cols] = c_sub
        r = float(np.sum((A @ c - y) ** 2))
        if best is None or r < best[0] - 1e-15:
            best = (r, c)
    return best[1] if best else np.zeros(k)


def fit_relative(X, t):
    """min sum(ln(X c / t)^2) over c >= 0: least squares of the relative error, measured
    symmetrically (a model 2x too slow costs what one 2x too fast does), so small messages count as
    much as large ones and a few slow outliers do not pull the fit toward the fastest samples as
    ((X c - t) / t)^2 does. Gauss-Newton with step halving, from the linear relative fit."""
    c = _lin_relative(X, t)
    if np.any(X @ c <= 0):
        c = np.maximum(c, 0) + 1e-12 * (np.abs(c).max() + 1e-30)
        c[c <= 0] = 1e-30

    def cost(c):
        m = X @ c
        return float(np.sum(np.log(m / t) ** 2)) if np.all(m > 0) else math.inf

    f = cost(c)
    for _ in range(100):
        m = X @ c
        r = np.log(m / t)
        J = X / m[:, None]
        free = c > 0
        if not np.any(free):
            break
        d = np.zeros_like(c)
        d_free, *_ = np.linalg.lstsq(J[:, free], -r, rcond=None)
        d[free] = d_free
        step, improved = 1.0, False
        while step > 1e-12:
            c_new = np.maximum(c + step * d, 0.0)
            f_new = cost(c_new)
            if f_new < f:
                improved = True
                break
            step /= 2
        if not improved:
            break
        done = f - f_new < 1e-14 * max(f, 1e-300)
        c, f = c_new, f_new
        if done:
            break
    return c


def max_rel_err(pred, t):
    return float(np.max(np.abs(pred - t) / t)) if len(t) else float("nan")


def med_rel_err(pred, t):
    return float(np.median(np.abs(pred - t) / t)) if len(t) else float("nan")


def ring_time(S, n, alpha, beta):
    return 2 * (n - 1) * alpha + 2 * (n - 1) / n * S * beta


class BenchFile:
    def __init__(self, path, link, n, rph, sizes, mpi_s, ring_s, ring_n=None):
        self.path, self.link, self.n, self.rph = path, link, n, rph
        # Ranks of the ring that crosses the links: the hosts when allreduce_bench ran the
        # hierarchical ring (its ring_hosts column), else all N. Within-host phases go over shared
        # memory and are left out of the alpha-beta terms.
        self.ring_n = ring_n or n
        self.key = link_key(link)
        self.rate = parse_rate(link)
        self.sizes, self.mpi_s, self.ring_s = sizes, mpi_s, ring_s

    def fit(self, lo, hi, split=None):
        sel = (self.sizes >= lo) & (self.sizes <= hi)
        if sel.sum() < 2:
            raise InputError(f"bench file {self.path}: fewer than 2 rows with size_bytes in "
                             f"{lo:g}..{hi:g} (--fit-bytes)")
        self.fit_sel = sel
        S, tm, tr, n = self.sizes[sel], self.mpi_s[sel], self.ring_s[sel], self.ring_n
        small, large = S < (split or 0), S >= (split or 0)
        if split and small.sum() >= 1 and large.sum() >= 1:
            # Two stages, for shaped links: a tbf bucket lets messages below its burst through at
            # the veth's speed, so small messages tell the latency and only those beyond the burst
            # tell the link's rate. alpha from the small rows, beta from the large, alternated
            # until they agree (exact on alpha-beta data).
            def stages(t, lat_w, bw_w):
                lat, bw = 0.0, 0.0
                for _ in range(20):
                    bw = float(np.median(np.maximum(t[large] - lat_w * lat, 1e-12) / (bw_w * S[large])))
                    lat = max(0.0, float(np.median((t[small] - bw_w * S[small] * bw) / lat_w)))
                return lat, bw
            self.alpha, self.beta = stages(tr, 2 * (n - 1), 2 * (n - 1) / n)
            self.mpi_a, self.mpi_b = stages(tm, 1.0, 1.0)
            self.ring_err = max_rel_err(ring_time(S, n, self.alpha, self.beta), tr)
            self.ring_med = med_rel_err(ring_time(S, n, self.alpha, self.beta), tr)
            self.mpi_err = max_rel_err(self.mpi_a + self.mpi_b * S, tm)
            self.mpi_med = med_rel_err(self.mpi_a + self.mpi_b * S, tm)
            order = np.argsort(self.sizes)
            self.tab_S, self.tab_mpi, self.tab_ring = self.sizes[order], self.mpi_s[order], self.ring_s[order]
            return
        self.alpha, self.beta = fit_relative(np.column_stack([2 * (n - 1) * np.ones_like(S), 2 * (n - 1) / n * S]), tr)
        self.ring_err = max_rel_err(ring_time(S, n, self.alpha, self.beta), tr)
        self.ring_med = med_rel_err(ring_time(S, n, self.alpha, self.beta), tr)
        self.mpi_a, self.mpi_b = fit_relative(np.column_stack([np.ones_like(S), S]), tm)
        self.mpi_err = max_rel_err(self.mpi_a + self.mpi_b * S, tm)
        self.mpi_med = med_rel_err(self.mpi_a + self.mpi_b * S, tm)
        order = np.argsort(self.sizes)
        self.tab_S, self.tab_mpi, self.tab_ring = self.sizes[order], self.mpi_s[order], self.ring_s[order]

    def _table(self, S, times):
        """the bench's own times, log-log interpolated (None outside the measured sizes)"""
        if self.tab_S[0] <= S <= self.tab_S[-1]:
            return float(np.exp(np.interp(np.log(S), np.log(self.tab_S), np.log(times))))
        return None

    def t_ring(self, S, table=False):
        t = self._table(S, self.tab_ring) if table else None
        return t if t is not None else ring_time(S, self.ring_n, self.alpha, self.beta)

    def t_mpi(self, S, table=False):
        t = self._table(S, self.tab_mpi) if table else None
        return t if t is not None else self.mpi_a + self.mpi_b * S

    def label(self):
        return (f"{self.link} np{self.n}" + (f" rph{self.rph}" if self.rph else "") +
                (f" (ring over {self.ring_n} hosts)" if self.ring_n != self.n else ""))


class PooledRing:
    """One ring alpha, beta per link over all its bench files (all N)."""

    def __init__(self, files):
        self.files = files
        self.link = files[0].link
        self.rate = files[0].rate
        X, t = [], []
        for b in files:
            S = b.sizes[b.fit_sel]
            X.append(np.column_stack([2 * (b.ring_n - 1) * np.ones_like(S), 2 * (b.ring_n - 1) / b.ring_n * S]))
            t.append(b.ring_s[b.fit_sel])
        X, t = np.vstack(X), np.concatenate(t)
        self.alpha, self.beta = fit_relative(X, t)
        self.err = max_rel_err(X @ np.array([self.alpha, self.beta]), t)
        self.med = med_rel_err(X @ np.array([self.alpha, self.beta]), t)
        self.ns = sorted({b.n for b in files})


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


# ------------------------------------------------------------------------------------------------
# Metrics files

STEP_FIELDS = ("t_data", "t_comp", "t_update", "t_wait")


def text(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.shape == (1,):
        return text(v[0])
    return str(v)


def is_metrics_file(path):
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return text(f.attrs.get("format", "")).startswith("cifar_mpi metrics")
    except OSError:
        return False


class Run:
    def __init__(self, path, default_link):
        import h5py
        if not os.path.exists(path):
            raise InputError(f"metrics file {path}: no such file")
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            raise InputError(f"metrics file {path}: not a readable HDF5 file ({str(e).splitlines()[0]})")
        with f:
            a = f.attrs

            def attr(name, conv):
                if name not in a:
                    raise InputError(f"metrics file {path}: missing attribute '{name}'")
                try:
                    return conv(a[name].item() if isinstance(a[name], np.ndarray) and a[name].size == 1 else a[name])
                except (TypeError, ValueError):
                    raise InputError(f"metrics file {path}: attribute '{name}' has a bad value {a[name]!r}")

            self.path = path
            self.n = attr("world_size", int)
            self.strategy = attr("strategy", text)
            if self.strategy not in ("naive", "mpi", "ring"):
                raise InputError(f"metrics file {path}: attribute 'strategy' is '{self.strategy}', "
                                 f"not naive, mpi or ring")
            self.bucket_mb = attr("bucket_mb", float)
            self.overlap = bool(attr("overlap", int))
            self.gradient_bytes = attr("gradient_bytes", int)
            self.batch = attr("batch_per_rank", int)
            self.buckets_attr = int(a["buckets"]) if "buckets" in a else None
            self.wire = text(a["wire_dtype"]) if "wire_dtype" in a else "fp32"
            self.threads = int(a["threads_per_rank"]) if "threads_per_rank" in a else None
            meta = {k[5:]: text(a[k]) for k in a if k.startswith("meta.")}
            self.meta = meta
            hosts = meta.get("hosts")
            if "link_rate" in meta and hosts != "1":
                self.link = meta["link_rate"]
            else:
                self.link = "loopback" if ("link_rate" in meta or default_link is None) else default_link
            self.rph = int(meta["ranks_per_host"]) if meta.get("ranks_per_host", "").isdigit() else None
            self.hosts = int(hosts) if (hosts or "").isdigit() else None
            steps = {}
            for k in STEP_FIELDS:
                if f"steps/{k}" not in f:
                    raise InputError(f"metrics file {path}: missing dataset 'steps/{k}'")
                steps[k] = np.asarray(f[f"steps/{k}"][()], dtype=float)
                if steps[k].ndim != 2 or steps[k].shape[1] != self.n:
                    raise InputError(f"metrics file {path}: dataset 'steps/{k}' has shape {steps[k].shape}, "
                                     f"want [steps, {self.n}]")
            if "epochs/wall" not in f:
                raise InputError(f"metrics file {path}: missing dataset 'epochs/wall'")
            self.wall = float(np.sum(f["epochs/wall"][()]))
        self.steps = steps
        self.n_steps = steps["t_comp"].shape[0]
        if self.n_steps == 0:
            raise InputError(f"metrics file {path}: no steps recorded")
        if self.gradient_bytes != GRADIENT_FLOATS * 4:
            raise InputError(f"metrics file {path}: gradient_bytes = {self.gradient_bytes}, but this model "
                             f"knows the 315,722-parameter SimpleCnn ({GRADIENT_FLOATS * 4} bytes)")
        self.name = os.path.basename(path)

    def compute(self):
        """per step: C = t_data + t_comp + t_update, [steps, ranks]"""
        s = self.steps
        return s["t_data"] + s["t_comp"] + s["t_update"]


# ------------------------------------------------------------------------------------------------
# Step model


def exposed_comm(comm_times, ready_fracs, backward, overlap):
    """comm_times[k], ready_fracs[k] (fraction of backward), backward duration (s)."""
    if not overlap:
        return float(sum(comm_times))
    end = 0.0
    for c, r in zip(comm_times, ready_fracs):
        end = max(r * backward, end) + c
    return max(0.0, end - backward)


def bucket_comm(buckets, strategy, n, bench, wire_bytes, table=False):
    if n == 1:
        return [0.0] * len(buckets)
    if strategy == "ring":
        return [bench.t_ring(fl * wire_bytes, table) for fl, _ in buckets]
    return [bench.t_mpi(fl * wire_bytes, table) for fl, _ in buckets]


def find_bench(benches, run):
    key = link_key(run.link)
    same = [b for b in benches if b.key == key and b.n == run.n]
    if run.rph is not None and any(b.rph == run.rph for b in same):
        return [b for b in same if b.rph == run.rph][0], ""
    plain = [b for b in same if b.rph is None]
    if plain:
        return plain[0], ""
    if same:
        return same[0], f"bench rph{same[0].rph} (run rph{run.rph})"
    return None, ""


class Prediction:
    pass


def predict(run, bench, pooled, timing, mode, baselines):
    p = Prediction()
    p.run, p.note = run, ""
    per_tensor = run.strategy == "naive"
    buckets = plan_buckets(run.bucket_mb, per_tensor)
    if run.buckets_attr is not None and run.buckets_attr != len(buckets):
        p.note += f"buckets {len(buckets)} != file's {run.buckets_attr}; "
    wire_bytes = 2 if run.wire in ("bf16", "fp16") else 4
    if run.n > 1 and bench is None:
        if run.strategy == "ring" and pooled is not None:
            bench_like = _PooledAsBench(pooled, run.n)
            p.note += f"ring alpha-beta pooled over {run.link} np{','.join(map(str, pooled.ns))}; "
        else:
            p.skip = f"no bench file for link {run.link} with N = {run.n}"
            return p
    else:
        bench_like = bench
    p.skip = None
    comm = bucket_comm(buckets, run.strategy, run.n, bench_like, wire_bytes)
    comm_tab = bucket_comm(buckets, run.strategy, run.n, bench_like, wire_bytes, table=True)
    ready = [timing.ready[layer] for _, layer in buckets]
    C = run.compute()
    tc = run.steps["t_comp"]
    if mode == "max":
        idx = np.argmax(C, axis=1)
        Cs = C[np.arange(len(C)), idx]
        Bs = timing.f_bwd * tc.max(axis=1)
    elif mode == "mean":
        Cs = C.mean(axis=1)
        Bs = timing.f_bwd * tc.mean(axis=1)
    else:  # n1
        base = [b for b in baselines if b.batch == run.batch and (b.threads == run.threads or b.threads is None)]
        if not base:
            p.skip = f"--compute n1: no N=1 metrics file with batch {run.batch}"
            return p
        b = base[0]
        Cs = np.full(run.n_steps, b.compute().mean())
        Bs = np.full(run.n_steps, timing.f_bwd * b.steps["t_comp"].mean())
        p.note += f"compute of {b.name}; "
    exposed = np.array([exposed_comm(comm, ready, B, run.overlap) for B in Bs])
    exposed_tab = np.array([exposed_comm(comm_tab, ready, B, run.overlap) for B in Bs])
    p.buckets = buckets
    p.comm_per_step = float(sum(comm))
    p.compute = float(Cs.sum())
    p.exposed = float(exposed.sum())
    p.pred = p.compute + p.exposed
    p.meas = run.wall
    p.ratio = p.pred / p.meas if p.meas > 0 else float("nan")
    p.exposed_tab = float(exposed_tab.sum())
    p.pred_tab = p.compute + p.exposed_tab
    p.ratio_tab = p.pred_tab / p.meas if p.meas > 0 else float("nan")
    # measured exposed comm without waiting for a slower rank: min over ranks of t_wait, per step
    p.meas_wait_min = float(run.steps["t_wait"].min(axis=1).sum())
    p.bench_label = bench.label() if bench is not None else ("-" if run.n == 1 else "pooled")
    return p


class _PooledAsBench:
    def __init__(self, pooled, n):
        self.pooled, self.n = pooled, n

    def t_ring(self, S, table=False):
        return ring_time(S, self.n, self.pooled.alpha, self.pooled.beta)


# ------------------------------------------------------------------------------------------------
# Extrapolation


def extrap_step(n, T1, B1, alpha, rate, overlap, bucket_mb, timing, batch_scale=1.0):
    """(step time, efficiency) of weak scaling at n ranks, ring all-reduce, fp32."""
    C, B = T1 * batch_scale, B1 * batch_scale
    if n == 1:
        return C, 1.0
    beta = 8.0 / rate
    buckets = plan_buckets(bucket_mb if overlap else 1e6, False)
    comm = [ring_time(fl * 4, n, alpha, beta) for fl, _ in buckets]
    ready = [timing.ready[layer] for _, layer in buckets]
    T = C + exposed_comm(comm, ready, B, overlap)
    return T, C / T


def bisect_log(f, lo, hi, iters=80):
    """f increasing in x; x where f(x) = 0 between lo and hi (log bisection)."""
    a, b = math.log(lo), math.log(hi)
    for _ in range(iters):
        m = 0.5 * (a + b)
        if f(math.exp(m)) < 0:
            a = m
        else:
            b = m
    return math.exp(b)


def batch_threshold(n, T1, B1, batch0, alpha, rate, overlap, bucket_mb, timing):
    def g(b):
        return extrap_step(n, T1, B1, alpha, rate, overlap, bucket_mb, timing, b / batch0)[1] - 0.5
    if g(1.0) >= 0:
        return "<= 1"
    if g(1e7) < 0:
        return "> 1e7"
    return f"{math.ceil(bisect_log(g, 1.0, 1e7))}"


def rate_threshold(n, T1, B1, alpha, overlap, bucket_mb, timing):
    def g(r):
        return extrap_step(n, T1, B1, alpha, r, overlap, bucket_mb, timing)[1] - 0.5
    if g(1e16) < 0:
        return "never (alpha-bound)"
    if g(1e6) >= 0:
        return "< 1 Mbit/s"
    return fmt_rate(bisect_log(g, 1e6, 1e16))


# ------------------------------------------------------------------------------------------------
# Tables


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def us(x):
    return f"{x * 1e6:.2f}"


def gbps(beta):
    return f"{8.0 / beta / 1e9:.4g}" if beta > 0 else "inf"


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
    ap.add_argument("--layer-times", metavar="FILE",
                    help="output of train_step_bench --per-layer, instead of the built-in LAYER_MS")
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
    except InputError as e:
        die(str(e))


def run(args):
    timing = Timing(read_layer_times(args.layer_times) if args.layer_times else LAYER_MS)
    bench_specs, metric_paths = collect_inputs(args)
    benches = [load_bench(s) for s in bench_specs]
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
    pooled = {k: PooledRing(v) for k, v in pooled.items()}

    runs = []
    for p, from_dir in metric_paths:
        if from_dir and not is_metrics_file(p):
            # a folder may hold other HDF5 files (checkpoints, weights): skip those, loudly
            warn(f"{p}: not a cifar_mpi metrics file (no 'format' attribute 'cifar_mpi metrics ...'); skipped")
            continue
        runs.append(Run(p, args.default_link))

    out_dir = args.out or (args.dirs[0] if args.dirs else os.path.dirname(os.path.abspath(benches[0].path)))
    if not os.path.isdir(out_dir):
        raise InputError(f"output folder {out_dir}: no such directory")
    if not os.access(out_dir, os.W_OK):
        raise InputError(f"output folder {out_dir}: not writable")

    md = ["# Cost model of cifar_mpi (tools/cost_model.py)", ""]

    def section(title, body):
        md.extend([f"## {title}", "", body, ""])
        print(f"\n## {title}\n\n{body}")

    # --- fits ----------------------------------------------------------------------------------
    rows = []
    for b in sorted(benches, key=lambda b: (b.rate or 0, b.key, b.n, b.rph or 0)):
        mpi_beta = b.mpi_b * b.n / (2 * (b.n - 1)) if b.mpi_b > 0 else 0.0
        nominal = fmt_rate(b.rate) if b.rate else "-"
        rows.append([b.label(), nominal, int(b.fit_sel.sum()),
                     us(b.alpha), gbps(b.beta), f"{100 * b.ring_err:.0f}% / {100 * b.ring_med:.0f}%",
                     us(b.mpi_a), gbps(mpi_beta), f"{100 * b.mpi_err:.0f}% / {100 * b.mpi_med:.0f}%"])
    section("Fitted alpha-beta per bench file (link, N)",
            "ring: t = 2(N-1) alpha + 2(N-1)/N S beta; mpi: t = a + b S with b = 2(N-1)/N beta_eff. "
            f"Fits over sizes {args.fit_lo:g}..{args.fit_hi:g} B, least squares of ln(fit / bench); err = "
            "|fit - bench| / bench over those rows, largest / median.\n\n" + md_table(
                ["bench", "nominal rate", "rows", "ring alpha (us)", "ring 8/beta (Gbit/s)", "ring err max / med",
                 "mpi a (us)", "mpi 8/beta_eff (Gbit/s)", "mpi err max / med"], rows))
    rows = []
    for k, pr in sorted(pooled.items(), key=lambda kv: (kv[1].rate or 0, kv[0])):
        goodput = f"{100 * (8 / pr.beta) / pr.rate:.0f}%" if pr.rate and pr.beta > 0 else "-"
        rows.append([pr.link, ",".join(map(str, pr.ns)), us(pr.alpha), gbps(pr.beta), goodput,
                     f"{100 * pr.err:.0f}% / {100 * pr.med:.0f}%"])
    with open(os.path.join(out_dir, "fits.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["link", "ranks", "ranks_per_host", "file", "rows", "ring_alpha_s", "ring_beta_s_per_byte",
                    "ring_max_rel_err", "mpi_a_s", "mpi_b_s_per_byte", "mpi_max_rel_err"])
        for b in benches:
            w.writerow([b.link, b.n, b.rph or "", b.path, int(b.fit_sel.sum()), f"{b.alpha:.9g}", f"{b.beta:.9g}",
                        f"{b.ring_err:.6g}", f"{b.mpi_a:.9g}", f"{b.mpi_b:.9g}", f"{b.mpi_err:.6g}"])
        for pr in pooled.values():
            w.writerow([pr.link, "pooled", "", "", "", f"{pr.alpha:.9g}", f"{pr.beta:.9g}", f"{pr.err:.6g}",
                        "", "", ""])
    section("Ring alpha-beta per link (all N pooled)",
            md_table(["link", "N", "alpha (us)", "8/beta (Gbit/s)", "of nominal rate", "err max / med"], rows))

    # --- predictions --------------------------------------------------------------------------
    flagged = 0
    if runs:
        baselines = [r for r in runs if r.n == 1]
        preds = []
        for r in sorted(runs, key=lambda r: (link_key(r.link), r.n, r.strategy, r.overlap, r.bucket_mb, r.name)):
            bench, how = find_bench(benches, r) if r.n > 1 else (None, "")
            p = predict(r, bench, pooled.get(link_key(r.link)), timing, args.compute, baselines)
            if how:
                p.note = (p.note or "") + how + "; "
            preds.append(p)
        rows = []
        for p in preds:
            r = p.run
            n_buckets = len(plan_buckets(r.bucket_mb, r.strategy == "naive"))
            cfg = [r.name, r.link, r.n, r.strategy, f"{r.bucket_mb:g} ({n_buckets})", "on" if r.overlap else "off",
                   r.n_steps]
            if p.skip:
                rows.append(cfg + ["-"] * 9 + [f"skipped: {p.skip}"])
                warn(f"{r.path}: {p.skip}")
                continue
            err = p.ratio - 1
            flag = abs(err) > args.tolerance
            flagged += flag
            rows.append(cfg + [p.bench_label, f"{p.compute:.3f}", f"{1e3 * p.exposed / r.n_steps:.2f}",
                               f"{1e3 * p.exposed_tab / r.n_steps:.2f}", f"{1e3 * p.meas_wait_min / r.n_steps:.2f}",
                               f"{p.pred:.3f}", f"{p.meas:.3f}", f"{p.ratio:.3f}" + (" **!**" if flag else ""),
                               f"{p.ratio_tab:.3f}", p.note.rstrip("; ")])
        section("Predicted vs measured training wall time",
                f"Compute per step: {args.compute} (t_data + t_comp + t_update); f_bwd = {timing.f_bwd:.3f} of "
                f"t_comp is backward. comm/step: exposed communication per step, modelled with the alpha-beta "
                f"fit (fit) or with the bench's own times interpolated (bench); meas = min over ranks of t_wait "
                f"per step (the exposed wait of the last rank to arrive, which waits for no slower rank). "
                f"pred wall and pred/meas use the fit; **!** = off by more than {100 * args.tolerance:.0f}%; "
                f"pred/meas (bench) tells the error of the step model alone.\n\n" + md_table(
                    ["file", "link", "N", "strategy", "bucket MB (n)", "overlap", "steps", "bench", "compute (s)",
                     "comm/step fit (ms)", "comm/step bench (ms)", "comm/step meas (ms)", "pred wall (s)",
                     "meas wall (s)", "pred/meas", "pred/meas (bench)", "note"], rows))
        with open(os.path.join(out_dir, "predictions.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "link", "ranks", "strategy", "bucket_mb", "buckets", "overlap", "steps", "bench",
                        "compute_s", "exposed_comm_s", "pred_wall_s", "meas_wall_s", "ratio", "meas_wait_min_s",
                        "exposed_comm_bench_s", "pred_wall_bench_s", "ratio_bench", "note"])
            for p in preds:
                r = p.run
                if p.skip:
                    w.writerow([r.path, r.link, r.n, r.strategy, r.bucket_mb, "", int(r.overlap), r.n_steps, "",
                                "", "", "", f"{r.wall:.6f}", "", "", "", "", "", "skipped: " + p.skip])
                else:
                    w.writerow([r.path, r.link, r.n, r.strategy, r.bucket_mb, len(p.buckets), int(r.overlap),
                                r.n_steps, p.bench_label, f"{p.compute:.6f}", f"{p.exposed:.6f}", f"{p.pred:.6f}",
                                f"{p.meas:.6f}", f"{p.ratio:.6f}", f"{p.meas_wait_min:.6f}", f"{p.exposed_tab:.6f}",
                                f"{p.pred_tab:.6f}", f"{p.ratio_tab:.6f}", p.note.rstrip("; ")])
        if flagged:
            print(f"{PROG}: {flagged} prediction(s) off by more than {100 * args.tolerance:.0f}%", file=sys.stderr)
    else:
        baselines = []

    # --- extrapolation ------------------------------------------------------------------------
    T1 = B1 = None
    if args.t_step_ms:
        T1 = args.t_step_ms * 1e-3
        B1 = timing.f_bwd * T1
        batch0, t1_src = args.batch, f"--t-step-ms {args.t_step_ms:g}"
    else:
        base = [r for r in baselines]
        if base:
            b = max(base, key=lambda r: r.n_steps)
            sl = slice(1, None) if b.n_steps > 1 else slice(None)
            T1 = float(b.compute()[sl].mean())
            B1 = timing.f_bwd * float(b.steps["t_comp"][sl].mean())
            batch0, t1_src = b.batch, f"{b.name} (mean of steps 2..{b.n_steps}, batch {b.batch})"
    if T1 is None:
        warn("no N=1 metrics file and no --t-step-ms: extrapolation skipped")
    else:
        scale = args.batch / batch0
        T1, B1 = T1 * scale, B1 * scale
        if args.alpha_us:
            alpha_fit, alpha_src = args.alpha_us * 1e-6, f"--alpha-us {args.alpha_us:g}"
        else:
            shaped = [p for p in pooled.values() if p.rate]
            if shaped:
                best = max(shaped, key=lambda p: p.rate)
                alpha_src = f"ring fit of the fastest shaped link, {best.link}"
            else:
                best = min(pooled.values(), key=lambda p: p.beta)
                alpha_src = f"ring fit of {best.link} (no shaped link among the bench files)"
                warn(f"no bench file of a shaped link (bench-<rate>-np<N>.csv): extrapolating with the alpha "
                     f"of {best.link}")
            alpha_fit = best.alpha
        alphas = [(f"alpha {alpha_fit * 1e6:.3g} us (fitted)", alpha_fit),
                  (f"alpha {args.cluster_alpha_us:g} us (cluster-like)", args.cluster_alpha_us * 1e-6)]
        configs = [(a_lbl, a, r_lbl, r, ov) for a_lbl, a in alphas for r_lbl, r in args.rates for ov in (False, True)]
        curves = {}
        for cfg in configs:
            a_lbl, a, r_lbl, r, ov = cfg
            curves[cfg] = [extrap_step(n, T1, B1, a, r, ov, args.extrap_bucket_mb, timing) for n in EXTRAP_NS]
        head = (f"Weak scaling, per-rank batch {args.batch}, ring all-reduce. T1 = {1e3 * T1:.2f} ms per step "
                f"from {t1_src}" + (f", scaled x{scale:g} to batch {args.batch}" if scale != 1 else "") +
                f"; backward {1e3 * B1:.2f} ms. beta = 8 / link rate (nominal). alpha: {alpha_src}; "
                f"and {args.cluster_alpha_us:g} us, a cluster-like per-message latency (kernel-bypass or "
                f"tuned TCP on a datacenter network; an assumption, not measured here). Overlap off: one "
                f"bucket of {GRADIENT_FLOATS * 4:,} B; overlap on: {args.extrap_bucket_mb:g} MB buckets "
                f"({len(plan_buckets(args.extrap_bucket_mb, False))}). Cells: speedup S = N T1 / T_N "
                f"(efficiency E = T1 / T_N).")
        section("Extrapolation: assumptions", head)
        for a_lbl, a in alphas:
            hdr = ["N"] + [f"{r_lbl} overlap {'on' if ov else 'off'}"
                           for r_lbl, _ in args.rates for ov in (False, True)]
            rows = []
            for i, n in enumerate(EXTRAP_NS):
                if n < 8:
                    continue
                row = [n]
                for r_lbl, r in args.rates:
                    for ov in (False, True):
                        T, e = curves[(a_lbl, a, r_lbl, r, ov)][i]
                        row.append(f"{n * e:.1f} ({100 * e:.0f}%)")
                rows.append(row)
            section(f"Extrapolation, {a_lbl}: speedup (efficiency)", md_table(hdr, rows))
        rows = []
        for n in THRESHOLD_NS:
            for a_lbl, a in alphas:
                for ov in (False, True):
                    row = [n, a_lbl.split(" (")[0], "on" if ov else "off"]
                    for r_lbl, r in args.rates:
                        row.append(batch_threshold(n, T1, B1, args.batch, a, r, ov, args.extrap_bucket_mb, timing))
                    row.append(rate_threshold(n, T1, B1, a, ov, args.extrap_bucket_mb, timing))
                    rows.append(row)
        section("Where efficiency falls below 50%",
                f"Per-rank batch below which E < 50% (compute linear in the batch: C(b) = T1 b / {args.batch}), "
                f"at each link rate; and the link rate below which E < 50% at batch {args.batch}. "
                "'never (alpha-bound)': the 2(N-1) alpha latency alone exceeds the compute.\n\n" +
                md_table(["N", "alpha", "overlap"] + [f"batch @ {r_lbl}" for r_lbl, _ in args.rates] +
                         [f"link rate @ batch {args.batch}"], rows))

    md_path = os.path.join(out_dir, "cost_model.md")
    with open(md_path, "w") as f:
        f.write("\n".join(md) + "\n")
    written = [md_path, os.path.join(out_dir, "fits.csv")] + (
        [os.path.join(out_dir, "predictions.csv")] if runs else [])
    if not args.no_plots:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        written.append(plot_bench(plt, benches, os.path.join(out_dir, "bench_fit.png")))
        if T1 is not None:
            written.append(plot_extrap(plt, curves, alphas, args, os.path.join(out_dir, "cost_model.png")))
    print(f"\nwrote {', '.join(written)}")
    return 1 if (flagged and args.strict) else 0


def plot_bench(plt, benches, path):
    k = len(benches)
    cols = min(k, 3)
    rows = math.ceil(k / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    for ax, b in zip(axes.flat, sorted(benches, key=lambda b: (b.rate or 0, b.key, b.n, b.rph or 0))):
        S = b.sizes
        xs = np.geomspace(S.min(), S.max(), 200)
        ax.loglog(S, b.mpi_s * 1e6, "o", color="C0", ms=4, label="MPI_Allreduce (bench)")
        ax.loglog(S, b.ring_s * 1e6, "s", color="C1", ms=4, label="ring (bench)")
        ax.loglog(xs, (b.mpi_a + b.mpi_b * xs) * 1e6, "-", color="C0",
                  label=f"a + bS: a={b.mpi_a * 1e6:.3g}us, 8/beta_eff="
                        f"{8 / (b.mpi_b * b.n / (2 * (b.n - 1))) / 1e9 if b.mpi_b else float('inf'):.3g} Gbit/s")
        ax.loglog(xs, b.t_ring(xs) * 1e6, "--", color="C1",
                  label=f"ring: alpha={b.alpha * 1e6:.3g}us, "
                        f"8/beta={8 / b.beta / 1e9 if b.beta else float('inf'):.3g} Gbit/s")
        for lo_hi in (S[b.fit_sel].min(), S[b.fit_sel].max()):
            ax.axvline(lo_hi, color="grey", lw=0.6, ls=":")  # the fitted range
        ax.axvline(GRADIENT_FLOATS * 4, color="green", lw=0.8, alpha=0.6)
        ax.text(GRADIENT_FLOATS * 4, ax.get_ylim()[0] * 1.5, " gradient", color="green", fontsize=7, rotation=90,
                va="bottom")
        ax.set_title(b.label())
        ax.set_xlabel("bytes per rank")
        ax.set_ylabel("time per call (us)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[k:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_extrap(plt, curves, alphas, args, path):
    fig, axes = plt.subplots(2, len(alphas), figsize=(6 * len(alphas), 8.5), sharex=True, squeeze=False)
    ns = np.array(EXTRAP_NS)
    colors = {r_lbl: f"C{i}" for i, (r_lbl, _) in enumerate(args.rates)}
    for j, (a_lbl, a) in enumerate(alphas):
        ax_s, ax_e = axes[0, j], axes[1, j]
        ax_s.loglog(ns, ns, "k:", lw=1, label="ideal S = N")
        for r_lbl, r in args.rates:
            for ov in (False, True):
                eff = np.array([e for _, e in curves[(a_lbl, a, r_lbl, r, ov)]])
                kw = dict(color=colors[r_lbl], ls="-" if ov else "--", marker="o" if ov else "s", ms=4,
                          label=f"{r_lbl}, overlap {'on' if ov else 'off'}")
                ax_s.loglog(ns, ns * eff, **kw)
                ax_e.semilogx(ns, 100 * eff, **kw)
        ax_e.axhline(50, color="red", lw=0.8)
        ax_e.text(ns[0], 51, "50%", color="red", fontsize=8)
        ax_s.set_title(a_lbl)
        ax_s.set_ylabel("speedup S(N) = N T1 / T_N")
        ax_e.set_ylabel("efficiency T1 / T_N (%)")
        ax_e.set_xlabel("ranks N (weak scaling, per-rank batch %d)" % args.batch)
        ax_e.set_ylim(0, 105)
        for ax in (ax_s, ax_e):
            ax.set_xticks(ns)
            ax.set_xticklabels([str(n) for n in ns])
            ax.grid(True, which="both", alpha=0.3)
        ax_s.legend(fontsize=8)
    fig.suptitle("cifar_mpi cost model: ring all-reduce, extrapolated", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
