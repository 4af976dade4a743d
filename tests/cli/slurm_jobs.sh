#!/usr/bin/env bash
# The jobs/ scripts on a real Slurm: tools/slurm_cluster.sh starts a one-machine cluster (munged,
# slurmctld, slurmd; 8 CPUs declared) in a temporary folder, and sbatch runs, on a small fake
# CIFAR-10 set:
#  - jobs/train.sbatch, a few steps at 2 and 4 tasks, with LAUNCHER=srun (srun --mpi=pmix) and
#    LAUNCHER=mpirun (mpirun inside the allocation): COMPLETED, exit 0, metrics file written;
#  - jobs/scaling.sbatch with each launcher: np1/np2/np4.h5, the four plots and summary.md under
#    the job's results folder;
#  - pre-emption, with each launcher: `scancel --batch --signal=USR1` mid-run; the script forwards
#    it, the ranks checkpoint and exit 75, the script requeues the job, the requeued run (same job
#    id, Restarts=1) resumes and ends with weights bitwise equal to an uninterrupted job's;
#    a plain `scancel` (TERM) leaves the job cancelled, not requeued. Neither depends on the
#    machine's speed: the cancelled job has no step limit (only the scancel ends it), and the
#    pre-empted ranks are paused (SIGSTOP) from the start of their 2nd epoch until the USR1 is
#    pending in each, so they stop at the step they were paused at, whatever the signal's delay;
#  - failures are failed jobs: a bad option to cifar_mpi, and a scaling step that cannot start
#    (the script stops there: no later run, no plots);
#  - srun --mpi=pmi2 and a plain srun of cifar_mpi fail in MPI_Init (Debian's Open MPI has no
#    PMI1/PMI2 client), which is why the scripts use --mpi=pmix or mpirun;
#  - after the cluster is stopped, none of its processes is left.
# Every wait is bounded; the whole test takes about a minute on 2 cores.
# usage: slurm_jobs.sh <cifar_mpi> <source dir> <data dir (ignored: a fake set is made)>
set -u
bin=$(realpath "$1"); src=$(realpath "$2")
source "$src/tests/cli/common.bash"  # pass, fail, failures, python_with
export PATH="$PATH:/usr/sbin"
for c in munged slurmctld slurmd sbatch scontrol scancel squeue srun; do
  command -v "$c" >/dev/null || {
    echo "SKIP: Slurm is not installed ($c missing; apt-get install slurmctld slurmd slurm-client munge)"
    exit 77
  }
done
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
PY=$(python_with h5py numpy matplotlib)
[[ -n "$PY" ]] || { echo "SKIP: no python3 with h5py, numpy and matplotlib"; exit 77; }

