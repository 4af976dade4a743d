#!/usr/bin/env bash
# A scaling sweep in one command: the same training run at N = 1, 2, 4 ranks (or --np "..."), one
# HDF5 metrics file per run in one folder, then the plots and summary table of tools/plot_metrics.py.
#
#   tools/scaling_sweep.sh [--np "1 2 4"] [--out DIR] [--target A [--eval-every K]] [-- cifar_mpi options]
#
#   --np LIST   world sizes to run (default "1 2 4")
#   --out DIR   results folder (default results/sweep-YYYYmmdd-HHMMSS); it gets np<N>.h5,
#               np<N>.log (each run's output), commands.txt, the PNGs and summary.md
#   --target A  time to accuracy: every N trains until its test accuracy reaches A (a fraction,
#               e.g. 0.6; passed as --target-accuracy A) or its epochs run out (then "--epochs 30"
#               unless given or a --config file is: an upper bound). At the end a table: N, throughput speedup,
#               time to target and time-to-accuracy speedup T_target(smallest N) / T_target(N)
#   --eval-every K  with --target: also evaluate every K steps, not only at epochs' ends (passed
#               as --eval-every K; default: none). Steps per epoch shrink as 1/N, so a K that is
#               a fraction of an epoch at N = 1 is a bigger fraction at larger N
#   -- ...      passed to every run, plus "--epochs 1" and "--threads 1" unless they are given;
#               e.g. "-- --epochs 2", or "-- --max-steps 50 --no-eval" for a quick look
#
# Uses the built binary $CIFAR_BUILD/cifar_mpi (default build/; this script builds nothing) and
# runs from the repository root, so relative paths in the options are relative to it. A run whose
# ranks x threads fit the cores (nproc) is launched with "mpirun -np N --map-by slot:PE=T
# --bind-to core" (T = --threads): each rank keeps its own cores, as on a cluster node, so no rank
# waits for one the scheduler moved (on 2 cores, N = 2 unbound lost 5-10% of a time to accuracy to
# that). Otherwise "--bind-to none"; when N exceeds the cores it also gets "--oversubscribe --mca
# mpi_yield_when_idle 1", and the metrics file records oversubscribed = 1.
# Keep the number of epochs fixed across N (the per-rank batch is fixed, so every N then trains on
# the same images): speedup = T(1) / T(N). With --target the runs stop at the target, so they train
# different epochs: the throughput speedup is then the ratio of images/s, and the time-to-accuracy
# speedup T_target(1) / T_target(N) says what the extra ranks bought (summary.md, accuracy_vs_time.png).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
NPS="1 2 4"
OUT=""
TARGET=""
EVAL_EVERY=""
while (($#)); do
  case $1 in
    --np) NPS=${2:?--np needs a list, e.g. --np \"1 2 4\"}; shift 2 ;;
    --out) OUT=${2:?--out needs a folder}; shift 2 ;;
    --target) TARGET=${2:?--target needs an accuracy fraction, e.g. --target 0.6}; shift 2 ;;
    --eval-every) EVAL_EVERY=${2:?--eval-every needs a number of steps}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "scaling_sweep: unknown argument '$1' (cifar_mpi options go after --)" >&2; usage >&2; exit 2 ;;
  esac
done
EXTRA=("$@")
# The defaults, unless the options name them (cifar_mpi refuses an option given twice).
given() { local a; for a in "${EXTRA[@]}"; do [[ $a == "$1" || $a == "$1="* ]] && return 0; done; return 1; }
DEFAULTS=()
if [[ -n $TARGET ]]; then
  [[ $TARGET =~ ^(0?\.[0-9]*[1-9][0-9]*|1(\.0*)?)$ ]] ||
    { echo "scaling_sweep: --target: '$TARGET' is not an accuracy fraction in (0, 1], e.g. 0.6" >&2; exit 2; }
  given --target-accuracy && { echo "scaling_sweep: give the target once: --target A, or --target-accuracy A after --" >&2; exit 2; }
  DEFAULTS+=(--target-accuracy "$TARGET")
  # an upper bound: the runs stop at the target (a --config file's own epochs are kept: a recipe's
  # schedule spans them)
  given --epochs || given --config || DEFAULTS+=(--epochs 30)
  if [[ -n $EVAL_EVERY ]]; then
    [[ $EVAL_EVERY =~ ^[1-9][0-9]*$ ]] || { echo "scaling_sweep: --eval-every: '$EVAL_EVERY' is not a positive integer" >&2; exit 2; }
    given --eval-every && { echo "scaling_sweep: give --eval-every once (before or after --)" >&2; exit 2; }
    DEFAULTS+=(--eval-every "$EVAL_EVERY")
  fi
