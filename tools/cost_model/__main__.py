"""python3 -m cost_model ARGS (from tools/), the same as tools/cost_model.py ARGS."""
import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
