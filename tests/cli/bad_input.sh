#!/usr/bin/env bash
# The program on bad input: each case must exit non-zero, promptly (timeout 60 s), with exactly one
# line on stderr beginning "cifar_mpi: error:" that names the offending thing. Uses small fake
# CIFAR-10 files of its own; the real data set is not needed.
#   bash tests/cli/bad_input.sh <cifar_mpi binary> <source dir> <data dir (ignored)>
# Prints one PASS/FAIL/SKIP line per case; exits 1 if any case failed.
set -u

BIN=${1:?usage: bad_input.sh <cifar_mpi> <source dir> <data dir>}
BIN=$(realpath "$BIN")
[[ -x $BIN ]] || { echo "FAIL: $BIN is not an executable"; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_bad_input.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1  # nothing the program writes (results/, metrics) lands in the source tree
export OMP_NUM_THREADS=1

source "${2:?usage: <cifar_mpi> <source dir> <data dir>}/tests/cli/common.bash"
PY=$(python_with h5py numpy)
PYPLAIN=$(command -v python3 || command -v /usr/bin/python3)


# make_data DIR RECORDS_PER_FILE: data_batch_1..5.bin and test_batch.bin of random records.
make_data() {
  mkdir -p "$1"
  "$PYPLAIN" - "$1" "$2" <<'EOF'
import os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    with open(os.path.join(d, name), "wb") as f:
        for _ in range(n):
            f.write(bytes([rng.randrange(10)]) + rng.randbytes(3072))
EOF
}

run=0
# expect_error NAME NEEDLE... -- ARGS...
# Runs the binary with ARGS; checks exit != 0, no timeout, and that stderr is exactly one line
# beginning "cifar_mpi: error:" and containing every NEEDLE (fixed strings).
expect_error() {
  local name=$1
  shift
  local needles=()
  while [[ $1 != -- ]]; do needles+=("$1"); shift; done
  shift
  run=$((run + 1))
  local out="$TMP/case$run.out" err="$TMP/case$run.err"
  local start=$SECONDS
  timeout 60 "$BIN" --metrics "$TMP/metrics$run.h5" "$@" >"$out" 2>"$err"
  local rc=$? took=$((SECONDS - start))
  local lines
  lines=$(wc -l <"$err")
  local first
  first=$(head -n 1 "$err")
  if [[ $rc -eq 124 ]]; then
    fail "$name: timed out after 60 s" "stderr: $(head -c 400 "$err")"
  elif [[ $rc -eq 0 ]]; then
    fail "$name: exit code 0" "stdout tail: $(tail -n 3 "$out")"
  elif [[ $lines -ne 1 ]]; then
    fail "$name: stderr has $lines lines, want exactly 1 (exit $rc)" "$(head -n 20 "$err")"
  elif [[ $first != "cifar_mpi: error: "* ]]; then
    fail "$name: stderr does not begin with 'cifar_mpi: error:'" "$first"
  else
    local n missing=()
    for n in "${needles[@]}"; do
      grep -qF -- "$n" "$err" || missing+=("$n")
    done
    if ((${#missing[@]})); then
      fail "$name: message does not name: ${missing[*]}" "$first"
    else
      pass "$name (exit $rc, ${took}s): $first"
    fi
  fi
}

GOOD="$TMP/good"
make_data "$GOOD" 100

# --- data -------------------------------------------------------------------------------------
expect_error "nonexistent --data-dir" "$TMP/no_such_dir" -- --data-dir "$TMP/no_such_dir"

TRUNC="$TMP/truncated"
make_data "$TRUNC" 100
head -c $((3073 * 50 + 1000)) "$GOOD/data_batch_1.bin" >"$TRUNC/data_batch_1.bin"
expect_error "truncated data_batch_1.bin" "$TRUNC/data_batch_1.bin" "truncated" -- --data-dir "$TRUNC" --max-steps 1

BADLABEL="$TMP/badlabel"
make_data "$BADLABEL" 100
# record 7 of data_batch_3.bin gets label 10
printf '\x0a' | dd of="$BADLABEL/data_batch_3.bin" bs=1 seek=$((3073 * 7)) conv=notrunc status=none
expect_error "label out of range" "$BADLABEL/data_batch_3.bin" "record 7" "label 10" -- --data-dir "$BADLABEL" --max-steps 1

MISSING="$TMP/missing_file"
make_data "$MISSING" 100
rm "$MISSING/data_batch_4.bin"
expect_error "missing data_batch_4.bin" "$MISSING/data_batch_4.bin" -- --data-dir "$MISSING" --max-steps 1

# --- options ----------------------------------------------------------------------------------
expect_error "--batch-size 0" "--batch-size" -- --data-dir "$GOOD" --batch-size 0
expect_error "unknown option --batchsize" "--batchsize" -- --data-dir "$GOOD" --batchsize 8
expect_error "--allreduce foo" "--allreduce" "foo" -- --data-dir "$GOOD" --allreduce foo
printf 'epochs = 2\nbatchsize = 3\n' >"$TMP/bad.toml"
expect_error "unknown key in --config file" "batchsize" -- --config "$TMP/bad.toml" --data-dir "$GOOD"
expect_error "missing --config file" "$TMP/none.toml" -- --config "$TMP/none.toml" --data-dir "$GOOD"

# --- weights ----------------------------------------------------------------------------------
expect_error "--init-weights missing file" "$TMP/no_such_weights.h5" -- \
  --data-dir "$GOOD" --init-weights "$TMP/no_such_weights.h5" --max-steps 1 --eval false

WEIGHTS="$TMP/weights.h5"
timeout 120 "$BIN" --data-dir "$GOOD" --max-steps 1 --eval false --save-weights "$WEIGHTS" \
  --metrics "$TMP/metrics_save.h5" >"$TMP/save.out" 2>"$TMP/save.err"
save_rc=$?
if [[ $save_rc -ne 0 || ! -s $WEIGHTS ]]; then
  fail "making a valid weights file with --save-weights (exit $save_rc)" "$(head -n 5 "$TMP/save.err")"
elif [[ -z $PY ]]; then
  echo "SKIP: --init-weights mis-shaped file (no python3 with h5py)"
else
  "$PY" - "$WEIGHTS" "$TMP/misshaped.h5" "$TMP/missing_tensor.h5" <<'EOF'
import shutil, sys, h5py
good, bad, missing = sys.argv[1:4]
shutil.copy(good, bad)
with h5py.File(bad, "r+") as f:
    w = f["conv2.weight"][()]            # [64, 32, 3, 3]
    del f["conv2.weight"]
    f["conv2.weight"] = w.reshape(32, 64, 3, 3)
shutil.copy(good, missing)
with h5py.File(missing, "r+") as f:
    del f["fc1.bias"]
EOF
  expect_error "--init-weights mis-shaped tensor" "$TMP/misshaped.h5" "conv2.weight" -- \
    --data-dir "$GOOD" --init-weights "$TMP/misshaped.h5" --max-steps 1 --eval false
  expect_error "--init-weights missing tensor" "$TMP/missing_tensor.h5" "fc1.bias" -- \
    --data-dir "$GOOD" --init-weights "$TMP/missing_tensor.h5" --max-steps 1 --eval false
  # and the valid one is accepted
  if timeout 120 "$BIN" --data-dir "$GOOD" --init-weights "$WEIGHTS" --max-steps 1 --eval false \
       --metrics "$TMP/metrics_load.h5" >"$TMP/load.out" 2>"$TMP/load.err"; then
    pass "--init-weights valid file is accepted"
  else
    fail "--init-weights valid file is rejected" "$(head -n 5 "$TMP/load.err")"
  fi
fi
# The file is only written at the end of training, so this error comes after the steps.
expect_error "--save-weights into a missing directory" "$TMP/no_such_dir/w.h5" -- \
  --data-dir "$GOOD" --save-weights "$TMP/no_such_dir/w.h5" --max-steps 1 --eval false
if [[ -e $TMP/no_such_dir ]]; then fail "--save-weights into a missing directory: the directory was created"; fi
echo "not an HDF5 file" >"$TMP/text.h5"
expect_error "--init-weights non-HDF5 file" "$TMP/text.h5" -- \
  --data-dir "$GOOD" --init-weights "$TMP/text.h5" --max-steps 1 --eval false

# --- divergence -------------------------------------------------------------------------------
BIG="$TMP/big"
make_data "$BIG" 300
expect_error "--lr 1e6 stops on a non-finite loss" "non-finite loss" "step" "rank 0" -- \
  --data-dir "$BIG" --lr 1e6 --max-steps 50 --epochs 100 --batch-size 32 --eval false

# --- errors with 2 ranks: every rank must end, within 30 s, non-zero -------------------------
# mpi_expect_error NAME NEEDLE -- ARGS...: exit != 0 within 30 s and a line
# "cifar_mpi: error (rank N): ..." containing NEEDLE (mpirun adds its own MPI_ABORT banner).
mpi_expect_error() {
  local name="mpirun -np 2 $1" needle=$2
  shift 3
  run=$((run + 1))
  local out="$TMP/mpi$run.out" err="$TMP/mpi$run.err"
  local start=$SECONDS
  timeout 30 mpirun "${MPI_FLAGS[@]}" "$BIN" --metrics "$TMP/metrics$run.h5" "$@" >"$out" 2>"$err"
  local rc=$? took=$((SECONDS - start))
  if [[ $rc -eq 124 ]]; then
    fail "$name: ranks still running after 30 s" "$(head -n 5 "$err")"
  elif [[ $rc -eq 0 ]]; then
    fail "$name: exit code 0"
  elif ! grep -E '^cifar_mpi: error \(rank [01]\): ' "$err" | grep -qF -- "$needle"; then
    fail "$name: no 'cifar_mpi: error (rank N): ...' line naming '$needle' (exit $rc)" "$(head -n 5 "$err")"
  else
    pass "$name (exit $rc, ${took}s): $(grep -m1 '^cifar_mpi: error' "$err")"
  fi
}

if command -v mpirun >/dev/null 2>&1; then
  MPI_FLAGS=(-np 2 --oversubscribe --bind-to none)
  [[ $(id -u) -eq 0 ]] && MPI_FLAGS+=(--allow-run-as-root)
  # every rank fails
  mpi_expect_error "nonexistent --data-dir" "$TMP/no_such_dir" -- --data-dir "$TMP/no_such_dir"
  # only rank 0 fails (it alone reads the weights) while rank 1 waits in the broadcast
  mpi_expect_error "--init-weights missing file" "$TMP/no_such_weights.h5" -- \
    --data-dir "$GOOD" --init-weights "$TMP/no_such_weights.h5" --max-steps 1 --eval false
  # ranks may see the non-finite loss at different steps; none may be left in a collective
  mpi_expect_error "--lr 1e6 stops on a non-finite loss" "non-finite loss" -- \
    --data-dir "$BIG" --lr 1e6 --max-steps 50 --epochs 100 --batch-size 32 --eval false
else
  echo "SKIP: mpirun cases (no mpirun)"
fi

if ((failures)); then
  echo "bad_input: $failures case(s) failed"
  exit 1
fi
echo "bad_input: all cases passed"
exit 0
