#!/usr/bin/env bash
# The command line a user meets: --version and --help, the boolean dialect's old spellings (each
# accepted with one warning line naming the new spelling, and recorded as the new one would be),
# and the start-up line with the learning rate --lr-scaling made. Uses small fake CIFAR-10 files.
#   bash tests/cli/options.sh <cifar_mpi binary> <source dir> <data dir (ignored)>
# Prints one PASS/FAIL/SKIP line per case; exits 1 if any case failed.
set -u

BIN=${1:?usage: options.sh <cifar_mpi> <source dir> <data dir>}
BIN=$(realpath "$BIN")
[[ -x $BIN ]] || { echo "FAIL: $BIN is not an executable"; exit 1; }
SRC=${2:?usage: <cifar_mpi> <source dir> <data dir>}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_options.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1  # nothing the program writes lands in the source tree; no config/default.toml here
export OMP_NUM_THREADS=1
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

source "$SRC/tests/cli/common.bash"
PY=$(python_with h5py)
PYPLAIN=$(command -v python3 || command -v /usr/bin/python3)
MPIRUN=()
command -v mpirun >/dev/null 2>&1 && MPIRUN=(mpirun -np 2 --oversubscribe --bind-to none)

DATA="$TMP/data"
"$PYPLAIN" "$SRC/tests/cli/make_fake_cifar.py" "$DATA" 64 || { echo "FAIL: making the fake data set"; exit 1; }

