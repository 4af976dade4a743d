#!/usr/bin/env bash
# The recovering launcher (tools/elastic_run.sh), end to end on 2 ranks with a small fake data set:
#  1. a run of 60 steps with one rank killed by SIGKILL twice (once in the first attempt, once in
#     the second; each kill aimed at a progress line, not a time) is restarted from its checkpoint
#     each time and ends with weights bitwise equal to an uninterrupted run's;
#  2. its metrics file has each of the 60 steps once, with the uninterrupted run's losses (the
#     replayed steps replaced the lost ones), and a recoveries group of 2 entries naming the cause;
#  3. no process and no temporary file is left behind;
#  4. a bad input (exit 1, no rank lost) is not retried; --max-restarts 0 gives up after a kill;
#  5. a restart from a checkpoint of the run's last step (a rank lost in the final evaluation)
#     evaluates again: the run ends with its final test accuracy, the uninterrupted run's;
#  6. a restart whose checkpoint is damaged (cifar_mpi refuses it on load) starts over from step 0
#     instead of giving up, and finishes;
#  7. a rank stopped by SIGSTOP (--stall-timeout 1) is named stalled, the job restarted from its
#     checkpoint, and the weights end bitwise equal to the uninterrupted run's;
#  8. Ctrl-C (SIGINT to the launcher) ends the job without a restart: exit 130, no process left.
# usage: elastic_run.sh <cifar_mpi> <source dir> <data dir (ignored)>
set -u
bin=$(realpath "$1"); src=$(realpath "$2")
source "$src/tests/cli/common.bash"
fake_run_setup 128  # 640 training images: 10 steps of 2 x 32 an epoch
command -v h5dump >/dev/null || { echo "SKIP: h5dump (hdf5-tools) not installed"; exit 77; }
mpi_flags="--oversubscribe --bind-to none --mca mpi_yield_when_idle 1"
base=(--data-dir "$tmp/data" --batch-size 32 --epochs 100 --no-eval --log-every 1 --threads 1)
args=("${base[@]}" --max-steps 60)
same_weights() { [[ -s "$1" && -s "$2" ]] && cmp -s <(h5dump -d /conv1.weight -d /fc1.weight -d /fc2.bias "$1" | tail -n +3) \
                        <(h5dump -d /conv1.weight -d /fc1.weight -d /fc2.bias "$2" | tail -n +3); }

# shellcheck disable=SC2086
mpirun -np 2 $mpi_flags "$bin" "${args[@]}" --save-weights full.h5 --metrics full.m.h5 >full.log 2>&1 ||
  fail "uninterrupted run" "$(tail -n 3 full.log)"

# kill_rank_at LOG LINE [SIGNAL]: once LOG shows LINE, send SIGNAL (KILL) to the highest-numbered
# rank of this test.
kill_rank_at() {
  local i victim
  for i in $(seq 3000); do grep -q "$2" "$1" 2>/dev/null && break; sleep 0.02; done
  victim=$(pgrep -f "$bin --data-dir $tmp/data" | tail -n 1)
  [[ -n $victim ]] && kill -s "${3:-KILL}" "$victim"
}
"$src/tools/elastic_run.sh" --np 2 --max-restarts 3 --mpirun-args "$mpi_flags" -- "${args[@]}" \
  --checkpoint c.h5 --checkpoint-every 4 --save-weights el.h5 --metrics el.m.h5 >el.out 2>el.err &
launcher=$!
kill_rank_at el.m.h5.recovery/attempt0.log "epoch 2 step    3/"
kill_rank_at el.m.h5.recovery/attempt1.log "epoch 4 step    5/"
wait $launcher; rc=$?
kills=$(grep -c "attempt [0-9] ended: killed" el.err)
if [[ $rc -eq 0 && $kills -eq 2 ]] && same_weights full.h5 el.h5; then
  pass "2 ranks, a rank SIGKILLed twice, restarted from the checkpoint: weights bitwise equal to the uninterrupted run"
