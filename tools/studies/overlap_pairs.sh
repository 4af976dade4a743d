#!/usr/bin/env bash
# Overlap on against off, strategy by strategy: cifar_mpi runs with --no-overlap and --overlap back to
# back (so machine load hits both alike), one line each with medians over the steps after the
# second, in ms, of the step (slowest rank's data + compute + exposed comm + update), T_comp
# (slowest rank), T_comm (fastest rank: the all-reduce itself) and T_wait (slowest rank). Repeat and compare the pairs' ratios: on a
# shared machine single runs are noisy.
#
#   tools/overlap_pairs.sh [--where local|sim] [--bin PATH] [--reps R] [--steps K]
#                          [--strategies "naive mpi ring rhd"] [--buckets "25 0.25"] [-- EXTRA ARGS]
#
#   --where local   mpirun -np 2 on this machine (default)
#           sim     2 simulated hosts x 1 rank joined by 1 Gbit/s (tools/sim_hosts.sh, needs root)
#   naive runs once per repetition (one bucket per tensor whatever --bucket-mb).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
where=local bin="$CIFAR_BUILD/cifar_mpi" reps=3 steps=30 strategies="naive mpi ring rhd" buckets="25 0.25"
while (($#)); do
  case $1 in
    --where) where=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --strategies) strategies=$2; shift 2 ;;
    --buckets) buckets=$2; shift 2 ;;
    --) shift; break ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "overlap_pairs: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ $where == local || $where == sim ]] || { echo "overlap_pairs: --where must be local or sim, got '$where'" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$CIFAR_ROOT"
for rep in $(seq "$reps"); do
  for s in $strategies; do
    for b in $buckets; do
      [[ $s == naive && $b != "${buckets%% *}" ]] && continue
      for ov in off on; do
        args=(--threads 1 --max-steps "$steps" --no-eval --log-every 100000 --allreduce "$s" --bucket-mb "$b"
              $([[ $ov == on ]] && echo --overlap || echo --no-overlap) --metrics "$tmp/run.h5" --force "$@")
        if [[ $where == local ]]; then
          out=$(mpirun -np 2 --oversubscribe --bind-to none "$bin" "${args[@]}" 2>&1)
        else
          out=$(tools/sim_hosts.sh --hosts 2 --ranks-per-host 1 --rate 1gbit --no-meta -- "$bin" "${args[@]}" 2>&1)
        fi
        [[ -f $tmp/run.h5 ]] || { echo "overlap_pairs: run failed:"; echo "$out"; exit 1; } >&2
        echo "$where rep$rep $s bucket$b ov$ov $(cifar_tools step_medians "$tmp/run.h5")"
        rm -f "$tmp/run.h5"
      done
    done
  done
done
