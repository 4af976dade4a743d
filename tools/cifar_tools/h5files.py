"""Every HDF5 file the tools read: cifar_mpi's metrics files (docs/metrics.md) of any strategy and of
any build (with or without the evals/ and model/ groups, a killed run's partial file), and weights
files (--save-weights: one dataset per PyTorch state_dict name), and the PyTorch fixture of the C++
tests (read_arrays, write_arrays). The one place that opens them, so
every tool agrees on what a metrics file is and says the same thing about a bad one: a FileError
whose text is one line naming the file and what is missing or wrong.

    from cifar_tools.h5files import MetricsFile
    m = MetricsFile("results/sweep/np2.h5")
    m.world_size, m.strategy, m.config["lr"], m.meta.get("link_rate")
    m.timer("t_comp")          # float64 [steps, ranks]
    m.epochs["test_accuracy"], m.summary["images_per_second"], m.evaluations()["wall"]

Needs h5py and numpy (Debian: python3-h5py python3-numpy; /usr/bin/python3 has them)."""
import math
import os

import numpy as np

METRICS_FORMAT = "cifar_mpi metrics"  # the start of the root attribute `format`
TIMERS = ("t_data", "t_comp", "t_comm", "t_wait", "t_update")
EVAL_FIELDS = ("step", "epoch", "wall", "train_time", "test_loss", "test_accuracy")


class FileError(ValueError):
    """A file that cannot be read as asked; str() is one line naming the file."""


def h5py():
    """The h5py module, or a FileError saying how to get it."""
    try:
        import h5py as module
    except ImportError:
        raise FileError("h5py is not installed for this python3 (Debian: apt-get install python3-h5py, "
                        "and run the tools with /usr/bin/python3 or set CIFAR_PYTHON)") from None
    return module


def text(v):
    """An HDF5 string (h5py gives str or bytes, sometimes in a 1-element array) as str."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.shape == (1,):
        return text(v[0])
    return str(v)


def _plain(v):
    """An attribute value as Python sees it best: str for strings, a scalar for 1-element arrays."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.size == 1:
        return _plain(v.reshape(-1)[0])
    return v


def _first_line(e):
    return (str(e).splitlines() or [type(e).__name__])[0]


def open_file(path, what="file"):
    """An open h5py.File for reading; FileError if it is missing or not HDF5."""
    if not os.path.exists(path):
        raise FileError(f"{what} {path}: no such file")
    if os.path.isdir(path):
        raise FileError(f"{what} {path}: is a folder, not a file")
    try:
        return h5py().File(path, "r")
    except OSError as e:
        raise FileError(f"{what} {path}: not a readable HDF5 file ({_first_line(e)})") from None


def open_for_update(path, what="file"):
    """An open h5py.File for reading and writing (a copy being joined: cifar_tools.recoveries)."""
    if not os.path.isfile(path):
        raise FileError(f"{what} {path}: no such file")
    try:
        return h5py().File(path, "r+")
    except OSError as e:
        raise FileError(f"{what} {path}: not a writable HDF5 file ({_first_line(e)})") from None


def is_hdf5(path):
    return os.path.isfile(path) and h5py().is_hdf5(path)


def is_metrics_file(path):
    """True for a cifar_mpi metrics file: root attribute format 'cifar_mpi metrics ...', or (files of
    builds before that attribute) world_size and a steps/ group. False for anything else, including
    files that are not HDF5 (checkpoints and weights in a results folder are not metrics files)."""
    try:
        with open_file(path) as f:
            return _looks_like_metrics(f)
    except FileError:
        return False


def _looks_like_metrics(f):
    if "format" in f.attrs:
        return text(f.attrs["format"]).startswith(METRICS_FORMAT)
    return "world_size" in f.attrs and "steps" in f


