"""A cifar_mpi metrics file as the cost model sees it (docs/metrics.md; h5files.MetricsFile reads it):
the configuration (root attributes), the per-step, per-rank times, the epochs' wall time to predict,
and the model/ group (tensors, bucket plan, layer times) the step model needs. A file of an older build without model/ can borrow the
model of --layer-times FILE.h5 (bucket plan recomputed for its bucket size); otherwise it is an
error naming the file and the group."""
import os

from ..h5files import MetricsFile, text
from .common import InputError
from .model import Model, plan_buckets, read_model

STEP_FIELDS = ("t_data", "t_comp", "t_update", "t_wait")
STRATEGIES = ("naive", "mpi", "ring", "rhd", "auto")  # --allreduce


class Run:
    """One metrics file: configuration, steps [step, rank] per field, measured wall, model."""

    def __init__(self, path, default_link):
        f = MetricsFile(path)
        self.path, self.name = path, os.path.basename(path)
        self._read_config(f, default_link)
        self._read_steps(f)
        self.model = read_model(f)
        self.model_note = ""
        if self.model is not None:
            self._check_model()

    def _read_config(self, f, default_link):
        path = self.path
        self.n = f.attr("world_size", int)
        self.strategy = f.attr("strategy", text)
        if self.strategy not in STRATEGIES:
            raise InputError(f"metrics file {path}: attribute 'strategy' is '{self.strategy}', not one of "
                             f"{', '.join(STRATEGIES)}")
        self.bucket_mb = f.attr("bucket_mb", float)
        self.overlap = bool(f.attr("overlap", int))
        self.gradient_bytes = f.attr("gradient_bytes", int)
        self.batch = f.attr("batch_per_rank", int)
        self.buckets_attr = f.attr("buckets", int, required=False)
        self.wire = f.attr("wire_dtype", text, default="fp32")
        self.threads = f.attr("threads_per_rank", int, required=False)
        meta = f.meta
        self.meta = meta
        hosts = meta.get("hosts")
        if "link_rate" in meta and hosts != "1":
            self.link = meta["link_rate"]
        else:
            self.link = "loopback" if ("link_rate" in meta or default_link is None) else default_link
        self.rph = int(meta["ranks_per_host"]) if meta.get("ranks_per_host", "").isdigit() else None
        self.hosts = int(hosts) if (hosts or "").isdigit() else None

    def _read_steps(self, f):
        self.steps = f.timers(STEP_FIELDS)
        self.wall = f.training_wall()
        self.n_steps = self.steps["t_comp"].shape[0]
        if self.n_steps == 0:
            raise InputError(f"metrics file {self.path}: no steps recorded")
        # The all-reduce each bucket ran (model/bucket_algorithm: mpi, ring, rhd, ...; per bucket
        # with --allreduce auto), or None for files of builds before it was recorded.
        self.bucket_algorithms = None
        if f.model is not None and "bucket_algorithm" in f.model:
            self.bucket_algorithms = [text(x) for x in f.model["bucket_algorithm"]]

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
