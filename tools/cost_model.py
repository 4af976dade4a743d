#!/usr/bin/python3
"""Cost model of cifar_mpi's data-parallel step: alpha-beta fits of the all-reduce strategies, a step
model that predicts runs' wall times from their metrics files, and an extrapolation to 1024 ranks.
The same as `PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.cost_model ARGS`; the code, and its
--help, are in tools/cifar_tools/cost_model/ (its __init__ says what it reads and how it models)."""
import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the package beside this file
    from cifar_tools.cost_model.cli import main  # noqa: E402

    sys.exit(main(sys.argv[1:]))
