#!/usr/bin/env bash
# Failure injection: runs a training job under tools/elastic_run.sh while killing (SIGKILL) or
# stopping (SIGSTOP: a stall) one rank every --every seconds, the rank drawn from a seeded
# generator, until the job ends; or, on simulated hosts (--sim-hosts K), removes the last host's
# network namespace once. Then prints the goodput (the time of an uninterrupted run over the time
# with failures), the recoveries and the seconds down of each.
set -u
ME=inject_failures.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

usage() {
  cat <<EOF
usage: tools/recovery/inject_failures.sh --np N [options] -- CIFAR_MPI_ARGS...

Runs CIFAR_MPI_ARGS once without failures (the reference time; skipped with --reference-time),
then under tools/elastic_run.sh with a failure every --every seconds: SIGKILL or SIGSTOP to one
rank (its index drawn by a generator seeded with --seed), until the job ends. Prints the goodput,
the final test accuracy of both runs, and each recovery (cause, rank, steps lost, seconds down).

options:
  --np N               ranks (required)
  --every S            seconds between failures (default 20)
  --seed K             seed of the schedule (which rank; default 1)
  --signal KILL|STOP|HOST  what a failure is (default KILL; STOP needs --stall-timeout in the args;
                       HOST: with --sim-hosts, the last host's namespace removed, once)
  --sim-hosts K        run on K simulated hosts (tools/sim_hosts.sh, root), N/K ranks each; the
                       launcher goes on with the hosts left (--min-ranks N/K)
  --reference-time S   the uninterrupted run's time, if already measured (skips that run)
  --max-restarts K     passed to elastic_run.sh (default 100)
  --mpirun-args 'ARGS' passed to elastic_run.sh and to the reference's mpirun
  --out DIR            where the runs' files go (default: results/inject-<time>)
  -h, --help           this text
EOF
}

np=0 every=20 seed=1 sig=KILL ref_time="" max_restarts=100 mpirun_args="" out="" sim=0
while (($#)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --np) np=$2; shift 2 ;;
    --every) every=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --signal) sig=$2; shift 2 ;;
    --reference-time) ref_time=$2; shift 2 ;;
    --max-restarts) max_restarts=$2; shift 2 ;;
    --mpirun-args) mpirun_args=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --sim-hosts) sim=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "$ME: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $np =~ ^[0-9]+$ ]] && ((np >= 1)) || { echo "$ME: --np must be a number >= 1" >&2; exit 2; }
[[ $sig == KILL || $sig == STOP || $sig == HOST ]] || { echo "$ME: --signal must be KILL, STOP or HOST, got '$sig'" >&2; exit 2; }
[[ $sig == HOST && $sim -lt 2 ]] && { echo "$ME: --signal HOST needs --sim-hosts K (K >= 2)" >&2; exit 2; }
[[ $every =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "$ME: --every must be a number of seconds, got '$every'" >&2; exit 2; }
[[ $sig == STOP && " $* " != *" --stall-timeout "* && " $* " != *" --stall-timeout="* ]] &&
  echo "$ME: warning: --signal STOP without --stall-timeout: a stopped rank is named only after cifar_mpi's default stall timeout" >&2
BIN=${CIFAR_MPI:-$CIFAR_BUILD/cifar_mpi}
[[ -z $out ]] && out=results/inject-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)

accuracy() { grep -o "final test accuracy *[0-9.]*%" "$1" | tail -n 1 | grep -o "[0-9.]*%"; }

sim_hosts=("$CIFAR_ROOT/tools/sim_hosts.sh" --hosts "$sim" --ranks-per-host $((np / (sim > 0 ? sim : 1))) --rate none)
if [[ -z $ref_time ]]; then
  t0=$(date +%s.%N)
  if ((sim > 0)); then
    "${sim_hosts[@]}" -- "$BIN" "$@" --metrics "$out/reference.h5" --force --checkpoint "$out/reference.ckpt.h5" \
      >"$out/reference.log" 2>&1
  else
    # shellcheck disable=SC2086
    mpirun -np "$np" $mpirun_args "$BIN" "$@" --metrics "$out/reference.h5" --force --checkpoint "$out/reference.ckpt.h5" \
      >"$out/reference.log" 2>&1
  fi || { echo "$ME: the uninterrupted run failed (see $out/reference.log)" >&2; exit 1; }
  ref_time=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { print a - b }')
  echo "uninterrupted run: $(printf %.1f "$ref_time") s, final test accuracy $(accuracy "$out/reference.log")"
fi

ckpt=$out/failures.ckpt.h5
t0=$(date +%s.%N)
if ((sim > 0)); then
  "${sim_hosts[@]}" --elastic "--max-restarts $max_restarts --min-ranks $((np / sim))" -- "$BIN" "$@" \
    --checkpoint "$ckpt" --metrics "$out/failures.h5" >"$out/failures.out" 2>"$out/failures.err" &
else
  "$CIFAR_ROOT/tools/elastic_run.sh" --np "$np" --max-restarts "$max_restarts" --mpirun-args "$mpirun_args" -- "$@" \
    --checkpoint "$ckpt" --metrics "$out/failures.h5" >"$out/failures.out" 2>"$out/failures.err" &
fi
launcher=$!
# The schedule: a failure every $every s, the rank from a seeded generator (bash's RANDOM).
RANDOM=$seed
n=0
while kill -0 "$launcher" 2>/dev/null; do
  sleep "$every"
  kill -0 "$launcher" 2>/dev/null || break
  if [[ $sig == HOST ]]; then  # the last simulated host: its processes killed, its namespace removed
    ((n > 0)) && continue
    # This run's last host, by the prefix sim_hosts.sh says it uses (never another run's hosts).
    prefix=$(grep -o "namespaces cifsim[0-9]*-" "$out/failures.err" | head -n 1 | cut -d' ' -f2)
    [[ -n $prefix ]] || continue
    ns=$prefix"h$((sim - 1))"
    ip netns pids "$ns" | xargs -r kill -9
    ip netns delete "$ns" && n=1 && echo "[$(date +%H:%M:%S)] failure 1: host $ns removed"
    continue
  fi
  mapfile -t pids < <(pgrep -f -- "--checkpoint $ckpt" | while read -r p; do
    [[ $(cat /proc/"$p"/comm 2>/dev/null) == cifar_mpi ]] && echo "$p"; done | sort -n)
  ((${#pids[@]})) || continue
  victim=$((RANDOM % ${#pids[@]}))
  kill -s "$sig" "${pids[victim]}" 2>/dev/null && n=$((n + 1)) &&
    echo "[$(date +%H:%M:%S)] failure $n: SIG$sig to rank $victim (pid ${pids[victim]})"
done
wait "$launcher"; rc=$?
t1=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { print a - b }')
last_log=$(ls "$out"/failures.h5.recovery/attempt*.log 2>/dev/null | sort -V | tail -n 1)
final=$(accuracy "$last_log")
same=""
[[ -f $out/reference.log ]] && { [[ $final == "$(accuracy "$out/reference.log")" ]] && same=" (as uninterrupted)" || same=" (uninterrupted: $(accuracy "$out/reference.log"))"; }
echo "with failures: exit $rc, $(printf %.1f "$t1") s, $n failure(s) injected, final test accuracy $final$same"
grep "^recovery after" "$out/failures.out" | sed 's/^/  /'
echo "goodput: $(awk -v r="$ref_time" -v t="$t1" 'BEGIN { printf "%.1f", 100 * r / t }')% (uninterrupted $(printf %.1f "$ref_time") s / with failures $(printf %.1f "$t1") s)"
exit "$rc"
