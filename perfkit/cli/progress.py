"""A live progress line for a run (rich on a terminal, plain lines elsewhere)."""

from __future__ import annotations

import asyncio
import sys

from rich.console import Console
from rich.live import Live
from rich.text import Text

from perfkit.client.live import LiveSnapshot
from perfkit.client.runner import LoadRunner
from perfkit.clock import now_ns

__all__ = ["ProgressDisplay"]


class ProgressDisplay:
    """Show what a :class:`LoadRunner` is doing, refreshed a few times a second.

    Two lines: progress, and the rolling last-10-s view (TTFT and ITL p50/p99,
    requests/s, error rate, SLO attainment per class), then an ALERT line for
    each threshold crossed (error rate above ``max_error_rate``, a class's SLO
    attainment below ``min_slo``).  On a terminal the lines are redrawn in
    place; otherwise (CI, a pipe) they are printed per phase and every
    ``plain_every_s`` seconds.
    """

    def __init__(
        self,
        console: Console | None = None,
        plain_every_s: float = 5.0,
        max_error_rate: float = 0.05,
        min_slo: float = 0.9,
    ) -> None:
        self.console = console or Console(stderr=True)
        self.max_error_rate = max_error_rate
        self.min_slo = min_slo
        self.plain_every_s = plain_every_s
        self._runner: LoadRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self._live: Live | None = None
        self._last_tokens = 0
        self._last_t = now_ns()
        self._snap: LiveSnapshot | None = None
        self._snap_ns = 0

    def attach(self, runner: LoadRunner, run_id: str) -> None:
        """Start displaying (call from the event loop, e.g. as ``record_run(on_start=...)``)."""
        self._runner = runner
        where = ", ".join(f"{e.base_url} ({e.model})" for e in runner.endpoints)
        self.console.print(
            f"[bold]run[/bold] {run_id}: {len(runner.phases)} phase(s) against {where}"
            + (f", routing {runner.router.policy}" if len(runner.endpoints) > 1 else "")
        )
        if self.console.is_terminal:
            self._live = Live(Text(""), console=self.console, refresh_per_second=4, transient=False)
            self._live.start()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def _lines(self) -> list[str]:
        """The status line, the rolling-window line, and any alert lines."""
        assert self._runner is not None
        t = now_ns()
        if self._snap is None or t - self._snap_ns > 1_000_000_000:  # percentiles cost ~1 ms of loop time
            self._snap, self._snap_ns = self._runner.live.snapshot(t), t
        snap = self._snap
        assert snap is not None

        def ms(v: float | None) -> str:
            return "–" if v is None else f"{v:,.1f}"

        slo = ", ".join(f"{c} {100 * a:.1f}%" for c, a in sorted(snap.slo_attainment.items()))
        rolling = (
            f"last {snap.window_s:g} s: TTFT p50 {ms(snap.ttft_p50_ms)} p99 {ms(snap.ttft_p99_ms)} ms | "
            f"ITL p50 {ms(snap.itl_p50_ms)} p99 {ms(snap.itl_p99_ms)} ms | {snap.requests_per_s:,.1f} req/s | "
            f"errors {'–' if snap.error_rate is None else f'{100 * snap.error_rate:.1f}%'}"
            + (f" | SLO met: {slo}" if slo else "")
        )
        return [self._line(), rolling] + [f"ALERT: {a}" for a in snap.alerts(self.max_error_rate, self.min_slo)]

    def _line(self) -> str:
        assert self._runner is not None
        p = self._runner.progress
        t = now_ns()
        dt = max(1e-9, (t - self._last_t) / 1e9)
        rate = (p.output_tokens - self._last_tokens) / dt
        self._last_tokens, self._last_t = p.output_tokens, t
        elapsed = (t - p.phase_started_ns) / 1e9 if p.phase_started_ns else 0.0
        dur = f"/{p.phase_duration_s:g}" if p.phase_duration_s else ""
        return (
            f"phase {p.phase_index + 1}/{len(self._runner.phases)} {p.phase:<10} {elapsed:5.1f}{dur} s | "
            f"sent {p.sent:,} done {p.done:,} in flight {p.in_flight:,} errors {p.errors:,} | "
            f"{rate:,.0f} tok/s"
        )

    async def _loop(self) -> None:
        last_plain = 0
        last_phase = -1
        while True:
            await asyncio.sleep(0.25)
            if self._live is not None:
                lines = self._lines()
                text = Text("\n".join(lines[:2]))
                for alert in lines[2:]:
                    text.append("\n" + alert, style="bold red")
                self._live.update(text)
                continue
            p = self._runner.progress  # type: ignore[union-attr]
            t = now_ns()
            if p.phase_index != last_phase or (t - last_plain) / 1e9 >= self.plain_every_s:
                print("\n".join(self._lines()), file=sys.stderr, flush=True)
                last_phase, last_plain = p.phase_index, t

    def close(self) -> None:
        if self._task:
            self._task.cancel()
        if self._live is not None:
            if self._runner is not None:
                self._live.update(Text("\n".join(self._lines())))
            self._live.stop()
