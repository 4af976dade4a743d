#!/usr/bin/env bash
# The scaling model (tools/cifar_tools/scaling_model.py, cost_model/{collectives,scaling}.py) on inputs
# whose answers are known, and the step simulator at N=8 under SMPI (seconds):
#   - formulas on a plain alpha-beta link: ring 2(N-1)(alpha + S/N beta); rhd at N=8
#     6 alpha + 7/4 S beta; rhd at N=6 = rhd at 4 plus the fold 2(alpha + S beta);
#   - SimGrid 3.32's ompi selection at known points (N=1024: 1 MiB rab_rdb, 4 KiB rdb, 1 KiB
#     redbcast; N=2, 100 KiB ring_segmented);
#   - the bucket plan's dynamic program equals the best of all contiguous partitions (brute force)
#     on random tensors, ready times and costs; auto is never predicted slower than ring or rhd;
#   - a calibration table reproduces its own points; a step without communication is T1;
#   - step_sim (if SimGrid is installed): the auto plan of a synthetic metrics file at N=8 on a
#     flat 27 us, 10 Gbit/s cluster, simulated step within 5% of the model's and not below the compute.
#   bash tests/cli/scaling_model.sh <cifar_mpi binary> <source dir> <data dir (unused)>
# Exits 1 if a case failed, 77 (skip) without python3 + numpy + h5py.
set -u
BIN=${1:?usage: scaling_model.sh <cifar_mpi> <source dir> <data dir>}
SRC=$(realpath "${2:?usage: scaling_model.sh <cifar_mpi> <source dir> <data dir>}")
source "$SRC/tests/cli/common.bash"
PY=$(python_with numpy h5py)
[[ -n $PY ]] || { echo "SKIP: no python3 with numpy and h5py"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_scaling_model.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

if out=$("$PY" - "$SRC" "$TMP" <<'PY' 2>&1
import csv, itertools, random, sys
sys.path.insert(0, sys.argv[1] + "/tools")
from cifar_tools.cost_model.collectives import CalibratedLink, Collectives, Link, ompi_allreduce_choice, rhd, ring
from cifar_tools.cost_model.scaling import plan_buckets, step_time

def close(a, b, tol=1e-9):
    assert abs(a - b) <= tol * max(abs(a), abs(b), 1e-12), (a, b)

L = Link(27e-6, 0.8e-9)
S = 1048576
close(ring(L, 8, S), 14 * (27e-6 + S / 8 * 0.8e-9))
close(rhd(L, 8, S), 6 * 27e-6 + 7 / 4 * S * 0.8e-9)
close(rhd(L, 6, S), rhd(L, 4, S) + 2 * (27e-6 + S * 0.8e-9))
print("PASS: formulas: ring, rhd (power of two and the fold)")
for n, s, want in ((1024, S, "rab_rdb"), (1024, 4096, "rdb"), (1024, 1024, "redbcast"), (2, 102400, "ring_segmented")):
    got = ompi_allreduce_choice(n, s)
    assert got == want, (n, s, got, want)
print("PASS: ompi selection at known points")

rng = random.Random(7)
for trial in range(200):
    k = rng.randint(1, 7)
    tensors, ready = [], 0.0
    for i in range(k):
        ready += rng.choice([0.0, rng.uniform(0, 2e-3)])
        tensors.append((rng.randint(1, 300000), ready, f"l{i}"))
    a, b = rng.uniform(1e-6, 1e-3), rng.uniform(1e-10, 1e-8)
    cost = lambda by: a + b * by
    def end_of(spans):
        end = 0.0
        for s0, s1 in spans:
            end = max(tensors[s1 - 1][1], end) + cost(4 * sum(t[0] for t in tensors[s0:s1]))
        return end
    best = min(end_of(list(zip((0,) + cuts, cuts + (k,))))
               for r in range(k) for cuts in itertools.combinations(range(1, k), r))
    close(end_of(plan_buckets(tensors, cost)), best, 1e-12)
print("PASS: bucket plan = brute force over all contiguous partitions (200 random cases)")

for n in (2, 3, 8, 64, 1024):
    c = Collectives(L, n)
    for s in (64, 4096, 65536, S, 8 * S):
        algo, t = c.best(s)
        assert t <= min(c.time("ring", s), c.time("rhd", s)) + 1e-15, (n, s)
print("PASS: auto never predicted slower than ring or rhd")

path = sys.argv[2] + "/calib.csv"
with open(path, "w") as f:
    f.write("ranks,size_bytes,rhd_time_us\n2,8,100\n2,1024,120\n2,65536,500\n")
cal = CalibratedLink(path)
close(cal.t(512), 60e-6)
close(cal.t(32768), 250e-6)
print("PASS: calibration table reproduces its points")

class S1: C, B = 0.05, 0.03
close(step_time(S1, [], [], []), 0.05)
close(step_time(S1, [(1, "x", 0.03)], [0.01], [False]), 0.06)
close(step_time(S1, [(1, "x", 0.01)], [0.01], [False]), 0.05)
close(step_time(S1, [(1, "x", 0.01)], [0.01], [True]), 0.06)
print("PASS: step time: hidden, exposed and blocking reductions")

import h5py, numpy as np
with h5py.File(sys.argv[2] + "/n1.h5", "w") as f:
    f.attrs["format"], f.attrs["world_size"], f.attrs["batch_per_rank"] = "cifar_mpi metrics v1", 1, 128
    names = ["fc.bias", "fc.weight", "conv.bias", "conv.weight"]
    floats = [10, 100000, 64, 200000]
    offs = np.cumsum([0] + floats[:-1])
    m = f.create_group("model")
    m["tensor_name"] = np.array(names, dtype="S")
    m["tensor_floats"], m["tensor_offset"] = floats, offs
    m["layer_name"] = np.array(["conv", "fc"], dtype="S")
    m["layer_forward"], m["layer_backward"] = [0.004, 0.001], [0.008, 0.002]
    m["bucket_offset"], m["bucket_floats"] = [0], [sum(floats)]
    s = f.create_group("steps")
    s["t_data"], s["t_comp"], s["t_update"] = np.full((3, 1), 1e-4), np.full((3, 1), 0.015), np.full((3, 1), 2e-4)
PY
); then
  echo "$out"
else
  fail "model cases" "$out"
fi
[[ -f "$TMP/n1.h5" ]] || { echo "FAIL synthetic metrics file"; exit 1; }

if ! command -v smpicxx >/dev/null || ! command -v smpirun >/dev/null; then
  echo "SKIP (part): SimGrid's smpicxx/smpirun not found: step_sim not run"
  [[ $failures -eq 0 ]] || exit 1
  exit 0
fi
export CIFAR_SMPI_BUILD="$(dirname "$(realpath "$BIN")")/smpi"
# Built every time, incrementally (see smpi_allreduce.sh), one test at a time.
{ flock "$CIFAR_SMPI_BUILD.lock" cmake -S "$SRC/tools/smpi" -B "$CIFAR_SMPI_BUILD" -DCMAKE_BUILD_TYPE=Release >"$TMP/build.log" 2>&1 &&
  flock "$CIFAR_SMPI_BUILD.lock" cmake --build "$CIFAR_SMPI_BUILD" -j 2 --target step_sim >>"$TMP/build.log" 2>&1; } ||
  { fail "build step_sim" "$(tail -5 "$TMP/build.log")"; exit 1; }
start=$SECONDS
if timeout 60 "$SRC/tools/smpi/smpi_steps.sh" --metrics "$TMP/n1.h5" --nps 8 --algorithms "auto rhd" \
     --out "$TMP/steps.csv" >"$TMP/steps.log" 2>&1; then
  if "$PY" - "$TMP/steps.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 2, rows
for r in rows:
    step, comp, model = float(r["step_s"]), float(r["compute_s"]), float(r["model_s"])
    print(f"  N=8 {r['algorithm']}: simulated {step * 1e3:.3f} ms, model {model * 1e3:.3f} ms, compute {comp * 1e3:.3f} ms")
    assert step >= comp * (1 - 1e-9) and abs(step / model - 1) < 0.05, r
PY
  then pass "step_sim N=8 auto and rhd within 5% of the model ($((SECONDS - start)) s)"
  else fail "step_sim N=8 against the model" "$(cat "$TMP/steps.csv")"; fi
else
  fail "step_sim N=8" "$(tail -5 "$TMP/steps.log")"
fi
[[ $failures -eq 0 ]] || exit 1