# Outside any other Slurm job: its SLURM_* variables would steer sbatch and srun.
for v in $(compgen -e | grep '^SLURM_'); do unset "$v"; done
start_time=$SECONDS
pass() { echo "PASS: $1 [at $((SECONDS - start_time)) s]"; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cifar_slurm_jobs.XXXXXX")
cluster=
cleanup() {
  [[ -n "$cluster" ]] && KEEP_DIR="${KEEP_TMP:-}" "$src/tools/slurm_cluster.sh" stop "$cluster"
  if [[ -n "${KEEP_TMP:-}" ]]; then echo "kept $tmp${cluster:+ and $cluster}"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$tmp" || exit 1
"$PY" "$src/tests/cli/make_fake_cifar.py" data 128  # 640 training images

# ---- the cluster -------------------------------------------------------------------------------
t=$SECONDS
out=$("$src/tools/slurm_cluster.sh" start --cpus 8 2>cluster.log)
conf=$(sed -n 's/^export SLURM_CONF=//p' <<<"$out")
[[ -n "$conf" ]] && cluster=$(dirname "$conf")
if [[ -z "$conf" ]]; then
  fail "one-machine cluster did not start" "$(tail -n 8 cluster.log)"
  exit 1
fi
export SLURM_CONF="$conf"
pass "cluster started, node idle in $((SECONDS - t)) s ($(sinfo -h -o '%n %c CPUs %t'))"

# ---- submitting and waiting ---------------------------------------------------------------------
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export CIFAR_ROOT="$src" CIFAR_BIN="$bin" DATA_DIR="$tmp/data" RESULTS_ROOT="$tmp/results"
declare -A job_of  # name -> job id
# submit NAME SCRIPT "SBATCH OPTIONS" [VAR=value...] [-- script arguments]; output in NAME.out
submit() {
  local name="$1" script="$2" opts=() vars=() id
  read -r -a opts <<<"$3"
  shift 3
  while (($#)) && [[ "$1" != -- ]]; do vars+=("$1"); shift; done
  [[ "${1:-}" == -- ]] && shift
  if id=$(env "${vars[@]}" sbatch --parsable --job-name="$name" --output="$tmp/$name.out" "${opts[@]}" \
            "$src/jobs/$script" "$@" 2>"$tmp/$name.sbatch.err"); then
    job_of[$name]=$id
  else
    fail "$name: sbatch refused the job" "$(cat "$tmp/$name.sbatch.err")"
  fi
}
# job_field ID FIELD: one field of `scontrol show job` (JobState, ExitCode, Restarts, ...).
job_field() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"; }
terminal='^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)$'
# wait_job NAME SECONDS: waits until the job has ended (cancels it after SECONDS); sets
# job_state. (It runs in this shell, not in a $(...): a signal to the test is handled between two
# short commands, not after a long subshell.)
wait_job() {
  local id="${job_of[$1]:-}" limit=$((SECONDS + $2))
  job_state=NOT_SUBMITTED
  [[ -n "$id" ]] || return 0
  while :; do
    job_state=$(job_field "$id" JobState)
    [[ "$job_state" =~ $terminal ]] && break
    if ((SECONDS > limit)); then scancel "$id"; job_state="NOT_DONE_AFTER_$2s($job_state)"; break; fi
    sleep 0.3
  done
}
# expect_job NAME SECONDS STATE EXITCODE: the job ends in that state with that ExitCode (n:m;
# "nonzero": any but 0:0).
expect_job() {
  local st ec
  wait_job "$1" "$2"
  st=$job_state
  ec=$(job_field "${job_of[$1]:-0}" ExitCode)
  if [[ "$st" == "$3" && ( "$ec" == "$4" || ( "$4" == nonzero && -n "$ec" && "$ec" != 0:0 ) ) ]]; then
    return 0
  fi
  fail "$1: job ${job_of[$1]:-?} ended $st, exit code ${ec:-?} (expected $3, $4)" \
       "$(tail -n 12 "$tmp/$1.out" 2>/dev/null)"
  return 1
}
results_of() { echo "$tmp/results/${job_of[$1]:-none}"; }

# ---- the jobs, all queued at once (Slurm starts them as the 8 CPUs free up) -----------------------
# Pre-emption first, and its reference: 120 steps of batch 32 on 2 ranks (12 epochs of 10 steps).
# The cancelled job has no step limit: it runs until the scancel.
long="--epochs 100 --batch-size 32 --no-eval --log-every 1 --allreduce ring --overlap"
submit ref train.sbatch "" LAUNCHER=srun TRAIN_ARGS="$long" -- --max-steps 120 --save-weights "$tmp/ref.h5"
submit pre_srun train.sbatch "" LAUNCHER=srun TRAIN_ARGS="$long" -- --max-steps 120 --save-weights "$tmp/pre_srun.h5"
submit pre_mpirun train.sbatch "" LAUNCHER=mpirun TRAIN_ARGS="$long" -- --max-steps 120 --save-weights "$tmp/pre_mpirun.h5"
submit cancel train.sbatch "" LAUNCHER=srun TRAIN_ARGS="${long/--epochs 100/--epochs 100000}"
short="--epochs 2 --batch-size 32 --log-every 5 --allreduce ring --overlap"
for l in srun mpirun; do
  for n in 2 4; do
    submit "train_${l}_np$n" train.sbatch "--ntasks-per-node=$n" LAUNCHER=$l TRAIN_ARGS="$short" -- --max-steps 6
  done
  submit "scaling_$l" scaling.sbatch "" LAUNCHER=$l TRAIN_ARGS="--epochs 1 --batch-size 32 --max-steps 4 --no-eval"
done
submit bad_option train.sbatch "" LAUNCHER=srun TRAIN_ARGS="$short" -- --no-such-option
submit bad_step scaling.sbatch "--ntasks=2" LAUNCHER=srun TASK_COUNTS="1 3" TRAIN_ARGS="--epochs 1 --batch-size 32 --max-steps 2 --no-eval"

# ---- pre-emption: USR1 to the batch script at the 2nd epoch, the ranks paused; a plain scancel -----
# ranks_of ID: the pids of job ID's cifar_mpi processes (their --metrics is under results/ID/).
ranks_of() {
  local pid
  for pid in $(pgrep -x cifar_mpi); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$tmp/results/$1/" && echo "$pid"
  done
}
# usr1_pending PID...: true when SIGUSR1 (bit 9 of the pending masks) waits in every one of them.
usr1_pending() {
  local pid mask
  for pid in "$@"; do
    mask=$(awk '/^(ShdPnd|SigPnd):/ {print $2}' "/proc/$pid/status" 2>/dev/null | paste -sd' ')
    [[ -n "$mask" ]] || return 1
    local any=0 m
    for m in $mask; do (((16#$m >> 9) & 1)) && any=1; done
    ((any)) || return 1
  done
}
declare -A paused=()  # job name -> its ranks' pids, stopped
limit=$((SECONDS + 60))
# Each pre-empted job's 2 ranks are stopped as soon as its 2nd epoch begins (polled every 20 ms;
# 110 of its 120 steps are left then, far more time than finding and stopping the ranks takes).
while ((${#paused[@]} < 2)) && ((SECONDS <= limit)); do
  for p in pre_srun pre_mpirun; do
    [[ -n "${paused[$p]:-}" || -z "${job_of[$p]:-}" ]] && continue
    grep -q "epoch 2 step" "$tmp/$p.out" 2>/dev/null || continue
    pids=$(ranks_of "${job_of[$p]}" | paste -sd' ')
    [[ $(wc -w <<<"$pids") -eq 2 ]] || continue
    # shellcheck disable=SC2086
    kill -STOP $pids && paused[$p]=$pids
  done
  sleep 0.02
done
for p in pre_srun pre_mpirun; do
  id=${job_of[$p]:-}
  [[ -n "$id" ]] || continue
  if [[ -z "${paused[$p]:-}" ]]; then fail "$p: its ranks were not found in their 2nd epoch within 60 s"; continue; fi
  scancel --batch --signal=USR1 "$id" || fail "$p: scancel --batch --signal=USR1 $id"
  limit=$((SECONDS + 30))
  # shellcheck disable=SC2086
  until usr1_pending ${paused[$p]} || ((SECONDS > limit)); do sleep 0.05; done
  # shellcheck disable=SC2086
  usr1_pending ${paused[$p]} || fail "$p: the USR1 did not reach the paused ranks within 30 s"
  # shellcheck disable=SC2086
  kill -CONT ${paused[$p]}
done
if [[ -n "${job_of[cancel]:-}" ]]; then
  limit=$((SECONDS + 60))
  until grep -q "epoch 1 step" "$tmp/cancel.out" 2>/dev/null || ((SECONDS > limit)); do sleep 0.2; done
  scancel "${job_of[cancel]}" || fail "cancel: scancel ${job_of[cancel]}"
fi
# The requeued job waits for its begin time (Slurm sets it 2 minutes ahead on a requeue); the
# test moves it to 2 s from now once the requeue is seen. Not to now: slurmd revokes the job's
# credential on the requeue, and a relaunch within the same second is refused ("Killing
# non-startable batch JobId=...: Job credential revoked", the job FAILED with exit code 1).
for p in pre_srun pre_mpirun; do
  id=${job_of[$p]:-}
  [[ -n "$id" ]] || continue
  limit=$((SECONDS + 60))
  until [[ "$(job_field "$id" Restarts)" -ge 1 && "$(job_field "$id" JobState)" == PENDING ]] ||
        [[ "$(job_field "$id" JobState)" =~ $terminal ]] || ((SECONDS > limit)); do sleep 0.3; done
  [[ "$(job_field "$id" JobState)" == PENDING ]] && scontrol update JobId="$id" StartTime=now+2
done
# A plain scancel (TERM) checkpoints too, but the job stays cancelled: no requeue.
limit=$((SECONDS + 30))
until grep -q "cifar_mpi ended with exit status" "$tmp/cancel.out" 2>/dev/null || ((SECONDS > limit)); do sleep 0.3; done
sleep 1
if [[ "$(job_field "${job_of[cancel]:-0}" JobState)" == CANCELLED && "$(job_field "${job_of[cancel]:-0}" Restarts)" == 0 ]] &&
   grep -q "checkpointed after TERM (scancel or the time limit): not requeued" "$tmp/cancel.out"; then
  pass "cancel: a plain scancel leaves a checkpoint and the job CANCELLED, not requeued"
else
  fail "cancel: job ${job_of[cancel]:-?} is $(job_field "${job_of[cancel]:-0}" JobState), Restarts=$(job_field "${job_of[cancel]:-0}" Restarts)" \
       "$(grep -vE ' step |^ +[a-z]' "$tmp/cancel.out" | tail -n 6)"
fi
for p in pre_srun pre_mpirun; do
  expect_job "$p" 90 COMPLETED 0:0 || continue
  o="$tmp/$p.out"; r=$(results_of "$p")
  restarts=$(job_field "${job_of[$p]}" Restarts)
  if [[ "$restarts" == 1 ]] && grep -q "stop signal: stopped after step" "$o" &&
     grep -q "checkpointed after USR1 (time limit near, or pre-empted): requeueing job" "$o" &&
     grep -q "(restart 1)" "$o" && grep -q "resuming from $r/checkpoint.h5" "$o" &&
     [[ -f "$r/train-0.h5" && -f "$r/train-1.h5" ]]; then
    pass "$p: USR1 -> checkpoint, exit 75, requeued (Restarts=1), resumed: $(grep -o 'stopped after step [0-9]* (global step [0-9]*)' "$o" | head -n 1)"
  else
    fail "$p: no clean pre-emption (Restarts=$restarts)" "$(grep -vE ' step |^ +[a-z]' "$o" | tail -n 12)"
  fi
done
if expect_job ref 90 COMPLETED 0:0; then
  for p in pre_srun pre_mpirun; do
    if "$PY" - "$tmp/ref.h5" "$tmp/$p.h5" <<'EOF'
import sys, h5py, numpy as np
a, b = (h5py.File(f, "r") for f in sys.argv[1:3])
names = []
a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
assert names, "no datasets"
for n in names:
    x, y = a[n][()], b[n][()]
    assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), n
other = []
b.visititems(lambda n, o: other.append(n) if isinstance(o, h5py.Dataset) else None)
assert sorted(other) == sorted(names)
EOF
    then pass "$p: final weights bitwise equal to the uninterrupted job's"
    else fail "$p: final weights differ from the uninterrupted job's (or are missing)"
    fi
  done
fi

# ---- training runs and scaling studies -----------------------------------------------------------
for l in srun mpirun; do
  for n in 2 4; do
    j="train_${l}_np$n"
    expect_job "$j" 60 COMPLETED 0:0 || continue
    if [[ -f "$(results_of "$j")/train-0.h5" ]] && grep -q "$n task(s) x 1 cpu(s) on .* with $l" "$tmp/$j.out" &&
       grep -q "summary: $n rank(s)" "$tmp/$j.out"; then
      pass "$j: $n ranks with $l, exit 0, metrics written"
    else
      fail "$j: output or metrics missing" "$(tail -n 8 "$tmp/$j.out")"
    fi
  done
  j="scaling_$l"
  expect_job "$j" 60 COMPLETED 0:0 || continue
  r=$(results_of "$j"); missing=()
  for f in np1.h5 np2.h5 np4.h5 speedup.png time_breakdown.png baseline_vs_distributed.png step_distribution.png summary.md; do
    [[ -s "$r/$f" ]] || missing+=("$f")
  done
  if ((${#missing[@]} == 0)); then pass "$j: np1/2/4.h5, four plots and summary.md in results/<job id>/"
  else fail "$j: missing ${missing[*]}" "$(tail -n 8 "$tmp/$j.out")"; fi
done

# ---- failures are failed jobs --------------------------------------------------------------------
if expect_job bad_option 60 FAILED nonzero; then
  ec=$(job_field "${job_of[bad_option]}" ExitCode)
  [[ "$ec" != 0:0 ]] && grep -q "no-such-option" "$tmp/bad_option.out" &&
    pass "bad_option: job FAILED with exit code $ec, the error in its output" ||
    fail "bad_option: exit code $ec" "$(tail -n 5 "$tmp/bad_option.out")"
fi
if expect_job bad_step 60 FAILED nonzero; then
  r=$(results_of bad_step)
  [[ -f "$r/np1.h5" && ! -e "$r/np3.h5" && ! -e "$r/summary.md" ]] &&
    pass "bad_step: a 3-task step in a 2-task job fails the job ($(job_field "${job_of[bad_step]}" ExitCode)); nothing runs after it" ||
    fail "bad_step: went on after the failing step" "$(ls "$r" 2>&1)"
fi

# ---- why the scripts use --mpi=pmix (or mpirun) ---------------------------------------------------
for how in --mpi=pmi2 plain; do
  mpi=(); [[ $how == plain ]] || mpi=("$how")
  timeout 60 srun "${mpi[@]}" --ntasks=2 "$bin" --data-dir "$tmp/data" --max-steps 1 --no-eval \
    --metrics "$tmp/x.h5" >"$tmp/srun-$how.log" 2>&1
  rc=$?
  if [[ $rc -ne 0 && $rc -ne 124 ]] && grep -q "OMPI was not built with SLURM's PMI support" "$tmp/srun-$how.log"; then
    pass "srun ${mpi[*]:-(no --mpi)} of cifar_mpi fails in MPI_Init (exit $rc): \"OMPI was not built with SLURM's PMI support\""
  else
    fail "srun ${mpi[*]:-(no --mpi)}: expected the documented failure, got exit $rc" "$(head -n 5 "$tmp/srun-$how.log")"
  fi
done

# ---- nothing left behind ------------------------------------------------------------------------
KEEP_DIR="${KEEP_TMP:-}" "$src/tools/slurm_cluster.sh" stop "$cluster"
sleep 0.5
left=$(pgrep -f "$cluster" || true)
for f in $(grep -lzxF "CIFAR_SLURM_CLUSTER=$cluster" /proc/[0-9]*/environ 2>/dev/null); do
  pid=${f#/proc/}; left+=" ${pid%/environ}"
done
left=$(echo $left)
cluster=
[[ -z "$left" ]] && pass "cluster stopped: no daemon, step or rank left" ||
  fail "processes left after stop: $left" "$(ps -o pid,args -p "${left// /,}" 2>/dev/null)"
echo "total: $((SECONDS - start_time)) s"
# shellcheck disable=SC2154  # failures: counted by common.bash's fail
((failures == 0))
