"""The host: the client's own CPU and memory, its event-loop lag, and optionally a local server.

These are the evidence for a *client-bound* verdict: when perfkit's process
uses a whole core, or its event loop wakes late, the latencies it records
include its own delays.  ``cpu_pct`` is percent of one core (100 = one core
busy), from the process's CPU-time delta over the sampling interval.

Event-loop lag is measured *on* the loop by :class:`LoopLagMonitor`: a task
that sleeps a fixed tick and records how late it woke.  The floor of the
measurement is the timer's own granularity (asyncio timers fire up to about a
millisecond late on Linux); lag well above that means callbacks queued behind
other work.  The sampler thread reads and resets its max and mean.

Where reads carry the kernel's receive stamps (:mod:`perfkit.net`), the
host rows also say how long received bytes waited in their sockets before
they were read, by the reading thread or the loop (``read_delay_p99_ms``, ``read_delay_max_ms`` per
interval): the stamps keep that wait out of the latencies, but two chunks of
a stream that arrive within it share one read, and one stamp.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import psutil

from perfkit.clock import now_ns
from perfkit.net import ReadDelays

__all__ = ["HostSource", "LoopLagMonitor"]


class LoopLagMonitor:
    """Measure how late the running event loop wakes a task that sleeps ``tick_s``.

    Parameters
    ----------
    tick_s : float
        Sleep of the probe task, s (20 wake-ups a second by default: negligible load).
    """

    def __init__(self, tick_s: float = 0.05) -> None:
        self.tick_s = tick_s
        self._max_ns = 0
        self._sum_ns = 0
        self._n = 0
        self._task: asyncio.Task[None] | None = None
        self.thread_id: int | None = None

    def start(self) -> LoopLagMonitor:
        self.thread_id = threading.get_native_id()  # the loop's thread, whose own CPU is sampled
        self._task = asyncio.get_running_loop().create_task(self._run(), name="perfkit-loop-lag")
        return self

    async def _run(self) -> None:
        tick_ns = int(self.tick_s * 1e9)
        while True:
            t0 = now_ns()
            await asyncio.sleep(self.tick_s)
            lag = max(0, now_ns() - t0 - tick_ns)
            self._max_ns = max(self._max_ns, lag)
            self._sum_ns += lag
            self._n += 1

    def take(self) -> tuple[float, float, int] | None:
        """(max ms, mean ms, wake-ups) since the last call, then reset; None when no wake-up happened.

        Called from another thread: the fields are read and reset without a lock,
        so a wake-up landing in between is counted in the next interval.
        """
        n, mx, total = self._n, self._max_ns, self._sum_ns
        self._n = self._max_ns = self._sum_ns = 0
        if n == 0:
            return None
        return mx / 1e6, total / n / 1e6, n

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


class _ProcTree:
    """CPU and memory of a process and its descendants, as deltas between readings.

    Finding the descendants scans every process on the host (milliseconds), so
    the tree is refreshed every ``refresh`` readings, not at each one.
    """

    def __init__(self, pid: int, refresh: int = 10) -> None:
        self.root = psutil.Process(pid)
        self.pid = pid
        self.prev_ns: int | None = None
        self._cpu: dict[tuple[int, float], float] = {}  # CPU seconds per (pid, start time) at the last reading
        self.refresh = refresh
        self._children: list[psutil.Process] = []
        self._reads = 0

    def read(self, t_ns: int) -> list[tuple[str, float]]:
        if self._reads % self.refresh == 0:
            try:
                self._children = self.root.children(recursive=True)
            except psutil.Error:
                self._children = []
        self._reads += 1
        cpu_delta = rss = 0.0
        threads = alive = 0
        seen: dict[tuple[int, float], float] = {}
        for p in (self.root, *self._children):
            try:
                with p.oneshot():
                    ct = p.cpu_times()
                    key = (p.pid, p.create_time())
                    rss += p.memory_info().rss
                    threads += p.num_threads()
            except psutil.Error:  # a child that just exited
                continue
            alive += 1
            seen[key] = ct.user + ct.system
            # per process, so a child appearing (with its start-up CPU) or exiting is no jump in the sum
            if key in self._cpu:
                cpu_delta += seen[key] - self._cpu[key]
        out = [("rss_bytes", rss), ("threads", float(threads)), ("processes", float(alive))]
        if self.prev_ns is not None and t_ns > self.prev_ns:
            out.append(("cpu_pct", 100.0 * cpu_delta / ((t_ns - self.prev_ns) / 1e9)))
        self.prev_ns, self._cpu = t_ns, seen
        return out


class HostSource:
    """Rows for ``host_samples``: the client process, the system, optionally a local server's tree.

    Parameters
    ----------
    lag : LoopLagMonitor, optional
        The event-loop probe of the load generator's loop.
    server_pid : int, optional
        A server running on this host (its process and children are summed).
    read_delays : ReadDelays, optional
        The client transport's count of how long received bytes waited before they were read
        (``read_delay_p99_ms``, ``read_delay_max_ms``); none where the transport keeps none.
    """

    def __init__(
        self, lag: LoopLagMonitor | None = None, server_pid: int | None = None, read_delays: ReadDelays | None = None
    ) -> None:
        self.lag = lag
        self.read_delays = read_delays
        self.client = _ProcTree(os.getpid())
        self.server: _ProcTree | None = None
        self.server_problem: str | None = None
        if server_pid is not None:
            try:
                self.server = _ProcTree(server_pid)
            except psutil.Error as exc:
                self.server_problem = f"server process {server_pid}: {exc}"
        psutil.cpu_percent(None)  # primes the system-wide counter
        self._loop_cpu: tuple[int, float] | None = None

    def loop_cpu_pct(self, t_ns: int) -> float | None:
        """CPU of the event loop's own thread over the interval, percent of one core (100: never idle).

        The process's CPU also counts the Parquet writer and the samplers, which
        run on other threads (and cores); a loop thread near 100 % cannot keep
        up with its streams whatever the process total says.
        """
        remote = getattr(self.lag, "loop_cpu_pct", None)
        if remote is not None:  # the load runs in worker processes, which measure their own
            return remote()
        tid = self.lag.thread_id if self.lag is not None else None
        if tid is None:
            return None
        try:
            th = next((t for t in self.client.root.threads() if t.id == tid), None)
        except psutil.Error:
            return None
        if th is None:
            return None
        cpu = th.user_time + th.system_time
        prev, self._loop_cpu = self._loop_cpu, (t_ns, cpu)
        if prev is None or t_ns <= prev[0]:
            return None
        return 100.0 * (cpu - prev[1]) / ((t_ns - prev[0]) / 1e9)

    def read(self, t_ns: int) -> list[dict[str, Any]]:
        rows = [self._row(t_ns, "client", self.client.pid, m, v) for m, v in self.client.read(t_ns)]
        if self.lag is not None and (lag := self.lag.take()) is not None:
            rows += [
                self._row(t_ns, "client", self.client.pid, "loop_lag_max_ms", lag[0]),
                self._row(t_ns, "client", self.client.pid, "loop_lag_mean_ms", lag[1]),
            ]
        reads, p99_ms, max_ms = self.read_delays.take() if self.read_delays is not None else (0, 0.0, 0.0)
        if reads:
            rows += [
                self._row(t_ns, "client", self.client.pid, "read_delay_p99_ms", p99_ms),
                self._row(t_ns, "client", self.client.pid, "read_delay_max_ms", max_ms),
            ]
        if (loop_cpu := self.loop_cpu_pct(t_ns)) is not None:
            rows.append(self._row(t_ns, "client", self.client.pid, "loop_cpu_pct", loop_cpu))
        if self.server is not None:
            try:
                rows += [self._row(t_ns, "server", self.server.pid, m, v) for m, v in self.server.read(t_ns)]
            except psutil.Error as exc:  # the server exited: noted, the client goes on
                self.server_problem = f"server process {self.server.pid}: {exc}"
                self.server = None
        mem = psutil.virtual_memory()
        rows += [
            self._row(t_ns, "system", None, "cpu_pct", psutil.cpu_percent(None) * (psutil.cpu_count() or 1)),
            self._row(t_ns, "system", None, "mem_available_bytes", float(mem.available)),
        ]
        return rows

    @staticmethod
    def _row(t_ns: int, scope: str, pid: int | None, metric: str, value: float) -> dict[str, Any]:
        return {"t_ns": t_ns, "scope": scope, "pid": pid, "metric": metric, "value": value}

    def describe(self) -> dict[str, Any]:
        return {
            "cpus": psutil.cpu_count(),
            "server_pid": self.server.pid if self.server else None,
            "server_problem": self.server_problem,
            "loop_lag_tick_s": self.lag.tick_s if self.lag else None,
        }
