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
# And tools/score_weights.py: a resnet20 weights file (told by its datasets) scores what the program
# evaluates, with BatchNorm's running statistics; a simplecnn one too; --model naming the other
# network, a metrics file and a missing file are refused in one line naming the file.
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

# --- tools/score_weights.py scores a ResNet-20 weights file as the program evaluates it ----------
# BatchNorm in inference mode must normalise with the file's running statistics. So that this
# shows in the accuracy: test images of varied brightness and contrast; initial running statistics
# far from the data's; one step at lr 1e-30 (run a), which moves the running statistics only; then
# fc rescaled and centred on those images' features, so that the predictions spread over the
# classes, and the test labels set to PyTorch's predictions in inference mode. Run b, from those
# weights, ends where they are: the program must score 100%, and so must score_weights.py, where
# batch statistics would get most labels wrong.
mkdir -p "$TMP/score"
ln -sf "$DATA"/data_batch_*.bin "$TMP/score/"
"$PY" - "$INIT" "$TMP/score" <<'EOF_PY' || fail "score_weights: making its test images and weights"
import sys
import h5py, numpy as np
rng = np.random.default_rng(5)
n = 200
img = np.clip(rng.uniform(0, 255, (n, 3, 1, 1)) + rng.uniform(0, 120, (n, 3, 1, 1))
              * rng.standard_normal((n, 3, 32, 32)), 0, 255).astype(np.uint8)
np.concatenate([np.zeros((n, 1), np.uint8), img.reshape(n, -1)], 1).tofile(f"{sys.argv[2]}/test_batch.bin")
with h5py.File(sys.argv[1], "r") as f, h5py.File(f"{sys.argv[2]}/init.h5", "w") as g:
    for k in f:
        a = f[k][()]
        if k.endswith("running_mean"):
            a = rng.normal(0, 0.5, a.shape).astype(a.dtype)
        elif k.endswith("running_var"):
            a = rng.uniform(0.5, 2, a.shape).astype(a.dtype)
        g[k] = a
EOF_PY
SCORE=(env PYTHONPATH="$SRC/tools" "$PY" -m cifar_tools.score_weights)
score_run() {  # score_run NAME: one step from score/init.h5 that moves the running statistics only
  "$BIN" --model resnet20 --data-dir "$TMP/score" --init-weights "$TMP/score/init.h5" --no-shuffle --augment none \
    --lr 1e-30 --max-steps 1 --batch-size 32 --threads 1 --save-weights "$TMP/$1.w.h5" >"$TMP/$1.out" 2>&1
}
if score_run score_a && "$PY" - "$SRC/tools" "$TMP/score_a.w.h5" "$TMP/score" >"$TMP/relabel.out" 2>&1 <<'EOF_PY'
import sys
sys.path.insert(0, sys.argv[1])
import h5py, numpy as np, torch
from cifar_tools import score_weights as s
weights, d = sys.argv[2:4]
net = s.load_net(weights, "resnet20")
x, _ = s.load_test(d)
feats = []
net.fc.register_forward_hook(lambda m, i, o: feats.append(i[0].numpy()))
with torch.no_grad():
    net(torch.from_numpy(x))
f, w = feats[0], net.fc.weight.detach().numpy()
w = (w / ((f - f.mean(0)) @ w.T).std(0)[:, None]).astype(np.float32)
b = (-(f.mean(0) @ w.T)).astype(np.float32)
with torch.no_grad():
    net.fc.weight.copy_(torch.from_numpy(w))
    net.fc.bias.copy_(torch.from_numpy(b))
    infer = net(torch.from_numpy(x)).argmax(1).numpy()
    batch = net.train()(torch.from_numpy(x)).argmax(1).numpy()
agree, classes = (infer == batch).mean(), len(set(infer))
# the check is only as good as these
assert agree < 0.5 and classes >= 5, f"batch statistics predict {100 * agree:.1f}% alike, {classes} classes: no test"
with h5py.File(f"{d}/init.h5", "r+") as h:
    h["fc.weight"][...] = w
    h["fc.bias"][...] = b
rec = np.fromfile(f"{d}/test_batch.bin", np.uint8).reshape(-1, 3073)
rec[:, 0] = infer
rec.tofile(f"{d}/test_batch.bin")
print(f"{classes} classes predicted; batch statistics would score {100 * agree:.1f}%")
EOF_PY
then
  score_run score_b
  prog=$(awk '/final test accuracy/ {print $4}' "$TMP/score_b.out")
  mine=$("${SCORE[@]}" "$TMP/score_b.w.h5" --data-dir "$TMP/score" 2>&1)
  if [[ $prog == 100.00% && $mine == "test accuracy 100.00% (200 images)" ]]; then
    pass "score_weights.py on a resnet20 weights file: $mine, as the program ($(cat "$TMP/relabel.out"))"
  else
    fail "score_weights.py on a resnet20 weights file: program $prog, score_weights.py '$mine'" \
      "$(tail -n 2 "$TMP/score_b.out")"
  fi
else
  fail "score_weights: the first resnet20 run, or labelling its predictions" "$(tail -n 3 "$TMP/score_a.out")" \
    "$(tail -n 3 "$TMP/relabel.out")"
fi
# the reference CNN's weights, detected as such, score what the program reported
"$BIN" --data-dir "$DATA" --max-steps 2 --batch-size 32 --threads 1 --save-weights "$TMP/cnn.w.h5" \
  --metrics "$TMP/cnn.m.h5" >"$TMP/cnn.out" 2>&1
prog=$(awk '/final test accuracy/ {print $4}' "$TMP/cnn.out")
mine=$("${SCORE[@]}" "$TMP/cnn.w.h5" --data-dir "$DATA" 2>&1)
if [[ -n $prog && $mine == "test accuracy $prog (128 images)" ]]; then
  pass "score_weights.py on a simplecnn weights file: $mine, as the program"
else
  fail "score_weights.py on a simplecnn weights file: program '$prog', score_weights.py '$mine'"
fi
# --model naming the other network, and a file of neither: one line naming the file, exit 2
for bad in "score_a.w.h5 --model simplecnn|holds resnet20 weights, not --model simplecnn" \
           "cnn.w.h5 --model resnet20|holds simplecnn weights, not --model resnet20" \
           "cnn.m.h5|neither a simplecnn nor a resnet20 weights file" "missing.h5|no such file"; do
  args=${bad%%|*} want=${bad#*|}
  # shellcheck disable=SC2086
  "${SCORE[@]}" $TMP/$args --data-dir "$DATA" >"$TMP/bad.out" 2>"$TMP/bad.err"
  rc=$?
  if [[ $rc -eq 2 && $(wc -l <"$TMP/bad.err") -eq 1 ]] &&
     grep -q "^score_weights.py: error: .*${args%% *}.*$want" "$TMP/bad.err"; then
    pass "score_weights.py ${args#"$TMP/"}: $(cat "$TMP/bad.err")"
  else
    fail "score_weights.py $args: exit 2 and one line naming the file (exit $rc)" "$(tail -n 3 "$TMP/bad.err")"
  fi
done

if ((failures)); then
  echo "resnet20_vs_torch: $failures case(s) failed"
  exit 1
fi
echo "resnet20_vs_torch: all cases passed"
exit 0
