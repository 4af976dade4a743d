#!/usr/bin/env bash
# --balance dynamic end to end, on a small fake CIFAR-10 set (6 files x 128 random records), the
# batches in file order (--no-shuffle) from weights PyTorch initialised (tests/cli/torch_steps.py
# is the independent reference: PyTorch's 5 SGD steps on the whole union batch). However the
# ranks happen to draw the step's chunks, the step must train the same images with the same
# weight each, so the weights must match PyTorch on the union batch:
#   - 1 rank x 32 (it draws every chunk), 2 ranks x 32 (union 64), 3 ranks x 32 (union 96,
#     oversubscribed: the draws are as uneven as the scheduler makes them), and 2 ranks with
#     overlap on and small buckets: each within 1e-4 of PyTorch;
#   - the log line names the chunks, the summary how many images each rank trained (the least
#     <= 1/N <= the most), and the metrics file records balance = dynamic.
# The replicas stay identical whatever each rank drew: they update from the same all-reduced
# gradient (tests/mpi/test_data_parallel.cpp checks that for every reducer).
#   bash tests/cli/balance.sh <cifar_mpi binary> <source dir> <data dir (ignored)>
# Prints one PASS/FAIL line per case; exits 1 if any case failed, 77 (skip) without a python3
# with torch, h5py and numpy.
set -u

BIN=${1:?usage: balance.sh <cifar_mpi> <source dir> <data dir>}
SRC=${2:?usage: balance.sh <cifar_mpi> <source dir> <data dir>}
BIN=$(realpath "$BIN")
SRC=$(realpath "$SRC")
[[ -x $BIN ]] || { echo "FAIL: $BIN is not an executable"; exit 1; }

source "$SRC/tests/cli/common.bash"
against_torch_setup balance  # PY, TMP (the current folder), DATA, INIT, STEPS, ARGS
ARGS+=(--balance dynamic)

# against_torch_case NAME NP ARGS...: cifar_mpi on NP ranks x 32, then compared with PyTorch on
# the union batch of NP x 32.
against_torch_case() {
  local name=$1 np=$2
  shift 2
  local what="np $np x 32, --balance dynamic${1:+ ($*)}" problems=() verdict
  train_case "$name" "$np" -- "$@" || problems+=("exit code $?: $(grep -m1 error "$TMP/$name.err")")
  grep -q "per-rank batch 32 drawn by the ranks in chunks of .* (--balance dynamic)" "$TMP/$name.out" ||
    problems+=("the log does not name the chunks: $(grep -m1 'model:' "$TMP/$name.out")")
  # the summary says how the images fell to the ranks: the least <= an even share <= the most
  local drawn
  drawn=$(grep 'images trained (--balance dynamic)' "$TMP/$name.out")
  awk '{gsub(/%/, ""); if (!($5 <= $13 + 0.05 && $13 <= $9 + 0.05)) exit 1}' <<<"$drawn" && [[ -n $drawn ]] ||
    problems+=("the summary's images trained line: '$drawn'")
  verdict=$("$PY" "$SRC/tests/cli/torch_steps.py" compare "$DATA" "$TMP/init.h5" "$TMP/$name.w.h5" "$STEPS" \
    $((np * 32)) 2>&1) || problems+=("against PyTorch: $verdict")
  if ((${#problems[@]})); then fail "$what" "${problems[@]}"; else pass "$what: $verdict; drawn $(sed "s/.*dynamic) *//" <<<"$drawn")"; fi
}

against_torch_case n1 1
against_torch_case n2 2
against_torch_case n3 3
against_torch_case n2_overlap 2 --overlap --bucket-mb 0.05

recorded=$("$PY" -c 'import sys, h5py; print(h5py.File(sys.argv[1], "r").attrs.get("config.balance"))' "$TMP/n2.h5" 2>&1)
[[ $recorded == dynamic ]] && pass "the metrics file records config.balance = dynamic" ||
  fail "config.balance in the metrics file: '$recorded'"

if ((failures)); then
  echo "balance: $failures case(s) failed"
  exit 1
fi
echo "balance: all cases passed"
exit 0
