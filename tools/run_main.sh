#!/usr/bin/env bash
# The main job from a fresh Debian 12 machine: packages (tools/install_deps.sh), the data set
# (tools/get_cifar10.sh: downloaded and checked, unless it is in data/ or CIFAR10_ARCHIVE names a
# local archive), the build of cifar_mpi, then one epoch of data-parallel training on 2 ranks (one
# per core) with the ring all-reduce overlapped with backward.
#
# usage: tools/run_main.sh [cifar_mpi options]     (they go to cifar_mpi; see build/cifar_mpi --help)
#   CIFAR10_ARCHIVE=path/to/cifar-10-binary.tar.xz tools/run_main.sh    a local archive, no download
#   NP=4 tools/run_main.sh                                               another number of ranks
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
case "${1:-}" in -h | --help) cifar_usage; exit 0 ;; esac
"$CIFAR_ROOT/tools/install_deps.sh"
cifar_data
cifar_build --target cifar_mpi
cd "$CIFAR_ROOT"
np="${NP:-2}"
mpirun -np "$np" --bind-to none --oversubscribe "$CIFAR_BUILD/cifar_mpi" --config config/default.toml \
  --threads 1 --allreduce ring --overlap "$@"
