#!/usr/bin/env bash
# --micro-batch end to end, on a small fake CIFAR-10 set (6 files x 128 random records), the
# batches in file order (--no-shuffle) from weights PyTorch initialised (tests/cli/torch_steps.py
# is the independent reference: PyTorch's 5 SGD steps on the whole batch):
#   - 1 rank, batch 32 in passes of 8: within 1e-4 of PyTorch's 5 steps at batch 32;
#   - 2 ranks x 32 in passes of 12 (12 + 12 + 8): within 1e-4 of PyTorch on the union batch of 64;
#   - the same with overlap on and small buckets (the reducer fed pass by pass): within 1e-4;
#   - --micro-batch 0 and --micro-batch 32 (= the batch) are one pass: bitwise the same weights;
#   - the log line names the passes, and the metrics file records micro_batch.
#   bash tests/cli/micro_batch.sh <cifar_mpi binary> <source dir> <data dir (ignored)>
# Prints one PASS/FAIL line per case; exits 1 if any case failed, 77 (skip) without a python3
# with torch, h5py and numpy.
set -u

BIN=${1:?usage: micro_batch.sh <cifar_mpi> <source dir> <data dir>}
SRC=${2:?usage: micro_batch.sh <cifar_mpi> <source dir> <data dir>}
BIN=$(realpath "$BIN")
SRC=$(realpath "$SRC")
[[ -x $BIN ]] || { echo "FAIL: $BIN is not an executable"; exit 1; }

source "$SRC/tests/cli/common.bash"
against_torch_setup micro_batch  # PY, TMP (the current folder), DATA, INIT, STEPS, ARGS

# against_torch_case NAME NP UNION_BATCH PASS ARGS...: trains, then compares with PyTorch.
against_torch_case() {
  local name=$1 np=$2 union=$3 pass=$4
  shift 4
  local what="np $np, batch 32 in passes of $pass${1:+ ($*)}" problems=() verdict
  train_case "$name" "$np" -- --micro-batch "$pass" "$@" || problems+=("exit code $?: $(grep -m1 error "$TMP/$name.err")")
  grep -q "per-rank batch 32 in passes of $pass," "$TMP/$name.out" ||
    problems+=("the log does not say 'in passes of $pass': $(grep -m1 'model:' "$TMP/$name.out")")
  verdict=$("$PY" "$SRC/tests/cli/torch_steps.py" compare "$DATA" "$TMP/init.h5" "$TMP/$name.w.h5" "$STEPS" "$union" 2>&1) ||
    problems+=("against PyTorch: $verdict")
  if ((${#problems[@]})); then fail "$what" "${problems[@]}"; else pass "$what: $verdict"; fi
}

against_torch_case p8 1 32 8
against_torch_case p12 2 64 12
against_torch_case p12_overlap 2 64 12 --overlap --bucket-mb 0.05

# One pass either way: bitwise the same weights.
train_case whole0 1 -- --micro-batch 0 && train_case whole32 1 -- --micro-batch 32
if "$PY" - "$TMP/whole0.w.h5" "$TMP/whole32.w.h5" <<'PY'; then
import sys, h5py, numpy as np
def tensors(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a.keys() == b.keys() and a, (a.keys(), b.keys())
bad = [k for k in a if not np.array_equal(a[k], b[k])]
assert not bad, bad
PY
  pass "--micro-batch 0 and 32 (the batch) train the same bits"
else
  fail "--micro-batch 0 against 32: weights differ"
fi
recorded=$("$PY" -c 'import sys, h5py; print(h5py.File(sys.argv[1], "r").attrs.get("config.micro_batch"))' "$TMP/p8.h5" 2>&1)
[[ $recorded == 8 ]] && pass "the metrics file records config.micro_batch = 8" ||
  fail "config.micro_batch in the metrics file: '$recorded'"

if ((failures)); then
  echo "micro_batch: $failures case(s) failed"
  exit 1
fi
echo "micro_batch: all cases passed"
exit 0
