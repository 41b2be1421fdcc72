"""One run from several client processes: the schedule partitioned exactly, the records merged into one run.

One Python process streams at most some tens of thousands of chunks a second
before its event loop falls behind (``bench/client_fidelity.py``); past that,
the latencies it reports are partly its own.  :class:`WorkerGroup` runs the
same phases in ``n`` processes, each with its own event loop (uvloop where
installed) and its own :class:`~perfkit.client.runner.LoadRunner` holding
partition ``(w, n)``:

* every worker computes the whole arrival schedule from the run's seed and
  sends arrivals ``w, w + n, w + 2n, ...``: together they send exactly the
  schedule one process would, at the same instants;
* closed-loop users ``w, w + n, ...``; request budgets split evenly;
* all workers start their first phase at one instant on the host's monotonic
  clock (shared by processes), and each timed phase ends where it was planned,
  so phase windows agree to the microsecond;
* each writes its own Parquet parts (``part-wW-...``) under the run: the
  ``requests`` and ``chunks`` views see one run, request ids unique
  (``request_id % n == w``).

What stays per worker: the drawn content (each worker draws its own classes,
lengths and prompts from its own seeded stream; the same seed and ``n``
reproduce them), least-outstanding routing (each worker balances its own
requests), and sweeps that stop early or choose their rates from measured
steps, which need every worker's results at once and are refused.

The parent process keeps the run's manifest and telemetry, merges the
workers' progress and live latency windows for the display, and records their
event-loop lag, loop-thread CPU and read delays (the worst worker at each
reading) in ``host_samples``, so the client-bound flag covers every worker.
Each worker gets a copy of the run's transport (its settings, pickled; no
connection) and writes through a Parquet sink of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing as mp
import os
import threading
from pathlib import Path
from typing import Any

from perfkit.client.endpoint import Endpoint
from perfkit.client.fasthttp import FastTransport
from perfkit.client.live import LiveWindow
from perfkit.client.routing import Router
from perfkit.client.runner import LoadRunner, PhaseSpec, RunProgress
from perfkit.client.transport import Transport
from perfkit.clock import now_ns
from perfkit.errors import ConfigError

__all__ = ["RemoteLag", "RemoteReadDelays", "WorkerGroup", "check_partitionable", "run_share"]

_REPORT_S = 0.25  # how often a worker tells the parent what it did
_START_MARGIN_NS = 100_000_000  # the common start, this far after every worker said it is ready


def check_partitionable(phases: list[PhaseSpec]) -> None:
    """Refuse phases that need every worker's results at once (sweeps that stop or choose their own rates)."""
    for p in phases:
        if p.stop_when is not None or p.auto_rate is not None:
            raise ConfigError(
                f"phase {p.name!r} is a sweep step that stops early or picks its rate from the steps "
                "before it; that needs one process: run it without --workers"
            )


class RemoteLag:
    """The parent's stand-in for a loop-lag probe: the worst worker's figures since the last reading."""

    tick_s = 0.05
    thread_id = None

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._max, self._sum, self._n = 0.0, 0.0, 0
        self._cpu: float | None = None

    def add(self, lag: tuple[float, float, int] | None, loop_cpu: float | None) -> None:
        with self._lock:
            if lag is not None:
                self._max = max(self._max, lag[0])
                self._sum += lag[1] * lag[2]
                self._n += lag[2]
            if loop_cpu is not None:
                self._cpu = loop_cpu if self._cpu is None else max(self._cpu, loop_cpu)

    def take(self) -> tuple[float, float, int] | None:
        with self._lock:
            if not self._n:
                return None
            out = (self._max, self._sum / self._n, self._n)
            self._max, self._sum, self._n = 0.0, 0.0, 0
            return out

    def loop_cpu_pct(self) -> float | None:
        with self._lock:
            out, self._cpu = self._cpu, None
            return out

    def stop(self) -> None:
        pass


