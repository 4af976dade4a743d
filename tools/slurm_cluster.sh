#!/usr/bin/env bash
# A one-machine Slurm cluster on demand.
# The code, and its --help, are in tools/cluster/slurm_cluster.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/cluster/slurm_cluster.sh" "$@"
