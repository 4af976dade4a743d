"""The step model: a run's training wall time from its measured compute and modelled communication.
Per step, C = t_data + t_comp + t_update (measured) and backward B = f_bwd t_comp; bucket k (from
the run's own bucket plan) costs c_k by the alpha-beta fit (or the bench's own times, to separate
the fit's error from this model's) and is ready at r_k B.
    overlap off: T_step = C + sum_k c_k
    overlap on:  one communication thread: start_k = max(r_k B, end_{k-1}), end_k = start_k + c_k,
                 T_step = C + max(0, end_last - B)"""
import numpy as np

from .common import link_key
from .fit import ring_time

def exposed_comm(comm_times, ready_fracs, backward, overlap):
    """Communication not hidden behind backward, one step: comm_times[k] (s), ready_fracs[k]
    (fraction of backward), backward duration (s)."""
    if not overlap:
        return float(sum(comm_times))
    end = 0.0
    for c, r in zip(comm_times, ready_fracs):
        end = max(r * backward, end) + c
    return max(0.0, end - backward)


# The all-reduces the fits cover (allreduce_bench's mpi and ring columns; at R > 1 ranks per host
# the bench's ring is the hierarchical one), by the names of model/bucket_algorithm.
FITTED = {"mpi": "mpi", "ring": "ring", "hierarchical ring": "ring"}


def bucket_algorithms(run, n_buckets):
    """(the fitted all-reduce, mpi or ring, of each bucket, "") or (None, why there is none): naive
    is one MPI_Allreduce per tensor; --allreduce auto chose per bucket (model/bucket_algorithm)."""
    if run.strategy == "auto":
        algos = run.bucket_algorithms
        if algos is None or len(algos) != n_buckets:
            return None, "--allreduce auto without the all-reduce of each bucket (model/bucket_algorithm)"
    else:
        algos = [{"naive": "mpi"}.get(run.strategy, run.strategy)] * n_buckets
    unfitted = sorted({a for a in algos if a not in FITTED})
    if unfitted:
        return None, f"no alpha-beta fit of {', '.join(unfitted)} (the bench's mpi and ring columns are fitted)"
    return [FITTED[a] for a in algos], ""


def bucket_comm(buckets, algos, n, bench, wire_bytes, table=False):
    if n == 1:
        return [0.0] * len(buckets)
    return [(bench.t_ring if a == "ring" else bench.t_mpi)(fl * wire_bytes, table)
            for (fl, _), a in zip(buckets, algos)]


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
    """predict()'s result: pred/meas wall (s), exposed comm (fit and bench table), notes."""


def predict(run, bench, pooled, mode, baselines):
    """Prediction of run's wall time; p.skip says why there is none."""
    p = Prediction()
    p.run, p.note = run, run.model_note
    timing = run.model.timing
    buckets = run.model.buckets
    if run.buckets_attr is not None and run.buckets_attr != len(buckets):
        p.note += f"buckets {len(buckets)} != file's {run.buckets_attr}; "
    wire_bytes = 2 if run.wire in ("bf16", "fp16") else 4
    algos, why = bucket_algorithms(run, len(buckets))
    if run.n > 1 and algos is None:
        p.skip = why
        return p
    if run.n > 1 and bench is None:
        if all(a == "ring" for a in algos) and pooled is not None:
            bench_like = _PooledAsBench(pooled, run.n)
            p.note += f"ring alpha-beta pooled over {run.link} np{','.join(map(str, pooled.ns))}; "
        else:
            p.skip = f"no bench file for link {run.link} with N = {run.n}"
            return p
    else:
        bench_like = bench
    p.skip = None
    comm = bucket_comm(buckets, algos, run.n, bench_like, wire_bytes)
    comm_tab = bucket_comm(buckets, algos, run.n, bench_like, wire_bytes, table=True)
    ready = run.model.bucket_ready()
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
    """A link's pooled ring fit standing in for a missing bench file of the run's N."""

    def __init__(self, pooled, n):
        self.pooled, self.n = pooled, n

    def t_ring(self, S, table=False):
        return ring_time(S, self.n, self.pooled.alpha, self.pooled.beta)

