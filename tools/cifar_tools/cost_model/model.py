"""The model as a run trained it, read from its metrics file (group model/, docs/metrics.md): the
gradient tensors in backward order, the bucket plan as reduced, and per-layer forward and backward
times. The cost model used to carry these as constants of one machine and one version of the
network; reading them from the run keeps it right when a layer or the bucket rule changes.

From the layer times come the two numbers the step model needs: f_bwd, the fraction of t_comp that
is backward, and ready[layer], the fraction of backward done when that layer's gradients are final
(the last bucket is handed over when backward ends: ready = 1)."""
import os
import re

import numpy as np

from ..h5files import MetricsFile, is_hdf5, text
from .common import InputError


class LayerTimes:
    """[(layer, forward s, backward s)] in forward order, and where they come from."""

    def __init__(self, layers, source):
        self.layers, self.source = layers, source
        self.names = [name for name, _, _ in layers]


class Timing:
    """f_bwd = backward / (forward + backward); ready[layer] = fraction of backward done when that
    layer's backward has finished (backward runs the layers in reverse)."""

    def __init__(self, layer_times, last_layer):
        fwd = sum(f for _, f, _ in layer_times.layers)
        bwd = sum(b for _, _, b in layer_times.layers)
        if not (bwd > 0 and np.isfinite(fwd + bwd)):
            raise InputError(f"{layer_times.source}: per-layer times are not positive numbers")
        self.f_bwd = bwd / (fwd + bwd)
        self.ready = {}
        acc = 0.0
        for name, _, b in reversed(layer_times.layers):
            acc += b
            self.ready[name] = acc / bwd
        self.ready[last_layer] = 1.0  # the last bucket is handed over when backward ends


class Model:
    """tensors: [(name, floats, layer)] in backward order; buckets: [(floats, layer of its last
    tensor)] in the order reduced; layer_times: LayerTimes."""

    def __init__(self, tensors, buckets, layer_times, source):
        self.tensors, self.buckets, self.layer_times, self.source = tensors, buckets, layer_times, source
        missing = sorted({layer for _, _, layer in tensors} - set(layer_times.names))
        if missing:
            raise InputError(f"{layer_times.source}: no times for layer(s) {', '.join(missing)} "
                             f"that tensors of {source} belong to")
        self.timing = Timing(layer_times, tensors[-1][2])
        self.gradient_floats = sum(n for _, n, _ in tensors)

    def with_layer_times(self, layer_times):
        return Model(self.tensors, self.buckets, layer_times, self.source)

    def bucket_ready(self):
        """fraction of backward done when each bucket can start"""
        return [self.timing.ready[layer] for _, layer in self.buckets]


def plan_buckets(tensors, bucket_mb, per_tensor):
    """The rule of src/comm/bucket_plan.cpp, for buckets no run measured (the extrapolation's bucket
    size; older metrics files borrowing another file's tensors): tensors in backward order, a bucket
    closes once it holds >= bucket_mb * 1e6 bytes of floats; naive: one bucket per tensor.
    A run's own plan is read from its file (model/bucket_*), never recomputed."""
    bucket_bytes = int(bucket_mb * 1e6)  # static_cast<size_t>(cfg.bucket_mb * 1e6)
    buckets, count = [], 0
    for _, n, layer in tensors:
        count += n
        if per_tensor or count * 4 >= bucket_bytes:
            buckets.append((count, layer))
            count = 0
    if count:
        buckets.append((count, tensors[-1][2]))
    return buckets


def layer_of(tensor, layers):
    """The layer a tensor belongs to: the longest layer name that prefixes it ("fc1" of
    "fc1.weight"; a residual block "layer2.0" of "layer2.0.bn1.bias"), else its first component."""
    owners = [name for name in layers if tensor.startswith(name + ".")]
    return max(owners, key=len) if owners else tensor.split(".")[0]


def read_model(f):
    """Model of a metrics file (h5files.MetricsFile), or None if it has no model/ group (files of
    older builds)."""
    if f.model is None:
        return None
    path = f.path
    names = [text(x) for x in f.model_dataset("tensor_name")]
    floats = [int(x) for x in f.model_dataset("tensor_floats")]
    offsets = [int(x) for x in f.model_dataset("tensor_offset")]
    layers = [text(x) for x in f.model_dataset("layer_name")]
    fwd, bwd = f.model_dataset("layer_forward"), f.model_dataset("layer_backward")
    b_off, b_fl = f.model_dataset("bucket_offset"), f.model_dataset("bucket_floats")
    if not names or len(floats) != len(names) or len(offsets) != len(names):
        raise InputError(f"metrics file {path}: model/tensor_* are empty or of different lengths")
    if not layers or len(fwd) != len(layers) or len(bwd) != len(layers):
        raise InputError(f"metrics file {path}: model/layer_* are empty or of different lengths")
    if not np.all(np.isfinite(bwd)) or not np.all(np.isfinite(fwd)):
        raise InputError(f"metrics file {path}: model/layer_forward or layer_backward is NaN "
                         f"(no full-batch step recorded)")
    tensors = [(n, c, layer_of(n, layers)) for n, c in zip(names, floats)]
    lt = LayerTimes(list(zip(layers, map(float, fwd), map(float, bwd))), f"metrics file {path}")
    end_of = {o + c: t[2] for o, c, t in zip(offsets, floats, tensors)}  # tensor end -> its layer
    buckets = []
    for o, c in zip(b_off, b_fl):
        if int(o + c) not in end_of:
            raise InputError(f"metrics file {path}: bucket at {int(o)} of {int(c)} floats ends inside a tensor")
        buckets.append((int(c), end_of[int(o + c)]))
    return Model(tensors, buckets, lt, f"metrics file {path}")


def read_layer_times_text(path):
    """LayerTimes from the output of build/train_step_bench --per-layer (its lines are in forward
    order): '<layer> forward X ms backward Y ms'."""
    out = []
    pat = re.compile(r"^\s*([\w.]+)\s+forward\s+([0-9.]+)\s*ms\s+backward\s+([0-9.]+)\s*ms")
    with open(path, errors="replace") as f:
        for line in f:
            m = pat.match(line)
            if m:
                out.append((m.group(1), float(m.group(2)) * 1e-3, float(m.group(3)) * 1e-3))
    if not out:
        raise InputError(f"layer times file {path}: no line '<layer> forward X ms backward Y ms' "
                         f"(expected a metrics file .h5 or the output of train_step_bench --per-layer)")
    return LayerTimes(out, f"layer times file {path}")


def read_layer_times(path):
    """--layer-times FILE: a metrics file (its Model: tensors and layer times) or a text file of
    train_step_bench --per-layer (LayerTimes only)."""
    if not os.path.isfile(path):
        raise InputError(f"layer times file {path}: no such file")
    if not is_hdf5(path):
        return read_layer_times_text(path)
    m = read_model(MetricsFile(path))
    if m is None:
        raise InputError(f"layer times file {path}: no group 'model' (a metrics file of an older cifar_mpi)")
    return m
