#!/usr/bin/env bash
# --compute-dtype bf16 where oneDNN's effective ISA lacks bf16 arithmetic, emulated with
# ONEDNN_MAX_CPU_ISA (which dnnl::get_effective_cpu_isa() honours):
#   - AVX2 and AVX512_CORE (where oneDNN 2.6 would emulate bf16, slowly), 1 rank: exactly one line
#     "cifar_mpi: error: --compute-dtype bf16 needs avx512_bf16 or AMX ..." and a non-zero exit;
#   - the same on 2 ranks, and with only rank 1 lowered (mpirun's MPMD syntax): one such line
#     (printed by rank 0: every rank knows), a non-zero exit, every rank gone within 30 s;
#   - where this CPU has bf16 arithmetic: 3 steps in bf16 train (exit 0, the weights written).
#   bash tests/cli/compute_dtype.sh <cifar_mpi binary> <source dir> <data dir (ignored)>
# Prints one PASS/FAIL/SKIP line per case; exits 1 if any case failed.
set -u

BIN=${1:?usage: compute_dtype.sh <cifar_mpi> <source dir> <data dir>}
SRC=${2:?usage: compute_dtype.sh <cifar_mpi> <source dir> <data dir>}
BIN=$(realpath "$BIN")
SRC=$(realpath "$SRC")
[[ -x $BIN ]] || { echo "FAIL: $BIN is not an executable"; exit 1; }

source "$SRC/tests/cli/common.bash"
PYPLAIN=$(command -v python3 || command -v /usr/bin/python3)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_compute_dtype.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1  # nothing the program writes lands in the source tree
export OMP_NUM_THREADS=1
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

DATA="$TMP/data"
"$PYPLAIN" "$SRC/tests/cli/make_fake_cifar.py" "$DATA" 64 || { echo "FAIL: making the fake data set"; exit 1; }
NEEDLES=("--compute-dtype bf16 needs avx512_bf16 or AMX" "use --compute-dtype fp32")
COMMON=(--data-dir "$DATA" --max-steps 3 --batch-size 16 --no-eval --compute-dtype bf16 --metrics "$TMP/m@RUN@.h5")

for isa in AVX2 AVX512_CORE; do
  # The ISA oneDNN then runs: the cap, or this CPU's own ISA where that is lower (AVX512_CORE on
  # an AVX2-only CPU runs avx2), as --version reports it.
  in_use=$(env "ONEDNN_MAX_CPU_ISA=$isa" "$BIN" --version | sed -n 's/.*ISA in use //p')
  RUNNER=(env "ONEDNN_MAX_CPU_ISA=$isa")
  expect_error "ONEDNN_MAX_CPU_ISA=$isa, 1 rank" "${NEEDLES[@]}" "on 1 of 1 rank(s)" "rank 0's is ${in_use:-?}" --
done
unset RUNNER

# mpi_refusal NAME NEEDLE -- MPIRUN ARGS...: exit != 0 within 30 s, exactly one line starting
# "cifar_mpi: error" (mpirun's own banner about the exit code may follow), which is
# "cifar_mpi: error: ..." naming every NEEDLE.
mpi_refusal() {
  local name=$1 needles=()
  shift
  while [[ $1 != -- ]]; do needles+=("$1"); shift; done
  shift
  local err="$TMP/mpi$((++run)).err" start=$SECONDS missing=() n
  timeout 30 mpirun --oversubscribe --bind-to none "$@" >"$TMP/mpi$run.out" 2>"$err"
  local rc=$? took=$((SECONDS - start)) lines
  lines=$(grep -c '^cifar_mpi: error' "$err")
  for n in "${needles[@]}"; do grep '^cifar_mpi: error: ' "$err" | grep -qF -- "$n" || missing+=("$n"); done
  if [[ $rc -eq 124 ]]; then
    fail "$name: ranks still running after 30 s" "$(head -n 5 "$err")"
  elif [[ $rc -eq 0 ]]; then
    fail "$name: exit code 0"
  elif [[ $lines -ne 1 ]]; then
    fail "$name: $lines 'cifar_mpi: error' lines, want 1" "$(grep '^cifar_mpi: error' "$err" | head -n 4)"
  elif ((${#missing[@]})); then
    fail "$name: the line does not name: ${missing[*]}" "$(grep -m1 '^cifar_mpi: error' "$err")"
  else
    pass "$name (exit $rc, ${took}s): $(grep -m1 '^cifar_mpi: error' "$err")"
  fi
}

if command -v mpirun >/dev/null 2>&1; then
  args=(--data-dir "$DATA" --max-steps 3 --batch-size 16 --no-eval --compute-dtype bf16)
  mpi_refusal "ONEDNN_MAX_CPU_ISA=AVX2, mpirun -np 2" "${NEEDLES[@]}" "on 2 of 2 rank(s)" -- \
    -np 2 -x ONEDNN_MAX_CPU_ISA=AVX2 "$BIN" "${args[@]}" --metrics "$TMP/np2.h5"
  # Rank 0 runs the CPU's own ISA: without bf16 arithmetic there, it lacks it too.
  lacking=1
  grep -qw avx512_bf16 /proc/cpuinfo || grep -qw amx_bf16 /proc/cpuinfo || lacking=2
  mpi_refusal "ONEDNN_MAX_CPU_ISA=AVX2 on rank 1 only, mpirun -np 1 : -np 1" "${NEEDLES[@]}" "on $lacking of 2 rank(s)" -- \
    -np 1 "$BIN" "${args[@]}" --metrics "$TMP/mpmd.h5" : \
    -np 1 -x ONEDNN_MAX_CPU_ISA=AVX2 "$BIN" "${args[@]}" --metrics "$TMP/mpmd.h5"
else
  echo "SKIP: mpirun cases (no mpirun)"
fi

# Where the CPU has it, bf16 trains (its accuracy: tools/studies/bf16_accuracy.sh, docs/results.md).
if grep -qw avx512_bf16 /proc/cpuinfo || grep -qw amx_bf16 /proc/cpuinfo; then
  timeout 120 "$BIN" --data-dir "$DATA" --max-steps 3 --batch-size 16 --no-eval --compute-dtype bf16 \
    --metrics "$TMP/ok.h5" --save-weights "$TMP/ok.w.h5" >"$TMP/ok.out" 2>"$TMP/ok.err"
  rc=$?
  if [[ $rc -eq 0 && -s $TMP/ok.w.h5 ]]; then
    pass "--compute-dtype bf16 on this CPU: 3 steps, weights written"
  else
    fail "--compute-dtype bf16 on this CPU: exit code $rc" "$(tail -n 3 "$TMP/ok.err")"
  fi
else
  echo "SKIP: this CPU has neither avx512_bf16 nor amx_bf16 (/proc/cpuinfo)"
fi

if ((failures)); then
  echo "compute_dtype: $failures case(s) failed"
  exit 1
fi
echo "compute_dtype: all cases passed"
exit 0