else
  fail "recovered run: exit $rc, $kills kill(s) seen (want 2), weights $(same_weights full.h5 el.h5 && echo equal || echo differ)" \
    "$(tail -n 5 el.err)"
fi
if out=$("$py" - full.m.h5 el.m.h5 <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
la, lb = a["steps/loss"][()], b["steps/loss"][()]
assert la.shape == lb.shape == (60, 2), f"steps {la.shape} vs {lb.shape}"
assert np.array_equal(la, lb), "the joined steps' losses differ from the uninterrupted run's"
r = b["recoveries"]
causes = [c.decode() if isinstance(c, bytes) else c for c in r["cause"][()]]
assert len(causes) == 2 and all(c == "killed(SIGKILL)" for c in causes), causes
print(f"60 steps once with the uninterrupted losses; recoveries {causes}, steps lost {list(r['steps_lost'][()])}, "
      f"seconds down {[round(float(x)) for x in r['seconds_down'][()]]}")
PY
); then pass "metrics: $out"; else fail "joined metrics file" "$out"; fi
sleep 1
left=$(pgrep -f "$tmp/data" | wc -l)
stray=$(find . -name '*.tmp.*' | wc -l)  # the attempts' folder too
((left == 0 && stray == 0)) && pass "no process, no temporary file left" ||
  fail "$left process(es), $stray temporary file(s) left"

# 4. A bad input is not retried; --max-restarts 0 gives up after one loss.
"$src/tools/elastic_run.sh" --np 2 --mpirun-args "$mpi_flags" -- "${args[@]}" --lr -1 --metrics bad.m.h5 >bad.out 2>bad.err
rc=$?
attempts=$(ls bad.m.h5.recovery/attempt*.log 2>/dev/null | wc -l)
[[ $rc -eq 1 && $attempts -eq 1 ]] && grep -q "not retried" bad.err && pass "bad input: exit 1 after one attempt" ||
  fail "bad input: exit $rc after $attempts attempt(s)" "$(tail -n 2 bad.err)"
"$src/tools/elastic_run.sh" --np 2 --max-restarts 0 --mpirun-args "$mpi_flags" -- "${base[@]}" --max-steps 100000 \
  --checkpoint c0.h5 --metrics m0.m.h5 >m0.out 2>m0.err &
launcher=$!
kill_rank_at m0.m.h5.recovery/attempt0.log "epoch 1 step    2/"
wait $launcher; rc=$?
[[ $rc -eq 1 ]] && grep -q "max-restarts 0 used up" m0.err && pass "--max-restarts 0: exit 1 after the kill" ||
  fail "--max-restarts 0: exit $rc" "$(tail -n 2 m0.err)"

# 5. Resumed at the last step: the run's end (evaluation) is done again. The periodic checkpoint of
# step 6 is the last step's, written before the final evaluation, where a loss would restart from it.
end_args=(--data-dir "$tmp/data" --batch-size 32 --epochs 100 --eval --max-steps 6 --threads 1 --checkpoint e.h5)
# shellcheck disable=SC2086
mpirun -np 2 $mpi_flags "$bin" "${end_args[@]}" --checkpoint-every 3 --metrics e1.m.h5 >e1.log 2>&1
# shellcheck disable=SC2086
mpirun -np 2 $mpi_flags "$bin" "${end_args[@]}" --resume e.h5 --metrics e2.m.h5 >e2.log 2>&1
acc1=$(grep -o "final test accuracy *[0-9.]*%" e1.log) acc2=$(grep -o "final test accuracy *[0-9.]*%" e2.log)
[[ -n $acc1 && $acc1 == "$acc2" ]] && grep -q "at epoch 1 step 6 (global step 6)" e2.log &&
  pass "resumed at its last step, the run evaluates again: $acc2" ||
  fail "resume at the last step: '$acc1' then '$acc2'" "$(grep -E 'resuming|accuracy' e2.log)"

