"""What every side channel shares: a periodic sampler thread and a Parquet buffer.

A :class:`Sampler` runs one :class:`Source` in its own thread, never on the
load generator's event loop.  It reads the source at fixed instants
(``start + k * interval``, so a slow read does not make the schedule drift),
stamps each reading with :func:`perfkit.clock.now_ns` (the clock of every
request), measures its own cost per reading, and hands the rows to a
:class:`TableBuffer`, which writes a Parquet part about once a second with
the same atomic rename as the request writer.  A source that raises is
recorded (count and last message) and read again at the next instant: a
side channel never stops a load test.

:class:`ProcessSampler` runs the same loop in a child process, for sources
whose work would otherwise hold the load generator's GIL (parsing a
Prometheus exposition costs milliseconds of pure Python).  On Linux
``perf_counter_ns`` is ``CLOCK_MONOTONIC``, shared by every process, so the
child's timestamps are on the requests' clock.  The child writes its own
Parquet parts, and stops (flushing what it holds) when its stdin closes,
which also happens when its parent is killed.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from perfkit.clock import now_ns
from perfkit.store.writer import write_part

__all__ = ["ProcessSampler", "Sampler", "SamplerStats", "Source", "TableBuffer"]


class Source(Protocol):
    """Something read periodically: returns rows of its table (dicts keyed by column)."""

    def read(self, t_ns: int) -> list[dict[str, Any]]: ...


class TableBuffer:
    """Rows of one long-format table for one run, written as atomic Parquet parts.

    Parameters
    ----------
    data_dir : Path
    table : str
        Table folder name (``gpu_samples``, ``server_metrics``, ``host_samples``).
    run_id : str
    schema : pyarrow.Schema
    prefix : str
        Part-file prefix, unique per writer of the folder.
    """

    def __init__(self, data_dir: Path, table: str, run_id: str, schema: pa.Schema, prefix: str) -> None:
        self.directory = Path(data_dir) / table / f"run_id={run_id}"
        self.schema = schema
        self.prefix = prefix
        self.rows: list[dict[str, Any]] = []
        self.parts = 0
        self.written = 0
        self._lock = threading.Lock()



    def extend(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self.rows.extend(rows)

    def flush(self) -> None:
        """Write the buffered rows as one part (nothing when empty)."""
        with self._lock:
            rows, self.rows = self.rows, []
        if not rows:
            return
        table = pa.Table.from_pylist(rows, schema=self.schema)
        write_part(table, self.directory, self.parts, self.prefix)
        self.parts += 1
        self.written += len(rows)


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

        return {"readings": self.readings, "failures": self.failures, "last_error": self.last_error,
                "cost_us_p50": pct(self.cost_us, 50), "cost_us_p99": pct(self.cost_us, 99),
                "cost_us_max": pct(self.cost_us, 100), "cpu_us_p50": pct(self.cpu_us, 50),
                "cpu_us_p99": pct(self.cpu_us, 99), "late_ms_p99": pct(self.late_ms, 99)}


class Sampler:
    """Read ``source`` every ``interval_s`` in a daemon thread until :meth:`stop`.

    Parameters
    ----------
    name : str
        Thread name and the key of its stats in the manifest.
    source : Source
    interval_s : float
        Time between readings, s.
    buffer : TableBuffer
    flush_interval_s : float
        Write a part at least this often, s (bounds what a kill loses).
    """

    _COST_KEEP = 100_000  # bounded: 100k floats per sampler, about 3 hours at 10 Hz

    def __init__(self, name: str, source: Source, interval_s: float, buffer: TableBuffer,
                 flush_interval_s: float = 1.0) -> None:
        if not interval_s > 0:
            raise ValueError(f"{name}: the sampling interval must be > 0 s, got {interval_s}")
        self.name = name
        self.source = source
        self.interval_ns = int(interval_s * 1e9)
        self.buffer = buffer
        self.flush_interval_s = flush_interval_s
        self.stats = SamplerStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"perfkit-{name}", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """Stop after the reading in progress, write what is buffered; returns the stats summary."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._flush()
        return self.stats.summary()

    def _flush(self) -> None:
        try:
            self.buffer.flush()
        except Exception as exc:  # noqa: BLE001 - a full disk must not stop the load test
            self.stats.failures += 1
            self.stats.last_error = f"write failed: {type(exc).__name__}: {exc}"

    def read_once(self) -> None:
        """One reading, stamped and timed (also used directly by tests)."""
        st = self.stats
        c0 = time.thread_time_ns()
        t0 = now_ns()
        try:
            rows = self.source.read(t0)
        except Exception as exc:  # noqa: BLE001 - recorded; read again at the next instant
            st.failures += 1
            st.last_error = f"{type(exc).__name__}: {exc}"[:500]
            rows = []
        cost = (now_ns() - t0) / 1e3
        if len(st.cost_us) < self._COST_KEEP:
            st.cost_us.append(cost)
            st.cpu_us.append((time.thread_time_ns() - c0) / 1e3)
        st.readings += 1
        self.buffer.extend(rows)

    def _loop(self) -> None:
        start = now_ns()
        k = 0
        next_flush = time.monotonic() + self.flush_interval_s
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
            if time.monotonic() >= next_flush:
                self._flush()
                next_flush = time.monotonic() + self.flush_interval_s



