#!/usr/bin/env bash
# Simulated hosts (tools/sim_hosts.sh): 2 hosts x 1 rank on a 100 Mbit/s link, a few training steps
# of fake CIFAR-10 with each all-reduce (ring, mpi):
#   * the links carry 100 Mbit/s within 10% (--check-rate), and the metrics file records the
#     topology (meta.* attributes, two nodes);
#   * the all-reduce time is 0.9-1.3x bytes / rate, where bytes = 2(N-1)/N x gradient bytes, what
#     each rank sends at N = 2 (the reduce-scatter and all-gather halves of the ring, and of the
#     Rabenseifner algorithm Open MPI 4.1 picks for a 1.26 MB sum on 2 ranks); the all-reduce time
#     of a step is the smaller T_comm of the two ranks (the rank that arrives first also waits for
#     the other), median over the steps after the second;
#   * the final weights equal, bit for bit, those of the same run on loopback (mpirun -np 2);
#   * at 2 hosts x 2 ranks the ring is hierarchical: the link carries 1x the gradient bytes
#     (0.9-1.3x bytes / rate), and the weights are within 1e-5 of a 4-rank loopback run's;
#   * --balance dynamic (a counter in one host's shared memory) is refused across hosts;
#   * bad option values fail with one line; a failing program's exit code comes through; Ctrl-C
#     (SIGINT) and a run killed with SIGKILL followed by `sim_hosts.sh cleanup` leave no namespace,
#     link, Open MPI session file or process behind.
# Bounded: every run has a timeout (at most ~9 minutes in all if every one of them expired; ~80 s
# normally). Skipped (77) when not root, or where network namespaces, UTS namespaces or tc tbf are
# not available.
#   bash tests/cli/sim_hosts.sh <cifar_mpi binary> <source dir> <data dir (ignored)>
set -u
BIN=$(realpath "${1:?usage: sim_hosts.sh <cifar_mpi> <source dir> <data dir>}")
SRC=$(realpath "${2:?usage: sim_hosts.sh <cifar_mpi> <source dir> <data dir>}")
TOOL="$SRC/tools/sim_hosts.sh"
source "$SRC/tests/cli/common.bash"

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root (network namespaces and tc)"; exit 77; }
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
PY=$(python_with h5py numpy)
[[ -n $PY ]] || { echo "SKIP: no python3 with h5py and numpy"; exit 77; }
probe=cifsim-probe-$$
if ! ip netns add "$probe" 2>/dev/null; then echo "SKIP: cannot create network namespaces here"; exit 77; fi
ip netns del "$probe"
unshare --uts true 2>/dev/null || { echo "SKIP: cannot create UTS namespaces here"; exit 77; }
tc qdisc add tbf help 2>&1 | grep -qi burst || { echo "SKIP: tc has no tbf"; exit 77; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_sim_hosts.XXXXXX")
cleanup_test() { "$TOOL" cleanup >/dev/null 2>&1; rm -rf "$TMP"; }
trap cleanup_test EXIT
cd "$TMP" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
python3 "$SRC/tests/cli/make_fake_cifar.py" data 256 2>/dev/null || "$PY" "$SRC/tests/cli/make_fake_cifar.py" data 256
COMMON=(--data-dir "$TMP/data" --batch-size 32 --no-eval --threads 1)

# leftovers PREFIX: namespaces, /etc/netns entries or processes of this test still there.
leftovers() {
  local what=""
  what+=$(ip netns list | awk '{print $1}' | grep "^$1" | tr '\n' ' ')
  what+=$(ls -d /etc/netns/"$1"* /tmp/ompi."$1"* /dev/shm/vader_segment."$1"* 2>/dev/null | tr '\n' ' ')
  what+=$(pgrep -f "$TMP" | tr '\n' ' ')
  echo "$what"
}
prefix_of() { grep -o 'namespaces cifsim[0-9]*-' "$1" | head -n 1 | sed 's/namespaces //'; }

# ---- one run per strategy on the simulated hosts, the same on loopback -----------------------
for algo in ring mpi; do
  start=$(date +%s.%N)
  timeout 120 "$TOOL" --hosts 2 --ranks-per-host 1 --rate 100mbit --check-rate --timeout 100 -- \
    "$BIN" "${COMMON[@]}" --max-steps 10 --allreduce "$algo" --metrics "sim_$algo.h5" --save-weights "simw_$algo.h5" \
    >"sim_$algo.log" 2>&1
  rc=$?
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  pfx=$(prefix_of "sim_$algo.log")
  if [[ $rc -ne 0 ]]; then
    fail "$algo: 2 simulated hosts at 100mbit (exit $rc)" "$(tail -n 8 "sim_$algo.log")"
    continue
  fi
  pass "$algo: 2 simulated hosts at 100mbit ran in $secs s ($(grep -c 'rate check.*ok' "sim_$algo.log") links within 10% of the rate)"
  left=$(leftovers "${pfx:-cifsim-none-}")
  [[ -z $left ]] && pass "$algo: nothing left behind (${pfx}*)" || fail "$algo: left behind: $left"

  if "$PY" - "sim_$algo.h5" >"check_$algo.txt" 2>&1 <<'EOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    a = f.attrs
    want = {"meta.hosts": "2", "meta.ranks_per_host": "1", "meta.link_rate": "100mbit", "meta.transport": "tcp"}
    got = {k: str(a.get(k)) for k in want}
    assert got == want, f"meta attributes {got} != {want}"
    assert "meta.measured_rate_mbit" in a, "no meta.measured_rate_mbit"
    assert a["hosts"].count(",") == 1 and a["nodes"] == 2, f"hosts {a['hosts']}, nodes {a['nodes']}"
    n = int(a["world_size"])
    t = f["steps/t_comm"][()][2:]              # skip the first two steps
    b = f["steps/comm_bytes"][()][2:].astype(float)
    per_step = t.min(axis=1)                   # the later rank's T_comm: the all-reduce itself
    wire = np.median(b[:, 0]) * 2 * (n - 1) / n
    ideal = wire * 8 / 100e6
    ratio = np.median(per_step) / ideal
    print(f"all-reduce {1e3*np.median(per_step):.1f} ms (median of {len(per_step)} steps), "
          f"bytes/rate {1e3*ideal:.1f} ms ({wire/1e6:.3f} MB at 100 Mbit/s): {ratio:.2f}x; "
          f"measured link {a['meta.measured_rate_mbit']} Mbit/s")
    assert 0.9 <= ratio <= 1.3, f"ratio {ratio:.2f} outside 0.9..1.3"
EOF
  then pass "$algo: $(tail -n 1 "check_$algo.txt")"
  else fail "$algo: all-reduce time or metadata" "$(tail -n 3 "check_$algo.txt")"
  fi

  timeout 60 mpirun -np 2 --bind-to none --mca mpi_yield_when_idle 1 "$BIN" "${COMMON[@]}" --max-steps 10 --allreduce "$algo" \
    --metrics "lo_$algo.h5" --save-weights "low_$algo.h5" >"lo_$algo.log" 2>&1 ||
    { fail "$algo: loopback run" "$(tail -n 5 "lo_$algo.log")"; continue; }
  if "$PY" - "simw_$algo.h5" "low_$algo.h5" >"cmp_$algo.txt" 2>&1 <<'EOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as x, h5py.File(sys.argv[2], "r") as y:
    assert sorted(x) == sorted(y), f"datasets {sorted(x)} != {sorted(y)}"
    for k in x:
        a, b = x[k][()], y[k][()]
        assert a.dtype == b.dtype and a.shape == b.shape, k
        assert a.tobytes() == b.tobytes(), f"{k}: {np.count_nonzero(a != b)} of {a.size} values differ"
    print(f"{len(list(x))} tensors identical")
EOF
  then pass "$algo: weights equal the loopback run's bit for bit ($(tail -n 1 "cmp_$algo.txt"))"
  else fail "$algo: weights differ from loopback" "$(tail -n 3 "cmp_$algo.txt")"
  fi
done

# ---- 2 hosts x 2 ranks: the ring finds the hosts and goes hierarchical -----------------------------
# Each host's link then carries 2(H-1)/H = 1x the gradient bytes (a flat ring: 2(N-1)/N = 1.5x), and
# the weights stay within float rounding of a flat ring's on loopback (the sums are added in another
# order: each host's first).
timeout 120 "$TOOL" --hosts 2 --ranks-per-host 2 --rate 100mbit --timeout 100 -- \
  "$BIN" "${COMMON[@]}" --max-steps 8 --allreduce ring --metrics sim_h.h5 --save-weights simw_h.h5 >sim_h.log 2>&1
rc=$?
if [[ $rc -ne 0 ]]; then
  fail "ring, 2 hosts x 2 ranks (exit $rc)" "$(tail -n 8 sim_h.log)"
elif ! grep -q "allreduce hierarchical ring (2 hosts x 2 ranks)" sim_h.log; then
  fail "ring, 2 hosts x 2 ranks: not hierarchical" "$(grep 'model:' sim_h.log)"
else
  timeout 60 mpirun -np 4 --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 "$BIN" "${COMMON[@]}" \
    --max-steps 8 --allreduce ring --metrics lo_h.h5 --save-weights low_h.h5 >lo_h.log 2>&1 ||
    fail "ring, 4 ranks on loopback" "$(tail -n 5 lo_h.log)"
  if "$PY" - sim_h.h5 simw_h.h5 low_h.h5 >check_h.txt 2>&1 <<'EOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    t = f["steps/t_comm"][()][2:]
    b = f["steps/comm_bytes"][()][2:].astype(float)
    ideal = np.median(b[:, 0]) * 8 / 100e6     # 2(H-1)/H = 1 at H = 2
    ratio = np.median(t.min(axis=1)) / ideal
with h5py.File(sys.argv[2], "r") as x, h5py.File(sys.argv[3], "r") as y:
    worst = max(float(np.max(np.abs(x[k][()] - y[k][()])) / max(1.0, float(np.max(np.abs(y[k][()]))))) for k in x)
print(f"all-reduce {ratio:.2f}x bytes/rate (a flat ring would send 1.5x); weights within {worst:.1e} of loopback's")
assert 0.9 <= ratio <= 1.3, f"all-reduce {ratio:.2f}x bytes/rate, outside 0.9..1.3"
assert worst <= 1e-5, f"weights differ from the loopback run's by {worst:.2e}"
EOF
  then pass "ring, 2 hosts x 2 ranks, hierarchical: $(tail -n 1 check_h.txt)"
  else fail "ring, 2 hosts x 2 ranks" "$(tail -n 3 check_h.txt)"
  fi
fi

# ---- bad values: one line, exit 2, nothing created ----------------------------------------------
check_bad() {  # check_bad EXPECTED_TEXT ARGS...
  local want=$1; shift
  "$TOOL" "$@" >bad.out 2>bad.err; local rc=$?
  if [[ $rc -eq 2 && $(wc -l <bad.err) -eq 1 && -s bad.err ]] && grep -q -- "$want" bad.err && [[ ! -s bad.out ]]; then
    pass "bad value refused: $* -> $(cat bad.err)"
  else
    fail "bad value: $* (exit $rc)" "$(cat bad.out bad.err)"
  fi
}
check_bad "--hosts must be" --hosts 0 -- /bin/true
check_bad "--hosts must be" --hosts two -- /bin/true
check_bad "--ranks-per-host must be" --ranks-per-host 65 -- /bin/true
check_bad "--rate must be" --rate 100mbps -- /bin/true
check_bad "--rate must be between" --rate 10kbit -- /bin/true
check_bad "--burst must be" --burst 1kb -- /bin/true
check_bad "--burst must be" --burst lots -- /bin/true
check_bad "--queue must be" --queue 5s -- /bin/true
check_bad "--timeout must be" --timeout -1 -- /bin/true
check_bad "--btl-tcp-flags must be" --btl-tcp-flags 'send;put' -- /bin/true
check_bad "unknown option" --hostz 2 -- /bin/true
check_bad "needs a value" --rate
check_bad "nothing to do" --hosts 2
check_bad "not an executable" -- ./no-such-program

# ---- --balance dynamic needs one host: refused in one line per rank, promptly ----------------------
timeout 90 "$TOOL" --hosts 2 --rate 100mbit --timeout 60 -- "$BIN" "${COMMON[@]}" --max-steps 2 --balance dynamic \
  --metrics bal.h5 >bal.log 2>&1
rc=$?
if [[ $rc -ne 0 && $rc -ne 124 ]] && grep -q "error (rank [01]): --balance dynamic: the 2 ranks are on 2 hosts" bal.log; then
  pass "--balance dynamic across 2 hosts refused (exit $rc): $(grep -m1 'error (rank' bal.log)"
else
  fail "--balance dynamic across 2 hosts: exit $rc" "$(tail -n 5 bal.log)"
fi

# ---- a failing program: its exit code, nothing left ---------------------------------------------
timeout 90 "$TOOL" --hosts 2 --rate 100mbit --timeout 60 -- "$BIN" --data-dir no-such-dir --max-steps 1 >fail.log 2>&1
rc=$?; pfx=$(prefix_of fail.log); left=$(leftovers "${pfx:-cifsim-none-}")
if [[ $rc -ne 0 && $rc -ne 2 && $rc -ne 3 && -z $left ]] && grep -q "no-such-dir" fail.log; then
  pass "a failing program's exit code ($rc) comes through; nothing left behind"
else
  fail "failing program: exit $rc, left: '$left'" "$(tail -n 5 fail.log)"
fi

# ---- Ctrl-C (SIGINT) in the middle of a run ----------------------------------------------------
wait_for() {  # wait_for FILE PATTERN SECONDS
  local i; for ((i = 0; i < $3 * 10; i++)); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1
}
set -m   # job control: the background tool does not ignore SIGINT, as in a terminal
"$TOOL" --hosts 2 --rate 100mbit --timeout 60 -- "$BIN" "${COMMON[@]}" --epochs 1000 --log-every 1 \
  --metrics int.h5 >int.log 2>&1 &
tpid=$!
set +m
if wait_for int.log "step  *2/" 45; then
  kill -INT "$tpid"; wait "$tpid"; rc=$?
  pfx=$(prefix_of int.log); left=$(leftovers "${pfx:-cifsim-none-}")
  if [[ $rc -eq 130 && -z $left ]] && grep -q "interrupted" int.log; then
    pass "SIGINT mid-run: exit 130, nothing left behind"
  else
    fail "SIGINT mid-run: exit $rc, left: '$left'" "$(tail -n 5 int.log)"
  fi
else
  fail "SIGINT mid-run: the run did not start" "$(tail -n 5 int.log)"; kill -TERM "$tpid" 2>/dev/null; wait "$tpid"
fi

# ---- the tool killed with SIGKILL: `cleanup` removes what it left ------------------------------
"$TOOL" --hosts 2 --rate 100mbit --timeout 60 -- "$BIN" "${COMMON[@]}" --epochs 1000 --log-every 1 \
  --metrics kill.h5 >kill.log 2>&1 &
tpid=$!
if wait_for kill.log "step  *2/" 45; then
  kill -KILL "$tpid"; wait "$tpid" 2>/dev/null
  pfx=$(prefix_of kill.log)
  before=$(leftovers "${pfx:-cifsim-none-}")
  "$TOOL" cleanup >cleanup.log 2>&1; rc=$?
  left=$(leftovers "${pfx:-cifsim-none-}")
  # (before is empty only if another sim_hosts.sh started meanwhile took the dead slot and cleaned it)
  if [[ $rc -eq 0 && -z $left ]]; then
    pass "SIGKILLed run: 'sim_hosts.sh cleanup' removed ${pfx}* and its processes${before:+ ($(wc -w <<<"$before") items)}"
  else
    fail "SIGKILLed run: before cleanup '$before', cleanup exit $rc, after '$left'" "$(cat cleanup.log)"
  fi
else
  fail "SIGKILL case: the run did not start" "$(tail -n 5 kill.log)"; kill -KILL "$tpid" 2>/dev/null; wait "$tpid"
fi

# shellcheck disable=SC2154  # failures: counted by common.bash's pass/fail
exit $((failures > 0))
