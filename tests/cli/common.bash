# Sourced by the tests/cli/*.sh scripts (not itself a test: ctest runs *.sh only).
# shellcheck shell=bash

# python_with MODULE...: prints a python3 that imports them (a pyenv python3 first on PATH may
# lack Debian's python3-h5py and friends; /usr/bin/python3 has them), or nothing.
python_with() {
  local p imports
  imports=$(IFS=,; echo "$*")
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c "import $imports" >/dev/null 2>&1; then echo "$p"; return; fi
  done
}

# One PASS/FAIL line per case; `failures` counts the failed ones, with detail lines under them.
failures=0
pass() { echo "PASS: $1"; }
fail() {
  echo "FAIL: $1"
  shift
  for line in "$@"; do echo "      $line"; done
  failures=$((failures + 1))
}