class RemoteReadDelays:
    """The parent's stand-in for a transport's read delays: every worker's reads since the last reading,
    with the worst worker's p99 and longest wait."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reads, self._p99, self._max = 0, 0.0, 0.0

    def add(self, got: tuple[int, float, float] | None) -> None:
        if not got or not got[0]:
            return
        with self._lock:
            self._reads += got[0]
            self._p99, self._max = max(self._p99, got[1]), max(self._max, got[2])

    def take(self) -> tuple[int, float, float]:
        with self._lock:
            out = (self._reads, self._p99, self._max)
            self._reads, self._p99, self._max = 0, 0.0, 0.0
            return out


class WorkerGroup:
    """Drive phases from ``workers`` processes; looks like a :class:`LoadRunner` to progress displays.

    Parameters
    ----------
    endpoints : list of Endpoint
    phases : list of PhaseSpec
    data_dir : Path
    run_id : str
    workers : int
        Client processes (2 or more).
    seed : int
    router : Router
        Its policy and weights are used by every worker.
    drain_timeout_s, flush_interval_s : float
        As for :func:`perfkit.record.record_run`, s.
    transport : Transport, optional
        Each worker sends through a copy of it (pickled: its settings, no connection); default a
        :class:`~perfkit.client.fasthttp.FastTransport`.
    prompt_salt : str, optional
        As for :class:`~perfkit.client.runner.LoadRunner`.
    """

    min_workers = 2

    def __init__(
        self,
        endpoints: list[Endpoint],
        phases: list[PhaseSpec],
        data_dir: Path,
        run_id: str,
        *,
        workers: int,
        seed: int = 0,
        router: Router | None = None,
        drain_timeout_s: float = 60.0,
        flush_interval_s: float = 1.0,
        transport: Transport | None = None,
        prompt_salt: str | None = None,
    ) -> None:
        if workers < self.min_workers:
            raise ConfigError(f"this worker group needs {self.min_workers} or more workers, not {workers}")
        check_partitionable(phases)
        self.endpoints, self.endpoint, self.phases = endpoints, endpoints[0], phases
        self.router = router or Router(len(endpoints))
        self.workers = workers
        self.progress = RunProgress()
        self.live = LiveWindow()
        self.lag = RemoteLag()
        self.read_delays = RemoteReadDelays()
        self.phase_windows: list[tuple[str, int, int]] = []
        self.stops: list[tuple[str, str]] = []
        self.written = 0
        self.nodes: list[dict[str, Any]] = []  # where each share ran (filled by cluster groups)
        self.lost_shares: list[dict[str, Any]] = []  # shares lost mid-run (cluster groups go on without them)
        self.config: dict[str, Any] = {
            "endpoints": [dataclasses.asdict(e) for e in endpoints],
            "phases": phases,
            "data_dir": str(data_dir),
            "run_id": run_id,
            "seed": seed,
            "prompt_salt": prompt_salt,
            "workers": workers,
            "policy": self.router.policy,
            "weights": self.router.weights,
            "drain_timeout_s": drain_timeout_s,
            "flush_interval_s": flush_interval_s,
            "transport": transport if transport is not None else FastTransport(),
        }
        self._progress: dict[int, dict[str, Any]] = {}

    async def run(self) -> RunProgress:
        """Start the workers, give them one start instant, merge what they report; re-raise a worker's failure."""
        ctx = mp.get_context("spawn")  # no inherited event loop, threads or file handles
        pipes, procs = [], []
        for w in range(self.workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_main, args=(w, self.config, child), name=f"perfkit-worker-{w}", daemon=True
            )
            proc.start()
            child.close()
            pipes.append(parent)
            procs.append(proc)
        loop = asyncio.get_running_loop()
        try:
            for w, pipe in enumerate(pipes):  # each imports perfkit and builds its runner: about a second
                msg = await loop.run_in_executor(None, _recv, pipe, 120.0)
                if msg[0] != "ready":
                    raise RuntimeError(f"client worker {w} did not start: {msg[1]}")
            start = now_ns() + _START_MARGIN_NS
            for pipe in pipes:
                pipe.send(start)
            results = await asyncio.gather(
                *(loop.run_in_executor(None, self._follow, w, pipe) for w, pipe in enumerate(pipes))
            )
        except BaseException:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()  # SIGTERM: a worker closes its run part cleanly
            raise
        finally:
            for proc in procs:
                await loop.run_in_executor(None, proc.join, 30)
        self.finish(results)
        return self.progress

    def finish(self, results: list[dict[str, Any]]) -> None:
        """Join the workers' phase windows and counts; raise the workers' failures, if any."""
        errors = [r["error"] for r in results if r.get("error")]
        wins: dict[str, tuple[str, int, int]] = {}
        for r in results:
            for name, s, e in r["phase_windows"]:
                old = wins.get(name)
                wins[name] = (name, min(s, old[1]) if old else s, max(e, old[2]) if old else e)
        self.phase_windows = sorted(wins.values(), key=lambda x: x[1])
        self.written = sum(r["written"] for r in results)
        if errors:
            raise RuntimeError("; ".join(errors))

    def _follow(self, w: int, pipe: Any) -> dict[str, Any]:
        """Read one worker's reports until it is done (a thread per worker)."""
        while True:
            msg = _recv(pipe, None)
            kind = msg[0]
            if kind == "progress":
                _, progress, items, lag, loop_cpu, delays = msg
                self.merge_report(w, progress, items)
                self.lag.add(lag, loop_cpu)
                self.read_delays.add(delays)
            elif kind == "done":
                self.merge_report(w, msg[1]["progress"], msg[1]["items"])
                return msg[1]
            else:  # "failed" or a lost pipe
                return {"error": f"worker {w}: {msg[1]}", "phase_windows": [], "written": 0}

    def merge_report(self, w: int, progress: dict[str, Any], items: list[tuple[Any, ...]]) -> None:
        """Fold worker ``w``'s latest progress and live latency items into the group's."""
        self._progress[w] = progress
        for item in items:
            self.live.add_item(item)
        p, parts = self.progress, list(self._progress.values())
        lead = self._progress.get(0, progress)
        p.phase, p.phase_index = lead["phase"], lead["phase_index"]
        p.phase_started_ns, p.phase_duration_s = lead["phase_started_ns"], lead["phase_duration_s"]
        for k in ("sent", "done", "errors", "in_flight", "output_tokens"):
            setattr(p, k, sum(x[k] for x in parts))
        kinds: dict[str, int] = {}
        for x in parts:
            for kind, n in x["errors_by_kind"].items():
                kinds[kind] = kinds.get(kind, 0) + n
        p.errors_by_kind = kinds


