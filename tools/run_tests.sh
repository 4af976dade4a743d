#!/usr/bin/env bash
# Everything from a fresh Debian 12 machine to a finished test run:
# packages, data set (if CIFAR10_ARCHIVE names a local archive), build, ctest, then the
# sanitizer build's tests and a bounded fuzzing run.
#   CIFAR10_ARCHIVE=../shared/data/cifar-10-binary.tar.xz tools/run_tests.sh [ctest args]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
"$CIFAR_ROOT/tools/install_deps.sh"
cifar_data || true
cifar_build
cd "$CIFAR_BUILD"
ctest --output-on-failure --timeout 900 "$@"
# Reliability: the unit and multi-rank tests under ASan + UBSan (build-asan), then libFuzzer on
# the CIFAR reader and the config parser (build-fuzz), for a bounded time.
"$CIFAR_ROOT/tools/checks/run_sanitizers.sh"
"$CIFAR_ROOT/tools/checks/run_fuzz.sh" "${CIFAR_FUZZ_SECONDS:-20}"
