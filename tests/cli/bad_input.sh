#!/usr/bin/env bash
# The program on bad input: each case must exit non-zero, promptly (timeout 60 s), with exactly one
# line on stderr beginning "cifar_mpi: error:" that names the offending thing. Uses small fake
# CIFAR-10 files of its own; the real data set is not needed.
#   bash tests/cli/bad_input.sh <cifar_mpi binary> <source dir> <data dir (ignored)>
# Prints one PASS/FAIL/SKIP line per case; exits 1 if any case failed.
set -u

BIN=${1:?usage: bad_input.sh <cifar_mpi> <source dir> <data dir>}
BIN=$(realpath "$BIN")
[[ -x $BIN ]] || { echo "FAIL: $BIN is not an executable"; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_bad_input.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1  # nothing the program writes (results/, metrics) lands in the source tree
export OMP_NUM_THREADS=1

source "${2:?usage: <cifar_mpi> <source dir> <data dir>}/tests/cli/common.bash"
PY=$(python_with h5py numpy)
PYPLAIN=$(command -v python3 || command -v /usr/bin/python3)


# make_data DIR RECORDS_PER_FILE: data_batch_1..5.bin and test_batch.bin of random records.
make_data() {
  mkdir -p "$1"
  "$PYPLAIN" - "$1" "$2" <<'EOF'
import os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    with open(os.path.join(d, name), "wb") as f:
        for _ in range(n):
            f.write(bytes([rng.randrange(10)]) + rng.randbytes(3072))
EOF
}

# Every case writes its own metrics file (if it gets that far): expect_error (common.bash) puts the
# case number for @RUN@.
COMMON=(--metrics "$TMP/metrics@RUN@.h5")

GOOD="$TMP/good"
make_data "$GOOD" 100

# --- data -------------------------------------------------------------------------------------
expect_error "nonexistent --data-dir" "$TMP/no_such_dir" -- --data-dir "$TMP/no_such_dir"

TRUNC="$TMP/truncated"
make_data "$TRUNC" 100
head -c $((3073 * 50 + 1000)) "$GOOD/data_batch_1.bin" >"$TRUNC/data_batch_1.bin"
expect_error "truncated data_batch_1.bin" "$TRUNC/data_batch_1.bin" "truncated" -- --data-dir "$TRUNC" --max-steps 1

BADLABEL="$TMP/badlabel"
make_data "$BADLABEL" 100
# record 7 of data_batch_3.bin gets label 10
printf '\x0a' | dd of="$BADLABEL/data_batch_3.bin" bs=1 seek=$((3073 * 7)) conv=notrunc status=none
expect_error "label out of range" "$BADLABEL/data_batch_3.bin" "record 7" "label 10" -- --data-dir "$BADLABEL" --max-steps 1

MISSING="$TMP/missing_file"
make_data "$MISSING" 100
rm "$MISSING/data_batch_4.bin"
expect_error "missing data_batch_4.bin" "$MISSING/data_batch_4.bin" -- --data-dir "$MISSING" --max-steps 1

# --- options ----------------------------------------------------------------------------------
expect_error "--batch-size 0" "--batch-size" -- --data-dir "$GOOD" --batch-size 0
expect_error "--data-dir naming a data file" "$GOOD/data_batch_1.bin is a file" -- --data-dir "$GOOD/data_batch_1.bin"
mkdir -p "$TMP/a_folder"
expect_error "--resume naming a folder" "$TMP/a_folder: is a folder" -- --data-dir "$GOOD" --resume "$TMP/a_folder"
for opt in --help --version; do
  if [[ -w /dev/full ]]; then
    "$BIN" "$opt" >/dev/full 2>"$TMP/full.err"
    rc=$?
    if ((rc != 0)) && grep -q "cannot write" "$TMP/full.err"; then pass "$opt into a full disk: exit $rc"
    else fail "$opt into a full disk: exit $rc, want non-zero and a line" "$(head -n 2 "$TMP/full.err")"; fi
  fi
done
# --meta keys become metrics attributes after the training: a clash is refused before it
expect_error "--meta site=a --meta site=b" "--meta key 'site' given twice" -- \
  --data-dir "$GOOD" --max-steps 1 --no-eval --meta site=a --meta site=b
expect_error "--meta conv_algo.conv1=x" "--meta conv_algo.conv1=x" "meta.conv_algo" -- \
  --data-dir "$GOOD" --max-steps 1 --no-eval --meta conv_algo.conv1=x
# a checkpoint past the run's end trains nothing: refused, not a run of no steps
if timeout 60 "$BIN" --data-dir "$GOOD" --max-steps 3 --batch-size 32 --no-eval --checkpoint "$TMP/ckpt3.h5" \
     --metrics "$TMP/ckpt3.m.h5" >"$TMP/ckpt3.out" 2>&1; then
  expect_error "--resume a step-3 checkpoint with --max-steps 2" "$TMP/ckpt3.h5" "global step 3" \
    "past this run's end at step 2" -- --data-dir "$GOOD" --max-steps 2 --batch-size 32 --no-eval --resume "$TMP/ckpt3.h5"
  # --init-weights beside --resume is not read (the checkpoint's weights win) and a line says so
  timeout 60 "$BIN" --data-dir "$GOOD" --max-steps 4 --batch-size 32 --no-eval --resume "$TMP/ckpt3.h5" \
    --init-weights "$TMP/no_such_init.h5" --metrics "$TMP/iw.m.h5" >"$TMP/iw.out" 2>&1
  rc=$?
  if ((rc == 0)) && grep -q "init-weights $TMP/no_such_init.h5 is not used" "$TMP/iw.out"; then
    pass "--init-weights with --resume: not read, said so"
  else
    fail "--init-weights with --resume: exit $rc, want 0 and a line saying it is not used" "$(tail -n 2 "$TMP/iw.out")"
  fi
else
  fail "making a 1-rank checkpoint" "$(tail -n 3 "$TMP/ckpt3.out")"
fi
expect_error "--micro-batch -1" "--micro-batch" -- --data-dir "$GOOD" --micro-batch -1
expect_error "--micro-batch x" "--micro-batch" -- --data-dir "$GOOD" --micro-batch x
expect_error "--seed 99999999999999999999" "--seed" "out of range" "9.2e+18" -- --data-dir "$GOOD" \
  --seed 99999999999999999999
expect_error "--seed 1e3" "--seed" "'1e3' is not a whole number" -- --data-dir "$GOOD" --seed 1e3
expect_error "unknown option --batchsize" "--batchsize" -- --data-dir "$GOOD" --batchsize 8
expect_error "--balance foo" "--balance" "foo" -- --data-dir "$GOOD" --balance foo
expect_error "--balance dynamic --micro-batch 8" "--balance dynamic" "--micro-batch 8" -- --data-dir "$GOOD" \
  --balance dynamic --micro-batch 8
expect_error "--sync-bn --balance dynamic" "--sync-bn" "--balance dynamic" -- --data-dir "$GOOD" \
  --sync-bn --balance dynamic
expect_error "--allreduce foo" "--allreduce" "foo" -- --data-dir "$GOOD" --allreduce foo
# the reduction plan: --bucket-mb is auto or a number in range; --link-model a readable file
expect_error "--bucket-mb abc" "--bucket-mb" "abc" -- --data-dir "$GOOD" --bucket-mb abc
expect_error "--bucket-mb 0" "--bucket-mb" "auto or a number" -- --data-dir "$GOOD" --bucket-mb 0
expect_error "--bucket-mb Auto" "--bucket-mb" "Auto" -- --data-dir "$GOOD" --bucket-mb Auto
# --checkpoint-every: steps or a time with its unit (s, m, h)
expect_error "--checkpoint-every 10x" "--checkpoint-every" "10x" -- --data-dir "$GOOD" --checkpoint-every 10x
expect_error "--checkpoint-every -5" "--checkpoint-every" "-5" -- --data-dir "$GOOD" --checkpoint-every -5
expect_error "--checkpoint-every 0s" "--checkpoint-every" "0s" -- --data-dir "$GOOD" --checkpoint-every 0s
expect_error "--checkpoint-every s" "--checkpoint-every" -- --data-dir "$GOOD" --checkpoint-every s
expect_error "--link-model missing" "--link-model" "$TMP/no_such_link" -- --data-dir "$GOOD" --link-model "$TMP/no_such_link"
# an empty file or folder name is refused (it used to mean "none" or the default, silently)
expect_error "--metrics ''" "--metrics" "an empty name" -- --data-dir "$GOOD" --metrics ""
expect_error "--init-weights ''" "--init-weights" "an empty name" -- --data-dir "$GOOD" --init-weights ""
expect_error "--data-dir ''" "--data-dir" "an empty name" -- --data-dir ""
printf 'ring 1e-5 banana ring\n' >"$TMP/junk_link.txt"  # refused at start-up even where no plan reads it (one rank)
expect_error "--link-model with a bad line, one rank" "junk_link.txt:1" -- --data-dir "$GOOD" --link-model "$TMP/junk_link.txt" \
  --max-steps 1 --no-eval
# time to accuracy: each bad value or combination names its option
expect_error "--compress zip" "--compress" "zip" -- --data-dir "$GOOD" --compress zip
expect_error "--compress-rank 0" "--compress-rank" -- --data-dir "$GOOD" --compress powersgd --compress-rank 0
expect_error "--compress-start -3" "--compress-start" "-3" -- --data-dir "$GOOD" --compress powersgd --compress-start -3
expect_error "--local-sgd-start -1" "--local-sgd-start" "-1" -- --data-dir "$GOOD" --local-sgd 4 --local-sgd-start -1
expect_error "--local-sgd -2" "--local-sgd" -- --data-dir "$GOOD" --local-sgd -2
expect_error "--local-sgd with --compress" "--local-sgd 4" "--compress powersgd" -- --data-dir "$GOOD" \
  --local-sgd 4 --compress powersgd
expect_error "--target-accuracy 1.5" "--target-accuracy" "1.5" -- --data-dir "$GOOD" --target-accuracy 1.5
expect_error "--warmup-epochs -1" "--warmup-epochs" -- --data-dir "$GOOD" --warmup-epochs -1
expect_error "--lr-schedule linear" "--lr-schedule" "linear" -- --data-dir "$GOOD" --lr-schedule linear
expect_error "--target-accuracy with --no-eval" "--target-accuracy" "needs --eval" -- \
  --data-dir "$GOOD" --target-accuracy 0.7 --no-eval
expect_error "--warmup-epochs with onecycle" "--warmup-epochs" "onecycle" -- \
  --data-dir "$GOOD" --lr-schedule onecycle --warmup-epochs 1 --epochs 3
expect_error "--lr-schedule step without --lr-step-epochs" "--lr-step-epochs" -- --data-dir "$GOOD" --lr-schedule step
expect_error "--lr-step-epochs without --lr-schedule step" "--lr-step-epochs 2" "needs --lr-schedule step" -- \
  --data-dir "$GOOD" --lr-step-epochs 2
# a pass larger than the rank's batch (it was clamped to the batch without a word)
expect_error "--micro-batch 256 with --batch-size 128" "--micro-batch 256" "per-rank batch" "at most 128" -- \
  --data-dir "$GOOD" --batch-size 128 --micro-batch 256
expect_error "--micro-batch 64 with --global-batch 32" "--micro-batch 64" "per-rank batch 32" "--global-batch 32" -- \
  --data-dir "$GOOD" --global-batch 32 --micro-batch 64 --max-steps 1 --no-eval
expect_error "--augment crop" "--augment" "crop" -- --data-dir "$GOOD" --augment crop
expect_error "--lr-scaling cube" "--lr-scaling" "cube" -- --data-dir "$GOOD" --lr-scaling cube
expect_error "--weight-decay -1" "--weight-decay" -- --data-dir "$GOOD" --weight-decay -1
expect_error "--lr-gamma 0" "--lr-gamma" -- --data-dir "$GOOD" --lr-gamma 0
expect_error "--eval-every -5" "--eval-every" -- --data-dir "$GOOD" --eval-every -5
expect_error "--nesterov maybe" "--nesterov" -- --data-dir "$GOOD" --nesterov maybe
# a switch is --name / --no-name: a value that is no old boolean spelling, or any value where the
# switch never took one, is refused naming both
expect_error "--eval maybe" "--eval maybe" "--no-eval" -- --data-dir "$GOOD" --eval maybe
expect_error "--eval=maybe" "--eval=maybe" "--no-eval" -- --data-dir "$GOOD" --eval=maybe
expect_error "--force yes" "--force yes" "--no-force" -- --data-dir "$GOOD" --force yes
expect_error "--no-eval false" "--no-eval false" "give --eval or --no-eval" -- --data-dir "$GOOD" --no-eval false
printf 'overlap = "maybe"\n' >"$TMP/bad_switch.toml"
expect_error "overlap = \"maybe\" in a --config file" "overlap" "maybe" -- --config "$TMP/bad_switch.toml" --data-dir "$GOOD"
# a number is no boolean (CLI11 read overlap = 2 as on, -1 as off)
printf 'overlap = 2\n' >"$TMP/two_switch.toml"
expect_error "overlap = 2 in a --config file" "$TMP/two_switch.toml" "'overlap'" "'2'" -- \
  --config "$TMP/two_switch.toml" --data-dir "$GOOD"
# two batch sizes on one command line
expect_error "--batch-size with --global-batch" "--batch-size and --global-batch" -- \
  --data-dir "$GOOD" --batch-size 32 --global-batch 64
# ... nor in one file
printf 'batch-size = 64\nglobal-batch = 128\n' >"$TMP/both_batches.toml"
expect_error "batch-size and global-batch in one --config file" "$TMP/both_batches.toml" "batch-size" "global-batch" -- \
  --config "$TMP/both_batches.toml" --data-dir "$GOOD"
expect_error "--conv-algo fast" "--conv-algo" "fast" -- --data-dir "$GOOD" --conv-algo fast
expect_error "--compute-dtype fp64" "--compute-dtype" "fp64" -- --data-dir "$GOOD" --compute-dtype fp64
expect_error "--stall-timeout -1" "--stall-timeout" -- --data-dir "$GOOD" --stall-timeout -1
printf 'epochs = 2\nbatchsize = 3\n' >"$TMP/bad.toml"
expect_error "unknown key in --config file" "$TMP/bad.toml" "line 2" "batchsize" -- --config "$TMP/bad.toml" --data-dir "$GOOD"
# a --config file's faults: each names the file, then the line or the key and the value
printf 'lr = "abc"\n' >"$TMP/lr_word.toml"
expect_error "lr = \"abc\" in a --config file" "$TMP/lr_word.toml" "key 'lr'" "'abc' is not a number" -- \
  --config "$TMP/lr_word.toml" --data-dir "$GOOD"
printf 'lr = 0.1\nlr = 0.2\n' >"$TMP/lr_twice.toml"
expect_error "lr set twice in a --config file" "$TMP/lr_twice.toml" "key 'lr'" "line 2" -- \
  --config "$TMP/lr_twice.toml" --data-dir "$GOOD"
printf '[train]\nlr = 0.1\n' >"$TMP/table.toml"
expect_error "a [table] in a --config file" "$TMP/table.toml" "[train]" "not supported" -- \
  --config "$TMP/table.toml" --data-dir "$GOOD"
printf 'epochs = 1\nlr = \n' >"$TMP/no_value.toml"
expect_error "lr = (no value) in a --config file" "$TMP/no_value.toml" "line 2" "'lr ='" -- \
  --config "$TMP/no_value.toml" --data-dir "$GOOD"
expect_error "missing --config file" "$TMP/none.toml" -- --config "$TMP/none.toml" --data-dir "$GOOD"

# --- weights ----------------------------------------------------------------------------------
expect_error "--init-weights missing file" "$TMP/no_such_weights.h5" -- \
  --data-dir "$GOOD" --init-weights "$TMP/no_such_weights.h5" --max-steps 1 --no-eval

WEIGHTS="$TMP/weights.h5"
timeout 120 "$BIN" --data-dir "$GOOD" --max-steps 1 --no-eval --save-weights "$WEIGHTS" \
  --metrics "$TMP/metrics_save.h5" >"$TMP/save.out" 2>"$TMP/save.err"
save_rc=$?
if [[ $save_rc -ne 0 || ! -s $WEIGHTS ]]; then
  fail "making a valid weights file with --save-weights (exit $save_rc)" "$(head -n 5 "$TMP/save.err")"
elif [[ -z $PY ]]; then
  echo "SKIP: --init-weights mis-shaped file (no python3 with h5py)"
else
  "$PY" - "$WEIGHTS" "$TMP/misshaped.h5" "$TMP/missing_tensor.h5" "$TMP/nan.h5" "$TMP/grad_overflow.h5" <<'EOF'
import shutil, sys, h5py, numpy as np
good, bad, missing, nan, overflow = sys.argv[1:6]
shutil.copy(good, nan)
with h5py.File(nan, "r+") as f:
    b = f["fc1.bias"][()]
    b[3] = np.nan
    f["fc1.bias"][...] = b
# Finite weights whose first step has a finite loss but an infinite gradient: fc1's output is
# 1e-37 everywhere (zero weights), fc2 scales it by +-1e38 (logits +-1280: a finite loss), and
# fc1.weight's gradient, 1e38 / batch x conv2's outputs (>= 100, from its bias) summed over the
# batch, overflows. fc1's input gradient is 0 (zero weights): the conv gradients stay finite.
shutil.copy(good, overflow)
with h5py.File(overflow, "r+") as f:
    f["fc1.weight"][...] = 0
    f["fc1.bias"][...] = 1e-37
    w = np.zeros((10, 128), np.float32)
    w[0], w[1] = 1e38, -1e38
    f["fc2.weight"][...] = w
    f["fc2.bias"][...] = 0
    f["conv2.bias"][...] = 100
shutil.copy(good, bad)
with h5py.File(bad, "r+") as f:
    w = f["conv2.weight"][()]            # [64, 32, 3, 3]
    del f["conv2.weight"]
    f["conv2.weight"] = w.reshape(32, 64, 3, 3)
shutil.copy(good, missing)
with h5py.File(missing, "r+") as f:
    del f["fc1.bias"]
EOF
  expect_error "--init-weights mis-shaped tensor" "$TMP/misshaped.h5" "conv2.weight" -- \
    --data-dir "$GOOD" --init-weights "$TMP/misshaped.h5" --max-steps 1 --no-eval
  expect_error "--init-weights missing tensor" "$TMP/missing_tensor.h5" "fc1.bias" -- \
    --data-dir "$GOOD" --init-weights "$TMP/missing_tensor.h5" --max-steps 1 --no-eval
  expect_error "--init-weights holding a NaN" "$TMP/nan.h5" "fc1.bias" "non-finite value (nan)" -- \
    --data-dir "$GOOD" --init-weights "$TMP/nan.h5" --max-steps 1 --no-eval
  # and the valid one is accepted
  if timeout 120 "$BIN" --data-dir "$GOOD" --init-weights "$WEIGHTS" --max-steps 1 --no-eval \
       --metrics "$TMP/metrics_load.h5" >"$TMP/load.out" 2>"$TMP/load.err"; then
    pass "--init-weights valid file is accepted"
  else
    fail "--init-weights valid file is rejected" "$(head -n 5 "$TMP/load.err")"
  fi
fi
# The file is only written at the end of training, so this error comes after the steps.
expect_error "--save-weights into a missing directory" "$TMP/no_such_dir/w.h5" -- \
  --data-dir "$GOOD" --save-weights "$TMP/no_such_dir/w.h5" --max-steps 1 --no-eval
if [[ -e $TMP/no_such_dir ]]; then fail "--save-weights into a missing directory: the directory was created"; fi
echo "not an HDF5 file" >"$TMP/text.h5"
expect_error "--init-weights non-HDF5 file" "$TMP/text.h5" -- \
  --data-dir "$GOOD" --init-weights "$TMP/text.h5" --max-steps 1 --no-eval
if [[ -s $WEIGHTS ]]; then
  head -c $(($(stat -c %s "$WEIGHTS") / 2)) "$WEIGHTS" >"$TMP/truncated_weights.h5"
  expect_error "--init-weights truncated HDF5 file" "$TMP/truncated_weights.h5" "truncated or corrupt" -- \
    --data-dir "$GOOD" --init-weights "$TMP/truncated_weights.h5" --max-steps 1 --no-eval
fi

# --- checkpoints --------------------------------------------------------------------------------
CKPT="$TMP/ckpt.h5"
if timeout 120 "$BIN" --data-dir "$GOOD" --max-steps 2 --batch-size 32 --no-eval --checkpoint "$CKPT" \
     --metrics "$TMP/metrics_ckpt.h5" >"$TMP/ckpt.out" 2>&1 && [[ -s $CKPT ]]; then
  head -c $(($(stat -c %s "$CKPT") / 2)) "$CKPT" >"$TMP/truncated_ckpt.h5"
  expect_error "--resume truncated checkpoint" "$TMP/truncated_ckpt.h5" "truncated or corrupt" -- \
    --data-dir "$GOOD" --batch-size 32 --no-eval --max-steps 4 --resume "$TMP/truncated_ckpt.h5"
  expect_error "--resume with another --lr" "$CKPT" "lr = 0.01, this run has lr = 0.02" -- \
    --data-dir "$GOOD" --batch-size 32 --no-eval --max-steps 4 --resume "$CKPT" --lr 0.02
  expect_error "--resume a weights file" "$WEIGHTS" "not a cifar_mpi checkpoint" -- \
    --data-dir "$GOOD" --batch-size 32 --no-eval --max-steps 4 --resume "$WEIGHTS"
else
  fail "making a checkpoint with --checkpoint" "$(tail -n 3 "$TMP/ckpt.out")"
fi

# --- numerical faults: NaN/Inf in the loss, a gradient or the weights --------------------------
# The message names the step, the rank and the tensor ("loss" or a state_dict key); the run ends
# before that step's checkpoint; no --save-weights file; the last checkpoint stays finite.
BIG="$TMP/big"
make_data "$BIG" 300
# no_bad_output NAME DIR: DIR has no weights file, no temporary file, and the checkpoint c.h5
# (if any) holds finite values only.
no_bad_output() {
  local name=$1 dir=$2 stray
  stray=$(cd "$dir" && ls -A | grep -E '^w\.h5|\.tmp\.' | tr '\n' ' ')
  if [[ -n $stray ]]; then
    fail "$name: left $stray"
  elif [[ -e $dir/c.h5 && -n $PY ]] && ! "$PY" - "$dir/c.h5" <<'EOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    bad = [g + "/" + k for g in ("weights", "momentum") for k in f[g] if not np.isfinite(f[g][k][()]).all()]
sys.exit(1 if bad else 0)
EOF
  then
    fail "$name: the checkpoint left behind holds non-finite values"
  else
    pass "  ... no weights file, no temporary file$([[ -e $dir/c.h5 ]] && echo ', the checkpoint left holds finite values only')"
  fi
}
mkdir -p "$TMP/div1"
expect_error "--lr 1e6 stops on a non-finite value" "non-finite" "at epoch 1 step" "on rank 0" -- \
  --data-dir "$BIG" --lr 1e6 --max-steps 50 --epochs 100 --batch-size 32 --no-eval \
  --checkpoint "$TMP/div1/c.h5" --checkpoint-every 1 --save-weights "$TMP/div1/w.h5"
grep -qE 'non-finite (loss|gradient in [a-z0-9]+\.(weight|bias)|weight in [a-z0-9]+\.(weight|bias))' "$TMP/case$run.err" ||
  fail "--lr 1e6: the message names neither the loss nor a tensor" "$(head -n 1 "$TMP/case$run.err")"
no_bad_output "--lr 1e6" "$TMP/div1"
if [[ -n $PY && -s $TMP/grad_overflow.h5 ]]; then
  mkdir -p "$TMP/div2"
  expect_error "infinite gradient with a finite loss" "non-finite gradient in fc1.weight" "step 1 " "on rank 0" -- \
    --data-dir "$BIG" --init-weights "$TMP/grad_overflow.h5" --max-steps 5 --batch-size 32 --no-eval \
    --checkpoint "$TMP/div2/c.h5" --checkpoint-every 1 --save-weights "$TMP/div2/w.h5"
  if [[ -e $TMP/div2/c.h5 ]]; then fail "  ... a checkpoint was written at the faulty step"; fi
  no_bad_output "infinite gradient" "$TMP/div2"
fi

# --- errors with 2 ranks: every rank must end, within 30 s, non-zero -------------------------
# mpi_expect_error NAME NEEDLE -- ARGS...: exit != 0 within 30 s and a line
# "cifar_mpi: error (rank N): ..." containing NEEDLE (mpirun adds its own MPI_ABORT banner), or,
# for an error all ranks detect together, exactly one line "cifar_mpi: error: ...".
mpi_expect_error() {
  local name="mpirun -np 2 $1" needle=$2
  shift 3
  run=$((run + 1))
  local out="$TMP/mpi$run.out" err="$TMP/mpi$run.err"
  local start=$SECONDS
  timeout 30 mpirun "${MPI_FLAGS[@]}" "$BIN" --metrics "$TMP/metrics$run.h5" "$@" >"$out" 2>"$err"
  local rc=$? took=$((SECONDS - start))
  if [[ $rc -eq 124 ]]; then
    fail "$name: ranks still running after 30 s" "$(head -n 5 "$err")"
  elif [[ $rc -eq 0 ]]; then
    fail "$name: exit code 0"
  elif ! grep -E '^cifar_mpi: error( \(rank [01]\))?: ' "$err" | grep -qF -- "$needle"; then
    fail "$name: no 'cifar_mpi: error (rank N): ...' line naming '$needle' (exit $rc)" "$(head -n 5 "$err")"
  elif grep -q '^cifar_mpi: error: ' "$err" && [[ $(grep -c '^cifar_mpi: error' "$err") -ne 1 ]]; then
    fail "$name: an error all ranks share is printed more than once" "$(grep '^cifar_mpi: error' "$err")"
  else
    pass "$name (exit $rc, ${took}s): $(grep -m1 '^cifar_mpi: error' "$err")"
  fi
}

if command -v mpirun >/dev/null 2>&1; then
  MPI_FLAGS=(-np 2 --oversubscribe --bind-to none)
  [[ $(id -u) -eq 0 ]] && MPI_FLAGS+=(--allow-run-as-root)
  # mpmd_expect_error NAME NEEDLE -- RANK0 ARGS... : RANK1 ARGS...: one rank each with its own
  # arguments (mpirun's MPMD syntax); exit != 0 within 30 s with exactly one line
  # "cifar_mpi: error: ...NEEDLE..." (an error the ranks agree on, printed by rank 0), and a
  # configuration difference is refused at start-up, before the data are loaded.
  mpmd_expect_error() {
    local name="mpirun $1" needle=$2 args0=() args1=() root=()
    shift 3
    while [[ $1 != : ]]; do args0+=("$1"); shift; done
    shift
    args1=("$@")
    [[ $(id -u) -eq 0 ]] && root=(--allow-run-as-root)
    run=$((run + 1))
    local err="$TMP/mpmd$run.err" start=$SECONDS
    timeout 30 mpirun --oversubscribe --bind-to none "${root[@]}" \
      -np 1 "$BIN" --metrics "$TMP/metrics$run.h5" "${args0[@]}" : \
      -np 1 "$BIN" --metrics "$TMP/metrics$run.h5" "${args1[@]}" >"$TMP/mpmd$run.out" 2>"$err"
    local rc=$? took=$((SECONDS - start)) lines
    lines=$(grep -c '^cifar_mpi: error' "$err")
    if [[ $rc -eq 124 ]]; then
      fail "$name: ranks still running after 30 s" "$(head -n 5 "$err")"
    elif [[ $rc -eq 0 ]]; then
      fail "$name: exit code 0"
    elif [[ $lines -ne 1 ]] || ! grep '^cifar_mpi: error: ' "$err" | grep -qF -- "$needle"; then
      fail "$name: want one line 'cifar_mpi: error: ...$needle...' (exit $rc)" "$(head -n 5 "$err")"
    elif [[ $needle == "configuration differs"* ]] && grep -q "data:" "$TMP/mpmd$run.out"; then
      fail "$name: the data were loaded before the refusal"
    else
      pass "$name (exit $rc, ${took}s): $(grep -m1 '^cifar_mpi: error' "$err")"
    fi
  }
  # every rank fails
  mpi_expect_error "nonexistent --data-dir" "$TMP/no_such_dir" -- --data-dir "$TMP/no_such_dir"
  # only rank 0 fails (it alone reads the weights) while rank 1 waits in the broadcast
  mpi_expect_error "--init-weights missing file" "$TMP/no_such_weights.h5" -- \
    --data-dir "$GOOD" --init-weights "$TMP/no_such_weights.h5" --max-steps 1 --no-eval
  # a non-finite value on any rank stops every rank after the same step
  mpi_expect_error "--lr 1e6 stops on a non-finite value" "non-finite" -- \
    --data-dir "$BIG" --lr 1e6 --max-steps 50 --epochs 100 --batch-size 32 --no-eval
  if [[ -n $PY && -s $TMP/grad_overflow.h5 ]]; then
    mpi_expect_error "infinite gradient with a finite loss (overlap on)" "non-finite gradient in fc1.weight" -- \
      --data-dir "$BIG" --init-weights "$TMP/grad_overflow.h5" --max-steps 5 --batch-size 32 --no-eval --overlap
  fi
  # The same weights, but rank 0's data are all of class 0, which these weights already predict
  # with certainty: rank 0's gradients are exactly 0, rank 1's overflow. (--data-dir may differ
  # between ranks, e.g. node-local copies; the MPMD syntax gives each rank its own.)
  if [[ -n $PY && -s $TMP/grad_overflow.h5 ]]; then
    "$PYPLAIN" - "$BIG" "$TMP/class0" <<'EOF'
import os, sys
src, dst = sys.argv[1:3]
os.makedirs(dst, exist_ok=True)
for name in os.listdir(src):
    data = bytearray(open(os.path.join(src, name), "rb").read())
    data[::3073] = bytes(len(data) // 3073)
    open(os.path.join(dst, name), "wb").write(data)
EOF
    common=(--init-weights "$TMP/grad_overflow.h5" --max-steps 5 --batch-size 32 --no-eval)
    mpmd_expect_error "-np 1 (class-0 data) : -np 1: an infinite gradient on rank 1 only" \
      "non-finite gradient in fc1.weight (element 0 is inf) at epoch 1 step 1 (global step 1) on rank 1" -- \
      --data-dir "$TMP/class0" "${common[@]}" : --data-dir "$BIG" "${common[@]}"
  fi
  # --link-model is read (rank 0) where a plan needs it: a bad line, or a missing algorithm
  printf 'ring 1e-5 banana ring\n' >"$TMP/bad_link.txt"
  mpi_expect_error "--link-model with a bad line" "bad_link.txt:1" -- \
    --data-dir "$GOOD" --allreduce auto --link-model "$TMP/bad_link.txt" --max-steps 1 --no-eval
  printf 'ring 1e-5 1e-9 ring\n' >"$TMP/ring_link.txt"
  mpi_expect_error "--link-model without rhd for --allreduce auto" "no line for" -- \
    --data-dir "$GOOD" --allreduce auto --link-model "$TMP/ring_link.txt" --max-steps 1 --no-eval
  # a checkpoint written by 2 ranks, resumed by 1
  if timeout 60 mpirun "${MPI_FLAGS[@]}" "$BIN" --data-dir "$GOOD" --max-steps 2 --batch-size 32 --no-eval \
       --checkpoint "$TMP/ckpt_np2.h5" --metrics "$TMP/metrics_np2.h5" >"$TMP/np2.out" 2>&1; then
    expect_error "--resume a 2-rank checkpoint with 1 rank" "$TMP/ckpt_np2.h5" \
      "world_size = 2, this run has world_size = 1" -- \
      --data-dir "$GOOD" --max-steps 4 --batch-size 32 --no-eval --resume "$TMP/ckpt_np2.h5"
    # another model is named as the reason, not the number of ranks
    expect_error "--resume a 2-rank SimpleCNN checkpoint with 1 rank and --model resnet20" "$TMP/ckpt_np2.h5" \
      "model = SimpleCNN, this run has model = resnet20" -- \
      --data-dir "$GOOD" --max-steps 4 --batch-size 32 --no-eval --model resnet20 --resume "$TMP/ckpt_np2.h5"
  else
    fail "making a 2-rank checkpoint" "$(tail -n 3 "$TMP/np2.out")"
  fi
  # a bad value every rank reads alike is said once, by rank 0, without an abort
  mpmd_expect_error "-np 1 ... --lr -1 : -np 1 ... --lr -1 (said once)" "--lr: must be > 0, got -1" -- \
    --data-dir "$GOOD" --max-steps 1 --no-eval --lr -1 : --data-dir "$GOOD" --max-steps 1 --no-eval --lr -1
  mpmd_expect_error "-np 1 ... --global-batch 7 : -np 1 ... --global-batch 7 (said once)" \
    "--global-batch 7 does not divide evenly across 2 ranks" -- \
    --data-dir "$GOOD" --max-steps 1 --no-eval --global-batch 7 : --data-dir "$GOOD" --max-steps 1 --no-eval --global-batch 7
  # ... and where one rank alone has it, that rank names itself and every rank ends
  run=$((run + 1))
  timeout 30 mpirun "${MPI_FLAGS[@]:2}" \
    -np 1 "$BIN" --data-dir "$GOOD" --max-steps 1 --no-eval --metrics "$TMP/metrics$run.h5" : \
    -np 1 "$BIN" --data-dir "$GOOD" --max-steps 1 --no-eval --lr -1 >"$TMP/mpmd$run.out" 2>"$TMP/mpmd$run.err"
  rc=$?
  if ((rc == 0 || rc == 124)) || [[ $(grep -c '^cifar_mpi: error' "$TMP/mpmd$run.err") != 1 ]] ||
    ! grep -q '^cifar_mpi: error (rank 1): invalid configuration: --lr: must be > 0' "$TMP/mpmd$run.err"; then
    fail "mpirun -np 1 ... : -np 1 ... --lr -1: want one line from rank 1 and a non-zero exit (exit $rc)" \
      "$(head -n 5 "$TMP/mpmd$run.err")"
  else
    pass "mpirun -np 1 ... : -np 1 ... --lr -1 (exit $rc): $(grep -m1 '^cifar_mpi: error' "$TMP/mpmd$run.err")"
  fi
  mpmd_expect_error "-np 1 ... --lr 0.01 : -np 1 ... --lr 0.02" \
    "configuration differs between ranks: rank 1 has lr = 0.02, rank 0 has lr = 0.01" -- \
    --data-dir "$GOOD" --max-steps 1 --no-eval --lr 0.01 : --data-dir "$GOOD" --max-steps 1 --no-eval --lr 0.02
  mpmd_expect_error "-np 1 ... : -np 1 ... --batch-size 16 --overlap" \
    "rank 1 has batch_size = 16, rank 0 has batch_size = 128; rank 1 has overlap = 1, rank 0 has overlap = 0" -- \
    --data-dir "$GOOD" --max-steps 1 --no-eval : --data-dir "$GOOD" --max-steps 1 --no-eval --batch-size 16 --overlap
  mpmd_expect_error "-np 1 ... : -np 1 ... --balance dynamic" \
    "rank 1 has balance = dynamic, rank 0 has balance = static" -- \
    --data-dir "$GOOD" --max-steps 1 --no-eval : --data-dir "$GOOD" --max-steps 1 --no-eval --balance dynamic
  # log_every, force and meta are agreed too (every option the table marks kAgreed)
  mpmd_expect_error "-np 1 ... : -np 1 ... --log-every 7 --force --meta site=x" \
    "rank 1 has log_every = 7, rank 0 has log_every = 50; rank 1 has force = 1, rank 0 has force = 0; rank 1 has meta = site=x, rank 0 has meta = \"\"" -- \
    --data-dir "$GOOD" --max-steps 1 --no-eval : --data-dir "$GOOD" --max-steps 1 --no-eval --log-every 7 --force --meta site=x
else
  echo "SKIP: mpirun cases (no mpirun)"
fi

if ((failures)); then
  echo "bad_input: $failures case(s) failed"
  exit 1
fi
echo "bad_input: all cases passed"
exit 0