elif [[ -n $EVAL_EVERY ]]; then
  echo "scaling_sweep: --eval-every goes with --target (or pass it to cifar_mpi after --)" >&2; exit 2
fi
[[ -n $TARGET ]] || given --epochs || given --config || DEFAULTS+=(--epochs 1)
given --threads || DEFAULTS+=(--threads 1)
THREADS=1
for ((i = 0; i + 1 < ${#EXTRA[@]}; i++)); do [[ ${EXTRA[i]} == --threads ]] && THREADS=${EXTRA[i + 1]}; done
for a in "${EXTRA[@]}"; do [[ $a == --threads=* ]] && THREADS=${a#--threads=}; done
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || THREADS=1  # cifar_mpi itself refuses a bad value

BIN="$CIFAR_BUILD/cifar_mpi"
[[ -x $BIN ]] || { echo "scaling_sweep: $BIN not found; build first (cmake --build build) or set CIFAR_BUILD" >&2; exit 1; }
for n in $NPS; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "scaling_sweep: --np: '$n' is not a positive integer" >&2; exit 2; }
done

[[ -n $OUT ]] || OUT="$CIFAR_ROOT/results/sweep-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$CIFAR_ROOT"
CORES=$(nproc)
echo "scaling_sweep: N in {$NPS} on $(hostname) ($CORES cores) -> $OUT"
{
  echo "# scaling_sweep.sh $(date -Iseconds) on $(hostname), $CORES cores, repository HEAD $(git -C "$CIFAR_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown) (the binary's own commit is in each file's git_commit)"
} >"$OUT/commands.txt"

for n in $NPS; do
  if ((n * THREADS <= CORES)); then
    flags=(-np "$n" --map-by "slot:PE=$THREADS" --bind-to core)
  else
    flags=(-np "$n" --bind-to none)
  fi
  ((n > CORES)) && flags+=(--oversubscribe --mca mpi_yield_when_idle 1)
  cmd=(mpirun "${flags[@]}" "$BIN" "${DEFAULTS[@]}" "${EXTRA[@]}" --metrics "$OUT/np$n.h5")
  # The machine may be shared: the load before each run helps to judge its numbers.
  echo "# N=$n, load average before the run: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)" \
    >>"$OUT/commands.txt"
  printf '%q ' "${cmd[@]}" >>"$OUT/commands.txt"
  echo >>"$OUT/commands.txt"
  echo "scaling_sweep: N=$n$( ((n > CORES)) && echo " (oversubscribed: $n ranks > $CORES cores)")"
  start=$(date +%s%N)
  if ! "${cmd[@]}" >"$OUT/np$n.log" 2>&1; then
    # The program's own error lines say what went wrong; mpirun's notice that a rank exited
    # non-zero, which ends the log, does not. Each rank may print the same line: once each.
    errors=$(grep 'cifar_mpi: error' "$OUT/np$n.log" | awk '!seen[$0]++' | head -n 5) || true
    if [[ -n $errors ]]; then
      echo "scaling_sweep: the run with N=$n failed; its output ($OUT/np$n.log) says:" >&2
      printf '%s\n' "$errors" >&2
    else
      echo "scaling_sweep: the run with N=$n failed; its output ($OUT/np$n.log) ends:" >&2
      tail -n 5 "$OUT/np$n.log" >&2
    fi
    exit 1
  fi
  ms=$((($(date +%s%N) - start) / 1000000))
  printf 'scaling_sweep: N=%s done in %d.%03d s; %s\n' "$n" $((ms / 1000)) $((ms % 1000)) \
    "$(grep -m1 'total training time' "$OUT/np$n.log" | sed 's/  */ /g')"
done

cifar_tools plot_metrics "$OUT" ||
  { echo "scaling_sweep: plotting failed; the metrics files are in $OUT (tools/plot_metrics.py $OUT)" >&2; exit 1; }
echo
cat "$OUT/summary.md"
[[ -n $TARGET ]] || exit 0
# Time to accuracy, from the metrics files (the same numbers as summary.md's columns).
echo
cifar_tools time_to_target "$OUT" "$TARGET"