def _recv(pipe: Any, timeout_s: float | None) -> tuple[Any, ...]:
    try:
        if timeout_s is not None and not pipe.poll(timeout_s):
            return ("failed", f"no word within {timeout_s:g} s")
        return pipe.recv()
    except (EOFError, OSError) as exc:
        return ("failed", f"the worker process ended without a word ({type(exc).__name__})")


def _worker_main(w: int, cfg: dict[str, Any], pipe: Any) -> None:
    """A worker process: build its runner, wait for the start instant, run, report."""
    import signal

    try:
        import uvloop

        runner_fn: Any = uvloop.run
    except ImportError:
        runner_fn = asyncio.run
    try:
        runner_fn(_worker(w, cfg, pipe))
    except KeyboardInterrupt:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


async def _worker(w: int, cfg: dict[str, Any], pipe: Any) -> None:
    import signal

    from perfkit.store.writer import ParquetSink

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        loop.add_signal_handler(signal.SIGINT, lambda: None)  # Ctrl-C reaches the parent, which stops us
    sink = None
    try:
        sink = ParquetSink(cfg["data_dir"], cfg["run_id"], cfg["flush_interval_s"], prefix=f"part-w{w}")
        pipe.send(("ready",))
        start_ns = await loop.run_in_executor(None, pipe.recv)
        done = await run_share(w, cfg, sink, start_ns, pipe.send)
        await loop.run_in_executor(None, sink.close)
        done["written"] = sink.written
        pipe.send(("done", done))
    except BaseException as exc:
        if sink is not None:
            await loop.run_in_executor(None, sink.close)
        try:
            pipe.send(("failed", f"{type(exc).__name__}: {exc}"))
        except OSError:
            pass
        if not isinstance(exc, (asyncio.CancelledError, Exception)):
            raise


