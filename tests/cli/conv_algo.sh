#!/usr/bin/env bash
# --conv-algo end to end, on a small fake CIFAR-10 set (6 files x 128 random records), the batches
# in file order (--no-shuffle) from weights PyTorch initialised:
#   - auto on 1 rank: the log names each convolution's choice (forward, backward-data,
#     backward-weights), the metrics file records the same as meta.conv_algo.<layer>, and the
#     weights after 5 steps are within 1e-4 of PyTorch's 5 steps (tests/cli/torch_steps.py);
#   - auto on 2 ranks x 32 images: within 1e-4 of PyTorch's 5 steps on the union batch of 64;
#   - winograd forced in every pass (where oneDNN offers it): within 1e-4 of PyTorch;
#   - an emulated AVX2 machine (ONEDNN_MAX_CPU_ISA=AVX2: oneDNN 2.6 has no Winograd there): auto
#     picks direct in every pass of both layers and still lands within 1e-4 of PyTorch.
# Whatever auto chooses on this CPU, the forced runs cover both algorithms.
#   bash tests/cli/conv_algo.sh <cifar_mpi binary> <source dir> <data dir (ignored)>
# Prints one PASS/FAIL line per case; exits 1 if any case failed, 77 (skip) without a python3
# with torch, h5py and numpy.
set -u

BIN=${1:?usage: conv_algo.sh <cifar_mpi> <source dir> <data dir>}
SRC=${2:?usage: conv_algo.sh <cifar_mpi> <source dir> <data dir>}
BIN=$(realpath "$BIN")
SRC=$(realpath "$SRC")
[[ -x $BIN ]] || { echo "FAIL: $BIN is not an executable"; exit 1; }

source "$SRC/tests/cli/common.bash"
against_torch_setup conv_algo  # PY, TMP (the current folder), DATA, INIT, STEPS, ARGS

# against_torch NAME BATCH: the saved weights against PyTorch's STEPS steps at that batch.
against_torch() {
  "$PY" "$SRC/tests/cli/torch_steps.py" compare "$DATA" "$TMP/init.h5" "$TMP/$1.w.h5" "$STEPS" "$2" 2>&1
}

# choices NAME: "conv1=<choice>;conv2=<choice>;" from the log's probe lines, then the same from
# the metrics file's meta.conv_algo.<layer> (each choice "forward A, backward-data B,
# backward-weights C").
log_choices() {
  sed -n 's/.*conv probe \(conv[12]\):.* -> \(forward [a-z]*, backward-data [a-z]*, backward-weights [a-z]*\): .*/\1=\2;/p' \
    "$TMP/$1.out" | tr -d '\n'
}
meta_choices() {
  "$PY" - "$TMP/$1.h5" <<'EOF'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    a = f.attrs
    print("".join(f"{l}={a['meta.conv_algo.' + l]};" for l in ("conv1", "conv2") if "meta.conv_algo." + l in a))
EOF
}

# auto_case NAME NP BATCH [ENV...]: --conv-algo auto; the log and the metrics file agree on both
# layers' choice, and the weights are within 1e-4 of PyTorch's. Prints the choices.
auto_case() {
  local name=$1 np=$2 batch=$3
  shift 3
  local what="--conv-algo auto, np $np${1:+, $*}" problems=() verdict logged recorded
  train_case "$name" "$np" "$@" -- --conv-algo auto
  local rc=$?
  ((rc)) && problems+=("exit code $rc: $(grep -m1 'error' "$TMP/$name.err")")
  logged=$(log_choices "$name")
  recorded=$(meta_choices "$name")
  [[ $logged == conv1=*\;conv2=*\; ]] || problems+=("the log does not name both layers' choice: '$logged'")
  [[ $recorded == "$logged" ]] || problems+=("metrics meta.conv_algo '$recorded' != log '$logged'")
  verdict=$(against_torch "$name" "$batch") || problems+=("against PyTorch: $verdict")
  if ((${#problems[@]})); then
    fail "$what" "${problems[@]}" "stderr: $(tail -n 3 "$TMP/$name.err")"
  else
    pass "$what: $logged $verdict"
  fi
  CHOICES=$logged
}

auto_case auto1 1 32
auto_case auto2 2 64

# Winograd in every pass, where this CPU's oneDNN offers it for both layers.
train_case wino 1 -- --conv-algo winograd
rc=$?
if ((rc == 0)); then
  if verdict=$(against_torch wino 32); then
    pass "--conv-algo winograd, np 1: $verdict"
  else
    fail "--conv-algo winograd, np 1: against PyTorch" "$verdict"
  fi
elif grep -q "oneDNN offers no fp32 convolution with forward winograd" "$TMP/wino.err"; then
  echo "SKIP: --conv-algo winograd: $(head -n 1 "$TMP/wino.err")"
else
  fail "--conv-algo winograd, np 1: exit code $rc" "$(tail -n 3 "$TMP/wino.err")"
fi

# An AVX2 machine, emulated: auto must pick direct everywhere (no Winograd in oneDNN 2.6 there).
auto_case avx2 1 32 ONEDNN_MAX_CPU_ISA=AVX2
all_direct="forward direct, backward-data direct, backward-weights direct"
if [[ $CHOICES == "conv1=$all_direct;conv2=$all_direct;" ]]; then
  pass "ONEDNN_MAX_CPU_ISA=AVX2: auto chose direct in every pass"
else
  fail "ONEDNN_MAX_CPU_ISA=AVX2: auto chose '$CHOICES'"
fi

if ((failures)); then
  echo "conv_algo: $failures case(s) failed"
  exit 1
fi
echo "conv_algo: all cases passed"
exit 0
