#!/usr/bin/python3
"""Plots and a Markdown table of a scaling sweep (or of variants), from its HDF5 metrics files.
The same as `PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.plot_metrics ARGS`;
the code, and its --help, are in tools/cifar_tools/plot_metrics.py."""
import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the package beside this file
    from cifar_tools.plot_metrics import main  # noqa: E402

    sys.exit(main())
