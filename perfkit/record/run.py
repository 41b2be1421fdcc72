"""Record one run end to end: manifest, transport, load runner, side channels, one sink.

This is the composition used by ``perfkit run``, ``perfkit demo`` and the tests;
it sits on top of the stages (client, collect, store) and owns no logic of its
own beyond their order and wiring: the run's Parquet sink, which the runner and
every sampler write through; the transport, whose read delays the host sampler
reports; the manifest first, then traffic, then the final manifest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perfkit.client.endpoint import Endpoint, check_model, discover_model
from perfkit.client.fasthttp import FastTransport
from perfkit.client.routing import Router
from perfkit.client.runner import LoadRunner, PhaseSpec, RunProgress, pool_size_for
from perfkit.client.transport import Transport
from perfkit.clock import ClockAnchor, now_ns
from perfkit.errors import ConfigError
from perfkit.net.get import get, server_root
from perfkit.record.cluster import RayGroup, parse_cluster, require_ray
from perfkit.record.probe import preflight as first_request_check
from perfkit.record.shares import Share, group_key, start_mono_ns
from perfkit.record.telemetry import Telemetry, TelemetrySpec
from perfkit.record.workers import WorkerGroup, check_partitionable
from perfkit.store.manifest import environment_info, new_run_id, redact_url, write_manifest
from perfkit.store.rollup import build_rollup
from perfkit.store.writer import ParquetSink

__all__ = ["RunResult", "record_run"]


def _loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return f"{type(loop).__module__}.{type(loop).__name__}"


@dataclass
class RunResult:
    """What :func:`record_run` returns."""

    run_id: str
    data_dir: Path
    progress: RunProgress
    manifest: dict[str, Any]


def _class_dict(c: Any) -> dict[str, Any]:
    d = {f.name: getattr(c, f.name) for f in dataclasses.fields(c) if f.name not in ("dataset", "explicit", "probes")}
    d["prompt_tokens"], d["output_tokens"] = str(c.prompt_tokens), str(c.output_tokens)
    d["slo"] = dataclasses.asdict(c.slo) if c.slo else None
    d["dataset_conversations"] = len(c.dataset) if c.dataset else None
    d["probes"] = [{"prompt": p.prompt, "check": {p.check.kind: p.check.expected}} for p in c.probes or ()]
    return d


def _rollup(data_dir: Path, run_id: str) -> None:
    """Write the run's latency rollup; a failure costs the fast summaries of huge runs, never the run."""
    try:
        build_rollup(data_dir, run_id)
    except Exception as exc:
        logging.getLogger("perfkit").warning(
            "the latency rollup of %s could not be written (%s); summaries will read every sample; "
            "`perfkit rollup %s` tries again",
            run_id,
            exc,
            run_id,
        )


def _phase_dict(p: PhaseSpec) -> dict[str, Any]:
    """A phase as JSON for the manifest (traces and datasets summarised, not copied)."""
    d: dict[str, Any] = {
        f.name: getattr(p, f.name)
        for f in dataclasses.fields(p)
        if f.name not in ("trace", "profile", "classes", "stop_when")
    }
    d["prompt_tokens"], d["output_tokens"] = str(p.prompt_tokens), str(p.output_tokens)
    d["profile"] = [list(x) for x in p.profile.points] if p.profile else None
    d["trace_requests"] = len(p.trace.offsets) if p.trace else None
    d["classes"] = [_class_dict(c) for c in p.classes or ()]
    d["stop_when"] = dataclasses.asdict(p.stop_when) if p.stop_when else None
    d["requested_rate_rps"] = p.requested_rate
    d["mode"] = "closed" if p.closed_loop else "trace" if p.trace else "open"
    return d


async def _detect_simulator(endpoint: Endpoint, transport: Transport) -> dict[str, Any] | None:
    """The simulator's config when ``endpoint`` is perfkit's simulator (its ``/sim/config`` answers), else None."""
    root = server_root(endpoint.base_url)
    tls = getattr(transport, "tls", None)
    res = await asyncio.to_thread(
        get,
        root + "/sim/config",
        2.0,
        None,
        1 << 20,
        tls.context if tls is not None and root.startswith("https") else None,
    )
    if res.status != 200:
        return None
    try:
        cfg = json.loads(res.body)
    except ValueError:
        return None
    if not isinstance(cfg, dict) or "step_base_ms" not in cfg:
        return None
    return {"config": cfg, "url": redact_url(root), "detected": True}


