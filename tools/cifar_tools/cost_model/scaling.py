"""Weak scaling of one training step at N ranks with overlap on: the bucket plan of --bucket-mb
auto (a small dynamic program), the step time of each all-reduce, and the step plan that
tools/smpi/step_sim replays under SMPI.

The bucket rule (the same as src/comm's --bucket-mb auto): tensors in backward order, never
split; a bucket is ready when backward has produced its last tensor; reductions run one after
another, each costing its algorithm's predicted time for its bytes; the boundaries minimise the
predicted end of the last reduction. E[i] = least end of the reductions of tensors [0, i):
    E[i] = min_{j<i} max(ready(i-1), E[j]) + cost(bytes of tensors j..i-1)
exact because the end of a reduction never decreases with the end of the one before it."""
import numpy as np

from ..h5files import MetricsFile
from .model import read_layer_times


class Step:
    """One rank's step at N=1, from a metrics file: forward F (with data loading), backward B
    (per layer, backward order), update U; tensors (floats, ready s after backward starts)."""

    def __init__(self, path, batch=None):
        model = read_layer_times(path)
        f = MetricsFile(path)
        steps = f.timers(("t_data", "t_comp", "t_update"))
        sl = slice(1, None) if steps["t_comp"].shape[0] > 1 else slice(None)
        t_data = float(np.max(steps["t_data"][sl], axis=1).mean())
        t_comp = float(np.max(steps["t_comp"][sl], axis=1).mean())
        t_update = float(np.max(steps["t_update"][sl], axis=1).mean())
        b0 = f.attr("batch_per_rank", int, default=batch or 1)
        scale = (batch / b0) if batch else 1.0
        self.source, self.batch = path, batch or b0
        self.B = model.timing.f_bwd * t_comp * scale
        self.F = (t_comp * scale - self.B) + t_data * scale
        self.U = t_update * scale
        self.C = self.F + self.B + self.U
        bwd = {name: b for name, _, b in model.layer_times.layers}
        total = sum(bwd.values())
        order = [name for name, _, _ in reversed(model.layer_times.layers)]
        self.layers = [(name, bwd[name] / total * self.B) for name in order]  # backward order
        self.tensors = [(fl, model.timing.ready[layer] * self.B, layer) for _, fl, layer in model.tensors]


def plan_buckets(tensors, cost):
    """Buckets [(first, end)] over tensors [(floats, ready s, layer)] minimising the end of the last
    reduction, cost(bytes) -> s."""
    n = len(tensors)
    E, arg = [0.0] + [float("inf")] * n, [0] * (n + 1)
    for i in range(1, n + 1):
        ready, floats = tensors[i - 1][1], 0
        for j in range(i - 1, -1, -1):
            floats += tensors[j][0]
            end = max(ready, E[j]) + cost(4 * floats)
            if end < E[i]:
                E[i], arg[i] = end, j
    out, i = [], n
    while i > 0:
        out.append((arg[i], i))
        i = arg[i]
    return out[::-1]


def bucket_algorithms(coll, algorithm, sizes):
    """[(algorithm, s)] per bucket of `sizes` bytes: the fixed one, or auto's pick."""
    if algorithm == "auto":
        return [coll.best(s) for s in sizes]
    return [(algorithm, coll.time(algorithm, s)) for s in sizes]


def step_time(step, buckets, costs, blocking):
    """Step time with overlap on: one reduction at a time in bucket order; a blocking one
    (MPI_Allreduce in step_sim) also stops the compute from its ready time to its end."""
    delay, end = 0.0, 0.0
    for (ready, c, blk) in zip((b[2] for b in buckets), costs, blocking):
        r = ready + delay
        start = max(r, end)
        end = start + c
        if blk:
            delay += end - r
    return step.C + delay + max(0.0, end - (step.B + delay))


class Plan:
    """A planned step at N: buckets [(floats, layer, ready s)], their algorithms and predicted
    costs, and the predicted step time."""

    def __init__(self, step, coll, algorithm):
        cost = (lambda b: coll.best(b)[1]) if algorithm == "auto" else (lambda b: coll.time(algorithm, b))
        spans = plan_buckets(step.tensors, cost) if coll.n > 1 else [(0, len(step.tensors))]
        self.buckets = [(sum(t[0] for t in step.tensors[a:b]), step.tensors[b - 1][2], step.tensors[b - 1][1])
                        for a, b in spans]
        picks = bucket_algorithms(coll, algorithm, [4 * fl for fl, _, _ in self.buckets])
        self.algorithms = [a for a, _ in picks]
        self.costs = [c for _, c in picks]
        self.T = step_time(step, self.buckets, self.costs, [a == "mpi" for a in self.algorithms])
        self.efficiency = step.C / self.T

    def write(self, path, step, header=""):
        """The step plan of tools/smpi/step_sim.cpp."""
        by_layer = {}
        for (fl, layer, _), a in zip(self.buckets, self.algorithms):
            by_layer.setdefault(layer, []).append((fl, a))
        with open(path, "w") as f:
            f.write(f"# step plan from {step.source}, per-rank batch {step.batch}{header}\n")
            f.write(f"forward {step.F:.9f}\n")
            for name, b in step.layers:
                f.write(f"backward {name} {b:.9f}\n")
                for fl, a in by_layer.get(name, []):
                    f.write(f"bucket {fl} {a}\n")
            f.write(f"update {step.U:.9f}\n")
