#!/usr/bin/python3
"""Compares runs that differ in one option (e.g. --wire-dtype): loss curves and final numbers.
The same as `PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.compare_runs ARGS`;
the code, and its --help, are in tools/cifar_tools/compare_runs.py."""
import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the package beside this file
    from cifar_tools.compare_runs import main  # noqa: E402

    sys.exit(main())
