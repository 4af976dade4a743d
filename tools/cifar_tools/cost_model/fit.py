"""Alpha-beta fits of allreduce_bench times: one per bench file (link, N) for the ring and for
MPI_Allreduce, and one ring fit per link pooled over its N. The fit minimises the relative error
symmetrically (ln(model / measured)), so small messages, where latency rules, count as much as
large ones; shaped links get a two-stage fit (latency below the tbf burst, rate above).
The model: ring t(S) = 2(N-1) alpha + 2(N-1)/N S beta; mpi t(S) = a + b S."""
import math

import numpy as np

from .common import InputError, link_key, parse_rate


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
    """One bench file (link, N, ranks per host) and, after fit(), its alpha-beta fits."""

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
