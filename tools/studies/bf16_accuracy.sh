#!/usr/bin/env bash
# What --compute-dtype bf16 costs in accuracy: one epoch in fp32 and one in bf16 from the same seed
# (same initial weights, same data order), N ranks x 1 thread, the weights saved and scored by
# PyTorch (cifar_tools.score_weights), for each seed given. Prints a Markdown table (accuracy, the
# difference, training time) and the mean difference; exits 1 when that exceeds --max-points.
#
#   tools/studies/bf16_accuracy.sh [--np 2] [--seeds "42 43 44"] [--max-points 1] [--out DIR] [-- cifar_mpi options]
#
#   --out DIR   results folder (default results/bf16-YYYYmmdd-HHMMSS): <dtype>-s<seed>.{h5,w.h5,log}
#   -- ...      passed to every run (default: --epochs 1)
# Needs a CPU with avx512_bf16 or AMX (the bf16 run is refused elsewhere), CIFAR-10 in data/
# (tools/get_cifar10.sh) and torch, numpy, h5py for the scoring. About 15 s a run on 2 quiet cores.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
NP=2
SEEDS="42 43 44"
MAX_POINTS=1
OUT=""
while (($#)); do
  case $1 in
    --np) NP=${2:?--np needs a number}; shift 2 ;;
    --seeds) SEEDS=${2:?--seeds needs a list}; shift 2 ;;
    --max-points) MAX_POINTS=${2:?--max-points needs a number}; shift 2 ;;
    --out) OUT=${2:?--out needs a folder}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "bf16_accuracy: unknown argument '$1' (cifar_mpi options go after --)" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $NP =~ ^[1-9][0-9]*$ ]] || { echo "bf16_accuracy: --np must be a positive integer, got '$NP'" >&2; exit 2; }
EXTRA=("$@")
((${#EXTRA[@]})) || EXTRA=(--epochs 1)
OUT=${OUT:-$CIFAR_ROOT/results/bf16-$(date +%Y%m%d-%H%M%S)}
DATA=$CIFAR_ROOT/data/cifar-10-batches-bin
[[ -f $DATA/test_batch.bin ]] || { echo "bf16_accuracy: no CIFAR-10 at $DATA (tools/get_cifar10.sh)" >&2; exit 1; }
mkdir -p "$OUT"
mpi_flags=(--bind-to none)
((NP > $(nproc))) && mpi_flags+=(--oversubscribe --mca mpi_yield_when_idle 1)
cd "$CIFAR_ROOT"

# run DTYPE SEED: trains, then prints "accuracy_percent training_seconds" (PyTorch's score).
run() {
  local tag="$1-s$2"
  mpirun -np "$NP" "${mpi_flags[@]}" "$CIFAR_BUILD/cifar_mpi" --data-dir "$DATA" --threads 1 --seed "$2" \
    --compute-dtype "$1" --metrics "$OUT/$tag.h5" --save-weights "$OUT/$tag.w.h5" --force "${EXTRA[@]}" \
    >"$OUT/$tag.log" 2>&1 || { echo "bf16_accuracy: the $tag run failed; see $OUT/$tag.log" >&2; exit 1; }
  local acc secs
  acc=$(cifar_tools score_weights "$OUT/$tag.w.h5" --data-dir "$DATA" | awk '{sub("%", "", $3); print $3}')
  secs=$(awk '/total training time/ {print $4}' "$OUT/$tag.log")
  echo "$acc $secs"
}

echo "# fp32 vs bf16 compute, $(date -u +%FT%TZ), $NP rank(s) x 1 thread, cifar_mpi ${EXTRA[*]}"
echo "machine: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/,"",$2); print $2}'), $(nproc) cores; test accuracy scored by PyTorch"
echo
echo "| seed | fp32 acc % | bf16 acc % | bf16 - fp32 (points) | fp32 train s | bf16 train s |"
echo "|---|---|---|---|---|---|"
diffs=()
for seed in $SEEDS; do
  read -r a32 t32 < <(run fp32 "$seed")
  read -r a16 t16 < <(run bf16 "$seed")
  d=$(awk -v a="$a16" -v b="$a32" 'BEGIN {printf "%+.2f", a - b}')
  diffs+=("$d")
  echo "| $seed | $a32 | $a16 | $d | $t32 | $t16 |"
done
echo
printf '%s\n' "${diffs[@]}" | awk -v max="$MAX_POINTS" '
  {s += $1; if ($1 > hi || NR == 1) hi = $1; if ($1 < lo || NR == 1) lo = $1}
  END {m = s / NR; printf "mean bf16 - fp32: %+.2f points (range %+.2f .. %+.2f), limit %s: %s\n", m, lo, hi, max,
       (m <= max && m >= -max) ? "met" : "NOT met"; exit !(m <= max && m >= -max)}'
