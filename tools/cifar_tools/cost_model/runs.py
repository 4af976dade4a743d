"""Reading cifar_mpi metrics files (docs/metrics.md): the configuration (root attributes), the
per-step, per-rank times, the epochs' wall time to predict, and the model/ group (tensors, bucket
plan, layer times) the step model needs. A file of an older build without model/ can borrow the
model of --layer-times FILE.h5 (bucket plan recomputed for its bucket size); otherwise it is an
error naming the file and the group."""
import os

import numpy as np

from .common import InputError, text
from .model import Model, plan_buckets, read_model

STEP_FIELDS = ("t_data", "t_comp", "t_update", "t_wait")


def is_metrics_file(path):
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return text(f.attrs.get("format", "")).startswith("cifar_mpi metrics")
    except OSError:
        return False


def _attr(a, path, name, conv):
    if name not in a:
        raise InputError(f"metrics file {path}: missing attribute '{name}'")
    v = a[name]
    try:
        return conv(v.item() if isinstance(v, np.ndarray) and v.size == 1 else v)
    except (TypeError, ValueError):
        raise InputError(f"metrics file {path}: attribute '{name}' has a bad value {v!r}")


class Run:
    """One metrics file: configuration, steps [step, rank] per field, measured wall, model."""

    def __init__(self, path, default_link):
        import h5py
        if not os.path.exists(path):
            raise InputError(f"metrics file {path}: no such file")
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            raise InputError(f"metrics file {path}: not a readable HDF5 file ({str(e).splitlines()[0]})")
        self.path, self.name = path, os.path.basename(path)
        with f:
            self._read_config(f.attrs, default_link)
            self._read_steps(f)
            self.model = read_model(f, path)
        self.model_note = ""
        if self.model is not None:
            self._check_model()

    def _read_config(self, a, default_link):
        path = self.path
        self.n = _attr(a, path, "world_size", int)
        self.strategy = _attr(a, path, "strategy", text)
        if self.strategy not in ("naive", "mpi", "ring"):
            raise InputError(f"metrics file {path}: attribute 'strategy' is '{self.strategy}', not naive, mpi or ring")
        self.bucket_mb = _attr(a, path, "bucket_mb", float)
        self.overlap = bool(_attr(a, path, "overlap", int))
        self.gradient_bytes = _attr(a, path, "gradient_bytes", int)
        self.batch = _attr(a, path, "batch_per_rank", int)
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

    def _read_steps(self, f):
        path, steps = self.path, {}
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

    def _check_model(self):
        if self.gradient_bytes != self.model.gradient_floats * 4:
            raise InputError(f"metrics file {self.path}: gradient_bytes = {self.gradient_bytes}, but its "
                             f"model/tensor_floats add up to {self.model.gradient_floats * 4} bytes")

    def use_layer_times(self, override):
        """--layer-times: its per-layer times for this run; a file without model/ borrows the
        tensors too (a Model override), its buckets planned for this run's bucket size."""
        if self.model is None:
            if not isinstance(override, Model):
                raise InputError(f"metrics file {self.path}: no group 'model' (tensors, bucket plan, layer "
                                 f"times; written by newer cifar_mpi builds); give --layer-times FILE.h5 to "
                                 f"borrow them from a newer metrics file")
            buckets = plan_buckets(override.tensors, self.bucket_mb, self.strategy == "naive")
            self.model = Model(override.tensors, buckets, override.layer_times, override.source)
            self.model_note = f"model of {os.path.basename(override.source.split()[-1])}; "
            self._check_model()
        elif override is not None:
            lt = override.layer_times if isinstance(override, Model) else override
            self.model = self.model.with_layer_times(lt)

    def compute(self):
        """per step: C = t_data + t_comp + t_update, [steps, ranks]"""
        s = self.steps
        return s["t_data"] + s["t_comp"] + s["t_update"]
