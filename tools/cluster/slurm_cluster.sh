#!/usr/bin/env bash
# A one-machine Slurm cluster on demand, from Debian's packages (slurmctld slurmd slurm-client
# munge), with every file (slurm.conf, munge key and socket, state, spool, logs, pid files) in one
# temporary folder. Nothing under /etc is read or changed: the clients find the cluster through
# SLURM_CONF, and Slurm's munge plugin finds this cluster's munged through AuthInfo=socket=...
#
#   tools/slurm_cluster.sh run [--cpus N] [--dir DIR] -- CMD [ARG...]
#       start, run CMD with SLURM_CONF set, stop; exits with CMD's status. The daemons are
#       stopped when CMD ends, on error, and on Ctrl-C, TERM or HUP (passed on to CMD as TERM;
#       a second one stops the cluster at once).
#   tools/slurm_cluster.sh start [--cpus N] [--dir DIR]
#       start and leave the daemons running; prints `export SLURM_CONF=...` (so
#       `eval "$(tools/slurm_cluster.sh start)"` sets it in your shell), and the stop command.
#       A start that fails half-way stops what it started.
#   tools/slurm_cluster.sh stop DIR       cancel every job, stop the daemons (by the pids in
#                                         their pid files), kill what is left of the cluster's
#                                         steps, remove DIR (KEEP_DIR=1 keeps it, with the logs)
#   tools/slurm_cluster.sh status DIR     sinfo and squeue of that cluster
# DIR defaults to a new mktemp -d folder; a --dir must be searchable by all (munged's rule for
# its socket's folders).
#
# --cpus N (default 8) is what the node declares: more than the machine has, so that 4- and
# 8-task jobs are accepted (SlurmdParameters=config_overrides); their tasks then share cores.
# The node is this machine's short hostname at 127.0.0.1, in one partition "debug".
# The daemons and the jobs run as the user who starts the cluster (SlurmUser and SlurmdUser are
# that user): root in a container or CI, or yourself on a laptop (no sudo needed; tested as
# `nobody`). No cgroups are needed: ProctrackType=proctrack/linuxproc, TaskPlugin=task/none (so
# srun's --cpu-bind only prints "cluster configuration lacks support for cpu binding").
# Requeued jobs wait for a begin time Slurm sets 2 minutes ahead; `scontrol update JobId=ID
# StartTime=now` starts them at once.
# Ports: SlurmctldPort and SlurmdPort are free ports chosen at start (CIFAR_SLURM_PORT=P uses P
# and P+1), so several clusters (or a system one) can run side by side.
set -euo pipefail

die() { echo "slurm_cluster: $*" >&2; exit 1; }
log() { echo "slurm_cluster: $*" >&2; }

