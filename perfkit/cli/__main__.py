"""``python -m perfkit.cli``: the command line."""

from perfkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
