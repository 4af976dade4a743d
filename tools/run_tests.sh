#!/usr/bin/env bash
# Everything from a fresh Debian 12 machine to a finished test run:
# packages, data set (if CIFAR10_ARCHIVE names a local archive), build, ctest.
#   CIFAR10_ARCHIVE=../shared/data/cifar-10-binary.tar.xz tools/run_tests.sh [ctest args]
set -euo pipefail
source "$(dirname "$0")/common.sh"
"$CIFAR_ROOT/tools/install_deps.sh"
cifar_data || true
cifar_build
cd "$CIFAR_BUILD"
ctest --output-on-failure --timeout 900 "$@"
