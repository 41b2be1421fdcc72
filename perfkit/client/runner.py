"""The load runner: phases of closed- or open-loop traffic, every request recorded.

A run is a list of :class:`PhaseSpec` executed in order.  A phase issues
work until its duration or request count is reached; requests in flight when
it ends carry on (they keep their phase) while the next phase starts.  At the
end of the run, requests in flight get ``drain_timeout_s`` to finish, then are
cancelled and recorded as ``cancelled``.

The unit of work is a *session*: one or more turns of a user class, each turn
carrying the conversation so far.  Open loop: each arrival starts a session
(later turns follow the previous answer after the class's think time); the
intended send time is recorded beside the actual one, so a late client or a
cap on requests in flight shows up as schedule lag instead of being hidden
(coordinated omission).  Closed loop: N users, each running sessions back to
back; users may be started gradually over ``ramp_users_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import sys
import zlib
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perfkit.client.endpoint import Endpoint, request_uuid
from perfkit.client.fasthttp import FastTransport
from perfkit.client.live import LiveWindow
from perfkit.client.routing import Router
from perfkit.client.transport import Request, Transport
from perfkit.clock import now_ns, sleep_until_ns, wait_until_ns
from perfkit.errors import ConfigError
from perfkit.rows import ErrorKind, RequestRecord, Sink
from perfkit.workload.arrivals import TraceArrivals
from perfkit.workload.content import UserClass, Workload
from perfkit.workload.phase import PhaseSpec

__all__ = ["LoadRunner", "PhaseSpec", "RunProgress", "pool_size_for"]

_log = logging.getLogger("perfkit.client")


def pool_size_for(phases: list[PhaseSpec]) -> int:
    """Connections a run needs: the most requests any phase holds in flight, plus a margin."""
    return max(p.max_concurrency_hint for p in phases) + 8


_LOOKAHEAD_NS = 200_000_000  # open loop: requests are built up to this far ahead of their time
_GUARD_NS = 2_000_000  # ... but not when another request is due within this
_GC_THRESHOLDS = (700, 10, 1000)  # young collections stay short; full ones become rare


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
    endpoint : Endpoint or list of Endpoint
        One endpoint, or several replicas sharing the traffic.
    phases : list of PhaseSpec
    sink : Sink
        Where each finished record goes (``sink.put("requests", [record])``, on the event loop).
    seed : int
        Seeds arrivals, class draws, lengths and text: the same phases and seed
        send the same requests at the same offsets.
    run_id : str
        Each request's ``X-Request-Id`` is a UUID derived from it and the request number
        (:func:`perfkit.client.endpoint.request_uuid`), unless the endpoint sends none.
    router : Router, optional
        How requests are spread over several endpoints (default: round robin).
    transport : Transport, optional
        What sends each request and fills its record (:mod:`perfkit.client.transport`); default a
        :class:`~perfkit.client.fasthttp.FastTransport` with the timeouts below, closed at the end.
        A transport given here is left open for its owner.
    read_timeout_s, connect_timeout_s : float
        Longest silence inside a response, and longest connect, s (of the default transport).
    drain_timeout_s : float
        At the end of the run, how long requests in flight may take to finish, s.
    on_phase : callable, optional
        Called with ``(index, spec, start_ns)`` as each phase starts.
    partition : (int, int)
        ``(w, n)``: this runner is worker ``w`` of ``n`` sharing the run
        (:mod:`perfkit.record.workers`).  It sends only its share: arrivals
        ``w, w + n, ...`` of each open-loop schedule, users ``w, w + n, ...``
        of each closed loop, its part of each request budget; request and
        session ids are ``w`` modulo ``n``.
    start_at_ns : int, optional
        Start the first phase at this instant (ns), and each later phase at the
        planned end of a timed phase before it, so that workers share one clock.
    prompt_salt : str, optional
        Mixed into the prompt text's seed (:class:`perfkit.workload.content.Workload`): ``record_run``
        passes the run id, so that each run sends its own words and no prefix cache carries over.
    """

    def __init__(
        self,
        endpoint: Endpoint | list[Endpoint],
        phases: list[PhaseSpec],
        sink: Sink,
        *,
        seed: int = 0,
        run_id: str = "run",
        router: Router | None = None,
        transport: Transport | None = None,
        read_timeout_s: float = 60.0,
        connect_timeout_s: float = 10.0,
        drain_timeout_s: float = 60.0,
        on_phase: Callable[[int, PhaseSpec, int], None] | None = None,
        partition: tuple[int, int] = (0, 1),
        start_at_ns: int | None = None,
        prompt_salt: str | None = None,
    ) -> None:
        if not phases:
            raise ConfigError("a run needs at least one phase")
        self.endpoints = list(endpoint) if isinstance(endpoint, list) else [endpoint]
        self.endpoint = self.endpoints[0]
        if len({e.api for e in self.endpoints}) != 1:
            raise ConfigError("all endpoints of a run must use the same API (completions or chat)")
        self.router = router or Router(len(self.endpoints))
        if len(self.router.outstanding) != len(self.endpoints):
            raise ConfigError(f"the router has {len(self.router.outstanding)} endpoints, the run {len(self.endpoints)}")
        self.phases = phases
        self.sink = sink
        self.seed = seed
        self.run_tag = run_id
        self.salt = None if prompt_salt is None else zlib.crc32(prompt_salt.encode())
        self._own_transport = transport is None
        self.transport: Transport = transport or FastTransport(connect_timeout_s, read_timeout_s)
        self.drain_timeout_s = drain_timeout_s
        self.on_phase = on_phase
        self.progress = RunProgress()
        self.live = LiveWindow()
        self.phase_windows: list[tuple[str, int, int]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.worker, self.workers = partition
        if not 0 <= self.worker < self.workers:
            raise ConfigError(f"worker {self.worker} of {self.workers} does not exist")
        self._next_start = start_at_ns
        self._next_id = self.worker
        self._next_session = self.worker
        self.stops: list[tuple[str, str]] = []  # (phase, why a sweep stopped after it)
        self._tallies: dict[int, _PhaseTally] = {}  # phase index -> what its finished requests did
        self._phase_rates: dict[int, float] = {}  # closed-loop phase index -> requests/s it completed
        self._probes: dict[int, Any] = {}  # request id -> the probe it asks (until it is checked)

    async def run(self) -> RunProgress:
        """Run every phase, drain, and return the final counters."""
        with _timing_friendly_interpreter():
            return await self._run()

    async def _run(self) -> RunProgress:
        stopped: set[str] = set()
        try:
            for i, spec in enumerate(self.phases):
                if spec.group is not None and spec.group in stopped:
                    continue
                if spec.auto_rate is not None:
                    spec = self.phases[i] = self._resolve_auto_rate(i, spec)
                await self._run_phase(i, spec)
                reason = await self._stop_reason(i, spec)
                if reason:
                    stopped.add(spec.group or spec.name)
                    self.stops.append((spec.name, reason))
            await self._drain()
        finally:
            if self._own_transport:
                await self.transport.close()
        return self.progress

    def _resolve_auto_rate(self, index: int, spec: PhaseSpec) -> PhaseSpec:
        """Turn an automatic sweep step into a fixed-rate phase, from what the group measured so far."""
        assert spec.auto_rate is not None
        step, n = spec.auto_rate
        rates = {}
        for j, p in enumerate(self.phases[:index]):
            if p.group == spec.group and p.closed_loop and j in self._phase_rates:
                rates["sync" if p.concurrency == 1 else "max"] = self._phase_rates[j]
        lo, hi = rates.get("sync", 0.0), rates.get("max", 0.0)
        rate = max(lo + (hi - lo) * step / (n + 1), 1e-3)
        return dataclasses.replace(spec, name=f"{spec.group}@{rate:.3g}", rate=rate, auto_rate=None)

    async def _stop_reason(self, index: int, spec: PhaseSpec) -> str | None:
        """Whether a sweep step tripped its stop rule (waits for the step's requests to finish)."""
        if spec.stop_when is None:
            return None
        mine = [t for t in self._tasks if getattr(t, "phase_index", None) == index]
        if mine:
            await asyncio.wait(mine, timeout=self.drain_timeout_s)
        tally = self._tallies.get(index, _PhaseTally())
        return spec.stop_when.fired(tally.errors, tally.done, tally.ttft_p99_ms(), tally.completion_ratio())

    async def _run_phase(self, index: int, spec: PhaseSpec) -> None:
        p = self.progress
        if self._next_start is not None:
            await sleep_until_ns(self._next_start)
            start = self._next_start
        else:
            start = now_ns()
        p.phase, p.phase_index, p.phase_started_ns, p.phase_duration_s = spec.name, index, start, spec.duration_s
        if self.on_phase:
            self.on_phase(index, spec, start)
        assert spec.classes is not None
        w, n = self.worker, self.workers
        budget = spec.requests if spec.requests is None or n == 1 else spec.requests // n + (w < spec.requests % n)
        state = _PhaseState(
            index,
            spec,
            Workload(spec.classes, self.seed + 1000 * index + 100_003 * w, self.salt),
            np.random.default_rng([self.seed, index] if n == 1 else [self.seed, index, w, n]),
            start + int(spec.duration_s * 1e9) if spec.duration_s else None,
            -1 if budget is None else budget,
        )
        if spec.closed_loop:
            await self._closed_loop(state, start)
        else:
            await self._open_loop(state, start)
        end = now_ns()
        # workers keep one timeline: the next phase starts where this one was planned to end
        self._next_start = start + int(spec.duration_s * 1e9) if self.workers > 1 and spec.duration_s else None
        self.phase_windows.append((spec.name, start, end))
        if spec.closed_loop:  # what the phase sustained, for automatic sweeps
            self._phase_rates[index] = self._tallies.get(index, _PhaseTally()).done / max(1e-9, (end - start) / 1e9)

    # -- issuing -------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None], phase_index: int = -1) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        task.phase_index = phase_index  # type: ignore[attr-defined]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _open_loop(self, st: _PhaseState, start: int) -> None:
        """Issue sessions at the arrival process's times.

        Building a request (prompt text, JSON body) takes up to a millisecond
        for long prompts, and while it runs the event loop serves nobody.  So
        requests are built up to ``_LOOKAHEAD_NS`` ahead of their time, only in
        quiet moments (no earlier request due within ``_GUARD_NS``), and each
        session's task is started at once and waits for its own instant.
        """
        spec = st.spec
        st.cap = asyncio.Semaphore(spec.max_in_flight) if spec.max_in_flight else None
        arrivals = spec.arrivals()
        trace = arrivals if isinstance(arrivals, TraceArrivals) else None
        due: deque[int] = deque()  # intended times of started sessions not yet due
        w, n = self.worker, self.workers
        for k, offset in enumerate(arrivals.offsets_ns(np.random.default_rng([self.seed, st.index, 1]))):
            intended = start + offset
            if (st.deadline is not None and intended >= st.deadline) or st.budget == 0:
                break
            if k % n != w:  # another worker's arrival
                continue
            while True:
                now = now_ns()
                while due and due[0] <= now:
                    due.popleft()
                if intended - now > _LOOKAHEAD_NS:
                    await sleep_until_ns(intended - _LOOKAHEAD_NS)
                elif due and due[0] - now < _GUARD_NS and intended - now > _GUARD_NS:
                    await sleep_until_ns(due[0] + 1)  # let the request that is due go first
                else:
                    break
            lengths = (trace.prompt_tokens[k], trace.output_tokens[k]) if trace is not None else None
            first = self._start_session(st, intended, None, lengths)
            self._spawn(self._run_session(st, *first), st.index)
            due.append(intended)
            if st.budget > 0:
                st.budget -= 1
        if st.deadline is not None:
            await sleep_until_ns(st.deadline)

    async def _closed_loop(self, st: _PhaseState, start: int) -> None:
        spec = st.spec
        concurrency = spec.concurrency
        assert concurrency is not None

        async def user(uid: int) -> None:
            first = start + int(spec.ramp_users_s * 1e9 * uid / concurrency)
            await sleep_until_ns(first)
            intended = now_ns()
            while (st.deadline is None or intended < st.deadline) and st.budget != 0:
                await self._run_session(st, *self._start_session(st, intended, uid, None))
                intended = now_ns() + int(spec.think_time_s * 1e9)
                if spec.think_time_s:
                    await sleep_until_ns(intended)

        users = [self._spawn(user(u), st.index) for u in range(self.worker, concurrency, self.workers)]
        if st.deadline is None:
            await asyncio.gather(*users)
        else:
            await sleep_until_ns(st.deadline)  # users finish the request they are in, then stop

    def _start_session(
        self, st: _PhaseState, intended: int, user: int | None, lengths: tuple[int, int] | None
    ) -> tuple[Any, ...]:
        """Draw a class and build the session's first request (no I/O, no waiting)."""
        cls = st.workload.pick(st.rng)
        conv, entry = st.workload.start(cls, st.rng)
        session_id = self._next_session
        self._next_session += self.workers
        rec, body = self._next_turn(st, cls, conv, entry, session_id, 0, intended, user, lengths)
        return cls, conv, entry, session_id, user, rec, body

    def _next_turn(
        self,
        st: _PhaseState,
        cls: UserClass,
        conv: Any,
        entry: Any,
        session_id: int,
        turn: int,
        intended: int,
        user: int | None,
        lengths: tuple[int, int] | None,
    ) -> tuple[RequestRecord, dict[str, bytes]]:
        n_in, n_out, probe = st.workload.next_user_turn(cls, st.rng, conv, turn, entry, *(lengths or (None, None)))
        rec = RequestRecord(
            self._next_id,
            st.spec.name,
            st.index,
            st.spec.warmup,
            user,
            intended,
            n_in,
            n_out,
            class_name=cls.name,
            session_id=session_id,
            turn=turn,
            target_rate_rps=st.spec.requested_rate,
        )
        self._next_id += self.workers
        if turn + 1 < cls.turns or probe is not None:
            rec.text_parts = []
        if probe is not None:
            self._probes[rec.request_id] = probe
        prompt, messages = conv.prompt(), conv.messages() if self.endpoint.api == "chat" else None
        bodies = {e.model: e.payload(prompt, n_out, messages, exact_length=probe is None) for e in self.endpoints}
        return rec, bodies

    async def _run_session(
        self,
        st: _PhaseState,
        cls: UserClass,
        conv: Any,
        entry: Any,
        session_id: int,
        user: int | None,
        rec: RequestRecord,
        body: dict[str, bytes],
    ) -> None:
        """Send a session's turns in order, each carrying the history so far."""
        if st.spec.closed_loop and st.budget > 0:
            st.budget -= 1
        await wait_until_ns(rec.intended_ns)
        for turn in range(cls.turns):
            if turn:
                intended = now_ns() + int(cls.think_time_s * 1e9)
                if (st.deadline is not None and intended >= st.deadline) or st.budget == 0:
                    return
                if st.budget > 0:
                    st.budget -= 1
                rec, body = self._next_turn(st, cls, conv, entry, session_id, turn, intended, user, None)
                await sleep_until_ns(intended)
            cancel_after = cls.cancel_after_s if cls.cancel_fraction and st.rng.random() < cls.cancel_fraction else None
            if st.cap is not None:
                await st.cap.acquire()
            try:
                await self._one(rec, body, cls, cancel_after)
            finally:
                if st.cap is not None:
                    st.cap.release()
            if not rec.ok or turn + 1 == cls.turns:
                return
            conv.add("assistant", "".join(rec.text_parts or ()))

    async def _one(
        self, rec: RequestRecord, bodies: dict[str, bytes], cls: UserClass, cancel_after_s: float | None
    ) -> None:
        p = self.progress
        p.sent += 1
        p.in_flight += 1
        ei = self.router.pick()
        endpoint = self.endpoints[ei]
        rec.endpoint = endpoint.base_url
        self.router.started(ei)
        probe = self._probes.pop(rec.request_id, None)
        oracle = probe.check.oracle() if probe is not None else None
        try:
            headers = endpoint.headers()
            if endpoint.request_id:
                headers["X-Request-Id"] = request_uuid(self.run_tag, rec.request_id)
            if oracle:  # the answer perfkit's simulator should give a probe (real servers ignore it)
                headers["X-Perfkit-Expected"] = oracle
            coro = self.transport.send(Request(endpoint.url, headers, bodies[endpoint.model]), rec)
            if cancel_after_s is None:
                await coro
            else:
                try:
                    await asyncio.wait_for(coro, cancel_after_s)
                except TimeoutError:
                    rec.error_kind = None
                    rec.fail(ErrorKind.CANCELLED, f"the user gave up after {cancel_after_s:g} s")
                    rec.end_ns = now_ns()
        finally:
            self.router.finished(ei)
            p.in_flight -= 1
            p.done += 1
            if not rec.ok:
                p.errors += 1
                p.errors_by_kind[rec.error_kind or "?"] = p.errors_by_kind.get(rec.error_kind or "?", 0) + 1
                if _log.isEnabledFor(logging.INFO):  # `perfkit run -v`: every failure with its reason
                    _log.info(
                        "request %d (phase %s) failed: %s: %s",
                        rec.request_id,
                        rec.phase,
                        rec.error_kind,
                        rec.error_message or "no message",
                    )
            p.output_tokens += rec.output_tokens
            if probe is not None and rec.ok:
                rec.check_ok, rec.check_message = probe.check.evaluate("".join(rec.text_parts or ()))
            if cls.slo is not None:
                rec.slo_ok = cls.slo.met(rec.ok, rec.ttft_ms, rec.tpot_ms, rec.e2e_ms) and rec.check_ok is not False
            self.live.add(rec)
            self._tallies.setdefault(rec.phase_index, _PhaseTally()).add(rec)
            self.sink.put("requests", (rec,))

    async def _drain(self) -> None:
        pending = set(self._tasks)
        if pending:
            _, still = await asyncio.wait(pending, timeout=self.drain_timeout_s)
            for t in still:
                t.cancel()
            if still:
                await asyncio.gather(*still, return_exceptions=True)


@contextlib.contextmanager
def _timing_friendly_interpreter() -> Iterator[None]:
    """Keep interpreter pauses off the send schedule while a run goes.

    The Parquet writer thread must hand the GIL back quickly (CPython's default
    switch interval lets a thread keep it 5 ms), and collections of the old
    generation of the cyclic GC, which scale with every object the process
    holds, are made rarer and cheaper by freezing what exists before the run.
    Both are restored afterwards.
    """
    interval = sys.getswitchinterval()
    thresholds = gc.get_threshold()
    sys.setswitchinterval(0.0005)
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@dataclass
class _PhaseTally:
    """What a phase's finished requests did, for sweep stop rules and automatic sweep rates (bounded)."""

    done: int = 0
    errors: int = 0
    ttfts_ms: list[float] = field(default_factory=list)
    intended_ns: list[int] = field(default_factory=list)
    end_ns: list[int] = field(default_factory=list)
    limit: int = 100_000

    def add(self, rec: RequestRecord) -> None:
        self.done += 1
        self.errors += not rec.ok
        if rec.ok and rec.ttft_ms is not None and rec.end_ns is not None and len(self.ttfts_ms) < self.limit:
            self.ttfts_ms.append(rec.ttft_ms)
            self.intended_ns.append(rec.intended_ns)
            self.end_ns.append(rec.end_ns)

    def ttft_p99_ms(self) -> float | None:
        t = sorted(self.ttfts_ms)
        return t[min(len(t) - 1, int(0.99 * len(t)))] if t else None

    def completion_ratio(self) -> float | None:
        """Scheduled span over completion span of the same successful requests (see ``StopRule``)."""
        if len(self.end_ns) < 3:
            return None
        sched = max(self.intended_ns) - min(self.intended_ns)
        done = max(self.end_ns) - min(self.end_ns)
        return sched / done if sched > 0 and done > 0 else None


@dataclass
class _PhaseState:
    index: int
    spec: PhaseSpec
    workload: Workload
    rng: np.random.Generator
    deadline: int | None
    budget: int  # requests left to issue; -1 means unlimited
    cap: asyncio.Semaphore | None = None
