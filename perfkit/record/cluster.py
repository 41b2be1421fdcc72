"""One run from worker actors spread over a Ray cluster: ``perfkit run --cluster ray[://ADDRESS] --workers N``.

:class:`RayGroup` is a :class:`~perfkit.record.workers.WorkerGroup` whose workers are Ray actors
instead of local processes.  Each actor runs the ordinary share (:func:`~perfkit.record.workers.run_share`)
on its own event loop, in a thread of its own, and keeps its records in memory; the driver drains
them about once a second as Arrow tables and writes them under the run, so no filesystem is shared
and a lost actor costs at most its last second.

One timeline across hosts:

* the driver ties each actor's monotonic clock to its own by round trips over Ray (best of
  ``CLOCK_EXCHANGES``: the offset is the actor's reading minus the midpoint of the driver's two,
  its uncertainty half the shortest round trip);
* the first phase starts at one driver instant, which each actor reads on its own clock through its
  offset, and every instant an actor records (intended, sent, chunk arrivals, ...) is moved to the
  driver's clock by the same integer offset as it is written: the schedule's intended times come
  out exactly as one process's, and cross-host timelines agree within the stated uncertainty.

Placement: one placement group of ``N`` one-CPU bundles, spread over the nodes (``SPREAD``: several per
node only where there are fewer nodes than workers), so no two actors contend for one core Ray counts.

Ray is an optional extra (``pip install "perfkit[ray]"``); this is the only module that imports it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import platform
import queue
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from perfkit.clock import ClockAnchor, now_ns
from perfkit.errors import ConfigError
from perfkit.record.workers import WorkerGroup, run_share
from perfkit.rows import RequestRecord
from perfkit.store.writer import shift_instants, write_part

__all__ = ["CLOCK_EXCHANGES", "RayGroup", "parse_cluster", "require_ray"]

CLOCK_EXCHANGES = 64  # round trips per actor; the shortest one sets the offset
_START_MARGIN_NS = 1_500_000_000  # the common start, this far after the last actor is ready
_POLL_S = 1.0  # how often the driver drains an actor's records
_REPORT_S = 0.25
_NODE_SAMPLE_S = 0.5  # each node's host samples (scopes worker, worker-system), as often as the driver's own


def require_ray() -> Any:
    """Import Ray, or say how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            '--cluster ray needs Ray, an optional extra: pip install "perfkit[ray]" (on the driver and on '
            "every node of the cluster)"
        ) from None
    return ray


def parse_cluster(text: str) -> str | None:
    """The Ray address of ``--cluster``: ``ray`` (``$RAY_ADDRESS``, else a Ray on this machine),
    ``ray://HOST:PORT`` (Ray Client) or ``ray:HOST:PORT`` (a cluster this machine is a node of)."""
    if text == "ray":
        return os.environ.get("RAY_ADDRESS") or None
    if text.startswith("ray://"):
        return text
    if text.startswith("ray:") and len(text) > 4:
        return text[4:]
    raise ConfigError(f"--cluster {text!r}: give ray, ray://HOST:PORT (Ray Client) or ray:HOST:PORT")


