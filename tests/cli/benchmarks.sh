#!/usr/bin/env bash
# The benchmarks beside cifar_mpi in the build folder (train_step_bench, allreduce_bench,
# augment_bench) answer their command line as the program does: --help prints the usage and exits
# 0; a bad option or value is one line on stderr naming the option, and a non-zero exit. And
# train_step_bench runs a tiny step with either max pooling (--pool kernel | onednn).
#   bash tests/cli/benchmarks.sh <cifar_mpi binary> <source dir> <data dir (unused)>
set -u
BUILD=$(dirname "$(realpath "${1:?usage: benchmarks.sh <cifar_mpi> <source dir> <data dir>}")")
source "${2:?}/tests/cli/common.bash"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_benchmarks.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1

# refused NAME NEEDLE COMMAND...: COMMAND exits non-zero with exactly one line on stderr that
# begins with the benchmark's name and contains NEEDLE.
refused() {
  local name=$1 needle=$2 rc
  shift 2
  timeout 60 "$@" >"$TMP/out" 2>"$TMP/err"
  rc=$?
  local lines prog
  lines=$(wc -l <"$TMP/err")
  prog=$(basename "$1")
  if [[ $rc -eq 0 ]]; then
    fail "$name: exit 0"
  elif [[ $lines -ne 1 ]] || ! grep -q "^$prog: .*$needle" "$TMP/err"; then
    fail "$name: want one line '$prog: ...$needle...' on stderr" "$(head -n 4 "$TMP/err")"
  else
    pass "$name (exit $rc): $(cat "$TMP/err")"
  fi
}

for b in train_step_bench allreduce_bench augment_bench; do
  [[ -x $BUILD/$b ]] || { fail "$b not built in $BUILD"; continue; }
  if timeout 60 "$BUILD/$b" --help >"$TMP/out" 2>"$TMP/err" && grep -q "Usage:" "$TMP/out"; then
    pass "$b --help"
  else
    fail "$b --help" "$(head -n 3 "$TMP/err")"
  fi
done

refused "train_step_bench --pool x" "--pool: x not in" "$BUILD/train_step_bench" --pool x
refused "train_step_bench --steps 0" "--steps: needs a whole number >= 1, got '0'" "$BUILD/train_step_bench" --steps 0
refused "train_step_bench --warmup -1" "--warmup" "$BUILD/train_step_bench" --warmup -1
refused "train_step_bench --no-such-option" "no-such-option" "$BUILD/train_step_bench" --no-such-option
refused "augment_bench --batch 0" "--batch: needs a whole number >= 1" "$BUILD/augment_bench" --batch 0
refused "allreduce_bench --iters 0" "--iters" "$BUILD/allreduce_bench" --iters 0

for pool in kernel onednn; do
  if timeout 120 "$BUILD/train_step_bench" --batch 8 --steps 2 --warmup 1 --threads 1 --pool "$pool" \
       >"$TMP/out" 2>"$TMP/err" && grep -q "ms/step" "$TMP/out"; then
    pass "train_step_bench --pool $pool runs"
  else
    fail "train_step_bench --pool $pool" "$(tail -n 3 "$TMP/err")"
  fi
done

echo "$failures failure(s)"
((failures == 0))
