#!/usr/bin/env bash
# A few training steps end to end on a small fake CIFAR-10 set (6 files x 300 random records), on
# 1 rank and under mpirun -np 2: exit 0, the weights file written (PyTorch names when h5py is
# available), the summary table printed, and the saved weights accepted by --init-weights.
#   bash tests/cli/train_smoke.sh <cifar_mpi binary> <source dir> <data dir (ignored)>
# Prints one PASS/FAIL/SKIP line per case; exits 1 if any case failed.
set -u

BIN=${1:?usage: train_smoke.sh <cifar_mpi> <source dir> <data dir>}
BIN=$(realpath "$BIN")
[[ -x $BIN ]] || { echo "FAIL: $BIN is not an executable"; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_train_smoke.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1  # nothing the program writes lands in the source tree
export OMP_NUM_THREADS=1

source "${2:?usage: <cifar_mpi> <source dir> <data dir>}/tests/cli/common.bash"
PY=$(python_with h5py numpy)
PYPLAIN=$(command -v python3 || command -v /usr/bin/python3)


DATA="$TMP/data"
mkdir -p "$DATA"
"$PYPLAIN" - "$DATA" 300 <<'EOF'
import os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(2)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    with open(os.path.join(d, name), "wb") as f:
        for _ in range(n):
            f.write(bytes([rng.randrange(10)]) + rng.randbytes(3072))
EOF

# check_run NAME RC OUT ERR WEIGHTS: the run's exit code, weights file and summary table.
check_run() {
  local name=$1 rc=$2 out=$3 err=$4 weights=$5
  local problems=()
  [[ $rc -eq 124 ]] && problems+=("timed out")
  [[ $rc -ne 0 ]] && problems+=("exit code $rc")
  grep -q '^cifar_mpi: error' "$err" && problems+=("error on stderr: $(grep -m1 '^cifar_mpi: error' "$err")")
  [[ -s $weights ]] || problems+=("no weights file $weights")
  ls "$TMP" | grep -q '\.tmp\.' && problems+=("temporary file left behind: $(ls "$TMP" | grep '\.tmp\.')")
  grep -q '^==== summary:' "$out" || problems+=("no '==== summary:' line on stdout")
  local row
  for row in "total comm time (T_comm)" "exposed comm time (T_wait)" "total compute time (T_comp)" \
             "average iteration time" "compute-to-comm ratio" "total training time" "images/s (all ranks)" \
             "final test accuracy"; do
    grep -qF -- "$row" "$out" || problems+=("summary row '$row' missing")
  done
  if [[ -n $PY && -s $weights ]]; then
    "$PY" - "$weights" >"$TMP/h5check.txt" 2>&1 <<'EOF' || problems+=("weights file: $(tail -n 1 "$TMP/h5check.txt")")
import sys, h5py, numpy as np
want = {"conv1.weight": (32, 3, 3, 3), "conv1.bias": (32,), "conv2.weight": (64, 32, 3, 3),
        "conv2.bias": (64,), "fc1.weight": (128, 2304), "fc1.bias": (128,),
        "fc2.weight": (10, 128), "fc2.bias": (10,)}
with h5py.File(sys.argv[1], "r") as f:
    got = {k: f[k].shape for k in f}
    assert got == want, f"datasets {got} != {want}"
    for k in f:
        assert f[k].dtype == np.float32, f"{k} is {f[k].dtype}"
        assert np.isfinite(f[k][()]).all(), f"{k} has non-finite values"
EOF
  fi
  if ((${#problems[@]})); then
    fail "$name" "${problems[@]}" "stderr: $(tail -n 5 "$err")"
  else
    pass "$name: $(grep -m1 'images/s' "$out" | sed 's/  */ /g')"
  fi
}

ARGS=(--data-dir "$DATA" --max-steps 5 --eval --batch-size 32 --log-every 1)

# --- 1 rank -----------------------------------------------------------------------------------
W1="$TMP/w1.h5"
timeout 300 "$BIN" "${ARGS[@]}" --save-weights "$W1" --metrics "$TMP/m1.h5" >"$TMP/r1.out" 2>"$TMP/r1.err"
check_run "1 rank, 5 steps, eval, --save-weights" $? "$TMP/r1.out" "$TMP/r1.err" "$W1"

# --- the saved weights load back --------------------------------------------------------------
if [[ -s $W1 ]]; then
  W1b="$TMP/w1b.h5"
  timeout 300 "$BIN" "${ARGS[@]}" --init-weights "$W1" --save-weights "$W1b" --metrics "$TMP/m1b.h5" \
    >"$TMP/r1b.out" 2>"$TMP/r1b.err"
  check_run "1 rank from --init-weights of the saved file" $? "$TMP/r1b.out" "$TMP/r1b.err" "$W1b"
fi

# --- 2 ranks ----------------------------------------------------------------------------------
if command -v mpirun >/dev/null 2>&1; then
  MPI_FLAGS=(-np 2 --oversubscribe --bind-to none --mca mpi_yield_when_idle 1)
  [[ $(id -u) -eq 0 ]] && MPI_FLAGS+=(--allow-run-as-root)
  for strategy in mpi ring; do
    W2="$TMP/w2_$strategy.h5"
    timeout 300 mpirun "${MPI_FLAGS[@]}" "$BIN" "${ARGS[@]}" --allreduce "$strategy" --save-weights "$W2" \
      --metrics "$TMP/m2_$strategy.h5" >"$TMP/r2_$strategy.out" 2>"$TMP/r2_$strategy.err"
    rc=$?
    check_run "mpirun -np 2, allreduce $strategy, 5 steps, eval, --save-weights" $rc \
      "$TMP/r2_$strategy.out" "$TMP/r2_$strategy.err" "$W2"
    grep -q '^==== summary: 2 rank(s)' "$TMP/r2_$strategy.out" ||
      fail "mpirun -np 2, allreduce $strategy: summary does not say 2 rank(s)" "$(grep -m1 '^====' "$TMP/r2_$strategy.out")"
    [[ $(grep -c '^==== summary:' "$TMP/r2_$strategy.out") -le 1 ]] ||
      fail "mpirun -np 2, allreduce $strategy: summary printed more than once"
  done
else
  echo "SKIP: mpirun -np 2 (no mpirun)"
fi

if ((failures)); then
  echo "train_smoke: $failures case(s) failed"
  exit 1
fi
echo "train_smoke: all cases passed"
exit 0