class MetricsFile:
    """One metrics file, read whole at once (a few MB at most: 64 bytes per step and rank) and closed.

    attrs: root attributes (str or number); config, meta: the config.* and meta.* attributes
    without their prefix (str); epochs, summary: dict (empty when the group is absent); model:
    dict of the model/ group's datasets and attributes, or None (files of older builds).
    Accessors of what a tool needs (attr, timer, dataset) raise FileError naming the file and the
    missing or malformed piece; what is optional is read with .get or has()."""

    def __init__(self, path):
        self.path, self.name = path, os.path.basename(path)
        with open_file(path, "metrics file") as f:
            if not _looks_like_metrics(f):
                raise FileError(f"metrics file {path}: not a cifar_mpi metrics file (no attribute format "
                                f"'{METRICS_FORMAT} ...', nor world_size and a steps/ group)")
            self.attrs = {k: _plain(f.attrs[k]) for k in f.attrs}
            self._groups = {}
            for name, g in f.items():
                if isinstance(g, h5py().Group):
                    data = {k: np.asarray(d[()]) for k, d in g.items() if isinstance(d, h5py().Dataset)}
                    self._groups[name] = (data, {k: _plain(g.attrs[k]) for k in g.attrs})
        self.config = {k[len("config."):]: text(v) for k, v in self.attrs.items() if k.startswith("config.")}
        self.meta = {k[len("meta."):]: text(v) for k, v in self.attrs.items() if k.startswith("meta.")}
        self.epochs = dict(self._groups.get("epochs", ({}, {}))[0])
        self.summary = dict(self._groups.get("summary", ({}, {}))[1])
        self.model = None
        if "model" in self._groups:
            data, attrs = self._groups["model"]
            self.model = {**attrs, **data}

    # ---- what the file has -----------------------------------------------------------------
    def has(self, group, dataset=None):
        """True if the group (and the dataset in it) is in the file."""
        return group in self._groups and (dataset is None or dataset in self._groups[group][0])

    def attr(self, name, conv=None, default=None, required=True):
        """Root attribute NAME, converted by conv (int, float, text); default when absent and not
        required; a FileError naming the attribute when absent and required, or unconvertible."""
        if name not in self.attrs:
            if not required or default is not None:
                return default
            raise FileError(f"metrics file {self.path}: missing attribute '{name}'")
        v = self.attrs[name]
        if conv is None:
            return v
        try:
            return conv(v)
        except (TypeError, ValueError):
            raise FileError(f"metrics file {self.path}: attribute '{name}' has a bad value {v!r}") from None

    def dataset(self, group, name):
        """Dataset GROUP/NAME as an array; FileError if absent."""
        if not self.has(group, name):
            raise FileError(f"metrics file {self.path}: missing dataset '{group}/{name}'")
        return self._groups[group][0][name]

    # ---- the run ------------------------------------------------------------------------------
    @property
    def world_size(self):
        return self.attr("world_size", int)

    @property
    def strategy(self):
        """naive | mpi | ring | rhd | auto (--allreduce)"""
        return self.attr("strategy", text)

    @property
    def complete(self):
        return bool(self.attr("complete", int, required=False, default=0))

    def timer(self, name):
        """steps/NAME as float64 [steps, ranks] (t_data, t_comp, t_comm, t_wait, t_update, loss,
        skew, ...); FileError if absent or not one column per rank."""
        a = np.asarray(self.dataset("steps", name), dtype=np.float64)
        n = self.attr("world_size", int, required=False)
        if a.ndim != 2 or (n is not None and a.shape[1] != n):
            want = f"[steps, {n}]" if n is not None else "[steps, ranks]"
            raise FileError(f"metrics file {self.path}: dataset 'steps/{name}' has shape {a.shape}, want {want}")
        return a

    def timers(self, names=TIMERS):
        return {k: self.timer(k) for k in names}

    def step_column(self, name):
        """steps/NAME as it is stored (last_rank int32, comm_bytes uint64, epoch [steps], ...), or None."""
        return self._groups["steps"][0].get(name) if self.has("steps") else None

    @property
    def steps_recorded(self):
        return self.dataset("steps", "t_comp").shape[0]

    def has_evals(self):
        return self.has("evals")

    def evaluations(self):
        """Every evaluation of the test set as arrays EVAL_FIELDS (step, epoch, wall, train_time,
        test_loss, test_accuracy): evals/ of the file; files of builds before evals/ existed give their
        epoch-end evaluations from epochs/, at the cumulative training time (their evaluations' own
        time was not recorded, so wall = train_time). Absent columns are NaN."""
        if self.has("evals"):
            raw = self._groups["evals"][0]
            ev = {k: np.asarray(raw[k], dtype=np.float64) for k in EVAL_FIELDS if k in raw}
        else:
            e = self.epochs
            cum = np.cumsum(np.asarray(e.get("wall", []), dtype=np.float64))
            steps = np.cumsum(np.asarray(e.get("steps", []), dtype=np.float64))
            spe = float(self.attrs.get("steps_per_epoch", 0))
            ev = {"step": steps,
                  "epoch": steps / spe if spe > 0 else np.asarray(e.get("epoch", []), dtype=np.float64),
                  "wall": cum, "train_time": cum.copy(),
                  "test_loss": np.asarray(e.get("test_loss", []), dtype=np.float64),
                  "test_accuracy": np.asarray(e.get("test_accuracy", []), dtype=np.float64)}
        n = len(ev.get("test_accuracy", []))
        for k in EVAL_FIELDS:
            ev.setdefault(k, np.full(n, math.nan))
        return ev

    def training_wall(self):
        """Sum of epochs/wall: the measured training time (s)."""
        return float(np.sum(self.dataset("epochs", "wall")))

    def model_dataset(self, name):
        """model/NAME; FileError if the file has no model/ group or not that dataset."""
        if self.model is None:
            raise FileError(f"metrics file {self.path}: no group 'model'")
        if name not in self.model:
            raise FileError(f"metrics file {self.path}: missing dataset 'model/{name}'")
        return self.model[name]


def read_weights(path, shapes):
    """A weights file (--save-weights, --init-weights): {name: float32 array} for every name of
    shapes {name: shape}; FileError naming the file and the dataset that is missing or mis-shaped."""
    out = {}
    with open_file(path, "weights file") as f:
        for name, shape in shapes.items():
            if name not in f:
                raise FileError(f"weights file {path}: no dataset '{name}'")
            a = np.asarray(f[name][()])
            if a.shape != tuple(shape):
                raise FileError(f"weights file {path}: dataset '{name}' has shape {a.shape}, expected {tuple(shape)}")
            out[name] = a.astype(np.float32)
    return out


def read_arrays(path, names, what="file"):
    """{name: array as stored} for every dataset path in names ("input", "init/conv1.weight", ...);
    FileError naming the file and the first dataset that is missing."""
    out = {}
    with open_file(path, what) as f:
        for name in names:
            if name not in f or not isinstance(f[name], h5py().Dataset):
                raise FileError(f"{what} {path}: no dataset '{name}'")
            out[name] = np.asarray(f[name][()])
    return out


def write_arrays(path, arrays, attrs=None):
    """Writes {dataset path: array} (groups made from the '/' in the names; dtypes and shapes as
    given, a 0-d array a scalar dataspace) and root attributes attrs, replacing path. Written to a
    temporary file beside it and renamed, so a reader never sees a half-written file."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with h5py().File(tmp, "w") as f:
            for name, a in arrays.items():
                f.create_dataset(name, data=np.asarray(a))
            for k, v in (attrs or {}).items():
                f.attrs[k] = v
        os.replace(tmp, path)
    except OSError as e:
        raise FileError(f"{path}: cannot write ({_first_line(e)})") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
