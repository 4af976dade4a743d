#!/usr/bin/env bash
# ResNet-20 against PyTorch, end to end: from the same initial weights (the standard kaiming
# initialisation, tests/cli/resnet20_vs_torch.py init), SGD steps of `cifar_mpi --model resnet20`
# (lr 0.01, momentum 0.9, global batch 128 of a small fake CIFAR-10 set in file order, no
# augmentation, one thread) must land where PyTorch's land: every weight and every BatchNorm
# running mean and variance, after 1 step within 1e-5 max(largest |torch|, 1) and after 3 steps
# within 5e-3 max(largest |torch|, 0.05) of each tensor (resnet20_vs_torch.py says why, with
# PyTorch's own differences):
#   - 1 rank x 128;
#   - 2 ranks x 64 against PyTorch DDP: rank r takes positions r, r+2, ... of each global batch,
#     each rank's BatchNorm normalises over its own 64, the running statistics follow rank 0's;
#   - 2 ranks x 64 with --sync-bn against PyTorch in one process over the whole 128 (SyncBatchNorm
#     normalises over the global batch, so it is one process's BatchNorm over the union batch).
#   bash tests/cli/resnet20_vs_torch.sh <cifar_mpi binary> <source dir> <data dir (ignored)>
# Prints one PASS/FAIL line per case; exits 1 if any case failed, 77 (skip) without a python3
# with torch, h5py and numpy, or a cifar_mpi without --model.
set -u

BIN=${1:?usage: resnet20_vs_torch.sh <cifar_mpi> <source dir> <data dir>}
SRC=${2:?usage: resnet20_vs_torch.sh <cifar_mpi> <source dir> <data dir>}
BIN=$(realpath "$BIN")
SRC=$(realpath "$SRC")
[[ -x $BIN ]] || { echo "FAIL: $BIN is not an executable"; exit 1; }

source "$SRC/tests/cli/common.bash"
"$BIN" --help 2>&1 | grep -q -- "--model" || { echo "SKIP: this cifar_mpi has no --model"; exit 77; }
# PyTorch, the temporary folder, 5 files x 128 random records (3 steps of 128 read the first three
# files in order), ResNet-20's initial weights from seed 3 in $INIT
against_torch_setup resnet20_vs_torch resnet20_vs_torch.py
GLOBAL_BATCH=128
ARGS=(--model resnet20 --data-dir "$DATA" --init-weights "$INIT" --no-shuffle --augment none --lr 0.01
      --momentum 0.9 --threads 1 --no-eval --log-every 1)

# resnet20_case STEPS NP [TORCH_NP [OPTIONS...]]: cifar_mpi on NP ranks x 128/NP for STEPS steps
# (with OPTIONS), then compared with PyTorch's STEPS steps on TORCH_NP (default NP) simulated DDP ranks.
resnet20_case() {
  local steps=$1 np=$2 torch_np=${3:-$2} verdict rc
  shift $(($# < 3 ? $# : 3))
  local name="s${steps}_np${np}${1:+_sync}" what="np $np x $((GLOBAL_BATCH / np))${1:+ $*}, $steps step(s)"
  train_case "$name" "$np" -- --max-steps "$steps" --batch-size $((GLOBAL_BATCH / np)) "$@"
  rc=$?
  if ((rc)); then
    fail "$what: cifar_mpi exit code $rc" "$(tail -n 3 "$TMP/$name.err")"
    return
  fi
  if verdict=$("$PY" "$SRC/tests/cli/resnet20_vs_torch.py" compare "$DATA" "$INIT" "$TMP/$name.w.h5" "$steps" \
    "$GLOBAL_BATCH" "$torch_np" 2>&1); then
    pass "$what: $verdict"
  else
    local lines
    mapfile -t lines <<<"$verdict"
    fail "$what: against PyTorch" "${lines[@]}"
  fi
}

resnet20_case 1 1
resnet20_case 3 1
resnet20_case 1 2
resnet20_case 3 2
resnet20_case 1 2 1 --sync-bn
resnet20_case 3 2 1 --sync-bn

if ((failures)); then
  echo "resnet20_vs_torch: $failures case(s) failed"
  exit 1
fi
echo "resnet20_vs_torch: all cases passed"
exit 0
