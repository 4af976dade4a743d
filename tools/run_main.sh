#!/usr/bin/env bash
# The main job from a fresh Debian 12 machine: packages, data set, build, then one epoch of
# data-parallel training on 2 ranks (one per core) with the ring all-reduce overlapped with
# backward. Extra arguments go to cifar_mpi.
#   CIFAR10_ARCHIVE=../shared/data/cifar-10-binary.tar.xz tools/run_main.sh [cifar_mpi options]
set -euo pipefail
source "$(dirname "$0")/common.sh"
"$CIFAR_ROOT/tools/install_deps.sh"
cifar_data
cifar_build
cd "$CIFAR_ROOT"
np="${NP:-2}"
mpirun -np "$np" --bind-to none --oversubscribe "$CIFAR_BUILD/cifar_mpi" --config config/default.toml \
  --threads 1 --allreduce ring --overlap "$@"
