#!/usr/bin/env bash
# Every script in tools/ and jobs/ (the shell scripts, the Python entry points, and every module of
# tools/cifar_tools run as `python3 -m cifar_tools.MODULE`) answers --help and -h with its usage
# (text naming it) and exit 0, and does nothing else: no package installed, nothing built, no
# network, no MPI or Slurm. The commands that would do those (apt-get, apt, dpkg, sudo, cmake, make,
# ctest, curl, wget, mpirun, mpiexec, srun, sbatch, smpirun, ip, tc) are stand-ins first on PATH
# that record the call and fail; a recorded call fails the case.
#   bash tests/cli/tools_help.sh <cifar_mpi binary (unused)> <source dir> <data dir (unused)>
set -u
SRC=$(realpath "${2:?usage: tools_help.sh <cifar_mpi> <source dir> <data dir>}")
source "$SRC/tests/cli/common.bash"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_tools_help.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
mkdir bin
for c in apt-get apt dpkg dpkg-query sudo cmake make ctest curl wget mpirun mpiexec srun sbatch smpirun ip tc; do
  printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\nexit 97\n' "$c" "$TMP" >"bin/$c"
done
chmod +x bin/*
export PATH="$TMP/bin:$PATH"
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

# check NAME WANT COMMAND...: COMMAND --help and COMMAND -h exit 0, print text containing WANT, and
# call none of the stand-ins.
check() {
  local name=$1 want=$2 opt rc
  shift 2
  for opt in --help -h; do
    rm -f calls
    timeout 60 "$@" "$opt" >out.txt 2>err.txt
    rc=$?
    if [[ $rc -ne 0 ]]; then
      fail "$name $opt: exit $rc" "$(head -n 3 err.txt)"
    elif ! grep -qF -- "$want" out.txt; then
      fail "$name $opt: no usage naming '$want' on stdout" "$(head -n 3 out.txt)"
    elif [[ -s calls ]]; then
      fail "$name $opt: ran $(head -n 1 calls)"
    else
      pass "$name $opt ($(wc -l <out.txt) lines)"
    fi
  done
}

n=0
for f in "$SRC"/tools/*.sh "$SRC"/tools/*/*.sh "$SRC"/tools/*.py "$SRC"/jobs/*.sbatch; do
  rel=${f#"$SRC"/}
  [[ $rel == tools/lib/* ]] && continue  # sourced helpers, not commands
  base=$(basename "$f")
  case $f in
    *.sbatch) check "$rel" "$base" bash "$f" ;;
    *) if [[ -x $f ]]; then check "$rel" "$base" "$f"; else fail "$rel: not executable"; fi ;;
  esac
  n=$((n + 1))
done
# The package's modules that are commands (those with a __main__ block; cost_model is a package).
for f in "$SRC"/tools/cifar_tools/*.py "$SRC"/tools/cifar_tools/*/__main__.py; do
  grep -q '^if __name__ == "__main__":' "$f" || continue
  module=$(basename "$f" .py)
  [[ $module == __main__ ]] && module=$(basename "$(dirname "$f")")
  check "cifar_tools.$module" "$module" env PYTHONPATH="$SRC/tools" "$PY" -m "cifar_tools.$module"
  n=$((n + 1))
done
((n >= 40)) || fail "only $n scripts and modules found under tools/ and jobs/ (expected 40 or more)"
echo "$n scripts and modules, $failures failure(s)"
((failures == 0))
