#!/usr/bin/env bash
# rsh agent for tools/sim_hosts.sh: Open MPI's launcher (plm_rsh) runs
#   sim_hosts_rsh.sh [ssh-style options] HOST COMMAND WORDS...
# the way it would run `ssh HOST COMMAND WORDS...`. HOST is a simulated host name (cifsim<i>-h<k>),
# which is also the name of its network namespace; the command runs in that namespace, in a new UTS
# namespace whose host name is HOST (so Open MPI's per-host session directories, shared-memory
# segment names and MPI_Get_processor_name differ between hosts), through /bin/sh like ssh's
# remote shell. The environment passes through (ip netns exec keeps it). With SIM_HOSTS_RSH_LOG=FILE
# every call is appended to FILE (debugging).
set -u
if [[ $# -eq 1 && ( $1 == -h || $1 == --help ) ]]; then
  sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0
fi
[[ -n ${SIM_HOSTS_RSH_LOG:-} ]] && printf '%q ' "$0" "$@" >>"$SIM_HOSTS_RSH_LOG" && echo >>"$SIM_HOSTS_RSH_LOG"
while [[ $# -gt 0 && $1 == -* ]]; do shift; done   # ssh options (-x, ...) mean nothing here
if [[ $# -lt 2 ]]; then
  echo "sim_hosts_rsh.sh: usage: sim_hosts_rsh.sh HOST COMMAND..." >&2; exit 255
fi
host=$1; shift
if [[ ! $host =~ ^cifsim[0-9]+-h[0-9]+$ ]]; then
  echo "sim_hosts_rsh.sh: '$host' is not a simulated host (cifsim<i>-h<k>)" >&2; exit 255
fi
if [[ ! -e /run/netns/$host ]]; then
  echo "sim_hosts_rsh.sh: no network namespace $host (is tools/sim_hosts.sh running?)" >&2; exit 255
fi
exec ip netns exec "$host" unshare --uts -- /bin/sh -c 'hostname "$1" && eval "$2"' sim_hosts_rsh "$host" "$*"
