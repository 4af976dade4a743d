#!/usr/bin/env bash
# Overlap on against off: cifar_mpi runs with --no-overlap and --overlap back to back (so machine
# load hits both alike), one line each with medians over the steps after the second, in ms, of the
# step (slowest rank's data + compute + exposed comm + update), T_comp (slowest rank), T_comm
# (fastest rank: the all-reduce itself) and T_wait (slowest rank); at the end, per case, the share
# of the possible saving overlap realised, (step_off - step_on) / min(T_comp_off, T_comm_off), with
# steps averaged from step 5 on, median over the pairs (cifar_tools.overlap_share). On a shared
# machine single runs are noisy: compare the medians of several alternated pairs.
#
#   tools/overlap_pairs.sh [--where local|sim] [--bin PATH] [--reps R] [--steps K]
#                          [--strategies "naive mpi ring rhd"] [--buckets "25 0.25"] [--yield "0 1"]
#                          [--rate RATE] [--ranks-per-host R] [--goal] [--keep DIR] [-- EXTRA ARGS]
#
#   --where local   mpirun -np 2 --bind-to none on this machine (default)
#           sim     simulated hosts (tools/sim_hosts.sh, needs root): 2 hosts x --ranks-per-host
#                   (default 1) joined by --rate (default 1gbit)
#   --yield "0 1"   each case without and with --mca mpi_yield_when_idle 1 (default "0")
#   --buckets       --bucket-mb values ("auto" allowed; default "25 0.25")
#   --keep DIR      keep the runs' metrics files there (default: a temporary folder, removed)
#   --goal          the four cases of the overlap goal: --where sim --strategies "ring mpi"
#                   --yield "0 1" --buckets auto --steps 40 --reps 3 (options after it override)
#   naive runs once per repetition (one bucket per tensor whatever --bucket-mb).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
where=local bin="$CIFAR_BUILD/cifar_mpi" reps=3 steps=30 strategies="naive mpi ring rhd" buckets="25 0.25"
yields=0 rate=1gbit rph=1 keep=
while (($#)); do
  case $1 in
    --where | --bin | --reps | --steps | --strategies | --buckets | --yield | --rate | --ranks-per-host | --keep)
      (($# >= 2)) || { echo "overlap_pairs: $1 needs a value" >&2; exit 2; } ;;
  esac
  case $1 in
    --where) where=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --strategies) strategies=$2; shift 2 ;;
    --buckets) buckets=$2; shift 2 ;;
    --yield) yields=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --ranks-per-host) rph=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --goal) where=sim strategies="ring mpi" yields="0 1" buckets=auto steps=40 reps=3; shift ;;
    --) shift; break ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "overlap_pairs: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ $where == local || $where == sim ]] || { echo "overlap_pairs: --where must be local or sim, got '$where'" >&2; exit 2; }
for y in $yields; do
  [[ $y == 0 || $y == 1 ]] || { echo "overlap_pairs: --yield takes 0 and/or 1, got '$y'" >&2; exit 2; }
done
[[ $rph =~ ^[1-9][0-9]*$ ]] || { echo "overlap_pairs: --ranks-per-host must be a positive integer, got '$rph'" >&2; exit 2; }
# Counts are checked here: a bad one would otherwise surface as overlap_share's usage message (no
# pairs) or a bash arithmetic error, after minutes of runs.
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "overlap_pairs: --reps must be a positive integer, got '$reps'" >&2; exit 2; }
if ! [[ $steps =~ ^[1-9][0-9]*$ ]] || ((steps < 6)); then
  echo "overlap_pairs: --steps must be an integer of at least 6 (steps are averaged from step 5 on), got '$steps'" >&2
  exit 2
fi
for list in "--strategies:$strategies" "--buckets:$buckets" "--yield:$yields"; do
  [[ ${list#*:} =~ [^[:space:]] ]] ||
    { echo "overlap_pairs: ${list%%:*} needs at least one value" >&2; exit 2; }
done
[[ -x $bin && ! -d $bin ]] ||
  { echo "overlap_pairs: --bin: '$bin' is not an executable (build first, or name one)" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [[ -n $keep ]]; then
  mkdir -p "$keep" || { echo "overlap_pairs: cannot create --keep folder '$keep'" >&2; exit 2; }
  tmp=$(cd "$keep" && pwd)
else
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
fi
cd "$CIFAR_ROOT"
echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg)"
pairs=()
for rep in $(seq "$reps"); do
  for s in $strategies; do
    for b in $buckets; do
      [[ $s == naive && $b != "${buckets%% *}" ]] && continue
      for y in $yields; do
        mca=()
        [[ $y == 1 ]] && mca=(--mca mpi_yield_when_idle 1)
        case_name="$where $s bucket$b yield$y"
        [[ $where == sim ]] && case_name="sim 2x$rph $rate $s bucket$b yield$y"
        for ov in off on; do
          run="$tmp/$rep-$s-$b-$y-$ov.h5"
          args=(--threads 1 --max-steps "$steps" --no-eval --log-every 100000 --allreduce "$s" --bucket-mb "$b"
                $([[ $ov == on ]] && echo --overlap || echo --no-overlap) --metrics "$run" --force "$@")
          if [[ $where == local ]]; then
            out=$(mpirun -np 2 --oversubscribe --bind-to none "${mca[@]}" "$bin" "${args[@]}" 2>&1) || true
          else
            out=$(tools/sim_hosts.sh --hosts 2 --ranks-per-host "$rph" --rate "$rate" --no-meta "${mca[@]}" -- \
                  "$bin" "${args[@]}" 2>&1) || true
          fi
          [[ -f $run ]] || { echo "overlap_pairs: run failed:"; echo "$out"; exit 1; } >&2
          echo "$where rep$rep $s bucket$b yield$y ov$ov $(cifar_tools step_medians "$run") load $(cut -d' ' -f1 /proc/loadavg)"
        done
        pairs+=("$case_name" "$tmp/$rep-$s-$b-$y-off.h5" "$tmp/$rep-$s-$b-$y-on.h5")
      done
    done
  done
done
echo
cifar_tools overlap_share --first 5 "${pairs[@]}"
