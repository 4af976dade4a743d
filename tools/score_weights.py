#!/usr/bin/python3
"""Scores a cifar_mpi weights file with PyTorch (an independent check of the reported accuracy).
The same as `PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.score_weights ARGS`;
the code, and its --help, are in tools/cifar_tools/score_weights.py."""
import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the package beside this file
    from cifar_tools.score_weights import main  # noqa: E402

    sys.exit(main())
