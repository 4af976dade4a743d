#!/usr/bin/env bash
# cmake --install puts the program, the benchmarks, the tools, the job scripts and the default
# configuration under a prefix, and the installed program runs (--help) from there.
#   bash tests/cli/install.sh <cifar_mpi binary> <source dir> <data dir (unused)>
set -u
BIN=${1:?usage: install.sh <cifar_mpi> <source dir> <data dir>}
SRC=${2:?usage: install.sh <cifar_mpi> <source dir> <data dir>}
source "$SRC/tests/cli/common.bash"
BUILD=$(dirname "$(realpath "$BIN")")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
P="$TMP/prefix"
if cmake --install "$BUILD" --prefix "$P" >"$TMP/install.out" 2>&1; then
  pass "cmake --install $BUILD --prefix $P"
else
  fail "cmake --install (exit $?)" "$(tail -n 5 "$TMP/install.out")"
fi
missing=()
for f in bin/cifar_mpi bin/allreduce_bench bin/train_step_bench share/cifar_mpi/config/default.toml \
         share/cifar_mpi/config/time_to_accuracy.toml share/cifar_mpi/tools/plot_metrics.py share/cifar_mpi/tools/cost_model.py share/cifar_mpi/tools/get_cifar10.sh \
         share/cifar_mpi/tools/cifar_tools/h5files.py share/cifar_mpi/tools/lib/common.sh \
         share/cifar_mpi/jobs/train.sbatch share/cifar_mpi/jobs/scaling.sbatch share/doc/cifar_mpi/README.md; do
  [[ -e $P/$f ]] || missing+=("$f")
done
if ((${#missing[@]})); then fail "installed files" "missing: ${missing[*]}"; else pass "program, benchmarks, tools, jobs, config and README installed"; fi
if find "$P" -name __pycache__ | grep -q .; then fail "no __pycache__ installed" "$(find "$P" -name __pycache__ | head -n 3)"; fi
[[ -x $P/share/cifar_mpi/tools/get_cifar10.sh ]] && pass "scripts keep their execute bit" || fail "scripts keep their execute bit"
if (cd "$TMP" && "$P/bin/cifar_mpi" --help >"$TMP/help.out" 2>&1) && grep -q -- "--allreduce" "$TMP/help.out"; then
  pass "installed cifar_mpi --help"
else
  fail "installed cifar_mpi --help" "$(head -n 3 "$TMP/help.out")"
fi
# The installed entry points find the installed package (tools/cifar_tools) beside them.
for t in plot_metrics.py cost_model.py scaling_sweep.sh; do
  if (cd "$TMP" && "$P/share/cifar_mpi/tools/$t" --help >"$TMP/tool.out" 2>&1) && grep -q "${t%.*}" "$TMP/tool.out"; then
    pass "installed tools/$t --help"
  else
    fail "installed tools/$t --help" "$(head -n 3 "$TMP/tool.out")"
  fi
done
if ((failures)); then echo "install: $failures case(s) failed"; exit 1; fi
echo "install: all cases passed"