class _BufferSink:
    """A :class:`~perfkit.rows.Sink` kept in memory until the driver drains it."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue[tuple[str, Sequence[Any]]] = queue.SimpleQueue()
        # pay the first conversion's imports and set-up (about 0.3 s) now, not in the first drain of the
        # run, where it would hold the GIL while the share's event loop is due to send
        probe = RequestRecord(0, "warm-up", 0, True, None, 0, 1, 1)
        probe.chunk_ns, probe.chunk_tokens, probe.chunk_chars = [1, 2], [1, 1], [1, 1]
        self.put("requests", [probe])
        self.put("host_samples", [])
        self.drain()

    def put(self, table: str, rows: Sequence[Any]) -> None:
        self._q.put((table, rows))

    def drain(self) -> list[tuple[str, Any]]:
        """What arrived since the last drain, as ``(table, Arrow table)`` pairs."""
        import pyarrow as pa

        from perfkit.store.schema import TABLES
        from perfkit.store.writer import records_to_tables

        got: dict[str, list[Any]] = {}
        while True:
            try:
                table, rows = self._q.get_nowait()
            except queue.Empty:
                break
            got.setdefault(table, []).extend(rows)
        out: list[tuple[str, Any]] = []
        for table, rows in got.items():
            if table == "requests":
                requests, chunks = records_to_tables(rows)
                out += [("chunks", chunks), ("requests", requests)]  # chunks first, as on disk
            else:
                out.append((table, pa.Table.from_pylist(rows, schema=TABLES[table])))
        return out


class ShareHost:
    """What runs inside one Ray actor: one share of the run on its own event loop and thread.

    The driver calls :meth:`node`, :meth:`clock` (for the offset), :meth:`start`, then :meth:`poll`
    about once a second until it says ``done``; :meth:`stop` cancels the share.
    """

    def __init__(self, w: int, cfg: dict[str, Any]) -> None:
        self.w, self.cfg = w, cfg
        self.sink = _BufferSink()
        self.reports: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.result: dict[str, Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._thread: threading.Thread | None = None

    def node(self) -> dict[str, Any]:
        """Where this actor runs: host, node IP, CPU, process."""
        import ray

        anchor = ClockAnchor.take()
        return {
            "host": socket.gethostname(),
            "node_ip": ray.util.get_node_ip_address(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "pid": os.getpid(),
            "wall_minus_mono_ns": anchor.wall_ns - anchor.mono_ns,
        }

    def clock(self) -> int:
        return now_ns()

    def start(self, start_ns: int) -> None:
        self._thread = threading.Thread(target=self._main, args=(start_ns,), name=f"perfkit-share-{self.w}")
        self._thread.start()

    def _main(self, start_ns: int) -> None:
        try:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(
                run_share(self.w, self.cfg, self.sink, start_ns, self.reports.put, _REPORT_S, _NODE_SAMPLE_S)
            )
            self.result = loop.run_until_complete(self._task)
        except BaseException as exc:
            self.result = {
                "error": f"{type(exc).__name__}: {exc}",
                "cancelled": isinstance(exc, asyncio.CancelledError),
            }
        finally:
            loop.close()

    def poll(self) -> dict[str, Any]:
        """Reports, records and (once the share is over) its result, since the last poll."""
        done = self._thread is not None and not self._thread.is_alive()
        reports = []
        while True:
            try:
                reports.append(self.reports.get_nowait())
            except queue.Empty:
                break
        return {"reports": reports, "tables": self.sink.drain(), "result": self.result if done else None}

    def stop(self) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class RayGroup(WorkerGroup):
    """Drive phases from ``workers`` Ray actors over a cluster; one run, one manifest, on the driver's clock.

    Parameters are those of :class:`~perfkit.record.workers.WorkerGroup`, and:

    address : str or None
        The Ray cluster (:func:`parse_cluster`); None starts or joins one on this machine.

    Attributes
    ----------
    nodes : list of dict
        Per share: host, node, CPU, the clock offset to the driver and its uncertainty (ns), requests.
    lost_shares : list of dict
        Shares whose actor died mid-run: which, where, when (UTC and the driver's clock), why.
    """

    min_workers = 1

    def __init__(self, *args: Any, address: str | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.address = address
        self.data_dir = Path(self.config["data_dir"])
        self.run_id = self.config["run_id"]
        self.anchor = ClockAnchor.take()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="perfkit-follow")
        self.on_nodes: Callable[[list[dict[str, Any]]], None] | None = None

    async def run(self) -> Any:
        ray = require_ray()
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        loop = asyncio.get_running_loop()
        if not ray.is_initialized():
            await loop.run_in_executor(
                None, lambda: ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
            )
        n = self.workers
        pg = placement_group([{"CPU": 1}] * n, strategy="SPREAD")
        actors: list[Any] = []
        futures: list[concurrent.futures.Future[dict[str, Any]]] = []
        try:
            ready = await loop.run_in_executor(None, lambda: pg.wait(120))
            if not ready:
                raise ConfigError(
                    f"the Ray cluster could not place {n} workers of one CPU each within 120 s; "
                    f"it has {ray.cluster_resources().get('CPU', 0):g} CPUs: give fewer --workers or add nodes"
                )
            remote = ray.remote(num_cpus=1, max_restarts=0)(ShareHost)
            actors = [
                remote.options(
                    scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=w)
                ).remote(w, self.config)
                for w in range(n)
            ]
            self.nodes = await loop.run_in_executor(None, self._meet, ray, actors)
            if self.on_nodes is not None:
                await loop.run_in_executor(None, self.on_nodes, self.nodes)
            start = now_ns() + _START_MARGIN_NS
            start_utc = self.anchor.to_datetime(start).isoformat()
            for a, node in zip(actors, self.nodes, strict=True):
                node["start_utc"] = start_utc
                a.start.remote(start + node["offset_ns"])
            futures = [self._pool.submit(self._follow_actor, ray, w, a) for w, a in enumerate(actors)]
            results = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        except BaseException:
            self._stop.set()  # Ctrl-C or a failure: every share stops; what arrived stays written
            for a in actors:
                a.stop.remote()
            # the followers write nothing after this: the manifest's counts are what is on disk
            await loop.run_in_executor(None, lambda: concurrent.futures.wait(futures, timeout=30))
            for a in actors:
                ray.kill(a)
            raise
        finally:
            self._pool.shutdown(wait=False)
            remove_placement_group(pg)
        live = [r for r in results if not r.get("lost")]  # each with its phase windows (empty on an error)
        if not live:
            raise RuntimeError("every share was lost: " + "; ".join(x["error"] for x in self.lost_shares))
        self.finish(live)
        self.written = sum(r["written"] for r in results)  # the lost shares' too: their rows are on disk
        return self.progress

    def _meet(self, ray: Any, actors: list[Any]) -> list[dict[str, Any]]:
        """Each actor's node and its clock offset to the driver's (best of ``CLOCK_EXCHANGES`` round trips)."""
        nodes = ray.get([a.node.remote() for a in actors], timeout=180)
        for w, (a, node) in enumerate(zip(actors, nodes, strict=True)):
            best = None
            for _ in range(CLOCK_EXCHANGES):
                t0 = now_ns()
                t = ray.get(a.clock.remote())
                t1 = now_ns()
                if best is None or t1 - t0 < best[0]:
                    best = (t1 - t0, t - (t0 + t1) // 2)
            assert best is not None
            node.update(share=w, offset_ns=best[1], offset_uncertainty_ns=best[0] // 2 + 1)
        return list(nodes)

    def _follow_actor(self, ray: Any, w: int, actor: Any) -> dict[str, Any]:
        """Drain one actor until its share is over, writing its records; a dead actor is a lost share."""
        offset = self.nodes[w]["offset_ns"]
        seq: dict[str, int] = {}
        written = 0
        while True:
            if self._stop.is_set():
                return {"written": written, "lost": True}
            try:
                got = ray.get(actor.poll.remote(), timeout=60)
            except Exception as exc:  # the actor, its process or its node is gone
                lost_ns = now_ns()
                with self._lock:
                    self.lost_shares.append(
                        {
                            "share": w,
                            "host": self.nodes[w]["host"],
                            "node_ip": self.nodes[w]["node_ip"],
                            "lost_ns": lost_ns,
                            "lost_utc": self.anchor.to_datetime(lost_ns).isoformat(),
                            "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                            "requests_written": written,
                        }
                    )
                self.nodes[w]["requests"] = written
                return {"written": written, "lost": True}
            for r in got["reports"]:
                _, progress, items, lag, loop_cpu, delays = r
                self.merge_report(w, progress, items)
                self.lag.add(lag, loop_cpu)
                self.read_delays.add(delays)
                node = self.nodes[w]
                if lag is not None:
                    node["loop_lag_max_ms"] = max(node.get("loop_lag_max_ms", 0.0), lag[0])
            for table, t in got["tables"]:
                t = shift_instants(t, table, -offset)
                if not t.num_rows:
                    continue
                k = seq.get(table, 0)
                write_part(t, self.data_dir / table / f"run_id={self.run_id}", k, f"part-w{w}")
                seq[table] = k + 1
                if table == "requests":
                    written += t.num_rows
                    with self._lock:
                        self.written += t.num_rows
            result = got["result"]
            if result is not None:
                self.nodes[w]["requests"] = written
                if result.get("error"):
                    return {"error": f"share {w}: {result['error']}", "written": written, "phase_windows": []}
                self.merge_report(w, result["progress"], result["items"])
                wins = [(name, s - offset, e - offset) for name, s, e in result["phase_windows"]]
                return {"phase_windows": wins, "written": written}
            self._stop.wait(_POLL_S)
