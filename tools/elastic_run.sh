#!/usr/bin/env bash
# Runs cifar_mpi and restarts it from its newest valid checkpoint when a rank is lost.
# The code, and its --help, are in tools/recovery/elastic_run.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/recovery/elastic_run.sh" "$@"
