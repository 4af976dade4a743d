#!/usr/bin/env bash
# Everything from a fresh Debian 12 machine to a finished test run: packages (tools/install_deps.sh
# --tests), the data set (tools/get_cifar10.sh: downloaded and checked, unless it is in data/ or
# CIFAR10_ARCHIVE names a local archive), the build, ctest, then the sanitizer build's tests
# (tools/checks/run_sanitizers.sh) and a bounded fuzzing run (tools/checks/run_fuzz.sh). It ends
# with the tests that skipped and why (cifar_tools.ctest_skips), and exits non-zero if anything
# failed.
#
# usage: tools/run_tests.sh [ctest options]      (e.g. -R cli.train_smoke; they go to ctest)
#   CIFAR10_ARCHIVE=path/to/cifar-10-binary.tar.xz tools/run_tests.sh   a local archive, no download
#   CIFAR_ALLOWED_SKIPS=FILE tools/run_tests.sh   fail if a test skips that FILE does not allow
#                                                 (.ci/run: .ci/allowed_skips)
#   CIFAR_FUZZ_SECONDS=S                          fuzzing time per target (default 20)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
case "${1:-}" in -h | --help) cifar_usage; exit 0 ;; esac
if [[ -n ${CIFAR_ALLOWED_SKIPS:-} ]]; then
  [[ -f $CIFAR_ALLOWED_SKIPS ]] || { echo "run_tests: error: CIFAR_ALLOWED_SKIPS=$CIFAR_ALLOWED_SKIPS: no such file" >&2; exit 2; }
  CIFAR_ALLOWED_SKIPS=$(realpath "$CIFAR_ALLOWED_SKIPS")
fi
"$CIFAR_ROOT/tools/install_deps.sh" --tests
cifar_data
cifar_build
cd "$CIFAR_BUILD"
# The JUnit report keeps every test's output (the passing ones' too: --test-output-size-passed),
# so that ctest_skips can tell why each skip happened.
report="$CIFAR_BUILD/ctest-report.xml"
rm -f "$report"
rc=0
ctest --output-on-failure --timeout 900 --output-junit "$report" --test-output-size-passed 1000000 "$@" || rc=$?
# Reliability: the unit and multi-rank tests under ASan + UBSan (build-asan), then libFuzzer on
# the CIFAR reader and the config parser (build-fuzz), for a bounded time.
if ((rc == 0)); then "$CIFAR_ROOT/tools/checks/run_sanitizers.sh" || rc=$?; fi
if ((rc == 0)); then "$CIFAR_ROOT/tools/checks/run_fuzz.sh" "${CIFAR_FUZZ_SECONDS:-20}" || rc=$?; fi
echo
allowed=()
[[ -n ${CIFAR_ALLOWED_SKIPS:-} ]] && allowed=(--allowed "$CIFAR_ALLOWED_SKIPS")
cifar_tools ctest_skips "$report" ${allowed+"${allowed[@]}"} || { ((rc)) || rc=1; }
exit "$rc"
