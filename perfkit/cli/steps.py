"""What a long command is doing, on stderr: one line rewritten on a terminal, a line per step elsewhere.

Analyses that take more than a moment (a report, a trade-off, a notebook) call a ``progress(step)``
callback before each step; this is the command line's. A command that ends within ``quiet_s`` prints
nothing off a terminal, so scripts and logs see progress only where there was a wait to explain.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Steps"]


class Steps:
    """A ``progress`` callback that says which step is under way, how many there are and the time so far.

    Parameters
    ----------
    command : str
        The command's name, the line's prefix (``perfkit report``).
    total : int, optional
        How many steps to expect; shown as ``k/total``.
    quiet_s : float
        Off a terminal, steps that start before this many seconds have passed are not printed, s.
    stream : file, optional
        Where to write (stderr).
    """

    def __init__(self, command: str, total: int | None = None, *, quiet_s: float = 2.0, stream: TextIO | None = None):
        self.command = command
        self.total = total
        self.quiet_s = quiet_s
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.k = 0
        self.t0 = time.monotonic()
        self.open_line = False

    def __call__(self, what: str) -> None:
        self.k += 1
        elapsed = time.monotonic() - self.t0
        of = f"{self.k}/{self.total}" if self.total and self.k <= self.total else f"{self.k}"
        line = f"{self.command}: {what} (step {of}, {elapsed:.0f} s so far)"
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
            self.open_line = True
        elif elapsed >= self.quiet_s:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Clear the terminal's progress line (the command's results follow on stdout)."""
        if self.open_line:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.open_line = False

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
