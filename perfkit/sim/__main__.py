"""``python -m perfkit.sim``: the same as ``perfkit sim``."""

import sys

from perfkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["sim", *sys.argv[1:]]))
