#!/usr/bin/env bash
# Overlap on against off, strategy by strategy, back to back.
# The code, and its --help, are in tools/studies/overlap_pairs.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/studies/overlap_pairs.sh" "$@"
