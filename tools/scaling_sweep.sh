#!/usr/bin/env bash
# A scaling sweep in one command: the same training run at N = 1, 2, 4 ranks (or --np "..."), one
# HDF5 metrics file per run in one folder, then the plots and summary table of tools/plot_metrics.py.
#
#   tools/scaling_sweep.sh [--np "1 2 4"] [--out DIR] [-- cifar_mpi options]
#
#   --np LIST   world sizes to run (default "1 2 4")
#   --out DIR   results folder (default results/sweep-YYYYmmdd-HHMMSS); it gets np<N>.h5,
#               np<N>.log (each run's output), commands.txt, the PNGs and summary.md
#   -- ...      passed to every run, plus "--epochs 1" and "--threads 1" unless they are given;
#               e.g. "-- --epochs 2", or "-- --max-steps 50 --eval false" for a quick look
#
# Uses the built binary $CIFAR_BUILD/cifar_mpi (default build/; this script builds nothing) and
# runs from the repository root, so relative paths in the options are relative to it. Every run is
# launched with "mpirun -np N --bind-to none"; when N exceeds the cores (nproc) it also gets
# "--oversubscribe --mca mpi_yield_when_idle 1", and the metrics file records oversubscribed = 1.
# Keep the number of epochs fixed across N (the per-rank batch is fixed, so every N then trains on
# the same images): speedup = T(1) / T(N).
set -euo pipefail
source "$(dirname "$0")/common.sh"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
NPS="1 2 4"
OUT=""
while (($#)); do
  case $1 in
    --np) NPS=${2:?--np needs a list, e.g. --np \"1 2 4\"}; shift 2 ;;
    --out) OUT=${2:?--out needs a folder}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "scaling_sweep: unknown argument '$1' (cifar_mpi options go after --)" >&2; usage >&2; exit 2 ;;
  esac
done
EXTRA=("$@")
# The defaults, unless the options name them (cifar_mpi refuses an option given twice).
given() { local a; for a in "${EXTRA[@]}"; do [[ $a == "$1" || $a == "$1="* ]] && return 0; done; return 1; }
DEFAULTS=()
given --epochs || DEFAULTS+=(--epochs 1)
given --threads || DEFAULTS+=(--threads 1)

BIN="$CIFAR_BUILD/cifar_mpi"
[[ -x $BIN ]] || { echo "scaling_sweep: $BIN not found; build first (cmake --build build) or set CIFAR_BUILD" >&2; exit 1; }
for n in $NPS; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "scaling_sweep: --np: '$n' is not a positive integer" >&2; exit 2; }
done

# A python3 with h5py and matplotlib (a pyenv python3 first on PATH may lack them; Debian's has them).
PY=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import h5py, matplotlib, numpy' >/dev/null 2>&1; then PY=$p; break; fi
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
  flags=(-np "$n" --bind-to none)
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
    echo "scaling_sweep: the run with N=$n failed; its output ($OUT/np$n.log) ends:" >&2
    tail -n 5 "$OUT/np$n.log" >&2
    exit 1
  fi
  ms=$((($(date +%s%N) - start) / 1000000))
  printf 'scaling_sweep: N=%s done in %d.%03d s; %s\n' "$n" $((ms / 1000)) $((ms % 1000)) \
    "$(grep -m1 'total training time' "$OUT/np$n.log" | sed 's/  */ /g')"
done

if [[ -z $PY ]]; then
  echo "scaling_sweep: no python3 with h5py and matplotlib (apt-get install python3-h5py python3-matplotlib);" \
       "the metrics files are in $OUT, plot them with tools/plot_metrics.py $OUT" >&2
  exit 1
fi
"$PY" "$CIFAR_ROOT/tools/plot_metrics.py" "$OUT"
echo
cat "$OUT/summary.md"
