"""Rolling statistics of the last few seconds of a run, for the live view.

Updated by the runner as each request finishes (appends only, no sorting on
the hot path); read by the progress display a few times a second.  Bounded,
whether or not anything reads it: finished requests older than the window are
dropped as new ones arrive, and at most ``max_samples`` latencies of each kind are kept.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from perfkit.clock import now_ns
from perfkit.rows import RequestRecord

__all__ = ["LiveSnapshot", "LiveWindow"]


@dataclass(frozen=True)
class LiveSnapshot:
    """What the last ``window_s`` seconds looked like; latencies in ms, None when there are no samples."""

    window_s: float
    done: int
    errors: int
    error_rate: float | None
    requests_per_s: float
    tokens_per_s: float
    ttft_p50_ms: float | None
    ttft_p99_ms: float | None
    itl_p50_ms: float | None
    itl_p99_ms: float | None
    slo_attainment: dict[str, float]  # per class with an SLO

    def alerts(self, max_error_rate: float = 0.05, min_slo: float = 0.9) -> list[str]:
        """Lines to show when a threshold is crossed."""
        out = []
        if self.error_rate is not None and self.done >= 10 and self.error_rate > max_error_rate:
            out.append(f"error rate {self.error_rate:.1%} > {max_error_rate:.0%} in the last {self.window_s:g} s")
        for cls, att in sorted(self.slo_attainment.items()):
            if att < min_slo:
                out.append(f"class {cls}: SLO met by {att:.1%} < {min_slo:.0%} in the last {self.window_s:g} s")
        return out


class LiveWindow:
    """Finished requests of the last ``window_s`` seconds.

    Parameters
    ----------
    window_s : float
        Width of the rolling window, s.
    max_samples : int
        Most latency samples kept of each kind.
    """

    def __init__(self, window_s: float = 10.0, max_samples: int = 5000) -> None:
        self.window_ns = int(window_s * 1e9)
        self.window_s = window_s
        self._done: deque[tuple[int, bool, int, str, bool | None]] = deque()
        self._ttft: deque[tuple[int, float]] = deque(maxlen=max_samples)
        self._itl: deque[tuple[int, float]] = deque(maxlen=max_samples)
        self.outbox: list[tuple[Any, ...]] | None = None  # a worker process's items not yet sent to its parent

    def add(self, rec: RequestRecord) -> None:
        t = rec.end_ns or now_ns()
        ts = rec.chunk_ns
        itl: list[float] = []
        if rec.ok and len(ts) > 1:
            step = max(1, (len(ts) - 1) // 32)  # a request contributes at most ~32 gaps
            itl = [(ts[i] - ts[i - 1]) / 1e6 for i in range(1, len(ts), step)]
        item = (t, rec.ok, rec.output_tokens, rec.class_name, rec.slo_ok, rec.ttft_ms if rec.ok else None, itl)
        self.add_item(item)
        if self.outbox is not None:
            self.outbox.append(item)

    def add_item(self, item: tuple[Any, ...]) -> None:
        """Add one finished request as ``(end_ns, ok, output_tokens, class, slo_ok, ttft_ms, itl_ms list)``."""
        t, ok, tokens, cls, slo_ok, ttft, itl = item
        done = self._done
        cut = t - self.window_ns
        while done and done[0][0] < cut:  # bounded without a reader too (a script with no live view)
            done.popleft()
        done.append((t, ok, tokens, cls, slo_ok))
        if ttft is not None:
            self._ttft.append((t, ttft))
        for v in itl:
            self._itl.append((t, v))

    def snapshot(self, now: int | None = None) -> LiveSnapshot:
        now = now or now_ns()
        cut = now - self.window_ns
        while self._done and self._done[0][0] < cut:
            self._done.popleft()
        done = len(self._done)
        errors = sum(1 for d in self._done if not d[1])
        tokens = sum(d[2] for d in self._done if d[1])
        slo: dict[str, list[bool]] = {}
        for _, _, _, cls, ok in self._done:
            if ok is not None:
                slo.setdefault(cls, []).append(ok)
        ttft = np.array([v for t, v in self._ttft if t >= cut])
        itl = np.array([v for t, v in self._itl if t >= cut])

        def pct(x: np.ndarray, q: float) -> float | None:
            return float(np.percentile(x, q)) if len(x) else None

        return LiveSnapshot(
            self.window_s,
            done,
            errors,
            errors / done if done else None,
            done / self.window_s,
            tokens / self.window_s,
            pct(ttft, 50),
            pct(ttft, 99),
            pct(itl, 50),
            pct(itl, 99),
            {c: sum(v) / len(v) for c, v in slo.items()},
        )
