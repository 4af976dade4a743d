#!/usr/bin/env bash
# Sending less across link rates: the time-to-accuracy recipe on 2 simulated hosts (1 rank each)
# with plain fp32 all-reduce, --wire-dtype bf16, --compress powersgd and --local-sgd K, at each rate;
# then cifar_tools.send_less_sweep's table (time to the target, its ratio to plain, bytes per step)
# and plot against the rate. Needs root (tools/sim_hosts.sh).
#
#   sudo tools/studies/send_less_sweep.sh [--rates "100mbit 1gbit 10gbit"] [--methods "plain bf16 powersgd localsgd"]
#                                         [--local-sgd K] [--out DIR] [-- cifar_mpi options]
#
#   --rates     link rates (default "100mbit 1gbit 10gbit")
#   --methods   which runs (default all four)
#   --local-sgd K  the local SGD run's period (default 4)
#   --out DIR   results folder (default results/send-less-YYYYmmdd-HHMMSS): <rate>-<method>.h5 and
#               .log, send_less.md, send_less.png
#   -- ...      passed to every run after the recipe (e.g. --target-accuracy 0 to run it to its end)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
RATES="100mbit 1gbit 10gbit"
METHODS="plain bf16 powersgd localsgd"
K=4
OUT=""
while (($#)); do
  case $1 in
    --rates) RATES=${2:?--rates needs a list}; shift 2 ;;
    --methods) METHODS=${2:?--methods needs a list}; shift 2 ;;
    --local-sgd) K=${2:?--local-sgd needs a number}; shift 2 ;;
    --out) OUT=${2:?--out needs a folder}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "send_less_sweep: unknown argument '$1' (cifar_mpi options go after --)" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $K =~ ^[1-9][0-9]*$ ]] || { echo "send_less_sweep: --local-sgd must be a positive integer, got '$K'" >&2; exit 2; }
for m in $METHODS; do
  [[ $m =~ ^(plain|bf16|powersgd|localsgd)$ ]] || { echo "send_less_sweep: unknown method '$m' (plain bf16 powersgd localsgd)" >&2; exit 2; }
done
OUT=${OUT:-$CIFAR_ROOT/results/send-less-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
cd "$CIFAR_ROOT"
for rate in $RATES; do
  for m in $METHODS; do
    case $m in
      plain) opts=() ;;
      bf16) opts=(--wire-dtype bf16) ;;
      powersgd) opts=(--compress powersgd) ;;
      localsgd) opts=(--local-sgd "$K") ;;
    esac
    echo "send_less_sweep: $rate $m"
    # --balance static: the recipe's dynamic balance needs the ranks on one host.
    tools/sim_hosts.sh --rate "$rate" -- "$CIFAR_BUILD/cifar_mpi" --config config/time_to_accuracy.toml \
      --balance static "${opts[@]}" --metrics "$OUT/$rate-$m.h5" --force "$@" >"$OUT/$rate-$m.log" 2>&1 ||
      { echo "send_less_sweep: the $rate $m run failed; see $OUT/$rate-$m.log" >&2; exit 1; }
  done
done
cifar_tools send_less_sweep "$OUT"