# stop_pids DIR PIDFILE...: TERM to the pids in those files, KILL to those alive after 10 s.
stop_pids() {
  local dir="$1" f pid pids=()
  shift
  for f in "$@"; do
    [[ -s "$dir/$f" ]] && pid=$(cat "$dir/$f") && [[ "$pid" =~ ^[0-9]+$ ]] || continue
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  ((${#pids[@]})) || return 0
  alive() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
  for _ in $(seq 100); do alive || break; sleep 0.1; done
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null && { log "pid $pid did not stop on TERM: KILL"; kill -KILL "$pid" 2>/dev/null; }
  done
  return 0
}

# stop_cluster DIR: cancel the jobs, then stop slurmd, slurmctld and munged by the pids in their
# pid files (TERM, then KILL after 10 s), then any process still carrying this cluster's marker
# in its environment (slurmstepd and job processes, which outlive slurmd by design).
stop_cluster() {
  local dir="$1" f pid left
  [[ -d "$dir" ]] || return 0
  if [[ -f "$dir/slurm.conf" && -f "$dir/slurmctld.pid" ]] &&
     kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
    SLURM_CONF="$dir/slurm.conf" timeout 10 scancel --quiet --full --signal=KILL --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 20); do  # up to 5 s for the steps to end
      [[ -z "$(SLURM_CONF="$dir/slurm.conf" timeout 5 squeue -h -t R,CG -o %i 2>/dev/null)" ]] && break
      sleep 0.25
    done
  fi
  stop_pids "$dir" slurmd.pid slurmctld.pid  # together, then munged, which they talk to
  stop_pids "$dir" munged.pid
  # Leftovers: every process whose environment has this cluster's marker (the daemons got it
  # at start and slurmstepd inherits it; with `run`, CMD and the jobs it submits have it too),
  # found in /proc and killed by pid.
  left=()
  for f in $(grep -lzxF "CIFAR_SLURM_CLUSTER=$dir" /proc/[0-9]*/environ 2>/dev/null); do
    pid=${f#/proc/}; pid=${pid%/environ}
    [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] || left+=("$pid")
  done
  if ((${#left[@]})); then
    log "killing ${#left[@]} leftover process(es) of the cluster: ${left[*]}"
    kill -KILL "${left[@]}" 2>/dev/null || true
  fi
  if [[ -n "${KEEP_DIR:-}" ]]; then log "kept $dir"; else rm -rf "$dir"; fi
}

free_port_pair() {  # prints P such that P and P+1 are free TCP ports on this machine
  local p used
  used=$(ss -Htan 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u || true)
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 20000))
    grep -qx "$p" <<<"$used" || grep -qx "$((p + 1))" <<<"$used" || { echo "$p"; return; }
  done
  die "no free port pair found"
}

# start_cluster DIR CPUS: writes the config and key, starts munged, slurmctld and slurmd, and
# waits (at most 30 s) until the node is idle.
start_cluster() {
  local dir="$1" cpus="$2" host user port state mem
  for c in munged slurmctld slurmd sbatch scontrol sinfo; do
    command -v "$c" >/dev/null || [[ -x "/usr/sbin/$c" ]] || die "$c not found: apt-get install slurmctld slurmd slurm-client munge"
  done
  export PATH="$PATH:/usr/sbin"
  host=$(hostname -s)
  user=$(id -un)
  mem=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
  port="${CIFAR_SLURM_PORT:-$(free_port_pair)}"
  mkdir -p "$dir"/{state,spool,log}
  chmod 711 "$dir"  # munged wants its socket's folders searchable by all (not readable)
  export CIFAR_SLURM_CLUSTER="$dir"  # the marker stop_cluster looks for

  # munge: its own key, socket, pid, log and seed files (munged refuses a key others can read).
  dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge.key"
  munged --key-file="$dir/munge.key" --socket="$dir/munge.socket" --pid-file="$dir/munged.pid" \
         --log-file="$dir/log/munged.log" --seed-file="$dir/munged.seed" --num-threads=2 ||
    die "munged did not start: $(tail -n 3 "$dir/log/munged.log" 2>/dev/null)"

  cat >"$dir/slurm.conf" <<EOF
# One-machine cluster written by tools/slurm_cluster.sh; everything lives in $dir.
ClusterName=cifar
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups in a container: processes tracked through /proc, no binding by Slurm.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Jobs name their MPI plugin (srun --mpi=pmix); a plain srun gets none.
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# More CPUs than the machine has: slurmd accepts the configured count.
SlurmdParameters=config_overrides
ReturnToService=2
# Job ids from the clock, not from 1: results/<job id>/ of an earlier cluster are not reused.
FirstJobId=$(( $(date +%s) % 60000000 + 1 ))
# Batch jobs may be requeued (sbatch --requeue, scontrol requeue); keep finished jobs visible.
JobRequeue=1
MinJobAge=600
KillWait=5
InactiveLimit=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -f "$SLURM_CONF" -L "$dir/log/slurmctld.log" ||
    die "slurmctld did not start: $(tail -n 5 "$dir/log/slurmctld.log" 2>/dev/null)"
  slurmd -f "$SLURM_CONF" -N "$host" -L "$dir/log/slurmd.log" ||
    die "slurmd did not start: $(tail -n 5 "$dir/log/slurmd.log" 2>/dev/null)"
  local deadline=$((SECONDS + 30)) f why=
  while :; do
    state=$(timeout 5 sinfo -h -n "$host" -o %t 2>/dev/null || true)
    [[ "$state" == idle ]] && break
    for f in slurmctld slurmd; do  # a daemon that died (port taken, bad config) ends the wait
      [[ -s "$dir/$f.pid" ]] && ! kill -0 "$(cat "$dir/$f.pid")" 2>/dev/null && why="$f exited"
    done
    ((SECONDS > deadline)) && why="node $host is '${state:-unknown}' after 30 s"
    if [[ -n "$why" ]]; then
      log "$why; last log lines:"
      tail -n 4 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
      return 1
    fi
    sleep 0.25
  done
  log "node $host idle with $cpus CPUs (ports $port, $((port + 1))); SLURM_CONF=$SLURM_CONF"
}

parse_start_args() {  # sets cpus and dir from [--cpus N] [--dir DIR]
  cpus=8; dir=
  while (($#)); do
    case "$1" in
      --cpus) cpus="$2"; shift 2 ;;
      --dir) dir="$2"; shift 2 ;;
      --) shift; rest=("$@"); return ;;
      *) die "unknown option $1 (see the top of $0)" ;;
    esac
  done
  rest=()
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
cmd="${1:-}"; shift || true
case "$cmd" in
  -h|--help) usage; exit 0 ;;
  run)
    parse_start_args "$@"
    ((${#rest[@]})) || die "usage: $0 run [--cpus N] [--dir DIR] -- CMD [ARG...]"
    [[ -n "$dir" ]] || dir=$(mktemp -d "${TMPDIR:-/tmp}/slurm-cluster.XXXXXX")
    trap 'stop_cluster "$dir"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    start_cluster "$dir" "$cpus" || exit 1
    # CMD in the background (stdin kept), so that a signal to this script is handled at once
    # (a trap waits for a foreground command): INT (Ctrl-C), TERM or HUP sends TERM to CMD (a
    # background command ignores INT) and the cluster stops when CMD ends; a second one stops
    # the cluster without waiting for CMD.
    cmd_pid=; signalled=; again=
    on_signal() {
      signalled=1
      [[ -n "$again" ]] && { log "second $1: stopping the cluster"; exit "$2"; }
      again=1; kill -TERM "$cmd_pid" 2>/dev/null || true
    }
    trap 'on_signal INT 130' INT
    trap 'on_signal TERM 143' TERM
    trap 'on_signal HUP 129' HUP
    set +e
    "${rest[@]}" <&0 &
    cmd_pid=$!
    rc=0
    while :; do  # wait returns early (status > 128) when a trap fires: then wait again
      signalled=
      wait "$cmd_pid"; s=$?
      [[ $s -eq 127 ]] && break  # already collected: rc holds its status
      rc=$s
      [[ -n "$signalled" && $s -gt 128 ]] || break
    done
    exit "$rc"
    ;;
  start)
    parse_start_args "$@"
    [[ -n "$dir" ]] || dir=$(mktemp -d "${TMPDIR:-/tmp}/slurm-cluster.XXXXXX")
    trap 'stop_cluster "$dir"' EXIT  # a half-started cluster is stopped
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    start_cluster "$dir" "$cpus" || exit 1
    trap - EXIT INT TERM HUP
    echo "export SLURM_CONF=$dir/slurm.conf"
    echo "# stop with: $0 stop $dir"
    ;;
  stop)
    [[ $# -eq 1 ]] || die "usage: $0 stop DIR"
    stop_cluster "$1"
    ;;
  status)
    [[ $# -eq 1 ]] || die "usage: $0 status DIR"
    SLURM_CONF="$1/slurm.conf" sinfo
    SLURM_CONF="$1/slurm.conf" squeue
    ;;
  *) usage >&2; exit 2 ;;
esac