# --- --version --------------------------------------------------------------------------------
# check_version NAME FILE RC: exit 0 and the four lines, once.
check_version() {
  local name=$1 out=$2 rc=$3 problems=() want
  [[ $rc -eq 0 ]] || problems+=("exit code $rc")
  [[ $(wc -l <"$out") -eq 4 ]] || problems+=("$(wc -l <"$out") lines, want 4")
  for want in '^cifar_mpi [0-9]+\.[0-9]+\.[0-9]+$' '^git commit [0-9a-f]{7,}|^git commit unknown$' \
              '^oneDNN [0-9]+\.[0-9]+\.[0-9]+, ISA in use [a-z0-9_]+$' '^MPI library .+'; do
    grep -qE "$want" "$out" || problems+=("no line matching $want")
  done
  if ((${#problems[@]})); then fail "$name" "${problems[@]}" "$(head -n 6 "$out")"; else pass "$name: $(tr '\n' ';' <"$out")"; fi
}
timeout 60 "$BIN" --version >version.out 2>version.err
check_version "--version" version.out $?
if ((${#MPIRUN[@]})); then
  timeout 60 "${MPIRUN[@]}" "$BIN" --version >version2.out 2>version2.err
  check_version "mpirun -np 2 --version (rank 0 prints)" version2.out $?
else
  echo "SKIP: mpirun --version (no mpirun)"
fi

# --- --help -----------------------------------------------------------------------------------
timeout 60 "$BIN" --help >help.out 2>help.err
rc=$?
problems=()
[[ $rc -eq 0 ]] || problems+=("exit code $rc")
[[ -s help.err ]] && problems+=("stderr: $(head -n 2 help.err)")
grep -qF -- '->' help.out && problems+=("an enum map: $(grep -m1 -F -- '->' help.out)")
grep -q 'BOOLEAN\|{false}' help.out && problems+=("CLI11's own markup: $(grep -m1 'BOOLEAN\|{false}' help.out)")
for want in "--shuffle, --no-shuffle" "--drop-last, --no-drop-last" "--eval, --no-eval" "--nesterov, --no-nesterov" \
            "--overlap, --no-overlap" "--force, --no-force" "--version" "--config FILE" "[images per rank; default 128]" \
            "default results/run-<time>-np<N>.h5" "Exit codes:"; do
  grep -qF -- "$want" help.out || problems+=("no '$want'")
done
for code in 0 1 75 76; do grep -qE "^  $code +[a-z]" help.out || problems+=("exit code $code not listed"); done
if ((${#problems[@]})); then fail "--help" "${problems[@]}"; else pass "--help: every switch as a pair, units, defaults, exit codes"; fi

# --- the old spellings ------------------------------------------------------------------------
# One step each; the old spelling must print exactly one warning naming the new one and record
# the same configuration (the metrics file's config.* attributes) as the new spelling.
RUN=(--data-dir "$DATA" --max-steps 1 --batch-size 16 --threads 1 --log-every 1 --momentum 0.9)
printf 'overlap = "on"\n' >old_overlap.toml
printf 'overlap = true\n' >new_overlap.toml
printf 'no-shuffle = true\n' >old_shuffle.toml
printf 'shuffle = false\n' >new_shuffle.toml
n=0
# legacy NAME WARNING -- OLD ARGS... -- NEW ARGS...
legacy() {
  local name=$1 warning=$2 old=() new=()
  shift 3
  while [[ $1 != -- ]]; do old+=("$1"); shift; done
  shift
  new=("$@")
  n=$((n + 1))
  timeout 120 "$BIN" "${RUN[@]}" "${old[@]}" --metrics "$TMP/old$n.h5" >"old$n.out" 2>"old$n.err"
  local rc_old=$?
  timeout 120 "$BIN" "${RUN[@]}" "${new[@]}" --metrics "$TMP/new$n.h5" >"new$n.out" 2>"new$n.err"
  local rc_new=$? problems=()
  [[ $rc_old -eq 0 && $rc_new -eq 0 ]] || problems+=("exit codes $rc_old (old), $rc_new (new)")
  [[ $(wc -l <"old$n.err") -eq 1 ]] || problems+=("$(wc -l <"old$n.err") lines on stderr, want 1")
  grep -qxF -- "cifar_mpi: warning: $warning" "old$n.err" || problems+=("no line 'cifar_mpi: warning: $warning'")
  [[ -s new$n.err ]] && problems+=("the new spelling warns: $(head -n 1 "new$n.err")")
  if [[ -n $PY && $rc_old -eq 0 && $rc_new -eq 0 ]]; then
    local diff
    diff=$("$PY" - "$TMP/old$n.h5" "$TMP/new$n.h5" <<'PYEOF'
import sys, h5py
def config(path):
    with h5py.File(path, "r") as f:
        return {k: f.attrs[k] for k in f.attrs if k.startswith("config.") and k not in ("config.config_file", "config.metrics")}
a, b = config(sys.argv[1]), config(sys.argv[2])
print("; ".join(f"{k}: {a.get(k)} vs {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)))
PYEOF
    )
    [[ -z $diff ]] || problems+=("recorded differently: $diff")
  fi
  if ((${#problems[@]})); then
    fail "$name" "${problems[@]}" "stderr: $(head -n 3 "old$n.err")"
  else
    pass "$name: $(cat "old$n.err")"
  fi
}
legacy "--eval false" "'--eval false' is deprecated: use --no-eval" -- --eval false -- --no-eval
legacy "--eval=0" "'--eval=0' is deprecated: use --no-eval" -- --eval=0 -- --no-eval
legacy "--eval on" "'--eval on' is deprecated: use --eval" -- --eval on -- --eval
legacy "--overlap on" "'--overlap on' is deprecated: use --overlap" -- --overlap on -- --overlap
legacy "--overlap off" "'--overlap off' is deprecated: use --no-overlap" -- --overlap off -- --no-overlap
legacy "--overlap true" "'--overlap true' is deprecated: use --overlap" -- --overlap true -- --overlap
legacy "--nesterov true" "'--nesterov true' is deprecated: use --nesterov" -- --nesterov true -- --nesterov
legacy "--nesterov false" "'--nesterov false' is deprecated: use --no-nesterov" -- --nesterov false -- --no-nesterov
legacy "TOML overlap = \"on\"" "old_overlap.toml: 'overlap = \"on\"' is deprecated: use overlap = true" -- \
  --config old_overlap.toml -- --config new_overlap.toml
legacy "TOML no-shuffle = true" "old_shuffle.toml: 'no-shuffle = true' is deprecated: use shuffle = false" -- \
  --config old_shuffle.toml -- --config new_shuffle.toml
if ((${#MPIRUN[@]})); then
  timeout 120 "${MPIRUN[@]}" "$BIN" "${RUN[@]}" --eval false --metrics "$TMP/np2.h5" >np2.out 2>np2.err
  rc=$?
  lines=$(grep -c 'deprecated' np2.err)
  if [[ $rc -eq 0 && $lines -eq 1 ]]; then
    pass "mpirun -np 2 ... --eval false: one warning (rank 0's)"
  else
    fail "mpirun -np 2 ... --eval false: exit $rc, $lines warning line(s), want 1" "$(head -n 4 np2.err)"
  fi
fi

# --- the learning rate --lr-scaling made --------------------------------------------------------
# lr_line NAME WANT -- ARGS...: the start-up log has the line WANT (or no "scaled" line if WANT is "").
# one_step NAME ARGS...: one step of the program with ARGS; its output in NAME.out and NAME.err.
one_step() {
  local name=$1
  shift
  timeout 120 "$BIN" --data-dir "$DATA" --max-steps 1 --no-eval --threads 1 --metrics "$TMP/$name.h5" --force \
    "$@" >"$name.out" 2>"$name.err"
}
lr_line() {
  local name=$1 want=$2
  shift 3
  one_step lr "$@"
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    fail "$name: exit code $rc" "$(head -n 3 lr.err)"
  elif [[ -z $want ]] && grep -q ' scaled ' lr.out; then
    fail "$name: a scaling line without --lr-scaling" "$(grep -m1 ' scaled ' lr.out)"
  elif [[ -n $want ]] && ! grep -q -- "] $want\$" lr.out; then
    fail "$name: no line '$want'" "$(grep -m1 ' scaled \|policy' lr.out)"
  else
    pass "$name: ${want:-no scaling line}"
  fi
}
lr_line "--lr-scaling linear, global batch 256" "lr 0.05 scaled linear x2 (global batch 256 / 128) = 0.1" -- \
  --lr 0.05 --lr-scaling linear --global-batch 256
lr_line "--lr-scaling sqrt, global batch 32" "lr 0.05 scaled sqrt x0.5 (global batch 32 / 128) = 0.025" -- \
  --lr 0.05 --lr-scaling sqrt --global-batch 32
lr_line "--lr-scaling none" "" -- --lr 0.05 --global-batch 32

# --- the batch size on the command line replaces the file's ------------------------------------
# batch_line NAME WANT -- ARGS...: one step; the start-up log names the per-rank batch WANT.
batch_line() {
  local name=$1 want=$2
  shift 3
  one_step batch "$@"
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    fail "$name: exit code $rc" "$(head -n 3 batch.err)"
  elif ! grep -q "per-rank batch $want," batch.out; then
    fail "$name: not per-rank batch $want" "$(grep -m1 'per-rank batch' batch.out)"
  else
    pass "$name: per-rank batch $want"
  fi
}
printf 'global-batch = 64\n' >global_batch.toml
printf 'batch-size = 16\n' >batch_size.toml
batch_line "file global-batch 64, --batch-size 8" 8 -- --config global_batch.toml --batch-size 8
batch_line "file global-batch 64 alone" 64 -- --config global_batch.toml
batch_line "file batch-size 16, --global-batch 32" 32 -- --config batch_size.toml --global-batch 32
# a value option given twice takes the last, as a switch does
batch_line "--batch-size 8 --batch-size 16" 16 -- --batch-size 8 --batch-size 16

if ((failures)); then
  echo "options: $failures case(s) failed"
  exit 1
fi
echo "options: all cases passed"
exit 0
