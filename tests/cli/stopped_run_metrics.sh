#!/usr/bin/env bash
# What a run stopped by SIGUSR1 leaves in its metrics file: the finished epoch with its test
# accuracy, and the partial epoch it stopped in with test loss and accuracy NaN (it was never
# evaluated: 0 would read as a measured accuracy). One process, a small fake data set.
#   bash tests/cli/stopped_run_metrics.sh <cifar_mpi> <source dir> <data dir (ignored)>
set -u
BIN=$(realpath "${1:?usage: stopped_run_metrics.sh <cifar_mpi> <source dir> <data dir>}")
SRC=${2:?usage: stopped_run_metrics.sh <cifar_mpi> <source dir> <data dir>}
source "$SRC/tests/cli/common.bash"
PY=$(python_with h5py numpy)
[[ -n $PY ]] || { echo "SKIP: no python3 with h5py and numpy"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_stopped.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
export OMP_NUM_THREADS=1
"$PY" "$SRC/tests/cli/make_fake_cifar.py" data 128 >/dev/null  # 640 training images: 80 steps of 8

# In the background with $! the program itself, so that the signal reaches it.
(exec "$BIN" --data-dir data --batch-size 8 --epochs 100 --log-every 1 --threads 1 --metrics m.h5 \
   --checkpoint c.h5 >run.log 2>&1) &
pid=$!
# The signal is aimed at epoch 2, but a fast machine may finish an epoch between two looks at the
# log (CI once saw the stop land in epoch 3): whichever epoch it lands in, every epoch before it
# must be whole and evaluated, and the one it stopped in must be NaN.
for _ in $(seq 1500); do grep -q "epoch 2 step    3/" run.log 2>/dev/null && break; sleep 0.02; done
kill -USR1 "$pid"
wait "$pid"
rc=$?
if [[ $rc -ne 75 ]]; then
  fail "SIGUSR1 in epoch 2: exit $rc, want 75" "$(tail -n 5 run.log)"
elif ! out=$("$PY" - m.h5 2>&1 <<'PY'
import math, sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    acc, loss = f["epochs/test_accuracy"][()], f["epochs/test_loss"][()]
    steps = f["epochs/steps"][()]
n = len(acc)
assert n >= 2, f"{n} epochs recorded, want at least 2 (the signal came in epoch 2)"
assert all(s == 80 for s in steps[:-1]) and 0 < steps[-1] <= 80, f"steps per epoch {list(steps)}"
for e in range(n - 1):
    assert 0 <= acc[e] <= 1 and math.isfinite(loss[e]), f"epoch {e + 1}: accuracy {acc[e]}, loss {loss[e]}"
assert math.isnan(acc[-1]) and math.isnan(loss[-1]), f"stopped epoch {n}: accuracy {acc[-1]}, loss {loss[-1]}, want NaN"
print(f"epoch 1 ({steps[0]} steps): accuracy {acc[0]:.3f}; stopped epoch {n} ({steps[-1]} steps): accuracy {acc[-1]}")
PY
); then
  fail "metrics of the stopped run" "$out"
else
  pass "SIGUSR1 in epoch 2 (exit 75): $out"
fi
((failures)) && exit 1
exit 0
