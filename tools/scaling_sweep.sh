#!/usr/bin/env bash
# A scaling sweep: the same training at N = 1, 2, 4 ranks, then its plots and table.
# The code, and its --help, are in tools/studies/scaling_sweep.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/studies/scaling_sweep.sh" "$@"