class ProcessSampler:
    """A :class:`Sampler` in a child process: ``python -m perfkit.collect.child``.

    A plain subprocess (not :mod:`multiprocessing`), so a user's script needs
    no ``if __name__ == "__main__"`` guard.  The child gets its spec as one JSON
    line on stdin (headers included: never on the command line, where ``ps``
    shows it), answers ``ready`` after its first reading, samples until its
    stdin closes (we stop it, or we died), then prints its stats and its
    source's description as one JSON line.

    Parameters
    ----------
    name : str
    kind : str
        A source kind known to :mod:`perfkit.collect.child` (``prometheus``).
    args : dict
        Keyword arguments of that source.
    interval_s : float
    buffer : TableBuffer
        Where the child writes (its directory, table schema and part prefix).
    flush_interval_s : float
    """

    def __init__(self, name: str, kind: str, args: dict[str, Any], interval_s: float, buffer: TableBuffer,
                 flush_interval_s: float = 1.0) -> None:
        if not interval_s > 0:
            raise ValueError(f"{name}: the sampling interval must be > 0 s, got {interval_s}")
        self.name = name
        self.description: Any = None
        self.spec = {"name": name, "kind": kind, "args": args, "interval_s": interval_s,
                     "directory": str(buffer.directory), "table": buffer.directory.parent.name,
                     "prefix": buffer.prefix, "flush_interval_s": flush_interval_s}
        self._proc: subprocess.Popen[str] | None = None

    def start(self, timeout_s: float = 30.0) -> ProcessSampler:
        """Start the child and wait (blocking) until it has taken its first reading."""
        self._proc = subprocess.Popen([sys.executable, "-m", "perfkit.collect.child"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(self.spec) + "\n")
        self._proc.stdin.flush()
        sel = selectors.DefaultSelector()
        sel.register(self._proc.stdout, selectors.EVENT_READ)
        if sel.select(timeout_s):
            self._proc.stdout.readline()  # "ready" (or EOF if it died: stop() reports that)
        return self

    def stop(self, timeout_s: float = 15.0) -> dict[str, Any]:
        """Close the child's stdin, read its report; returns the stats summary."""
        stats: dict[str, Any] = {"readings": 0, "failures": 1, "last_error": "the sampler process did not report"}
        proc = self._proc
        if proc is None:
            return stats
        try:
            out, _ = proc.communicate(timeout=timeout_s)
            report = json.loads(out.strip().splitlines()[-1])
            stats, self.description = report["stats"], report["describe"]
        except (subprocess.TimeoutExpired, ValueError, IndexError, KeyError, OSError):
            proc.kill()
            proc.wait()
        return stats
