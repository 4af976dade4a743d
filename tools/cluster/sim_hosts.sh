#!/usr/bin/env bash
# Simulated hosts: K "hosts" as Linux network namespaces on one bridge, each host's egress shaped
# with tc to a chosen rate, and an MPI program run across them with Open MPI's TCP transport
# between hosts (shared memory within one). Everything is torn down on exit, on error and on
# Ctrl-C. Needs root. See docs/beyond_one_machine.md.
#
#   tools/sim_hosts.sh [options] -- PROGRAM [ARGS...]     run PROGRAM under mpirun across the hosts
#   tools/sim_hosts.sh [options] --bench [-- BENCH ARGS]   run allreduce_bench across the hosts
#   tools/sim_hosts.sh [options] --check-rate              only set up, measure the links, tear down
#   tools/sim_hosts.sh cleanup                             remove what a killed run left behind
#
# Exit code: PROGRAM's (mpirun's); 2 bad usage; 3 cannot build the hosts here (not root, no
# namespaces, no tc/tbf, ...); 4 the measured rate is off by more than 10% (--check-rate);
# 124 --timeout expired; 130/143 interrupted.
set -u

ME=sim_hosts.sh
TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$TOOLS/../.." && pwd)
RSH="$TOOLS/sim_hosts_rsh.sh"
STATE=/run/cifar_sim_hosts     # slot<i>.pid: the sim_hosts.sh that owns the names cifsim<i>-*
NET=10.213.0                   # host k is $NET.(k+1)/24; the subnet exists only inside the namespaces
MAX_SLOTS=8

usage() {
  cat <<EOF
usage: tools/sim_hosts.sh [options] -- PROGRAM [ARGS...]
       tools/sim_hosts.sh [options] --bench [-- ALLREDUCE_BENCH ARGS...]
       tools/sim_hosts.sh [options] --check-rate
       tools/sim_hosts.sh cleanup

Builds K hosts (network namespaces cifsim<i>-h0..h<K-1>, one UTS host name each, addresses
$NET.1..K/24 on a bridge in namespace cifsim<i>-sw), shapes each host's egress with tc tbf, runs
mpirun inside host 0 with the rsh agent tools/cluster/sim_hosts_rsh.sh, and removes it all on exit.

options:
  --hosts K             simulated hosts, 1..32 (default 2)
  --ranks-per-host R    MPI ranks on each host, 1..64 (default 1); np = K*R
  --rate RATE           egress rate of every host: <number>kbit|mbit|gbit (e.g. 10gbit, 1gbit,
                        100mbit), 1mbit..100gbit, or 'none' (unshaped) (default 1gbit)
  --burst SIZE          tbf bucket: <number>[b|kb|mb], 2kb..64mb (default 128kb)
  --queue TIME          tbf queue: packets wait at most TIME for tokens, then drop
                        (tbf 'latency'): <number>ms, 1ms..1000ms (default 50ms)
  --check-rate          measure every host's egress (iperf3, or a python3 socket pair) before the
                        run; fail (exit 4) unless each is within 10% of --rate
  --btl-tcp-flags F     Open MPI btl_tcp_flags (default 'send'; 'default' keeps Open MPI's own,
                        send,put,inplace,need-ack,need-csum,hetero-rdma)
  --mca NAME VALUE      extra Open MPI MCA parameter for mpirun (repeatable)
  --bench               PROGRAM is \${CIFAR_BUILD:-build}/allreduce_bench
  --no-meta             do not add --meta topology options to a cifar_mpi command line
  --elastic 'ARGS'      run PROGRAM under tools/elastic_run.sh ARGS (e.g. '--min-ranks 1'): a job
                        that loses a host (its namespace removed) restarts from its checkpoint on
                        the hosts left
  --timeout SEC         stop the run after SEC seconds (exit 124), 0..86400 (default 0: none)
  --verbose             print the set-up commands and mpirun's command line
  -h, --help            this text

A cifar_mpi command line gets --meta hosts=K --meta ranks_per_host=R --meta link_rate=RATE
--meta link_burst=SIZE --meta transport=tcp --meta btl_tcp_flags=F --meta network=... (and
--meta measured_rate_mbit=... with --check-rate), stored in its metrics file.
EOF
}

