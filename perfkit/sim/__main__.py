"""``python -m perfkit.sim``: the same as ``perfkit sim``."""

from perfkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["sim", *__import__("sys").argv[1:]]))
