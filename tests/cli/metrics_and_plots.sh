#!/usr/bin/env bash
# Metrics files and plots end to end, on a small fake CIFAR-10 set (6 files x 256 random records):
#   - tools/scaling_sweep.sh --np "1 2" writes np1.h5 and np2.h5 with the documented layout (and
#     the model group: tensors, bucket plan, per-layer times);
#   - a sweep whose run fails (--lr -1) shows the program's error line from the run's log;
#   - tools/plot_metrics.py (run by the sweep) draws five non-empty PNGs and summary.md, whose
#     numbers equal the HDF5 summary values (read with h5py, the Markdown table parsed);
#   - an existing metrics file is refused without --force (one line naming it) and replaced with it;
#     a missing folder is named; the default path is results/run-<time>-np1.h5;
#   - a run killed with SIGKILL after its first epoch leaves a readable file of complete epochs.
#   bash tests/cli/metrics_and_plots.sh <cifar_mpi binary> <source dir> <data dir (ignored)>
# Prints one PASS/FAIL/SKIP line per case; exits 1 if any case failed, 77 (skip) without
# mpirun or a python3 with h5py, numpy and matplotlib.
set -u

BIN=${1:?usage: metrics_and_plots.sh <cifar_mpi> <source dir> <data dir>}
SRC=${2:?usage: metrics_and_plots.sh <cifar_mpi> <source dir> <data dir>}
BIN=$(realpath "$BIN")
SRC=$(realpath "$SRC")
[[ -x $BIN ]] || { echo "FAIL: $BIN is not an executable"; exit 1; }

source "${2:?usage: <cifar_mpi> <source dir> <data dir>}/tests/cli/common.bash"
PY=$(python_with h5py numpy matplotlib)
[[ -n $PY ]] || { echo "SKIP: no python3 with h5py, numpy and matplotlib"; exit 77; }
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: no mpirun"; exit 77; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_metrics_plots.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1  # nothing the program writes lands in the source tree
export OMP_NUM_THREADS=1
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1


DATA="$TMP/data"
mkdir -p "$DATA"
"$PY" - "$DATA" <<'EOF'
import os, sys
import numpy as np
rng = np.random.default_rng(7)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    rec = rng.integers(0, 256, size=(256, 3073), dtype=np.uint8)
    rec[:, 0] %= 10
    rec.tofile(os.path.join(sys.argv[1], name))
EOF

# --- the sweep: N = 1, 2; 2 epochs of 1,280 images, per-rank batch 128 (10 and 5 steps/epoch) ----
SWEEP="$TMP/sweep"
CIFAR_BUILD=$(dirname "$BIN") timeout 300 bash "$SRC/tools/scaling_sweep.sh" --np "1 2" --out "$SWEEP" -- \
  --data-dir "$DATA" --epochs 2 --batch-size 128 --eval --log-every 100 >"$TMP/sweep.out" 2>&1
rc=$?
if [[ $rc -ne 0 ]]; then
  fail "scaling_sweep.sh --np \"1 2\" (exit $rc)" "$(tail -n 8 "$TMP/sweep.out")"
else
  pass "scaling_sweep.sh --np \"1 2\" ran both sizes and the plotter"
fi

# A run that fails: the sweep shows the program's own error line, not only mpirun's notice after it.
CIFAR_BUILD=$(dirname "$BIN") timeout 120 bash "$SRC/tools/scaling_sweep.sh" --np 1 --out "$TMP/sweep_bad" -- \
  --data-dir "$DATA" --max-steps 2 --lr -1 >"$TMP/sweep_bad.out" 2>"$TMP/sweep_bad.err"
rc=$?
if [[ $rc -ne 0 ]] && grep -q "the run with N=1 failed" "$TMP/sweep_bad.err" &&
   grep -q "^cifar_mpi: error: .*--lr" "$TMP/sweep_bad.err"; then
  pass "scaling_sweep.sh, a run failing (--lr -1): $(grep '^cifar_mpi: error' "$TMP/sweep_bad.err")"
else
  fail "scaling_sweep.sh, a run failing (--lr -1): exit non-zero, the program's error line shown (exit $rc)" \
    "$(cat "$TMP/sweep_bad.err")"
fi

missing=()
for f in np1.h5 np2.h5 commands.txt summary.md speedup.png time_breakdown.png baseline_vs_distributed.png \
         step_distribution.png accuracy_vs_time.png; do
  [[ -s $SWEEP/$f ]] || missing+=("$f")
