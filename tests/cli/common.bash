# Sourced by the tests/cli/*.sh scripts (not itself a test: ctest runs *.sh only).
# shellcheck shell=bash

# python_with MODULE...: prints a python3 that imports them (a pyenv python3 first on PATH may
# lack Debian's python3-h5py and friends; /usr/bin/python3 has them), or nothing.
python_with() {
  local p imports
  imports=$(IFS=,; echo "$*")
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c "import $imports" >/dev/null 2>&1; then echo "$p"; return; fi
  done
}

# fake_run_setup RECORDS: what the scripts that run cifar_mpi on a fake data set share. Needs bin
# and src. Sets tmp (a fresh folder, now the current one, removed on exit with any process still
# running on its data; KEEP_TMP=1 keeps it), data/ in it (a fake CIFAR-10 set, 6 files x RECORDS
# random records) and py (a python3 with h5py and numpy: without one the test is skipped, exit 77);
# one thread; mpirun allowed as root; the tools run this binary with this python3.
fake_run_setup() {
  tmp=$(mktemp -d)
  trap 'pkill -9 -f "$tmp/data" 2>/dev/null; [[ -z "${KEEP_TMP:-}" ]] && rm -rf "$tmp"' EXIT
  cd "$tmp" || exit 1
  py=$(python_with h5py numpy)
  [[ -z $py ]] && { echo "SKIP: no python3 with h5py and numpy"; exit 77; }
  python3 "$src/tests/cli/make_fake_cifar.py" data "$1"
  [[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export OMP_NUM_THREADS=1 CIFAR_MPI=$bin CIFAR_PYTHON=$py
}

# against_torch_setup NAME [INIT_SCRIPT]: what the scripts that compare cifar_mpi with PyTorch's own steps
# (tests/cli/torch_steps.py) share. Skips (exit 77) without a python3 with torch, h5py and numpy;
# sets PY, TMP (a fresh folder, now the current one, removed on exit: nothing lands in the source
# tree), DATA (a fake CIFAR-10 set, 6 files x 128 random records) and INIT (PyTorch's initial
# weights, seed 3, written by INIT_SCRIPT's init: default torch_steps.py), STEPS (5) and ARGS (what makes a run comparable with torch_steps.py's: its data
# in file order, its initial weights, batch 32, no evaluation; a script appends its own options);
# one thread; mpirun allowed as root. Needs SRC.
against_torch_setup() {
  PY=$(python_with torch h5py numpy)
  [[ -n $PY ]] || { echo "SKIP: no python3 with torch, h5py and numpy"; exit 77; }
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_$1.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
  cd "$TMP" || exit 1
  export OMP_NUM_THREADS=1
  [[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  DATA="$TMP/data"
  INIT="$TMP/init.h5"
  "$PY" "$SRC/tests/cli/make_fake_cifar.py" "$DATA" 128 5 || { echo "FAIL: making the fake data set"; exit 1; }
  "$PY" "$SRC/tests/cli/${2:-torch_steps.py}" init "$DATA" 3 "$INIT" || { echo "FAIL: PyTorch's initial weights"; exit 1; }
  STEPS=5
  ARGS=(--data-dir "$DATA" --no-shuffle --max-steps "$STEPS" --batch-size 32 --no-eval --log-every 1
        --init-weights "$INIT")
}

# train_case NAME NP [VAR=VALUE...] -- ARGS...: $BIN "${ARGS[@]}" ARGS on NP ranks (np 1 without
# mpirun), with the variables set, within 300 s; its output in $TMP/NAME.out and .err, its metrics
# and weights in $TMP/NAME.h5 and NAME.w.h5. Returns the exit code.
train_case() {
  local name=$1 np=$2
  shift 2
  local env=() runner=()
  while [[ $1 != -- ]]; do env+=("$1"); shift; done
  shift
  ((np > 1)) && runner=(mpirun -np "$np" --oversubscribe --bind-to none)
  timeout 300 env ${env+"${env[@]}"} ${runner+"${runner[@]}"} "$BIN" "${ARGS[@]}" --metrics "$TMP/$name.h5" \
    --save-weights "$TMP/$name.w.h5" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
}

# One PASS/FAIL line per case; `failures` counts the failed ones, with detail lines under them.
failures=0
pass() { echo "PASS: $1"; }
fail() {
  echo "FAIL: $1"
  shift
  for line in "$@"; do echo "      $line"; done
  failures=$((failures + 1))
}

# expect_error NAME NEEDLE... -- ARGS...: one bad-input case of the program $BIN. Runs
#   "${RUNNER[@]}" "$BIN" "${COMMON[@]}" ARGS   (RUNNER and COMMON optional; "@RUN@" in COMMON
#                                                 becomes the case number, for per-case files)
# within 60 s, and passes when the exit code is $WANT_RC (default: any non-zero), stderr is exactly
# one line beginning "cifar_mpi: error:", and it contains every NEEDLE (fixed strings). Returns 0
# when it passed. The case's output is in $TMP/case<N>.out and .err, N = $run.
run=0
expect_error() {
  local name=$1
  shift
  local needles=()
  while [[ $1 != -- ]]; do needles+=("$1"); shift; done
  shift
  run=$((run + 1))
  local out="$TMP/case$run.out" err="$TMP/case$run.err" start=$SECONDS common=()
  [[ -n ${COMMON+x} ]] && common=("${COMMON[@]//@RUN@/$run}")
  timeout 60 ${RUNNER+"${RUNNER[@]}"} "$BIN" ${common+"${common[@]}"} "$@" >"$out" 2>"$err"
  local rc=$? took=$((SECONDS - start)) lines first n missing=()
  lines=$(wc -l <"$err")
  first=$(head -n 1 "$err")
  for n in "${needles[@]}"; do grep -qF -- "$n" "$err" || missing+=("$n"); done
  if [[ $rc -eq 124 ]]; then
    fail "$name: timed out after 60 s" "$(head -c 400 "$err")"
  elif [[ $rc -eq 0 ]]; then
    fail "$name: exit code 0" "stdout tail: $(tail -n 3 "$out")"
  elif [[ -n ${WANT_RC:-} && $rc -ne $WANT_RC ]]; then
    fail "$name: exit code $rc, want $WANT_RC" "$(head -n 5 "$err")"
  elif [[ $lines -ne 1 || $first != "cifar_mpi: error: "* ]]; then
    fail "$name: stderr is not one line 'cifar_mpi: error: ...' ($lines lines)" "$(head -n 10 "$err")"
  elif ((${#missing[@]})); then
    fail "$name: message does not name: ${missing[*]}" "$first"
  else
    pass "$name (exit $rc, ${took}s): $first"
    return 0
  fi
  return 1
}