err() { echo "$ME: error: $*" >&2; exit 2; }    # bad usage: one line
cannot() { echo "$ME: cannot simulate hosts here: $*" >&2; exit 3; }
say() { echo "$ME: $*" >&2; }
vrun() { [[ $VERBOSE -eq 1 ]] && echo "+ $*" >&2; "$@"; }

# ---------------------------------------------------------------------------------------------
# Names and slots. A run owns one slot i (0..7) and the names cifsim<i>-sw, cifsim<i>-h<k>
# (network namespaces, which are also the host names) and /etc/netns/cifsim<i>-* (the hosts file
# `ip netns exec` mounts over /etc/hosts). Interfaces live only inside these namespaces (eth0 in
# each host, br0 and h<k> in the switch), so deleting the namespaces deletes every link.

slot_owner_alive() {  # slot_owner_alive I: true if slot I's pid file names a live sim_hosts.sh
  local pid
  pid=$(cat "$STATE/slot$1.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'sim_hosts\.sh'
}

slot_names() {  # the namespaces of slot I that exist now
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^cifsim$1-(sw|h[0-9]+)$"
}

# remove_slot I: kill every process in slot I's namespaces, delete the namespaces and hosts files.
remove_slot() {
  local i=$1 ns pids round
  for round in TERM KILL; do
    pids=""
    for ns in $(slot_names "$i"); do pids+=" $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"; done
    pids=$(echo $pids)
    [[ -z $pids ]] && break
    # shellcheck disable=SC2086
    kill -s "$round" $pids 2>/dev/null
    local _
    for _ in $(seq 1 30); do   # up to 3 s for them to go
      local alive=0 p
      for p in $pids; do [[ -d /proc/$p ]] && alive=1; done
      [[ $alive -eq 0 ]] && break
      sleep 0.1
    done
  done
  # A deletion can fail while another ip(8) mounts or unmounts namespaces beside it (busy): retry.
  for ns in $(slot_names "$i"); do
    local try
    for try in 1 2 3 4 5; do
      ip netns del "$ns" 2>/dev/null && break
      ((try < 5)) && sleep 0.2
    done
    [[ -e /run/netns/$ns ]] && say "warning: could not delete namespace $ns"
  done
  rm -rf /etc/netns/cifsim"$i"-sw /etc/netns/cifsim"$i"-h[0-9]* "$STATE/slot$i.d" 2>/dev/null
  # Open MPI's per-host files of killed processes: session directories and shared-memory segments.
  rm -rf "${TMPDIR:-/tmp}"/ompi.cifsim"$i"-h[0-9]* /tmp/ompi.cifsim"$i"-h[0-9]* \
         /dev/shm/vader_segment.cifsim"$i"-h[0-9]* 2>/dev/null
  rmdir /etc/netns 2>/dev/null   # only if empty (ip netns created nothing else there)
}

cmd_cleanup() {
  [[ $(id -u) -eq 0 ]] || cannot "cleanup needs root"
  local i found=0
  for i in $(seq 0 $((MAX_SLOTS - 1))); do
    if slot_owner_alive "$i"; then
      say "slot $i belongs to a running sim_hosts.sh (pid $(cat "$STATE/slot$i.pid")); left alone"
      continue
    fi
    if [[ -n $(slot_names "$i") || -n $(compgen -G "/etc/netns/cifsim$i-*") || -d $STATE/slot$i.d ||
          -n $(compgen -G "/tmp/ompi.cifsim$i-h*") || -n $(compgen -G "/dev/shm/vader_segment.cifsim$i-h*") ]]; then
      say "removing what a run that is gone left in slot $i: $(slot_names "$i" | tr "\n" " ")and its files"
      remove_slot "$i"; found=1
    fi
    rm -f "$STATE/slot$i.pid"
  done
  rmdir "$STATE" 2>/dev/null
  [[ $found -eq 0 ]] && say "nothing to clean up"
  return 0
}

if [[ ${1:-} == cleanup ]]; then
  [[ $# -eq 1 ]] || err "cleanup takes no arguments"
  cmd_cleanup; exit $?
fi

# ---------------------------------------------------------------------------------------------
# Options.
HOSTS=2; RPH=1; RATE=1gbit; BURST=128kb; QUEUE=50ms; CHECK=0; TCPFLAGS=send; BENCH=0; META=1; TIMEOUT=0
VERBOSE=0; declare -A USER_MCA=(); PROG=(); ELASTIC=""; ELASTIC_ON=0
need_value() { [[ $# -ge 2 ]] || err "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --hosts) need_value "$@"; HOSTS=$2; shift 2 ;;
    --ranks-per-host) need_value "$@"; RPH=$2; shift 2 ;;
    --rate) need_value "$@"; RATE=$2; shift 2 ;;
    --burst) need_value "$@"; BURST=$2; shift 2 ;;
    --queue) need_value "$@"; QUEUE=$2; shift 2 ;;
    --check-rate) CHECK=1; shift ;;
    --btl-tcp-flags) need_value "$@"; TCPFLAGS=$2; shift 2 ;;
    --mca) [[ $# -ge 3 ]] || err "--mca needs NAME VALUE"
           [[ $2 =~ ^[a-z][a-z0-9_]*$ ]] || err "--mca NAME must be an MCA parameter name, got '$2'"
           USER_MCA[$2]=$3; shift 3 ;;
    --bench) BENCH=1; shift ;;
    --no-meta) META=0; shift ;;
    --elastic) need_value "$@"; ELASTIC=$2; ELASTIC_ON=1; shift 2 ;;
    --timeout) need_value "$@"; TIMEOUT=$2; shift 2 ;;
    --verbose) VERBOSE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; PROG=("$@"); break ;;
    cleanup) err "cleanup is a subcommand: tools/sim_hosts.sh cleanup (no options)" ;;
    *) err "unknown option '$1' (the program goes after --; see --help)" ;;
  esac