done
if ((${#missing[@]})); then
  fail "sweep folder complete" "missing or empty: ${missing[*]}" "$(ls -la "$SWEEP" 2>&1 | head -20)"
else
  pass "sweep folder has np1.h5, np2.h5, five non-empty PNGs and summary.md"
fi
if ls "$SWEEP" | grep -q '\.tmp\.'; then fail "no temporary files left" "$(ls "$SWEEP")"; else pass "no temporary files left"; fi

# --- the files' layout, the PNGs, and summary.md against the HDF5 values ---------------------
if [[ -s $SWEEP/np1.h5 && -s $SWEEP/np2.h5 && -s $SWEEP/summary.md ]]; then
  if "$PY" - "$SWEEP" >"$TMP/check.txt" 2>&1 <<'EOF'; then
import math, os, re, sys
import h5py, numpy as np
d = sys.argv[1]
runs = {}
for n in (1, 2):
    with h5py.File(os.path.join(d, f"np{n}.h5"), "r") as f:
        a = f.attrs
        assert int(a["world_size"]) == n, a["world_size"]
        assert int(a["complete"]) == 1
        for k in ("ranks_per_node", "threads_per_rank", "hosts", "strategy", "bucket_mb", "overlap",
                  "oversubscribed", "version_onednn", "version_mpi", "version_hdf5", "version_compiler",
                  "git_commit", "start_time", "parameter_count", "gradient_bytes", "config.epochs",
                  "config.batch_size", "config.data_dir"):
            assert k in a, f"np{n}.h5: root attribute {k} missing"
        assert isinstance(a["hosts"], str) and a["hosts"], a["hosts"]
        assert int(a["parameter_count"]) == 315722 and int(a["gradient_bytes"]) == 4 * 315722
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$", a["start_time"]), a["start_time"]
        steps = 20 // n
        for k in ("t_data", "t_comp", "t_comm", "t_wait", "t_update", "loss", "comm_calls", "comm_bytes"):
            ds = f["steps"][k]
            assert ds.shape == (steps, n), f"np{n}.h5 steps/{k} shape {ds.shape} != {(steps, n)}"
            assert "units" in ds.attrs and "description" in ds.attrs, f"steps/{k} lacks units/description"
        assert f["steps/comm_calls"].dtype == np.uint32 and f["steps/comm_bytes"].dtype == np.uint64
        assert list(f["steps/epoch"][()]) == [1] * (steps // 2) + [2] * (steps // 2), f["steps/epoch"][()]
        for k in ("epoch", "steps", "train_loss", "test_loss", "test_accuracy", "wall"):
            assert f["epochs"][k].shape == (2,), f"epochs/{k} shape {f['epochs'][k].shape}"
        assert np.all(f["steps/t_comp"][()] > 0)
        calls = f["steps/comm_calls"][()]
        assert (calls == 0).all() if n == 1 else (calls > 0).all(), calls
        s = dict(f["summary"].attrs)
        assert math.isclose(s["total_train_time"], float(f["epochs/wall"][()].sum()), rel_tol=1e-12)
        assert math.isclose(s["total_comm_time"], float(f["steps/t_comm"][()].sum(axis=0).mean()), rel_tol=1e-9)
        # model/: the tensors in backward order, the bucket plan covering them, per-layer times
        g = f["model"]
        names = [x.decode() for x in g["tensor_name"][()]]
        assert names[0] == "fc2.bias" and names[-1] == "conv1.weight" and len(names) == 8, names
        floats, offs = g["tensor_floats"][()], g["tensor_offset"][()]
        assert int(floats.sum()) == 315722 and list(offs) == [0] + list(np.cumsum(floats)[:-1]), (floats, offs)
        bo, bf = g["bucket_offset"][()], g["bucket_floats"][()]
        assert len(bf) == int(a["buckets"]) and int(bf.sum()) == 315722 and bo[0] == 0, (bo, bf)
        layers = [x.decode() for x in g["layer_name"][()]]
        assert layers[0] == "conv1" and layers[-1] == "fc2", layers
        for k in ("layer_forward", "layer_backward"):
            assert g[k].shape == (len(layers),) and np.all(g[k][()] > 0), (k, g[k][()])
        assert int(g.attrs["layer_steps"]) == steps, (g.attrs["layer_steps"], steps)
        runs[n] = s
print("layout ok")

# PNGs: real images.
for name in ("speedup", "time_breakdown", "baseline_vs_distributed", "step_distribution", "accuracy_vs_time"):
    with open(os.path.join(d, name + ".png"), "rb") as f:
        head = f.read(8)
    assert head == b"\x89PNG\r\n\x1a\n", f"{name}.png is not a PNG"
    assert os.path.getsize(os.path.join(d, name + ".png")) > 5000, f"{name}.png is suspiciously small"

# summary.md: the first table; every number within its printed rounding of the HDF5 value.
lines = open(os.path.join(d, "summary.md")).read().splitlines()
start = next(i for i, l in enumerate(lines) if l.startswith("| N |"))
header = [c.strip() for c in lines[start].strip("|").split("|")]
rows = {}
for l in lines[start + 2:]:
    if not l.startswith("|"):
        break
    cells = [c.strip() for c in l.strip("|").split("|")]
    rows[int(cells[0])] = dict(zip(header, cells))
assert sorted(rows) == [1, 2], rows

def close(cell, want, scale=1.0, what=""):
    """The cell shows want * scale (x 100 with a % sign) rounded to its printed decimals."""
    if cell == "n/a":
        assert want is None or math.isnan(want), f"{what}: n/a but HDF5 has {want}"
        return
    pct = cell.endswith("%")
    txt = cell.rstrip("%")
    decimals = len(txt.split(".")[1]) if "." in txt else 0
    value = want * scale * (100 if pct else 1)
    assert abs(float(txt) - value) <= 0.5 * 10 ** -decimals * 1.001 + 1e-9, f"{what}: table {cell} vs HDF5 {want}"

for n, s in runs.items():
    r = rows[n]
    close(r["training time (s)"], s["total_train_time"], what=f"N={n} training time")
    close(r["images/s"], s["images_per_second"], what=f"N={n} images/s")
    close(r["avg iteration time (ms)"], s["avg_iteration_time"], scale=1e3, what=f"N={n} avg iteration")
    close(r["comm calls / epoch"], s["comm_calls_per_epoch"], what=f"N={n} comm calls/epoch")
    close(r["total comm time (s)"], s["total_comm_time"], what=f"N={n} total comm time")
    close(r["exposed wait (s)"], s["total_wait_time"], what=f"N={n} exposed wait")
    close(r["compute : comm"], float(s["compute_to_comm_ratio"]), what=f"N={n} compute:comm")
    assert r["epochs (steps)"] == f"{s['epochs']} ({s['steps']})", r["epochs (steps)"]
    speedup = s["images_per_second"] / runs[1]["images_per_second"]
    close(r["throughput speedup (images/s)"], speedup, what=f"N={n} speedup")
    close(r["efficiency"], speedup / n, what=f"N={n} efficiency")
    assert r["oversubscribed"] in ("yes", "no")
print("summary.md equals the HDF5 values")
EOF
    pass "HDF5 layout, PNGs, and summary.md numbers equal the HDF5 summary ($(tr '\n' ' ' <"$TMP/check.txt"))"
  else
    fail "HDF5 layout / PNGs / summary.md vs HDF5" "$(tail -n 6 "$TMP/check.txt")"
  fi
fi

# --- the plotter takes files as well as folders ----------------------------------------------
if [[ -s $SWEEP/np1.h5 && -s $SWEEP/np2.h5 ]]; then
  "$PY" "$SRC/tools/plot_metrics.py" "$SWEEP/np1.h5" "$SWEEP/np2.h5" --out "$TMP/byfile" >"$TMP/pf.out" 2>&1
  rc=$?
  if [[ $rc -eq 0 && -s $TMP/byfile/summary.md && -s $TMP/byfile/speedup.png ]] &&
     grep -q '^| 2 ' "$TMP/byfile/summary.md"; then
    pass "plot_metrics.py np1.h5 np2.h5: summary.md and PNGs from two files"
  else
    fail "plot_metrics.py with two files (exit $rc)" "$(tail -n 3 "$TMP/pf.out")" "$(head -n 5 "$TMP/byfile/summary.md" 2>&1)"
  fi
  "$PY" "$SRC/tools/plot_metrics.py" "$SWEEP/np2.h5" --compare >"$TMP/pf1.out" 2>&1
  rc=$?
  if [[ $rc -eq 0 && -s $SWEEP/compare.md ]]; then
    pass "plot_metrics.py np2.h5 --compare: compare.md beside the file"
  else
    fail "plot_metrics.py with one file, default --out (exit $rc)" "$(tail -n 3 "$TMP/pf1.out")"
  fi
  "$PY" "$SRC/tools/plot_metrics.py" "$SWEEP/commands.txt" >"$TMP/pf2.out" 2>"$TMP/pf2.err"
  rc=$?
  if [[ $rc -ne 0 && $(wc -l <"$TMP/pf2.err") -eq 1 ]] && grep -q "commands.txt: not a readable HDF5 file" "$TMP/pf2.err"; then
    pass "plot_metrics.py on a file that is not HDF5: $(cat "$TMP/pf2.err")"
  else
    fail "plot_metrics.py on a non-HDF5 file: one line naming it (exit $rc)" "$(cat "$TMP/pf2.err")"
  fi
fi

# --- an existing file: refused without --force, replaced with it ------------------------------
QUICK=(--data-dir "$DATA" --max-steps 2 --no-eval --batch-size 32)
EXIST="$TMP/existing.h5"
echo "not a metrics file" >"$EXIST"
timeout 120 "$BIN" "${QUICK[@]}" --metrics "$EXIST" >"$TMP/e1.out" 2>"$TMP/e1.err"
rc=$?
nlines=$(wc -l <"$TMP/e1.err")
if [[ $rc -ne 0 && $nlines -eq 1 ]] && grep -q "^cifar_mpi: error: .*$EXIST.*--force" "$TMP/e1.err" &&
   [[ $(cat "$EXIST") == "not a metrics file" ]] && ! grep -q 'data:' "$TMP/e1.out"; then
  pass "existing metrics file refused without --force: $(cat "$TMP/e1.err")"
else
  fail "existing metrics file refused without --force (exit $rc, $nlines stderr line(s))" "$(cat "$TMP/e1.err")"
fi
timeout 120 "$BIN" "${QUICK[@]}" --metrics "$EXIST" --force >"$TMP/e2.out" 2>"$TMP/e2.err"
rc=$?
if [[ $rc -eq 0 ]] && "$PY" -c "import h5py,sys; f=h5py.File(sys.argv[1],'r'); assert f['steps/t_comp'].shape==(2,1)" "$EXIST" 2>"$TMP/e2.py"; then
  pass "with --force the file is replaced by the new run's metrics"
else
  fail "with --force the file is replaced (exit $rc)" "$(tail -n 3 "$TMP/e2.err")" "$(tail -n 2 "$TMP/e2.py")"
fi

# --- a missing folder is named ------------------------------------------------------------
timeout 120 "$BIN" "${QUICK[@]}" --metrics "$TMP/no_such_dir/m.h5" >/dev/null 2>"$TMP/e3.err"
rc=$?
if [[ $rc -ne 0 && $(wc -l <"$TMP/e3.err") -eq 1 ]] && grep -q "$TMP/no_such_dir does not exist" "$TMP/e3.err"; then
  pass "missing metrics folder: $(cat "$TMP/e3.err")"
else
  fail "missing metrics folder named (exit $rc)" "$(cat "$TMP/e3.err")"
fi

# --- the default path ------------------------------------------------------------------------
mkdir -p "$TMP/cwd" && cd "$TMP/cwd" || exit 1
timeout 120 "$BIN" "${QUICK[@]}" >"$TMP/d.out" 2>"$TMP/d.err"
rc=$?
made=$(ls results/ 2>/dev/null)
if [[ $rc -eq 0 && $made =~ ^run-[0-9]{8}-[0-9]{6}-np1\.h5$ ]]; then
  pass "default metrics path: results/$made"
else
  fail "default metrics path results/run-<time>-np1.h5 (exit $rc)" "results/: $made" "$(tail -n 2 "$TMP/d.err")"
fi
cd "$TMP" || exit 1

# --- killed after an epoch: the file holds every completed epoch, readable -------------------
KILLED="$TMP/killed.h5"
"$BIN" --data-dir "$DATA" --epochs 1000 --no-eval --batch-size 128 --log-every 1000 --metrics "$KILLED" \
  >"$TMP/k.out" 2>"$TMP/k.err" &
pid=$!
for _ in $(seq 1 600); do  # up to 60 s for the first epochs
  [[ -s $KILLED ]] && (($(grep -c 'done: train loss' "$TMP/k.out") >= 2)) && break
  sleep 0.1
done
sleep 0.$((RANDOM % 10))  # land anywhere in the epoch, possibly in a rewrite
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if [[ ! -s $KILLED ]]; then
  fail "killed run left a metrics file" "$(tail -n 3 "$TMP/k.out" "$TMP/k.err")"
elif "$PY" - "$KILLED" >"$TMP/k.py" 2>&1 <<'EOF'; then
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    e = f["epochs/epoch"][()]
    steps = f["steps/t_comp"].shape[0]
    assert int(f.attrs["complete"]) == 0
    assert len(e) >= 1 and list(e) == list(range(1, len(e) + 1)), e
    assert steps == 10 * len(e) == int(f["summary"].attrs["steps"]), (steps, len(e))
    assert np.all(f["steps/epoch"][()] == np.repeat(e, 10))
    print(f"{len(e)} complete epoch(s), {steps} steps")
EOF
  pass "SIGKILLed run: readable file, complete = 0, $(cat "$TMP/k.py")"
else
  fail "SIGKILLed run left a readable file of complete epochs" "$(tail -n 4 "$TMP/k.py")"
fi

if ((failures)); then
  echo "metrics_and_plots: $failures case(s) failed"
  exit 1
fi
echo "metrics_and_plots: all cases passed"
exit 0
