"""PYTHONPATH=tools python3 -m cifar_tools.cost_model ARGS: the same as tools/cost_model.py ARGS."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
