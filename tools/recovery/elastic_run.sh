#!/usr/bin/env bash
# The recovering launcher: runs cifar_mpi under mpirun (srun inside a Slurm allocation) and, when
# the job ends with a rank lost, starts it again from the newest valid checkpoint, on as many
# ranks when it can, else on the surviving hosts (--min-ranks), up to --max-restarts times.
# Open MPI 4.1 has no ULFM: a lost rank ends the job, so recovering is restarting, which a
# 2.5 MB checkpoint written by a thread every few seconds (--checkpoint-every 10s) makes cheap.
# Each recovery (cause, rank, host, steps lost, seconds down) goes into the metrics file's
# recoveries group (tools/cifar_tools/recoveries.py). See docs/guide-failures.md.
set -u
ME=elastic_run.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

usage() {
  cat <<EOF
usage: tools/elastic_run.sh --np N [options] -- CIFAR_MPI_ARGS...

Runs cifar_mpi on N ranks and restarts it from its newest valid checkpoint when the job ends
with a rank lost: killed by a signal, stalled (exit 76), or its host gone. A bad input (exit 1
with no rank lost) is not retried; a stop by SIGTERM/SIGUSR1 (exit 75, checkpoint written) is
passed on, so that Slurm requeues the job.

options:
  --np N               ranks to run on (required)
  --min-ranks M        fewest ranks to go on with when hosts are lost (default N: same N only).
                       With fewer ranks the global batch is kept: --batch-size B becomes
                       --global-batch B*N (docs/guide-failures.md, elastic resume)
  --max-restarts K     restarts before giving up (default 10)
  --hosts H1,H2,...    hosts to run on, N/count ranks each (default: this machine; inside a
                       Slurm allocation of several nodes, the allocation's nodes)
  --host-check CMD     a host is alive when 'CMD HOST' exits 0, or CMD with {} replaced by the
                       host (default: ping -c 1 -W 1; for the nodes of a Slurm allocation, their
                       state in sinfo: not down, drained, failing or not responding)
  --mpirun-args 'ARGS' extra mpirun arguments (split on spaces)
  --launcher L         mpirun | srun (default: srun inside a Slurm allocation, else mpirun)
  --workdir DIR        where the attempt logs and the recovery table go (default:
                       <metrics file>.recovery/)
  -h, --help           this text

CIFAR_MPI_ARGS must name --checkpoint FILE (added as checkpoint.h5 if not) and should name
--checkpoint-every (10s is added if not). --metrics FILE (results/elastic-<time>-np<N>.h5 if not)
ends up holding the whole run: the steps of every attempt once (the steps replayed after a
restart replace the lost ones) and a recoveries group.
The binary is \$CIFAR_BUILD/cifar_mpi (default build/cifar_mpi), or CIFAR_MPI=path.

exit codes: 0 done; 1 error (bad input, no valid checkpoint to go on from, fewer than
--min-ranks hosts left, or --max-restarts used up); 2 bad usage; 75 stopped by a signal after a
checkpoint (requeue it); 130 interrupted (Ctrl-C: not restarted).
EOF
}

die_usage() { echo "$ME: $*" >&2; exit 2; }
log() { echo "[$ME $(date +%H:%M:%S)] $*" >&2; }

np=0 min_ranks=0 max_restarts=10 hosts="" host_check="" mpirun_args="" launcher="" workdir=""
while (($#)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --np) np=${2:-}; shift 2 || die_usage "--np needs a value" ;;
    --min-ranks) min_ranks=${2:-}; shift 2 || die_usage "--min-ranks needs a value" ;;
    --max-restarts) max_restarts=${2:-}; shift 2 || die_usage "--max-restarts needs a value" ;;
    --hosts) hosts=${2:-}; shift 2 || die_usage "--hosts needs a value" ;;
    --host-check) host_check=${2:-}; shift 2 || die_usage "--host-check needs a value" ;;
    --mpirun-args) mpirun_args=${2:-}; shift 2 || die_usage "--mpirun-args needs a value" ;;
    --launcher) launcher=${2:-}; shift 2 || die_usage "--launcher needs a value" ;;
    --workdir) workdir=${2:-}; shift 2 || die_usage "--workdir needs a value" ;;
    --) shift; break ;;
    *) die_usage "unknown option '$1' (the program's arguments go after --; see --help)" ;;
  esac
