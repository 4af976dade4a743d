#!/usr/bin/env python3
"""Cost model of cifar_mpi's data-parallel step: alpha-beta fits of the all-reduce strategies, a step
model that predicts runs' wall times from their metrics files, and an extrapolation to 1024 ranks.
The code is the package tools/cost_model/ (its __init__ says what it reads and how it models);
this file keeps `python3 tools/cost_model.py ARGS` working. docs/cost_model.md has the full text."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the package beside this file
from cost_model.cli import main  # noqa: E402  (a package wins over this module of the same name)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
