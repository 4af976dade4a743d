#!/usr/bin/env bash
# Simulated hosts (network namespaces joined by shaped links) to run MPI programs across.
# The code, and its --help, are in tools/cluster/sim_hosts.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/cluster/sim_hosts.sh" "$@"