done
is_count() { [[ $1 =~ ^[0-9]+$ ]]; }
is_count "$np" && ((np >= 1)) || die_usage "--np must be a number >= 1, got '$np'"
[[ $min_ranks == 0 ]] && min_ranks=$np
is_count "$min_ranks" && ((min_ranks >= 1 && min_ranks <= np)) || die_usage "--min-ranks must be in 1..$np, got '$min_ranks'"
is_count "$max_restarts" || die_usage "--max-restarts must be a number >= 0, got '$max_restarts'"
[[ -z $launcher ]] && { [[ -n ${SLURM_JOB_ID:-} ]] && launcher=srun || launcher=mpirun; }
[[ $launcher == mpirun || $launcher == srun ]] || die_usage "--launcher must be mpirun or srun, got '$launcher'"
BIN=${CIFAR_MPI:-$CIFAR_BUILD/cifar_mpi}
[[ -x $BIN ]] || { echo "$ME: $BIN is not an executable (build it, or set CIFAR_MPI)" >&2; exit 1; }

# The program's arguments, with the checkpoint and metrics files the launcher needs named.
args=("$@")
arg_value() {  # arg_value NAME: the value of --NAME in args ("" if absent)
  local i
  for ((i = 0; i < ${#args[@]}; i++)); do
    [[ ${args[i]} == "--$1" ]] && { echo "${args[i + 1]:-}"; return; }
    [[ ${args[i]} == "--$1="* ]] && { echo "${args[i]#*=}"; return; }
  done
}
drop_arg() {  # drop_arg NAME: removes --NAME VALUE / --NAME=VALUE from args
  local i out=()
  for ((i = 0; i < ${#args[@]}; i++)); do
    if [[ ${args[i]} == "--$1" ]]; then i=$((i + 1)); continue; fi
    [[ ${args[i]} == "--$1="* ]] && continue
    out+=("${args[i]}")
  done
  args=(${out+"${out[@]}"})
}
checkpoint=$(arg_value checkpoint)
[[ -z $checkpoint ]] && { checkpoint=checkpoint.h5; args+=(--checkpoint "$checkpoint"); }
[[ -z $(arg_value checkpoint-every) ]] && args+=(--checkpoint-every 10s)
metrics=$(arg_value metrics)
if [[ -z $metrics ]]; then
  mkdir -p results && metrics=results/elastic-$(date +%Y%m%d-%H%M%S)-np$np.h5
  args+=(--metrics "$metrics")
fi
first_resume=$(arg_value resume)
drop_arg resume
drop_arg metrics
# The batch, for the global batch kept on fewer ranks: the options, else the config file's keys
# (a global batch there is kept as it is), else cifar_mpi's default per-rank batch.
config=$(arg_value config)
config_key() { [[ -n $config && -f $config ]] && sed -nE "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*([0-9]+).*/\1/p" "$config" | tail -n 1; }
batch=$(arg_value batch-size)
global_batch=$(arg_value global-batch)
[[ -z $batch && -z $global_batch ]] && global_batch=$(config_key global-batch)
[[ -z $batch ]] && batch=$(config_key batch-size)
[[ -z $batch ]] && batch=128
[[ -z $workdir ]] && workdir=$metrics.recovery
mkdir -p "$workdir" || { echo "$ME: cannot create $workdir" >&2; exit 1; }
table=$workdir/attempts.tsv
printf 'attempt\tranks\thosts\texit\tcause\trank\thost\tresume_step\tstart\tend\tlog\tmetrics\n' >"$table"

# Inside a Slurm allocation of several nodes, the hosts are its nodes, checked with sinfo:
# after a node failure (--no-kill) Slurm keeps the allocation, and the step is started again on
# the nodes that answer. (Only where N ranks divide evenly among the nodes: the hosts hold N/count
# ranks each; otherwise the launcher leaves the placement to Slurm and runs on the same N only.)
slurm_node_alive() {  # slurm_node_alive NODE: its compact state is up ("down*": not responding)
  local state
  state=$(sinfo -h -n "$1" -o %t 2>/dev/null | head -n 1)
  [[ -n $state && $state != *'*' && ! $state =~ ^(down|drain|drng|fail|failg|maint|boot|unk) ]]
}
if [[ -z $hosts && -n ${SLURM_JOB_NODELIST:-} ]]; then
  mapfile -t slurm_nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST" 2>/dev/null)
  if ((${#slurm_nodes[@]} > 1 && np % ${#slurm_nodes[@]} == 0)); then
    hosts=$(IFS=,; echo "${slurm_nodes[*]}")
    [[ -z $host_check ]] && host_check=slurm_node_alive
  fi
fi
[[ -z $host_check ]] && host_check="ping -c 1 -W 1"

# The hosts still alive, and the ranks they hold.
IFS=, read -r -a host_list <<<"$hosts"
alive_hosts() {
  local h out=()
  for h in ${host_list+"${host_list[@]}"}; do
    local check=${host_check//\{\}/${h%%:*}}
    [[ $check == "$host_check" ]] && check="$host_check ${h%%:*}"
    # shellcheck disable=SC2086
    if $check >/dev/null 2>&1; then out+=("$h"); else log "host ${h%%:*} is gone"; fi
  done
  host_list=(${out+"${out[@]}"})
}

# The newest valid checkpoint: the file (written atomically) if every dataset passes its checksum;
# prints its global step. A writer killed mid-write leaves only its temporary file, removed here.
valid_checkpoint() {
  rm -f "$checkpoint".tmp.* 2>/dev/null
  [[ -f $checkpoint ]] && cifar_tools recoveries --check-checkpoint "$checkpoint" 2>>"$workdir/check.log"
}

# Why an attempt ended: cause, rank, host from its log (mpirun's and the program's lines).
classify() {  # classify RC LOG -> "cause rank host" ("error - -" when no rank was lost)
  local rc=$1 f=$2 line
  local srun_lost="srun: error: [^:]+: task [0-9]+: (Killed|Terminated|Segmentation fault|Aborted|Bus error)"
  local stall="cifar_mpi: error \(rank [0-9]+\): stall:"
  # Under srun a killed task comes first, and the others may then report it as stalled.
  local first_lost first_stall
  first_lost=$(grep -m 1 -nE "$srun_lost" "$f" | cut -d: -f1) first_stall=$(grep -m 1 -nE "$stall" "$f" | cut -d: -f1)
  if [[ -n $first_lost ]] && ((first_lost < ${first_stall:-999999999})); then
    :  # below: killed
  elif ((rc == 76)) || [[ -n $first_stall ]]; then
    line=$(grep -m 1 -o "rank [0-9]* ([^)]*)" <(grep -E "$stall" "$f") || true)
    [[ -n $line ]] && set -- $line && echo "stalled ${2} ${3//[()]/}" && return
    echo "stalled - -"; return
  fi
  line=$(grep -m 1 -oE "process rank [0-9]+ with PID [0-9]+ on node [^ ]+ exited on signal [0-9]+" "$f" || true)
  if [[ -n $line ]]; then
    set -- $line
    echo "killed(SIG$(kill -l "${13}" 2>/dev/null || echo "${13}")) $3 $9"
    return
  fi
  # srun names the first task lost so: "srun: error: HOST: task 1: Killed" (the others follow it).
  line=$(grep -m 1 -oE "$srun_lost" "$f" || true)
  if [[ -n $line ]]; then
    local host=${line#srun: error: } sig
    host=${host%%:*}
    case ${line##*: } in
      Killed) sig=SIGKILL ;; Terminated) sig=SIGTERM ;; "Segmentation fault") sig=SIGSEGV ;;
      Aborted) sig=SIGABRT ;; *) sig=SIGBUS ;;
    esac
    line=${line#*: task }
    echo "killed($sig) ${line%%:*} $host"
    return
  fi
  if grep -qiE "lost communication|daemon.*(died|failed|lost)|unable to reach|node failure|NODE_FAIL|connection (reset|refused)|Connection timed out" "$f" ||
     ((rc > 128)); then
    line=$(grep -m 1 -oE "Remote daemon: .* on node [^ ]+" "$f" || true)  # mpirun names the host
    if [[ -n $line ]]; then echo "lost - ${line##* }"; else echo "lost - -"; fi
    return
  fi
  echo "error - -"
}

attempt=0 restarts=0 resume_step=0 ranks=$np from_scratch=0
while :; do
  # Fewer ranks: the global batch is kept (the elastic resume); from then on in every attempt.
  if ((ranks != np)) && [[ -z $global_batch ]]; then
    drop_arg batch-size
    global_batch=$((batch * np))
    args+=(--global-batch "$global_batch")
    log "$ranks rank(s) instead of $np: --batch-size $batch becomes --global-batch $global_batch"
  fi
  run_args=(${args+"${args[@]}"})
  resume="" resume_step=0
  if ((attempt == 0)); then
    # The run's own --resume (cifar_mpi checks it); its step for the recovery records.
    [[ -n $first_resume ]] && resume=$first_resume &&
      resume_step=$(cifar_tools recoveries --check-checkpoint "$resume" 2>/dev/null || echo 0)
  elif ((!from_scratch)) && [[ -f $checkpoint ]]; then
    # cifar_mpi checks every tensor's checksum and values as it loads the checkpoint, so the
    # launcher's own check (a Python start: 0.3-1 s of every recovery) runs only when that load
    # fails (below); the step resumed at comes from the attempt's log.
    rm -f "$checkpoint".tmp.* 2>/dev/null  # a writer killed mid-write
    resume=$checkpoint resume_step=""
  else
    resume_step=0
    log "no valid checkpoint $checkpoint: starting over from step 0"
  fi
  from_scratch=0
  [[ -n $resume ]] && run_args+=(--resume "$resume")
  attempt_metrics=$workdir/attempt$attempt.h5
  run_args+=(--metrics "$attempt_metrics" --force)
  alog=$workdir/attempt$attempt.log
  host_arg=()
  if ((${#host_list[@]})); then
    per=$((np / ${#host_list[@]})); ((per < 1)) && per=1
    spec=$(printf "%s:$per," "${host_list[@]%%:*}"); host_arg=(--host "${spec%,}")
  fi
  if [[ $launcher == srun ]]; then
    node_arg=()
    ((${#host_list[@]})) && node_arg=(-N "${#host_list[@]}" "--nodelist=$(IFS=,; echo "${host_list[*]%%:*}")")
    # shellcheck disable=SC2086,SC2206
    cmd=(srun -n "$ranks" ${node_arg+"${node_arg[@]}"} --kill-on-bad-exit=1 $mpirun_args "$BIN" "${run_args[@]}")
  else
    # shellcheck disable=SC2086
    # odls_base_sigkill_timeout 0: when a rank dies the others, blocked in a collective with it,
    # cannot checkpoint anyway; killing them at once saves a second of every recovery.
    cmd=(mpirun -np "$ranks" --mca odls_base_sigkill_timeout 0 ${host_arg+"${host_arg[@]}"} $mpirun_args "$BIN"
         "${run_args[@]}")
  fi
  log "attempt $attempt on $ranks rank(s)${resume:+ from $resume${resume_step:+ (global step $resume_step)}}"
  start=$(date +%s.%N)
  # The job in its own process group, so that nothing of it is left behind (the group is killed
  # once mpirun has returned: a rank stopped by SIGSTOP too). Its output goes to the attempt's log
  # and, by a tail outside the group, to this script's output. Signals go to mpirun/srun alone,
  # which pass them to the ranks: SIGTERM and SIGUSR1 both as SIGUSR1 (on SIGTERM mpirun would
  # kill the ranks), so every rank checkpoints and exits 75.
  : >"$alog"
  set -m
  "${cmd[@]}" >"$alog" 2>&1 &
  job=$!
  set +m
  tail -n +1 -f -s 0.1 --pid="$job" "$alog" &
  tailer=$!
  trap 'kill -s USR1 "$job" 2>/dev/null' TERM USR1
  # Ctrl-C: the job ends and is not restarted (its ranks die of the signal like lost ones).
  interrupted=0
  trap 'interrupted=1; kill -s INT "$job" 2>/dev/null' INT
  while :; do
    wait "$job"; rc=$?
    kill -0 "$job" 2>/dev/null || break  # a trapped signal interrupted wait: wait again
  done
  wait "$tailer" 2>/dev/null
  trap - TERM USR1 INT
  end=$(date +%s.%N)
  kill -9 -- -"$job" 2>/dev/null  # whatever of the job is left (a rank stopped by SIGSTOP)
  # A rank killed while writing leaves its temporary file (NAME.tmp.PID, never the file itself):
  # the checkpoint's, the attempt's metrics file's (rewritten at each checkpoint), the weights'.
  saved=$(arg_value save-weights)
  rm -f "$checkpoint".tmp.* "$attempt_metrics".tmp.* ${saved:+"$saved".tmp.*} 2>/dev/null
  read -r cause rank host <<<"$(classify "$rc" "$alog")"
  ((rc == 0)) && cause=done
  ((rc == 75)) && cause=signal
  ((interrupted && rc != 0)) && cause=interrupted
  if [[ -z $resume_step ]]; then  # resumed from the launcher's checkpoint: where, as cifar_mpi said
    resume_step=$(sed -n 's/.*resuming .* (global step \([0-9]*\)).*/\1/p' "$alog" | head -n 1)
    if [[ -z $resume_step && $cause == error ]] && ! valid_checkpoint >/dev/null; then
      # The checkpoint itself was refused (damaged): the run starts over instead of giving up.
      log "attempt $attempt could not resume: $checkpoint is not valid (see $workdir/check.log); starting over from step 0"
      cause=bad-checkpoint from_scratch=1
    fi
    resume_step=${resume_step:-0}
  fi
  attempt_hosts=$(IFS=,; echo "${host_list[*]}")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$attempt" "$ranks" "${attempt_hosts:-$hosts}" "$rc" "$cause" "$rank" "$host" \
    "$resume_step" "$start" "$end" "$alog" "$attempt_metrics" >>"$table"
  case $cause in
    done | signal)
      cifar_tools recoveries --table "$table" --out "$metrics" || exit 1
      exit "$rc" ;;
    interrupted)
      log "attempt $attempt interrupted (exit $rc): not restarted"
      cifar_tools recoveries --table "$table" --out "$metrics" >/dev/null 2>&1
      exit 130 ;;
    error)
      log "attempt $attempt failed with exit $rc and no rank lost: not retried (see $alog)"
      cifar_tools recoveries --table "$table" --out "$metrics" >/dev/null 2>&1
      exit 1 ;;
  esac
  log "attempt $attempt ended: $cause, rank $rank on $host (exit $rc)"
  if ((restarts >= max_restarts)); then
    log "--max-restarts $max_restarts used up"
    cifar_tools recoveries --table "$table" --out "$metrics" >/dev/null 2>&1
    exit 1
  fi
  if ((${#host_list[@]})); then
    alive_hosts
    per=$((np / $(tr ',' '\n' <<<"$hosts" | wc -l)))
    ranks=$((per * ${#host_list[@]}))
    ((ranks > np)) && ranks=$np
    if ((ranks < min_ranks)); then
      log "$ranks rank(s) left on the surviving hosts, fewer than --min-ranks $min_ranks"
      cifar_tools recoveries --table "$table" --out "$metrics" >/dev/null 2>&1
      exit 1
    fi
  fi
  restarts=$((restarts + 1)) attempt=$((attempt + 1))
done
