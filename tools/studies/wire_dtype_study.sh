#!/usr/bin/env bash
# What compressing gradients on the wire costs in accuracy: the same training with --wire-dtype
# fp32, bf16 and fp16 (same seed, same data order), then cifar_tools.compare_runs's table and plot.
#
#   tools/studies/wire_dtype_study.sh [--np N] [--out DIR] [-- cifar_mpi options]
#
#   --np N      ranks (default 2; with one rank nothing travels and the runs are identical)
#   --out DIR   results folder (default results/wire-YYYYmmdd-HHMMSS): <dtype>.h5, <dtype>.log,
#               loss_curves.png, compare.md
#   -- ...      passed to every run (default: --epochs 1 --allreduce ring)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
NP=2
OUT=""
while (($#)); do
  case $1 in
    --np) NP=${2:?--np needs a number}; shift 2 ;;
    --out) OUT=${2:?--out needs a folder}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "wire_dtype_study: unknown argument '$1' (cifar_mpi options go after --)" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $NP =~ ^[1-9][0-9]*$ ]] || { echo "wire_dtype_study: --np must be a positive integer, got '$NP'" >&2; exit 2; }
EXTRA=("$@")
((${#EXTRA[@]})) || EXTRA=(--epochs 1 --allreduce ring)
OUT=${OUT:-$CIFAR_ROOT/results/wire-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
mpi_flags=(--bind-to none)
((NP > $(nproc))) && mpi_flags+=(--oversubscribe --mca mpi_yield_when_idle 1)
cd "$CIFAR_ROOT"
for dtype in fp32 bf16 fp16; do
  echo "wire_dtype_study: $dtype ($NP ranks)"
  mpirun -np "$NP" "${mpi_flags[@]}" "$CIFAR_BUILD/cifar_mpi" --wire-dtype "$dtype" --metrics "$OUT/$dtype.h5" \
    --force "${EXTRA[@]}" >"$OUT/$dtype.log" 2>&1 || { echo "wire_dtype_study: the $dtype run failed; see $OUT/$dtype.log" >&2; exit 1; }
done
cifar_tools compare_runs "$OUT"/{fp32,bf16,fp16}.h5 --out "$OUT"
echo "wire_dtype_study: $OUT/compare.md, $OUT/loss_curves.png"
