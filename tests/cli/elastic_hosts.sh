#!/usr/bin/env bash
# The recovering launcher across simulated hosts (tools/sim_hosts.sh --elastic): 2 hosts x 1 rank,
# fake CIFAR-10, --batch-size 32; once the run has passed its first checkpoints (a progress line,
# not a time), host 1's processes are killed and its network namespace removed. The launcher
# sees the lost daemon, drops the host, and finishes the run on host 0 alone with --global-batch
# 64 (the global batch kept) from the last checkpoint: exit 0, the recovery recorded as `lost` with
# the host's name, each step once in the metrics file, and weights bitwise equal to those of the
# same two parts run by hand (2 ranks to that checkpoint, then 1 rank with --global-batch 64).
# Skipped (77) when not root or where network namespaces are not available.
#   bash tests/cli/elastic_hosts.sh <cifar_mpi binary> <source dir> <data dir (ignored)>
set -u
BIN=$(realpath "${1:?usage: elastic_hosts.sh <cifar_mpi> <source dir> <data dir>}")
SRC=$(realpath "${2:?usage: elastic_hosts.sh <cifar_mpi> <source dir> <data dir>}")
TOOL="$SRC/tools/sim_hosts.sh"
source "$SRC/tests/cli/common.bash"
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
PY=$(python_with h5py numpy)
[[ -n $PY ]] || { echo "SKIP: no python3 with h5py and numpy"; exit 77; }
probe=cifsim-probe-$$
if ! ip netns add "$probe" 2>/dev/null; then echo "SKIP: cannot create network namespaces here"; exit 77; fi
ip netns del "$probe"
unshare --uts true 2>/dev/null || { echo "SKIP: cannot create UTS namespaces here"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_elastic_hosts.XXXXXX")
trap 'kill $run 2>/dev/null; wait 2>/dev/null; "$TOOL" cleanup >/dev/null 2>&1; [[ -z "${KEEP_TMP:-}" ]] && rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
export OMP_NUM_THREADS=1 CIFAR_PYTHON=$PY OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$PY" "$SRC/tests/cli/make_fake_cifar.py" data 128 >/dev/null
base=(--data-dir "$TMP/data" --batch-size 32 --epochs 100 --no-eval --log-every 1 --threads 1)
args=("${base[@]}" --max-steps 200)

timeout 300 "$TOOL" --hosts 2 --rate none --elastic "--min-ranks 1 --max-restarts 2" -- "$BIN" "${args[@]}" \
  --checkpoint "$TMP/c.h5" --checkpoint-every 4 --save-weights el.h5 --metrics "$TMP/el.m.h5" >el.out 2>el.err &
run=$!
for _ in $(seq 3000); do grep -q "epoch 2 step    3/" el.m.h5.recovery/attempt0.log 2>/dev/null && break; sleep 0.02; done
# This run's host 1, by the prefix sim_hosts.sh says it uses (other runs may have hosts of their own).
prefix=$(grep -o "namespaces cifsim[0-9]*-" el.err | head -n 1 | cut -d' ' -f2)
ns=${prefix:+${prefix}h1}
if [[ -n $ns ]] && ip netns list | awk '{print $1}' | grep -qx "$ns"; then
  ip netns pids "$ns" | xargs -r kill -9
  ip netns delete "$ns"
fi
wait $run; rc=$?
if [[ -n $ns && $rc -eq 0 ]] && grep -q "host $ns is gone" el.err && grep -q -- "--global-batch 64" el.err; then
  pass "host $ns removed mid-run: the launcher finished on the other host with --global-batch 64"
else
  fail "host removal: exit $rc, namespace '${ns:-none}'" "$(grep elastic_run el.err | tail -n 4)"
fi
# The reference: the same two parts by hand, 2 ranks to the checkpoint the launcher resumed from,
# then 1 rank with --global-batch 64 (on loopback: the same bits as on simulated hosts).
if out=$("$PY" - el.m.h5 "$ns" <<'PY'
import sys, h5py
m = h5py.File(sys.argv[1], "r")
r = m["recoveries"]
cause = [c.decode() if isinstance(c, bytes) else c for c in r["cause"][()]]
host = [c.decode() if isinstance(c, bytes) else c for c in r["host"][()]]
assert cause == ["lost"] and host == [sys.argv[2]], (cause, host)
assert m["steps/loss"].shape[0] == 200, m["steps/loss"].shape
print(int(r["resumed_at_step"][0]))
PY
); then
  k=$out
  pass "recovery recorded: lost on $ns, resumed at step $k; 200 steps once in the metrics file"
  one_rank=("${args[@]/--batch-size/--global-batch}")
  one_rank=("${one_rank[@]/#32/64}")
  mpi=(mpirun --oversubscribe --bind-to none --mca mpi_yield_when_idle 1)
  "${mpi[@]}" -np 2 "$BIN" "${base[@]}" --max-steps "$k" --checkpoint r.h5 >r1.log 2>&1 &&
    "${mpi[@]}" -np 1 "$BIN" "${one_rank[@]}" --resume r.h5 --save-weights ref.h5 >r2.log 2>&1 ||
    fail "the reference by hand" "$(tail -n 3 r1.log r2.log 2>/dev/null)"
  same_weights() { [[ -s "$1" && -s "$2" ]] && cmp -s <(h5dump -d /conv1.weight -d /fc1.weight -d /fc2.bias "$1" | tail -n +3) \
                          <(h5dump -d /conv1.weight -d /fc1.weight -d /fc2.bias "$2" | tail -n +3); }
  same_weights ref.h5 el.h5 && pass "weights bitwise equal to 2 ranks to step $k, then 1 rank with --global-batch 64" ||
    fail "weights differ from the reference by hand"
else
  fail "recovery record" "$out"
fi
((failures == 0))