# 6. A damaged checkpoint at the restart: one byte of a tensor flipped in a valid checkpoint put where
# the launcher's run writes its own (every 1000 steps: not before the kill at step 2).
# shellcheck disable=SC2086
mpirun -np 2 $mpi_flags "$bin" "${base[@]}" --max-steps 4 --checkpoint d.h5 >d.log 2>&1
"$py" - d.h5 <<'PY' || fail "could not damage the checkpoint"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    offset = f["weights/fc1.weight"].id.get_chunk_info(0).byte_offset + 100
with open(sys.argv[1], "r+b") as f:
    f.seek(offset); b = f.read(1); f.seek(offset); f.write(bytes([b[0] ^ 0x40]))
PY
"$src/tools/elastic_run.sh" --np 2 --max-restarts 3 --mpirun-args "$mpi_flags" -- "${base[@]}" --max-steps 12 \
  --checkpoint d.h5 --checkpoint-every 1000 --metrics d.m.h5 >d.out 2>d.err &
launcher=$!
kill_rank_at d.m.h5.recovery/attempt0.log "epoch 1 step    2/"
wait $launcher; rc=$?
[[ $rc -eq 0 ]] && grep -q "is not valid .* starting over from step 0" d.err && grep -q "Fletcher-32" d.m.h5.recovery/attempt1.log &&
  [[ -f d.m.h5.recovery/attempt2.log ]] && ! grep -q "resuming" d.m.h5.recovery/attempt2.log &&
  pass "a damaged checkpoint at a restart: refused, the run starts over from step 0 and finishes" ||
  fail "damaged checkpoint at a restart: exit $rc" "$(grep elastic_run d.err | tail -n 4)"
# 7. A stalled rank: stopped, not killed; the other names it after --stall-timeout and exits 76.
"$src/tools/elastic_run.sh" --np 2 --max-restarts 3 --mpirun-args "$mpi_flags" -- "${args[@]}" \
  --checkpoint s.h5 --checkpoint-every 4 --stall-timeout 1 --save-weights st.h5 --metrics st.m.h5 >st.out 2>st.err &
launcher=$!
kill_rank_at st.m.h5.recovery/attempt0.log "epoch 2 step    3/" STOP
wait $launcher; rc=$?
sleep 1
left=$(pgrep -f "$tmp/data" | wc -l)
[[ $rc -eq 0 && $left -eq 0 ]] && grep -q "attempt 0 ended: stalled" st.err && same_weights full.h5 st.h5 &&
  pass "a rank SIGSTOPped: named stalled, restarted from the checkpoint, weights bitwise equal, no process left" ||
  fail "stalled rank: exit $rc, $left process(es) left, weights $(same_weights full.h5 st.h5 && echo equal || echo differ)" \
    "$(grep elastic_run st.err | tail -n 4)"
# 8. Ctrl-C. The launcher in its own process group (set -m): a background job of a script would
# otherwise start with SIGINT ignored, as bash does, and could not be interrupted at all.
set -m
"$src/tools/elastic_run.sh" --np 2 --max-restarts 3 --mpirun-args "$mpi_flags" -- "${base[@]}" --max-steps 100000 \
  --checkpoint i.h5 --metrics i.m.h5 >i.out 2>i.err &
launcher=$!
set +m
for _ in $(seq 3000); do grep -q "epoch 1 step    2/" i.m.h5.recovery/attempt0.log 2>/dev/null && break; sleep 0.02; done
kill -s INT "$launcher"
wait $launcher; rc=$?
sleep 1
left=$(pgrep -f "$tmp/data" | wc -l)
[[ $rc -eq 130 && $left -eq 0 && ! -e i.m.h5.recovery/attempt1.log ]] && grep -q "interrupted .*not restarted" i.err &&
  pass "Ctrl-C: exit 130, not restarted, no process left" ||
  fail "Ctrl-C: exit $rc, $left process(es) left" "$(grep elastic_run i.err | tail -n 3)"
((failures == 0))