async def run_share(
    w: int,
    cfg: dict[str, Any],
    sink: Any,
    start_ns: int,
    report: Any,
    report_s: float = _REPORT_S,
    node_sample_s: float | None = None,
) -> dict[str, Any]:
    """Run worker ``w``'s share of the run described by ``cfg`` on the running event loop.

    Parameters
    ----------
    w : int
        The share, 0 to ``cfg["workers"] - 1``.
    cfg : dict
        :attr:`WorkerGroup.config`: endpoints, phases, seed, transport and the rest.
    sink : Sink
        Where the share's records go (a Parquet sink of its own, or a buffer a driver drains).
    start_ns : int
        When the first phase starts, on this host's monotonic clock, ns.
    report : callable
        Called about every ``report_s`` with ``("progress", progress, live items, loop lag,
        loop-thread CPU %, read delays)``, the tuple :meth:`WorkerGroup.merge_report` and the
        group's lag stand-ins take.
    report_s : float
        How often to report, s.
    node_sample_s : float, optional
        Also put ``host_samples`` of this worker's process (scope ``worker``) and its machine (scope
        ``worker-system``, with the worker's pid) into ``sink`` this often, s: for workers on other hosts,
        whose machines the run's own host sampler cannot see.

    Returns
    -------
    dict
        ``progress``, ``items`` (live items not yet reported), ``phase_windows`` and ``pid``.
    """
    from perfkit.collect.host import HostSource, LoopLagMonitor

    loop = asyncio.get_running_loop()
    endpoints = [Endpoint(**e) for e in cfg["endpoints"]]
    transport = cfg["transport"]  # this process's own copy
    delays = getattr(transport, "read_delays", None)
    lag = LoopLagMonitor().start()
    host = HostSource(lag)
    runner = LoadRunner(
        endpoints,
        cfg["phases"],
        sink,
        seed=cfg["seed"],
        run_id=cfg["run_id"],
        router=Router(len(endpoints), cfg["policy"], cfg["weights"]),
        transport=transport,
        drain_timeout_s=cfg["drain_timeout_s"],
        partition=(w, cfg["workers"]),
        prompt_salt=cfg["prompt_salt"],
        start_at_ns=start_ns,
    )
    runner.live.outbox = []

    async def reporter() -> None:
        while True:
            await asyncio.sleep(report_s)
            items, runner.live.outbox = runner.live.outbox, []
            report(
                (
                    "progress",
                    dataclasses.asdict(runner.progress),
                    items,
                    lag.take(),
                    host.loop_cpu_pct(now_ns()),
                    delays.take() if delays is not None else None,
                )
            )

    interval = node_sample_s or 1.0

    async def node_sampler() -> None:
        src = HostSource()
        scopes = {"client": "worker", "system": "worker-system"}
        while True:
            rows = await loop.run_in_executor(None, src.read, now_ns())  # psutil off the event loop
            sink.put("host_samples", [{**r, "scope": scopes[r["scope"]], "pid": os.getpid()} for r in rows])
            await asyncio.sleep(interval)

    tasks = [loop.create_task(reporter())]
    if node_sample_s:
        tasks.append(loop.create_task(node_sampler()))
    try:
        await runner.run()
    finally:
        for task in tasks:
            task.cancel()
        lag.stop()
        await transport.close()
    return {
        "progress": dataclasses.asdict(runner.progress),
        "items": runner.live.outbox,
        "phase_windows": runner.phase_windows,
        "pid": os.getpid(),
    }
