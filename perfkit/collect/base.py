"""What every side channel shares: a periodic sampler thread that writes through the run's sink.

A :class:`Sampler` runs one :class:`Source` in its own thread, never on the
load generator's event loop.  It reads the source at fixed instants
(``start + k * interval``, so a slow read does not make the schedule drift),
stamps each reading with :func:`perfkit.clock.now_ns` (the clock of every
request), measures its own cost per reading, and hands the rows to a
:class:`~perfkit.rows.Sink` (``sink.put(table, rows)``), the same seam the load
runner writes through.  A source that raises is recorded (count and last
message) and read again at the next instant: a side channel never stops a
load test.  Running a sampler in a process of its own is the business of
whoever composes the run (:mod:`perfkit.record.sampler_process`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from perfkit.clock import now_ns
from perfkit.rows import Sink

__all__ = ["Sampler", "SamplerStats", "Source"]


class Source(Protocol):
    """Something read periodically: returns rows of its table (dicts keyed by column)."""

    def read(self, t_ns: int) -> list[dict[str, Any]]: ...


@dataclass
class SamplerStats:
    """What a sampler did: readings, failures, its own cost per reading and lateness.

    ``cost_us`` is the wall time of a reading (µs), which includes waiting for
    the GIL and for the device or server; ``cpu_us`` is the CPU time the
    sampler thread itself used for it (µs): what sampling costs the client.
    """

    readings: int = 0
    failures: int = 0
    last_error: str | None = None
    cost_us: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        def pct(xs: list[float], q: float) -> float | None:
            return round(float(np.percentile(xs, q)), 3) if xs else None

        return {
            "readings": self.readings,
            "failures": self.failures,
            "last_error": self.last_error,
            "cost_us_p50": pct(self.cost_us, 50),
            "cost_us_p99": pct(self.cost_us, 99),
            "cost_us_max": pct(self.cost_us, 100),
            "cpu_us_p50": pct(self.cpu_us, 50),
            "cpu_us_p99": pct(self.cpu_us, 99),
            "late_ms_p99": pct(self.late_ms, 99),
        }


class Sampler:
    """Read ``source`` every ``interval_s`` in a daemon thread until :meth:`stop`.

    Parameters
    ----------
    name : str
        Thread name and the key of its stats in the manifest.
    source : Source
    interval_s : float
        Time between readings, s.
    sink : Sink
        Where the rows go.
    table : str
        The table the source's rows belong to (``gpu_samples``, ``server_metrics``, ``host_samples``).
    """

    _COST_KEEP = 100_000  # bounded: 100k floats per sampler, about 3 hours at 10 Hz

    def __init__(self, name: str, source: Source, interval_s: float, sink: Sink, table: str) -> None:
        if not interval_s > 0:
            raise ValueError(f"{name}: the sampling interval must be > 0 s, got {interval_s}")
        self.name = name
        self.source = source
        self.interval_ns = int(interval_s * 1e9)
        self.sink = sink
        self.table = table
        self.stats = SamplerStats()
        self._stop = threading.Event()
        self._reading = threading.Lock()  # one reading at a time: the loop's and read_once from other threads
        self._thread = threading.Thread(target=self._loop, name=f"perfkit-{name}", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0, *, final: bool = False) -> dict[str, Any]:
        """Stop after the reading in progress; returns the stats summary (the sink writes what it holds).

        ``final`` takes one more reading once the loop has stopped: a scrape after the run's last request,
        without which a server's counters and histograms would stop short of the run by up to an interval.
        """
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if final and not self._thread.is_alive():
            self.read_once()
        return self.stats.summary()

    def read_once(self) -> None:
        """One reading, stamped and timed, now: from any thread (a phase boundary's scrape, the final one)."""
        with self._reading:
            self._read()

    def _read(self) -> None:
        st = self.stats
        c0 = time.thread_time_ns()
        t0 = now_ns()
        try:
            rows = self.source.read(t0)
        except Exception as exc:
            st.failures += 1
            st.last_error = f"{type(exc).__name__}: {exc}"[:500]
            rows = []
        cost = (now_ns() - t0) / 1e3
        if len(st.cost_us) < self._COST_KEEP:
            st.cost_us.append(cost)
            st.cpu_us.append((time.thread_time_ns() - c0) / 1e3)
        st.readings += 1
        if rows:
            self.sink.put(self.table, rows)

    def _loop(self) -> None:
        start = now_ns()
        k = 0
        while not self._stop.is_set():
            due = start + k * self.interval_ns
            late = now_ns() - due
            if late < 0:
                if self._stop.wait(-late / 1e9):
                    break
                late = now_ns() - due
            if len(self.stats.late_ms) < self._COST_KEEP:
                self.stats.late_ms.append(late / 1e6)
            self.read_once()
            # skip instants already missed rather than firing a burst of catch-up readings
            k = max(k + 1, (now_ns() - start) // self.interval_ns + 1)