async def record_run(
    endpoint: Endpoint | list[Endpoint],
    phases: list[PhaseSpec],
    data_dir: str | Path = "data",
    *,
    seed: int = 0,
    run_id: str | None = None,
    label: str | None = None,
    simulator: dict[str, Any] | None = None,
    read_timeout_s: float = 60.0,
    drain_timeout_s: float = 60.0,
    flush_interval_s: float = 1.0,
    on_start: Callable[[LoadRunner, str], None] | None = None,
    command: list[str] | None = None,
    scenario: dict[str, Any] | None = None,
    router: Router | None = None,
    telemetry: TelemetrySpec | None = None,
    notify: Callable[[str], None] | None = None,
    tags: dict[str, str] | None = None,
    workers: int = 1,
    transport: Transport | None = None,
    same_prompts: bool = False,
    cluster: str | None = None,
    partition: Share | None = None,
    start_at: int | None = None,
    preflight: bool = True,
) -> RunResult:
    """Run ``phases`` against ``endpoint`` and record everything under ``data_dir``.

    Parameters
    ----------
    endpoint : Endpoint or list of Endpoint
        One endpoint or several replicas; where ``model`` is empty, the first
        model the endpoint's ``/v1/models`` lists is used.
    phases : list of PhaseSpec
    data_dir : str or Path
    seed : int
    run_id : str, optional
        Default: a new sortable id.
    label : str, optional
        Free text kept in the manifest.
    simulator : dict, optional
        The simulator's config when the endpoint is perfkit's simulator (ground truth).
    read_timeout_s, drain_timeout_s : float
        See :class:`LoadRunner`, s (``read_timeout_s``: of the default transport).
    flush_interval_s : float
        Parquet flush interval, s (at most this much is lost on a kill).
    on_start : callable, optional
        Called with the runner and run id once traffic is about to start
        (progress displays hook in here).
    command : list of str, optional
        The command line, kept in the manifest.
    scenario : dict, optional
        The scenario (name, source file, its parsed text), kept in the manifest.
    router : Router, optional
        How requests are spread over several endpoints (default round robin).
    telemetry : TelemetrySpec, optional
        Side channels recorded on the same clock (default: GPU ``auto``, server
        ``/metrics`` every second, host every 0.5 s).
    notify : callable, optional
        Receives one line for each thing the user should know before traffic
        starts (GPU counters off, no ``/metrics``); default: the ``perfkit`` logger.
    tags : dict of str to str, optional
        Labels kept in the manifest and the ``runs`` view, e.g. ``{"variant": "int8", "workload": "chat"}``
        (trade-off analyses group runs by ``variant``).  Against perfkit's simulator the variant it
        simulates is found by itself.
    workers : int
        Client processes sharing the load (:mod:`perfkit.record.workers`); 1 runs it on this
        process's event loop.  More, when one process cannot keep up (the run's client-bound flag).
    transport : Transport, optional
        What sends the requests (:mod:`perfkit.client.transport`); default a
        :class:`~perfkit.client.fasthttp.FastTransport`.  The manifest records its ``describe()``;
        its read delays, where it keeps them, are the host sampler's.  Closed at the end.
    same_prompts : bool
        Send the seed's prompt words in every run (for studies of a prefix cache across runs).  By default
        the words are salted by the run id: lengths, classes and arrival times stay the seed's, but a second
        run against the same server does not find its prompts in the first run's prefix cache.
    cluster : str, optional
        ``"ray"`` or ``"ray://HOST:PORT"``: the ``workers`` are Ray actors spread over that cluster's nodes
        (:mod:`perfkit.record.cluster`), their records and clocks brought back to this process.
    partition : Share, optional
        Run only this share of the schedule (:mod:`perfkit.record.shares`), as one of several processes
        started separately; ``perfkit merge`` joins the shares.  Needs ``start_at``.
    start_at : int, optional
        With ``partition``: when the first phase starts, UTC ns since the epoch (the same for every share).
    preflight : bool
        Before traffic, one small request finds out whether the server accepts perfkit's non-standard fields
        (``ignore_eos``/``min_tokens``, usage in every chunk); those it refuses are dropped for the run, said
        through ``notify`` and recorded in the manifest (``preflight``).  Skipped against perfkit's simulator,
        which accepts them, unless it is set to refuse some.
    """
    if workers < 1:
        raise ConfigError(f"workers must be 1 or more, not {workers}")
    if workers > 1 or cluster or partition:
        check_partitionable(phases)
    if partition is not None and (workers > 1 or cluster):
        raise ConfigError("--partition runs one share in this process: drop --workers and --cluster")
    if (partition is None) != (start_at is None):
        raise ConfigError("--partition and --start-at go together: every share must start at one instant")
    anchor = ClockAnchor.take()
    run_id = run_id or new_run_id(anchor)
    share: dict[str, Any] | None = None
    start_ns = None
    if partition is not None and start_at is not None:
        start_ns = start_mono_ns(start_at, anchor)
        key = group_key(
            seed,
            partition.count,
            start_at,
            [_phase_dict(p) for p in phases],
            redact_url((endpoint[0] if isinstance(endpoint, list) else endpoint).base_url),
        )
        share = {
            "index": partition.index,
            "count": partition.count,
            "start_at_utc": anchor.to_datetime(start_ns).isoformat(),
            "start_at_wall_ns": start_at,
            "start_ns": start_ns,
            "group": key,
        }
    data_dir = Path(data_dir)
    pool = pool_size_for(phases)
    loop = asyncio.get_running_loop()
    transport = transport if transport is not None else FastTransport(read_timeout_s=read_timeout_s)
    tls = getattr(transport, "tls", None)
    context = tls.context if tls is not None else None
    try:
        endpoints = list(endpoint) if isinstance(endpoint, list) else [endpoint]
        for i, ep in enumerate(endpoints):
            if not ep.model:
                endpoints[i] = dataclasses.replace(ep, model=await discover_model(ep, context))
            else:
                await check_model(ep, context)
        endpoint = endpoints[0]
        if simulator is None:
            simulator = await _detect_simulator(endpoint, transport)
        checked: dict[str, Any] = {"skipped": "turned off (--no-preflight)"}
        if preflight and simulator is not None and not (simulator.get("config") or {}).get("reject_fields"):
            checked = {"skipped": "perfkit's simulator accepts every field perfkit sends"}
        elif preflight:
            accepted, checked = await first_request_check(endpoint, transport)
            dropped = [str(x) for x in checked["dropped"]]
            if dropped:
                endpoints = [
                    dataclasses.replace(e, ignore_eos=accepted.ignore_eos, continuous_usage=accepted.continuous_usage)
                    for e in endpoints
                ]
                endpoint = endpoints[0]
                (notify or logging.getLogger("perfkit").warning)(
                    f"the server refused {' and '.join(dropped)} (HTTP 400): the run goes on without "
                    "them, so output lengths are the server's own choice or usage comes at the end only "
                    "(manifest: preflight)"
                )
        router = router or Router(len(endpoints))
        manifest: dict[str, Any] = {
            "status": "running",
            "label": label,
            "seed": seed,
            "pid": os.getpid(),
            "started_utc": anchor.utc_iso,
            "clock_anchor": {"mono_ns": anchor.mono_ns, "wall_ns": anchor.wall_ns},
            "endpoint": {
                "base_url": redact_url(endpoint.base_url),
                "model": endpoint.model,
                "api": endpoint.api,
                "ignore_eos": endpoint.ignore_eos,
                "continuous_usage": endpoint.continuous_usage,
                "request_id": "uuid" if endpoint.request_id else "none",
                "extra_body": json.loads(endpoint.extra_body) if endpoint.extra_body else None,
                "api_key_env": endpoint.api_key_env or "PERFKIT_API_KEY|OPENAI_API_KEY",
                "api_key_set": "Authorization" in endpoint.headers(),
            },
            "endpoints": [{"base_url": redact_url(e.base_url), "model": e.model} for e in endpoints],
            "routing": {"policy": router.policy, "weights": router.weights},
            "phases": [_phase_dict(p) for p in phases],
            # the prompt words: salted by the run id (no prefix cache carries over between runs) or the seed's
            "prompts": "the seed's, the same in every run" if same_prompts else "salted by the run id",
            # the transport says how chunks are timed (kernel receive stamps or the reads' times), on which
            # thread, and whether the read path is the compiled one: all bear on how far its figures hold
            "client": {
                "pool_size": pool,
                "drain_timeout_s": drain_timeout_s,
                "flush_interval_s": flush_interval_s,
                "clock": "time.perf_counter_ns",
                "workers": workers,
                "event_loop": _loop_name(loop),
                "transport": transport.describe(),
            },
            "simulator": simulator,
            "preflight": checked,
            "share": share,
            "cluster": {"kind": "ray", "address": redact_url(parse_cluster(cluster) or "local")} if cluster else None,
            "tags": dict(tags or {}),
            "scenario": scenario,
            "command": command if command is not None else sys.argv,
            # a git subprocess, file writes and pyarrow's warm-up: none of it on the event loop
            "environment": await loop.run_in_executor(None, environment_info),
        }
        # the shares of one run salt their words alike, so that together they send what one run would
        salt = None if same_prompts else (share["group"] if share else run_id)
        group_kw: dict[str, Any] = dict(
            workers=workers,
            seed=seed,
            router=router,
            drain_timeout_s=drain_timeout_s,
            flush_interval_s=flush_interval_s,
            transport=transport,
            prompt_salt=salt,
        )
        group: WorkerGroup | None = None
        if cluster:
            require_ray()
            group = RayGroup(endpoints, phases, data_dir, run_id, address=parse_cluster(cluster), **group_kw)

            def on_nodes(nodes: list[dict[str, Any]]) -> None:  # where each share runs, before traffic starts
                manifest["nodes"] = nodes
                write_manifest(data_dir, run_id, dict(manifest))

            group.on_nodes = on_nodes
        elif workers > 1:
            group = WorkerGroup(endpoints, phases, data_dir, run_id, **group_kw)
        # the run's one sink: the runner's records (unless workers write their own) and every sampler's rows
        sink = await loop.run_in_executor(None, ParquetSink, data_dir, run_id, flush_interval_s)
        # side channels first: a set-up that refuses the run (--gpu sim against a real server) leaves no run behind
        tele = Telemetry(
            telemetry or TelemetrySpec(),
            sink,
            data_dir,
            run_id,
            [e.base_url for e in endpoints],
            headers={k: v for k, v in endpoint.headers().items() if k == "Authorization"},
            notify=notify or logging.getLogger("perfkit").warning,
            lag=group.lag if group else None,
            read_delays=group.read_delays if group else getattr(transport, "read_delays", None),  # type: ignore[arg-type]
            tls=tls,
        )
        first_write: asyncio.Future[Any] | None = None
        try:
            await tele.start()
            manifest["telemetry"] = tele.describe()
            first_write = loop.run_in_executor(None, write_manifest, data_dir, run_id, dict(manifest))
            await first_write
        except BaseException as exc:  # stopped while setting up: a manifest on disk must not say "running"
            stopped = isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError))
            if first_write is not None or stopped:  # samplers may have written parts already
                if first_write is not None:
                    await asyncio.wait([first_write])
                manifest.update(
                    status="interrupted" if stopped else "failed",
                    error=f"{type(exc).__name__}: {exc}",
                    counts={"requests": 0},
                )
                write_manifest(data_dir, run_id, manifest)
            await loop.run_in_executor(None, tele.stop)
            await loop.run_in_executor(None, sink.close)
            raise

        def on_phase(index: int, spec: PhaseSpec, phase_start_ns: int) -> None:
            # keep the phase windows on disk as they happen, for runs that never reach the end
            wins = [{"phase": n, "start_ns": s, "end_ns": e} for n, s, e in runner.phase_windows]
            manifest["phase_windows"] = wins + [{"phase": spec.name, "start_ns": phase_start_ns, "end_ns": None}]
            loop.run_in_executor(None, write_manifest, data_dir, run_id, dict(manifest))
            if index:  # the server's counters read at the boundary between two phases
                loop.run_in_executor(None, tele.read_now)

        runner: Any = group or LoadRunner(
            endpoints,
            phases,
            sink,
            seed=seed,
            run_id=run_id,
            router=router,
            transport=transport,
            drain_timeout_s=drain_timeout_s,
            on_phase=on_phase,
            prompt_salt=salt,
            partition=(partition.index, partition.count) if partition else (0, 1),
            start_at_ns=start_ns,
        )
        if on_start:
            on_start(runner, run_id)
        error: BaseException | None = None
        try:
            await runner.run()
        except BaseException as exc:
            error = exc
            raise
        finally:
            manifest["telemetry"] = await loop.run_in_executor(None, tele.stop)
            await loop.run_in_executor(None, sink.close)
            p = runner.progress
            manifest.update(
                {
                    "status": "complete"
                    if error is None
                    else (
                        "interrupted" if isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)) else "failed"
                    ),
                    "error": None if error is None else f"{type(error).__name__}: {error}",
                    "finished_utc": anchor.to_datetime(now_ns()).isoformat(),
                    "phase_windows": [{"phase": n, "start_ns": s, "end_ns": e} for n, s, e in runner.phase_windows],
                    "sweep_stops": [{"after_phase": n, "reason": r} for n, r in runner.stops],
                    "nodes": group.nodes if group else [],
                    "lost_shares": group.lost_shares if group else [],
                    "phases": [_phase_dict(p) for p in runner.phases],  # automatic sweep rates resolved
                    "counts": {
                        "requests": p.done,
                        "errors": p.errors,
                        "errors_by_kind": p.errors_by_kind,
                        "output_tokens": p.output_tokens,
                        "written": group.written if group else sink.written,
                    },
                }
            )
            write_manifest(data_dir, run_id, manifest)
            if error is None:
                await loop.run_in_executor(None, _rollup, data_dir, run_id)
    finally:
        await transport.close()
    return RunResult(run_id, data_dir, runner.progress, manifest)
