#!/usr/bin/env bash
# allreduce_bench on a simulated platform (SimGrid SMPI).
# The code, and its --help, are in tools/smpi/smpi_allreduce.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/smpi/smpi_allreduce.sh" "$@"
