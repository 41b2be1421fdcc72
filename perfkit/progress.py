"""A live progress line for a run (rich on a terminal, plain lines elsewhere)."""

from __future__ import annotations

import asyncio
import sys

from rich.console import Console
from rich.live import Live
from rich.text import Text

from perfkit.client.runner import LoadRunner
from perfkit.clock import now_ns

__all__ = ["ProgressDisplay"]


class ProgressDisplay:
    """Show what a :class:`LoadRunner` is doing, refreshed a few times a second.

    On a terminal a single live line is redrawn; otherwise (CI, a pipe) one
    line is printed per phase and every ``plain_every_s`` seconds.
    """

    def __init__(self, console: Console | None = None, plain_every_s: float = 5.0) -> None:
        self.console = console or Console(stderr=True)
        self.plain_every_s = plain_every_s
        self._runner: LoadRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self._live: Live | None = None
        self._last_tokens = 0
        self._last_t = now_ns()

    def attach(self, runner: LoadRunner, run_id: str) -> None:
        """Start displaying (call from the event loop, e.g. as ``record_run(on_start=...)``)."""
        self._runner = runner
        self.console.print(f"[bold]run[/bold] {run_id}: {len(runner.phases)} phase(s) against "
                           f"{runner.endpoint.base_url} ({runner.endpoint.model})")
        if self.console.is_terminal:
            self._live = Live(Text(""), console=self.console, refresh_per_second=4, transient=False)
            self._live.start()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def _line(self) -> str:
        assert self._runner is not None
        p = self._runner.progress
        t = now_ns()
        dt = max(1e-9, (t - self._last_t) / 1e9)
        rate = (p.output_tokens - self._last_tokens) / dt
        self._last_tokens, self._last_t = p.output_tokens, t
        elapsed = (t - p.phase_started_ns) / 1e9 if p.phase_started_ns else 0.0
        dur = f"/{p.phase_duration_s:g}" if p.phase_duration_s else ""
        return (f"phase {p.phase_index + 1}/{len(self._runner.phases)} {p.phase:<10} {elapsed:5.1f}{dur} s | "
                f"sent {p.sent:,} done {p.done:,} in flight {p.in_flight:,} errors {p.errors:,} | "
                f"{rate:,.0f} tok/s")

    async def _loop(self) -> None:
        last_plain = 0
        last_phase = -1
        while True:
            await asyncio.sleep(0.25)
            line = self._line()
            if self._live is not None:
                self._live.update(Text(line))
                continue
            p = self._runner.progress  # type: ignore[union-attr]
            t = now_ns()
            if p.phase_index != last_phase or (t - last_plain) / 1e9 >= self.plain_every_s:
                print(line, file=sys.stderr, flush=True)
                last_phase, last_plain = p.phase_index, t

    def close(self) -> None:
        if self._task:
            self._task.cancel()
        if self._live is not None:
            if self._runner is not None:
                self._live.update(Text(self._line()))
            self._live.stop()
