"""The progress line of long commands: what step, how many, how long so far; silent off a terminal when quick."""

from __future__ import annotations

import io

from perfkit.cli.steps import Steps


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_quick_command_says_nothing_and_a_slow_one_says_each_step():
    quick = io.StringIO()
    with Steps("perfkit report", 3, stream=quick) as say:
        say("summary")
        say("HTML")
    assert quick.getvalue() == ""
    slow = io.StringIO()
    with Steps("perfkit report", 2, quiet_s=0.0, stream=slow) as say:
        say("summary")
        say("HTML")
    lines = slow.getvalue().splitlines()
    assert lines[0].startswith("perfkit report: summary (step 1/2, ") and lines[0].endswith(" s so far)")
    assert lines[1].startswith("perfkit report: HTML (step 2/2, ")


def test_on_a_terminal_one_line_is_rewritten_and_cleared_at_the_end():
    tty = Tty()
    with Steps("perfkit tradeoff", 2, stream=tty) as say:
        say("figures")
        say("PDF")
    out = tty.getvalue()
    assert out.count("\r\x1b[K") == 3 and "\n" not in out and out.endswith("\r\x1b[K")
    assert "perfkit tradeoff: PDF (step 2/2, " in out
