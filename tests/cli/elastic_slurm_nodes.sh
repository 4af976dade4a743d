#!/usr/bin/env bash
# The recovering launcher inside a Slurm allocation of 2 nodes when one node fails, without a
# cluster: srun, scontrol and sinfo are stand-ins on PATH (srun runs the program as one process,
# after failing its first step as Slurm reports a node's task killed).
#  1. the first step is launched on both nodes of the allocation (-n 2 -N 2 --nodelist=node1,node2);
#  2. with node2 then "down*" in sinfo and --min-ranks 1, the step is started again on node1 alone
#     (-n 1 -N 1 --nodelist=node1), the global batch kept (--batch-size 32 -> --global-batch 64);
#  3. the run finishes (exit 0) and its metrics file records the recovery: killed(SIGKILL), rank 1,
#     node2, and the attempt's surviving host;
#  4. without --min-ranks (the same N only) the loss of node2 ends the launcher with exit 1;
#  5. with the batch in a --config file: its per-rank batch-size x N becomes the global batch on
#     fewer ranks, and its global-batch is left as it is.
# usage: elastic_slurm_nodes.sh <cifar_mpi> <source dir> <data dir (ignored)>
set -u
bin=$(realpath "$1"); src=$(realpath "$2")
source "$src/tests/cli/common.bash"
fake_run_setup 64

mkdir stand-ins
cat >stand-ins/scontrol <<'EOF'
#!/usr/bin/env bash
[[ "$1 $2 $3" == "show hostnames node[1-2]" ]] && printf 'node1\nnode2\n'
EOF
cat >stand-ins/sinfo <<'EOF'
#!/usr/bin/env bash
# sinfo -h -n NODE -o %t: node2 is down (not responding) once the first step has failed.
while (($#)); do [[ $1 == -n ]] && node=$2; shift; done
if [[ $node == node2 && -f "$STANDIN_DIR/node2-down" ]]; then echo 'down*'; else echo alloc; fi
EOF
cat >stand-ins/srun <<'EOF'
#!/usr/bin/env bash
# Records its arguments; the first step fails as a lost node's does, the others run the program.
echo "$*" >>"$STANDIN_DIR/srun-calls"
if [[ ! -f "$STANDIN_DIR/node2-down" ]]; then
  touch "$STANDIN_DIR/node2-down"
  echo "srun: error: node2: task 1: Killed" >&2
  exit 137
fi
while (($#)) && [[ $1 != "$CIFAR_MPI" ]]; do shift; done
exec "$@"
EOF
chmod +x stand-ins/*
export STANDIN_DIR=$tmp/stand-ins
in_allocation() { PATH="$tmp/stand-ins:$PATH" SLURM_JOB_ID=1 SLURM_JOB_NODELIST='node[1-2]' "$@"; }
args=(--data-dir "$tmp/data" --batch-size 32 --epochs 100 --max-steps 4 --no-eval --threads 1 --checkpoint c.h5)

in_allocation "$src/tools/elastic_run.sh" --np 2 --min-ranks 1 -- "${args[@]}" --metrics m.h5 >out.log 2>err.log
rc=$?
first=$(sed -n 1p stand-ins/srun-calls) second=$(sed -n 2p stand-ins/srun-calls)
[[ $first == "-n 2 -N 2 --nodelist=node1,node2 "* ]] && pass "first step on both nodes: srun ${first%% --kill*}" ||
  fail "first step: srun $first"
[[ $second == "-n 1 -N 1 --nodelist=node1 "* && $second == *"--global-batch 64"* && $second != *"--batch-size"* ]] &&
  pass "node2 down: the step again on node1 alone, global batch kept: srun ${second%% --kill*} ... --global-batch 64" ||
  fail "restart on the surviving node: srun $second" "$(tail -n 4 err.log)"
if [[ $rc -eq 0 ]] && out=$("$py" - m.h5 <<'PY'
import sys, h5py
r = h5py.File(sys.argv[1], "r")["recoveries"]
text = lambda v: v.decode() if isinstance(v, bytes) else v
got = (text(r["cause"][0]), int(r["rank"][0]), text(r["host"][0]), len(r["cause"]))
assert got == ("killed(SIGKILL)", 1, "node2", 1), got
print(f"recovery recorded: {got[0]}, rank {got[1]} on {got[2]}")
PY
); then
  pass "run finished on 1 rank (exit 0); $out"
else
  fail "run on the surviving node: exit $rc" "${out:-$(tail -n 4 err.log)}"
fi
hosts=$(awk -F'\t' 'NR == 3 { print $3 }' m.h5.recovery/attempts.tsv)
[[ $hosts == node1 ]] && pass "attempts table: the second attempt's hosts are node1" || fail "attempts table hosts: '$hosts'"

# 4. The same N only: node2's loss leaves too few ranks.
rm -f stand-ins/node2-down stand-ins/srun-calls
in_allocation "$src/tools/elastic_run.sh" --np 2 -- "${args[@]}" --metrics same.h5 >same.out 2>same.err
rc=$?
[[ $rc -eq 1 ]] && grep -q "fewer than --min-ranks 2" same.err && [[ $(wc -l <stand-ins/srun-calls) -eq 1 ]] &&
  pass "without --min-ranks: node2 lost, exit 1 without a second step" ||
  fail "without --min-ranks: exit $rc" "$(tail -n 3 same.err)"
# 5. The batch from a --config file.
base=(--data-dir "$tmp/data" --epochs 100 --max-steps 2 --no-eval --threads 1)
printf 'batch-size = 16\n' >per_rank.toml
printf 'global-batch = 64\n' >global.toml
for cfg in per_rank global; do
  rm -f stand-ins/node2-down stand-ins/srun-calls
  in_allocation "$src/tools/elastic_run.sh" --np 2 --min-ranks 1 -- "${base[@]}" --config $cfg.toml --checkpoint $cfg.ck.h5 --metrics $cfg.h5 \
    >$cfg.out 2>$cfg.err
  rc=$? second=$(sed -n 2p stand-ins/srun-calls)
  if [[ $cfg == per_rank ]]; then
    [[ $rc -eq 0 && $second == *"--global-batch 32"* ]] && pass "config batch-size 16 on 1 rank of 2: --global-batch 32" ||
      fail "config batch-size: exit $rc, srun $second" "$(tail -n 3 $cfg.err)"
  else
    [[ $rc -eq 0 && -n $second && $second != *"--global-batch"* ]] && pass "config global-batch 64: kept, nothing added" ||
      fail "config global-batch: exit $rc, srun $second" "$(tail -n 3 $cfg.err)"
  fi
done
# 6. Bad launcher values: one line naming the option, exit 2, nothing started.
rm -f stand-ins/srun-calls
for bad in "--min-ranks 3" "--min-ranks x" "--max-restarts -1"; do
  # shellcheck disable=SC2086
  msg=$(in_allocation "$src/tools/elastic_run.sh" --np 2 $bad -- "${base[@]}" 2>&1 >/dev/null); rc=$?
  [[ $rc -eq 2 && $(wc -l <<<"$msg") -eq 1 && $msg == *"${bad%% *}"* && ! -e stand-ins/srun-calls ]] &&
    pass "$bad: refused in one line, exit 2" || fail "$bad: exit $rc" "$msg"
done
((failures == 0))
