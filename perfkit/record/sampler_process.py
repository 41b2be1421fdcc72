"""A sampler in a process of its own, for sources whose work would otherwise hold the load generator's GIL.

Parsing a Prometheus exposition costs milliseconds of pure Python; done in the load generator's
process it would take that time from the event loop that timestamps the requests.  A
:class:`ProcessSampler` runs ``python -m perfkit.record.sampler_process``: a plain subprocess (not
:mod:`multiprocessing`), so a user's script needs no ``if __name__ == "__main__"`` guard.  On Linux
``perf_counter_ns`` is ``CLOCK_MONOTONIC``, shared by every process, so the child's timestamps are on
the requests' clock.  The child writes through a Parquet sink of its own and stops (flushing what it
holds) when its stdin closes, which also happens when its parent is killed.

Protocol: one JSON line on stdin (the spec, headers included: never on the command line, where ``ps``
shows it), ``ready`` on stdout after the first reading, then sampling until stdin closes, with one more
reading at once for each ``now`` line (a phase boundary); finally one JSON line ``{"stats": ...,
"describe": ...}`` on stdout.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from perfkit.collect.base import Sampler
from perfkit.collect.prometheus import PrometheusSource
from perfkit.net.tls import TlsOptions
from perfkit.store.writer import ParquetSink

__all__ = ["KINDS", "ProcessSampler", "main"]

KINDS: dict[str, Any] = {"prometheus": PrometheusSource}
"""The sources a child process can run, by kind."""


class ProcessSampler:
    """A :class:`~perfkit.collect.base.Sampler` in a child process.

    Parameters
    ----------
    name : str
        The sampler's name (its stats' key in the manifest).
    kind : str
        A source kind of :data:`KINDS` (``prometheus``).
    args : dict
        Keyword arguments of that source (JSON-serialisable; ``tls`` as :class:`TlsOptions` fields).
    interval_s : float
        Time between readings, s.
    data_dir : Path
    run_id : str
    table : str
        The table the source's rows belong to.
    prefix : str
        Part-file prefix of the child's sink, unique among the run's writers.
    flush_interval_s : float
    """

    def __init__(
        self,
        name: str,
        kind: str,
        args: dict[str, Any],
        interval_s: float,
        data_dir: Path,
        run_id: str,
        table: str,
        prefix: str,
        flush_interval_s: float = 1.0,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"{name}: the sampling interval must be > 0 s, got {interval_s}")
        self.name = name
        self.description: Any = None
        self.spec = {
            "name": name,
            "kind": kind,
            "args": args,
            "interval_s": interval_s,
            "data_dir": str(data_dir),
            "run_id": run_id,
            "table": table,
            "prefix": prefix,
            "flush_interval_s": flush_interval_s,
        }
        self._proc: subprocess.Popen[str] | None = None

    def start(self, timeout_s: float = 30.0) -> ProcessSampler:
        """Start the child and wait (blocking) until it has taken its first reading."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "perfkit.record.sampler_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(self.spec) + "\n")
        self._proc.stdin.flush()
        sel = selectors.DefaultSelector()
        sel.register(self._proc.stdout, selectors.EVENT_READ)
        if sel.select(timeout_s):
            self._proc.stdout.readline()  # "ready" (or EOF if it died: stop() reports that)
        return self

    def read_now(self) -> None:
        """Ask the child for a reading at once (a phase boundary); it answers nothing, its sink gets the rows."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            return
        try:
            proc.stdin.write("now\n")
            proc.stdin.flush()
        except (OSError, ValueError):  # the child is gone: stop() reports it
            pass

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


def main() -> int:
    """The child: read the spec, sample until stdin closes, report."""
    spec = json.loads(sys.stdin.readline())
    args = dict(spec["args"])
    if isinstance(args.get("tls"), dict):
        args["tls"] = TlsOptions(**args["tls"])
    source = KINDS[spec["kind"]](**args)
    sink = ParquetSink(spec["data_dir"], spec["run_id"], spec["flush_interval_s"], prefix=spec["prefix"])
    sampler = Sampler(spec["name"], source, spec["interval_s"], sink, spec["table"]).start()
    deadline = time.monotonic() + 10
    while sampler.stats.readings == 0 and time.monotonic() < deadline:
        time.sleep(0.002)
    print("ready", flush=True)
    while line := sys.stdin.readline():  # "" at EOF: the parent closed our stdin, or died
        if line.strip() == "now":
            sampler.read_once()
    stats = sampler.stop(final=True)  # the parent stops us after the last request: its counters are complete
    try:
        sink.close()
    except Exception as exc:
        stats["failures"] = stats.get("failures", 0) + 1
        stats["last_error"] = f"write failed: {type(exc).__name__}: {exc}"
    describe = getattr(source, "describe", None)
    print(json.dumps({"stats": stats, "describe": describe() if describe else None}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