done

[[ $HOSTS =~ ^[0-9]+$ ]] && ((10#$HOSTS >= 1 && 10#$HOSTS <= 32)) ||
  err "--hosts must be an integer 1..32, got '$HOSTS'"
[[ $RPH =~ ^[0-9]+$ ]] && ((10#$RPH >= 1 && 10#$RPH <= 64)) ||
  err "--ranks-per-host must be an integer 1..64, got '$RPH'"
HOSTS=$((10#$HOSTS)); RPH=$((10#$RPH))
[[ $TIMEOUT =~ ^[0-9]+$ ]] && ((10#$TIMEOUT <= 86400)) ||
  err "--timeout must be an integer 0..86400 seconds (0: none), got '$TIMEOUT'"
TIMEOUT=$((10#$TIMEOUT))

# Rate -> bits per second (tc's units: kbit = 1000 bit/s, mbit = 10^6, gbit = 10^9).
RATE=${RATE,,}
if [[ $RATE == none ]]; then
  RATE_BPS=0
elif [[ $RATE =~ ^([0-9]+(\.[0-9]+)?)(kbit|mbit|gbit)$ ]]; then
  case ${BASH_REMATCH[3]} in kbit) mul=1000 ;; mbit) mul=1000000 ;; gbit) mul=1000000000 ;; esac
  RATE_BPS=$(awk -v x="${BASH_REMATCH[1]}" -v m="$mul" 'BEGIN { printf "%.0f", x * m }')
  ((RATE_BPS >= 1000000 && RATE_BPS <= 100000000000)) || err "--rate must be between 1mbit and 100gbit, got '$RATE'"
else
  err "--rate must be <number>kbit|mbit|gbit (e.g. 100mbit, 1gbit) or none, got '$RATE'"
fi
# Burst -> bytes (tc's units: kb = 1024 bytes, mb = 1024^2).
BURST=${BURST,,}
if [[ $BURST =~ ^([0-9]+)(b|k|kb|m|mb)?$ ]]; then
  case ${BASH_REMATCH[2]} in ''|b) mul=1 ;; k|kb) mul=1024 ;; m|mb) mul=1048576 ;; esac
  BURST_BYTES=$((10#${BASH_REMATCH[1]} * mul))
  ((BURST_BYTES >= 2048 && BURST_BYTES <= 67108864)) || err "--burst must be between 2kb and 64mb, got '$BURST'"
else
  err "--burst must be <number>[b|kb|mb] (e.g. 128kb), got '$BURST'"
fi
[[ $QUEUE =~ ^([0-9]+)ms$ ]] && ((10#${BASH_REMATCH[1]} >= 1 && 10#${BASH_REMATCH[1]} <= 1000)) ||
  err "--queue must be <number>ms between 1ms and 1000ms, got '$QUEUE'"
[[ $TCPFLAGS =~ ^[a-z0-9,-]+$ ]] ||
  err "--btl-tcp-flags must be a comma-separated list like 'send' or 'send,put', or 'default', got '$TCPFLAGS'"

if [[ $BENCH -eq 1 ]]; then
  bench_bin=${CIFAR_BUILD:-$SRC/build}/allreduce_bench
  [[ -x $bench_bin ]] || err "--bench: no executable $bench_bin (build it, or set CIFAR_BUILD)"
  PROG=("$bench_bin" "${PROG[@]}")
fi
if [[ ${#PROG[@]} -eq 0 && $CHECK -eq 0 ]]; then
  err "nothing to do: give -- PROGRAM [ARGS], --bench or --check-rate (see --help)"
fi
if [[ ${#PROG[@]} -gt 0 ]]; then
  if [[ ${PROG[0]} == */* ]]; then
    [[ -x ${PROG[0]} ]] || err "program ${PROG[0]} is not an executable file"
    PROG[0]=$(realpath "${PROG[0]}")
  else
    command -v "${PROG[0]}" >/dev/null || err "program ${PROG[0]} not found on PATH"
  fi
fi

# ---------------------------------------------------------------------------------------------
# Can we do it here?
[[ $(id -u) -eq 0 ]] || cannot "needs root (network namespaces, bridges and tc), run it with sudo"
for tool in ip tc unshare flock mpirun; do
  command -v "$tool" >/dev/null || cannot "'$tool' not found"
done
[[ -x $RSH ]] || cannot "the rsh agent $RSH is missing or not executable"
if [[ $CHECK -eq 1 ]] && ! command -v iperf3 >/dev/null && ! command -v python3 >/dev/null; then
  cannot "--check-rate needs iperf3 (apt-get install iperf3) or python3"
fi
if [[ $HOSTS -gt 1 && $RATE_BPS -gt 0 ]] && ! tc qdisc add tbf help 2>&1 | grep -q -i burst; then
  cannot "tc has no tbf qdisc"
fi

# ---------------------------------------------------------------------------------------------
# Claim a slot (under a lock, so two runs never take the same one), then set up.
mkdir -p "$STATE" || cannot "cannot create $STATE"
SLOT=""
exec {glock}>"$STATE/lock" || cannot "cannot open $STATE/lock"
flock -w 30 "$glock" || cannot "timed out waiting for $STATE/lock"
for i in $(seq 0 $((MAX_SLOTS - 1))); do
  if ! slot_owner_alive "$i"; then
    SLOT=$i; echo $$ >"$STATE/slot$i.pid"; break
  fi
done
flock -u "$glock"; exec {glock}>&-
[[ -n $SLOT ]] || cannot "all $MAX_SLOTS slots are in use by running sim_hosts.sh processes"

P=cifsim$SLOT
SW=$P-sw
HOSTNAMES=(); for ((k = 0; k < HOSTS; k++)); do HOSTNAMES+=("$P-h$k"); done
TMPD=""; RUN_PID=""; TORN=0

teardown() {
  [[ $TORN -eq 1 ]] && return; TORN=1
  trap '' INT TERM HUP
  if [[ -n $RUN_PID ]] && kill -0 "$RUN_PID" 2>/dev/null; then
    kill -TERM "$RUN_PID" 2>/dev/null   # mpirun (or timeout) stops the job on SIGTERM
    local _; for _ in $(seq 1 50); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  remove_slot "$SLOT"      # whatever is still running in the namespaces, then the namespaces
  [[ -n $TMPD ]] && rm -rf "$TMPD"
  if [[ $(cat "$STATE/slot$SLOT.pid" 2>/dev/null) == "$$" ]]; then rm -f "$STATE/slot$SLOT.pid"; fi
  rmdir "$STATE" 2>/dev/null
  if [[ -n $(slot_names "$SLOT") ]]; then say "warning: left behind: $(slot_names "$SLOT" | tr '\n' ' ')"; fi
}
on_signal() { say "interrupted ($1); tearing down"; teardown; exit "$2"; }
trap teardown EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

remove_slot "$SLOT"   # anything a killed earlier run left under these names
TMPD=$STATE/slot$SLOT.d   # hosts file, hostfile, rate-check output; removed with the slot
mkdir -p "$TMPD" || cannot "cannot create $TMPD"

setup() {
  vrun ip netns add "$SW" || return 3
  vrun ip -n "$SW" link set lo up || return 3
  vrun ip -n "$SW" link add br0 type bridge || return 3
  vrun ip -n "$SW" link set br0 up || return 3
  local k ns
  mkdir -p /etc/netns || return 3
  for ((k = 0; k < HOSTS; k++)); do
    ns=${HOSTNAMES[k]}
    vrun ip netns add "$ns" || return 3
    vrun ip -n "$ns" link set lo up || return 3
    vrun ip -n "$SW" link add "h$k" type veth peer name eth0 netns "$ns" || return 3
    vrun ip -n "$SW" link set "h$k" master br0 up || return 3
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
    vrun ip -n "$ns" addr add "$NET.$((k + 1))/24" dev eth0 || return 3
    vrun ip -n "$ns" link set eth0 up || return 3
    if [[ $RATE_BPS -gt 0 ]]; then
      # tbf: tokens at RATE, a bucket of BURST bytes, and a queue of up to QUEUE at RATE.
      vrun ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$RATE" burst "$BURST" latency "$QUEUE" || return 3
    fi
    # Host names resolve inside every host (ip netns exec mounts /etc/netns/NS/hosts on /etc/hosts).
    mkdir -p "/etc/netns/$ns" || return 3
  done
  {
    echo "127.0.0.1 localhost"
    for ((k = 0; k < HOSTS; k++)); do echo "$NET.$((k + 1)) ${HOSTNAMES[k]}"; done
  } >"$TMPD/hosts"
  for ns in "${HOSTNAMES[@]}"; do cp "$TMPD/hosts" "/etc/netns/$ns/hosts" || return 3; done
  return 0
}
if ! setup; then
  say "cannot simulate hosts here: setting up the namespaces, bridge or tc failed (see above)"
  exit 3
fi

# ---------------------------------------------------------------------------------------------
# Rate check: host k sends to host k+1 (mod K) for 2 s after 0.5 s of warm-up, one link at a time;
# TCP goodput at the receiver, scaled to bytes on the wire: tbf counts whole Ethernet frames (1514
# bytes at MTU 1500) and the receiver only their 1448 bytes of TCP payload (IP and TCP headers with
# timestamps take 52 bytes, Ethernet 14), so goodput is at most 1448/1514 = 95.6% of the rate.
MEASURED=()
measure_link() {  # measure_link SRC_K DST_K -> prints bits/s
  local s=$1 d=$2 dip=$NET.$(($2 + 1)) port=$((5201 + $1)) bps=""
  if command -v iperf3 >/dev/null; then
    ip netns exec "${HOSTNAMES[d]}" iperf3 -s -1 -B "$dip" -p "$port" >/dev/null 2>&1 &
    local spid=$! _
    for _ in $(seq 1 50); do
      ip netns exec "${HOSTNAMES[d]}" ss -ltn 2>/dev/null | grep -q "$dip:$port" && break; sleep 0.1
    done
    bps=$(ip netns exec "${HOSTNAMES[s]}" iperf3 -c "$dip" -p "$port" -t 2 -O 0.5 -J 2>/dev/null |
      python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])' 2>/dev/null)
    wait "$spid" 2>/dev/null
  else
    ip netns exec "${HOSTNAMES[d]}" python3 - "$dip" "$port" >"$TMPD/rx" 2>&1 <<'EOF' &
import socket, sys, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2]))); srv.listen(1)
c, _ = srv.accept(); buf = bytearray(1 << 20); t0 = time.monotonic(); n = 0; start = None
while True:
    k = c.recv_into(buf)
    if not k: break
    now = time.monotonic()
    if start is None and now - t0 >= 0.5: start, n = now, 0
    elif start is not None: n += k
    if start is not None and now - start >= 2.0: break
print("%.0f" % (8 * n / (now - start)))
EOF
    local spid=$!
    sleep 0.3
    ip netns exec "${HOSTNAMES[s]}" python3 - "$dip" "$port" >/dev/null 2>&1 <<'EOF'
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10); buf = b"\0" * (1 << 20)
t0 = time.monotonic()
try:
    while time.monotonic() - t0 < 3.0: c.sendall(buf)
except OSError: pass
EOF
    wait "$spid" 2>/dev/null; bps=$(tail -n 1 "$TMPD/rx")
  fi
  [[ $bps =~ ^[0-9]+$ ]] && echo "$bps"
}
check_rate() {
  if [[ $HOSTS -lt 2 ]]; then say "--check-rate: one host, no link to measure"; return 0; fi
  local k d bps wire ok=0 line link pct
  for ((k = 0; k < HOSTS; k++)); do
    d=$(((k + 1) % HOSTS))
    bps=$(measure_link "$k" "$d")
    link="rate check ${HOSTNAMES[k]} -> ${HOSTNAMES[d]}"
    if [[ -z $bps ]]; then say "$link: measurement failed"; ok=1; continue; fi
    wire=$(awk -v b="$bps" 'BEGIN { printf "%.0f", b * 1514 / 1448 }')   # + Ethernet/IP/TCP headers
    MEASURED+=("$wire")
    line=$(awk -v b="$bps" -v w="$wire" \
      'BEGIN { printf "goodput %.1f Mbit/s, %.1f Mbit/s on the wire", b / 1e6, w / 1e6 }')
    if [[ $RATE_BPS -eq 0 ]]; then
      say "$link: $line (unshaped)"; continue
    fi
    pct=$(awk -v w="$wire" -v r="$RATE_BPS" 'BEGIN { printf "%.1f", 100 * w / r }')
    if awk -v p="$pct" 'BEGIN { exit !(p >= 90 && p <= 110) }'; then
      say "$link: $line = $pct% of $RATE: ok"
    else
      say "$link: $line = $pct% of $RATE: NOT within 10%"; ok=1
    fi
  done
  return $ok
}
if [[ $CHECK -eq 1 ]]; then
  if ! check_rate; then
    say "the links do not carry the set rate (a rate this machine cannot reach, or a --burst too small for it)"
    exit 4
  fi
fi
[[ ${#PROG[@]} -eq 0 ]] && exit 0

# ---------------------------------------------------------------------------------------------
# The run: mpirun inside host 0 (the daemons on the other hosts call back to its address on the
# test subnet), in its own UTS namespace named like host 0.
NP=$((HOSTS * RPH))
for ns in "${HOSTNAMES[@]}"; do echo "$ns slots=$RPH"; done >"$TMPD/hostfile"
# shellcheck disable=SC2054  # the commas are inside MCA values
declare -A MCA=(
  [plm_rsh_agent]=$RSH [plm_rsh_no_tree_spawn]=1       # reach each host through the rsh agent
  [pml]=ob1 [btl]=self,vader,tcp                        # TCP between hosts, shared memory within one
  [btl_tcp_if_include]=$NET.0/24 [oob_tcp_if_include]=$NET.0/24)
[[ $TCPFLAGS != default ]] && MCA[btl_tcp_flags]=$TCPFLAGS
# Every host believes it has all the cores; with fewer cores than ranks, waiting ranks must yield.
[[ $NP -gt $(nproc) ]] && MCA[mpi_yield_when_idle]=1
for name in "${!USER_MCA[@]}"; do MCA[$name]=${USER_MCA[$name]}; done   # --mca overrides ours
[[ -n ${USER_MCA[btl_tcp_flags]:-} ]] && TCPFLAGS=${USER_MCA[btl_tcp_flags]}
MPI=(mpirun --hostfile "$TMPD/hostfile" -np "$NP" --bind-to none)
for name in $(printf '%s\n' "${!MCA[@]}" | sort); do MPI+=(--mca "$name" "${MCA[$name]}"); done

if [[ $META -eq 1 && $(basename "${PROG[0]}") == cifar_mpi ]]; then
  if "${PROG[0]}" --help 2>/dev/null | grep -q -- '--meta'; then
    PROG+=(--meta "hosts=$HOSTS" --meta "ranks_per_host=$RPH" --meta "link_rate=$RATE"
           --meta "link_burst=$BURST" --meta "transport=$([[ $HOSTS -gt 1 ]] && echo tcp || echo sm)"
           --meta "btl_tcp_flags=$TCPFLAGS" --meta "network=sim_hosts netns+bridge+tbf")
    if [[ ${#MEASURED[@]} -gt 0 ]]; then
      PROG+=(--meta "measured_rate_mbit=$(printf '%s\n' "${MEASURED[@]}" | sort -n | head -n 1 | awk '{printf "%.1f", $1/1e6}')")
    fi
  else
    say "warning: ${PROG[0]} has no --meta option; topology and link rate are not recorded in its metrics"
  fi
fi

say "$HOSTS host(s) x $RPH rank(s), link $RATE (burst $BURST), btl_tcp_flags=$TCPFLAGS, namespaces $P-*"
LAUNCH=("${MPI[@]}" "${PROG[@]}")
if [[ $ELASTIC_ON -eq 1 ]]; then  # the launcher builds the mpirun line; a host is alive while its namespace is
  hosts_arg=$(printf "%s:$RPH," "${HOSTNAMES[@]}")
  # shellcheck disable=SC2206  # ELASTIC is split into the launcher's options on purpose
  LAUNCH=("$SRC/tools/elastic_run.sh" --np "$NP" --hosts "${hosts_arg%,}" --host-check "test -e /run/netns/{}"
          --mpirun-args "${MPI[*]:5}" $ELASTIC -- "${PROG[@]:1}")
  export CIFAR_MPI="${PROG[0]}"
fi
RUN=(ip netns exec "${HOSTNAMES[0]}" unshare --uts -- /bin/sh -c 'hostname "$0" && exec "$@"' "${HOSTNAMES[0]}"
     "${LAUNCH[@]}")
[[ $TIMEOUT -gt 0 ]] && RUN=(timeout -k 10 "$TIMEOUT" "${RUN[@]}")
[[ $VERBOSE -eq 1 ]] && echo "+ ${RUN[*]}" >&2
"${RUN[@]}" &
RUN_PID=$!
wait "$RUN_PID"; rc=$?
RUN_PID=""
[[ $rc -eq 124 && $TIMEOUT -gt 0 ]] && say "timed out after $TIMEOUT s"
exit "$rc"
