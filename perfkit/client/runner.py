"""The load runner: phases of closed- or open-loop traffic, every request recorded.

A run is a list of :class:`PhaseSpec` executed in order.  A phase issues
requests until its duration or count is reached; requests still in flight
when it ends carry on (they keep their phase) while the next phase starts.
At the end of the run, requests in flight are given ``drain_timeout_s`` to
finish, then cancelled and recorded as ``cancelled``.

Open loop: send times come from an arrival process; each request's intended
send time is recorded beside the actual one, so a late client (or a cap on
requests in flight) shows up as schedule lag instead of being hidden
(coordinated omission).  Closed loop: N users, each sending its next request
when the previous one ends (plus an optional think time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import numpy as np

from perfkit.client.openai import Endpoint, send
from perfkit.client.records import RequestRecord
from perfkit.clock import now_ns, sleep_until_ns
from perfkit.errors import ConfigError
from perfkit.workload.arrivals import make_arrivals
from perfkit.workload.lengths import LengthDist, parse_length
from perfkit.workload.prompts import PromptFactory

__all__ = ["LoadRunner", "PhaseSpec", "RecordSink", "RunProgress"]


class RecordSink(Protocol):
    """Where finished records go; ``put`` must not block the event loop."""

    def put(self, record: RequestRecord) -> None: ...


@dataclass(frozen=True)
class PhaseSpec:
    """One phase of a run.

    Parameters
    ----------
    name : str
    duration_s : float, optional
        Stop issuing after this many seconds.
    requests : int, optional
        Stop issuing after this many requests (whichever limit comes first).
    concurrency : int, optional
        Closed loop: this many users.
    rate : float, optional
        Open loop: requests per second.
    arrival : {"constant", "poisson"}
        Open-loop arrival process.
    max_in_flight : int, optional
        Open loop: cap on requests in flight; a request over the cap waits,
        and the wait shows as schedule lag.
    prompt_tokens, output_tokens : LengthDist or str or int
        Target lengths (tokens).
    think_time_s : float
        Closed loop: pause between a user's requests, s.
    warmup : bool
        Recorded and flagged, left out of summaries.
    """

    name: str
    duration_s: float | None = None
    requests: int | None = None
    concurrency: int | None = None
    rate: float | None = None
    arrival: str = "poisson"
    max_in_flight: int | None = None
    prompt_tokens: LengthDist | str | int = 256
    output_tokens: LengthDist | str | int = 128
    think_time_s: float = 0.0
    warmup: bool = False

    def __post_init__(self) -> None:
        where = f"phase {self.name!r}"
        if (self.concurrency is None) == (self.rate is None):
            raise ConfigError(f"{where}: give exactly one of concurrency (closed loop) or rate (open loop)")
        if self.concurrency is not None and self.concurrency < 1:
            raise ConfigError(f"{where}: concurrency must be >= 1, got {self.concurrency}")
        if self.duration_s is None and self.requests is None:
            raise ConfigError(f"{where}: give a duration_s or a number of requests")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError(f"{where}: duration_s must be > 0, got {self.duration_s}")
        if self.requests is not None and self.requests < 1:
            raise ConfigError(f"{where}: requests must be >= 1, got {self.requests}")
        if self.rate is not None:
            make_arrivals(self.arrival, self.rate)  # validates
        object.__setattr__(self, "prompt_tokens", parse_length(self.prompt_tokens, what=f"{where} prompt_tokens"))
        object.__setattr__(self, "output_tokens", parse_length(self.output_tokens, what=f"{where} output_tokens"))

    @property
    def max_concurrency_hint(self) -> int:
        """A guess at the most requests this phase holds in flight (for pool sizing)."""
        if self.concurrency is not None:
            return self.concurrency
        return self.max_in_flight or 1024


@dataclass
class RunProgress:
    """Live counters, read by progress displays (never written by them)."""

    phase: str = ""
    phase_index: int = -1
    phase_started_ns: int = 0
    phase_duration_s: float | None = None
    sent: int = 0
    done: int = 0
    errors: int = 0
    in_flight: int = 0
    output_tokens: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)


class LoadRunner:
    """Drive phases of traffic at an endpoint and hand every record to a sink.

    Parameters
    ----------
    endpoint : Endpoint
    phases : list of PhaseSpec
    sink : RecordSink
    seed : int
        Seeds arrivals, lengths and prompt text.
    run_id : str
        Sent with each request as ``X-Request-Id: RUN_ID-REQUEST_ID``.
    session : aiohttp.ClientSession, optional
        A session to use (a seam for tests); by default one is made with an
        explicit pool of ``pool_size`` connections.
    pool_size : int, optional
        Connection pool limit; default: the largest concurrency any phase needs.
    read_timeout_s, connect_timeout_s : float
        Longest silence inside a response, and longest connect, s.
    drain_timeout_s : float
        At the end of the run, how long requests in flight may take to finish, s.
    on_phase : callable, optional
        Called with ``(index, spec, start_ns)`` as each phase starts.
    """

    def __init__(self, endpoint: Endpoint, phases: list[PhaseSpec], sink: RecordSink, *, seed: int = 0,
                 run_id: str = "run",
                 session: aiohttp.ClientSession | None = None, pool_size: int | None = None,
                 read_timeout_s: float = 60.0, connect_timeout_s: float = 10.0, drain_timeout_s: float = 60.0,
                 on_phase: Callable[[int, PhaseSpec, int], None] | None = None) -> None:
        if not phases:
            raise ConfigError("a run needs at least one phase")
        self.endpoint = endpoint
        self.phases = phases
        self.sink = sink
        self.seed = seed
        self._session = session
        self.pool_size = pool_size or max(p.max_concurrency_hint for p in phases) + 8
        self.read_timeout_s = read_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.drain_timeout_s = drain_timeout_s
        self.on_phase = on_phase
        self.progress = RunProgress()
        self.phase_windows: list[tuple[str, int, int]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_id = 0
        self._prompts = PromptFactory(seed)
        self.run_tag = run_id

    async def run(self) -> RunProgress:
        """Run every phase, drain, and return the final counters."""
        own = self._session is None
        session = self._session or self._make_session()
        try:
            for i, spec in enumerate(self.phases):
                await self._run_phase(session, i, spec)
            await self._drain()
        finally:
            if own:
                await session.close()
        return self.progress

    def _make_session(self) -> aiohttp.ClientSession:
        from perfkit.client.openai import make_session

        return make_session(self.pool_size, self.connect_timeout_s, self.read_timeout_s)

    async def _run_phase(self, session: aiohttp.ClientSession, index: int, spec: PhaseSpec) -> None:
        p = self.progress
        start = now_ns()
        p.phase, p.phase_index, p.phase_started_ns, p.phase_duration_s = spec.name, index, start, spec.duration_s
        if self.on_phase:
            self.on_phase(index, spec, start)
        rng = np.random.default_rng([self.seed, index])
        deadline = start + int(spec.duration_s * 1e9) if spec.duration_s else None
        if spec.rate is not None:
            await self._open_loop(session, index, spec, rng, start, deadline)
        else:
            await self._closed_loop(session, index, spec, rng, deadline)
        self.phase_windows.append((spec.name, start, now_ns()))

    def _new_record(self, index: int, spec: PhaseSpec, rng: np.random.Generator, intended: int,
                    user: int | None) -> tuple[RequestRecord, bytes]:
        assert isinstance(spec.prompt_tokens, LengthDist) and isinstance(spec.output_tokens, LengthDist)
        n_in = int(spec.prompt_tokens.sample(rng)[0])
        n_out = max(1, int(spec.output_tokens.sample(rng)[0]))
        rec = RequestRecord(self._next_id, spec.name, index, spec.warmup, user, intended, n_in, n_out)
        self._next_id += 1
        return rec, self.endpoint.payload(self._prompts.make(n_in), n_out)

    async def _one(self, session: aiohttp.ClientSession, rec: RequestRecord, body: bytes) -> None:
        p = self.progress
        p.sent += 1
        p.in_flight += 1
        try:
            await send(session, self.endpoint, rec, body, request_tag=f"{self.run_tag}-{rec.request_id}")
        finally:
            p.in_flight -= 1
            p.done += 1
            if not rec.ok:
                p.errors += 1
                p.errors_by_kind[rec.error_kind or "?"] = p.errors_by_kind.get(rec.error_kind or "?", 0) + 1
            p.output_tokens += rec.output_tokens
            self.sink.put(rec)

    def _spawn(self, coro) -> asyncio.Task[None]:  # type: ignore[no-untyped-def]
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _open_loop(self, session: aiohttp.ClientSession, index: int, spec: PhaseSpec,
                         rng: np.random.Generator, start: int, deadline: int | None) -> None:
        assert spec.rate is not None
        cap = asyncio.Semaphore(spec.max_in_flight) if spec.max_in_flight else None
        arrivals = make_arrivals(spec.arrival, spec.rate).offsets_ns(np.random.default_rng([self.seed, index, 1]))
        issued = 0
        for offset in arrivals:
            intended = start + offset
            if (deadline is not None and intended >= deadline) or (spec.requests and issued >= spec.requests):
                break
            await sleep_until_ns(intended)
            if cap is not None:
                await cap.acquire()
            rec, body = self._new_record(index, spec, rng, intended, None)
            task = self._spawn(self._one(session, rec, body))
            if cap is not None:
                task.add_done_callback(lambda _t, c=cap: c.release())
            issued += 1
        if deadline is not None:
            await sleep_until_ns(deadline)

    async def _closed_loop(self, session: aiohttp.ClientSession, index: int, spec: PhaseSpec,
                           rng: np.random.Generator, deadline: int | None) -> None:
        assert spec.concurrency is not None
        budget = [spec.requests if spec.requests is not None else -1]

        async def user(uid: int) -> None:
            intended = now_ns()
            while (deadline is None or intended < deadline) and budget[0] != 0:
                budget[0] -= 1
                rec, body = self._new_record(index, spec, rng, intended, uid)
                await self._one(session, rec, body)
                intended = now_ns() + int(spec.think_time_s * 1e9)
                if spec.think_time_s:
                    await sleep_until_ns(intended)

        users = [self._spawn(user(u)) for u in range(spec.concurrency)]
        if deadline is None:
            await asyncio.gather(*users)
            return
        await sleep_until_ns(deadline)  # users finish the request they are in, then stop

    async def _drain(self) -> None:
        pending = set(self._tasks)
        if pending:
            _, still = await asyncio.wait(pending, timeout=self.drain_timeout_s)
            for t in still:
                t.cancel()
            if still:
                await asyncio.gather(*still, return_exceptions=True)
