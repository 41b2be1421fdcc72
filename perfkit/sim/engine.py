"""A discrete-time model of a continuous-batching LLM serving engine.

The engine is pure: it runs on a *virtual* clock (integer ns) and never sleeps.
:class:`perfkit.sim.server.SimServer` drives it in real time; :func:`replay`
drives it offline from a list of arrivals, which is how tests check that the
simulator is deterministic for the same arrivals and where its knee lies.

One step of the model, in the manner of vLLM's V1 scheduler:

1. every running sequence that has finished its prefill decodes one token,
   which may need one more KV block; when the cache is full the most recently
   admitted sequence is *preempted* (its blocks freed, its progress kept, its
   prompt and generated tokens recomputed when it is admitted again);
2. sequences part-way through a chunked prefill take the remaining token budget;
3. waiting requests are admitted first-come first-served while there is a
   free batch slot, token budget and KV room for their whole context.

The step lasts ``base + a·prefill_tokens + b·decode_seqs + c·kv_tokens``
milliseconds (times any slowdown factor); at its end each decoding sequence
emits a token, and a sequence whose prefill completed emits its first token.

References
----------
Kwon et al., "Efficient Memory Management for Large Language Model Serving
with PagedAttention", SOSP 2023 (blocks, preemption by recomputation).
Agrawal et al., "Taming Throughput-Latency Tradeoff in LLM Inference with
Sarathi-Serve", OSDI 2024 (chunked prefill under a token budget).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perfkit.sim.config import SimConfig, SimEvent

__all__ = ["Engine", "EventSchedule", "SimRequest", "StepResult", "Stepper", "closed_loop_replay", "replay"]


def _blocks(tokens: int, block: int) -> int:
    return -(-tokens // block)


@dataclass(slots=True, eq=False)
class SimRequest:
    """One request inside the engine; times are virtual ns.

    ``target_tokens`` is the number of output tokens the request will produce
    (``max_tokens`` when EOS is ignored, else the natural length).
    """

    rid: str
    arrival_ns: int
    prompt_tokens: int
    target_tokens: int
    state: str = "waiting"
    prefill_total: int = 0
    prefilled: int = 0
    generated: int = 0
    kv_blocks: int = 0
    scheduled_ns: int | None = None
    first_token_ns: int | None = None
    finish_ns: int | None = None
    preemptions: int = 0
    token_ns: list[int] = field(default_factory=list)
    handle: Any = None
    words: list[str] | None = None  # a probe's answer, token by token
    params: dict[str, Any] = field(default_factory=dict)  # sampling and other fields the request carried

    def __post_init__(self) -> None:
        self.prefill_total = self.prompt_tokens

    @property
    def prefill_done(self) -> bool:
        return self.prefilled >= self.prefill_total


@dataclass(slots=True)
class StepResult:
    """What one step did: its virtual start and duration, the tokens emitted."""

    start_ns: int
    duration_ns: int
    emitted: list[tuple[SimRequest, int]]
    finished: list[SimRequest]
    prefill_tokens: int
    decode_seqs: int


class PrefixCache:
    """vLLM's prefix-cache counters, as the simulator keeps them: the prompt in blocks of ``block`` words, each block
    named by a hash of the prompt up to its end; a block seen before (among the last ``capacity`` kept) is a hit.
    ``queries`` and ``hits`` count prompt tokens, as ``vllm:prefix_cache_queries`` and ``vllm:prefix_cache_hits``
    do.  The simulator counts the hits but does not shorten prefill for them: its latencies stay the analyses'
    ground truth whatever the prompts share."""

    def __init__(self, block: int = 16, capacity: int = 65_536) -> None:
        self.block, self.capacity = block, capacity
        self.blocks: OrderedDict[int, None] = OrderedDict()
        self.queries = 0
        self.hits = 0

    def lookup(self, words: list[str]) -> int:
        """Count one prompt (its words) and keep its blocks; returns the tokens found in the cache."""
        self.queries += len(words)
        h, hit, leading = 0, 0, True
        for i in range(0, len(words) - self.block + 1, self.block):
            h = hash((h, *words[i : i + self.block]))
            if leading and h in self.blocks:
                hit += self.block
                self.blocks.move_to_end(h)
            else:
                leading = False
                self.blocks[h] = None
                if len(self.blocks) > self.capacity:
                    self.blocks.popitem(last=False)
        self.hits += hit
        return hit


class Engine:
    """The batching, KV-cache and step-time model (see the module docstring).

    Parameters
    ----------
    config : SimConfig
    """

    def __init__(self, config: SimConfig) -> None:
        self.cfg = config
        self.total_blocks = config.kv_capacity_tokens // config.kv_block_tokens
        self.free_blocks = self.total_blocks
        self.waiting: deque[SimRequest] = deque()
        self.running: list[SimRequest] = []
        self.preemptions_total = 0
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self.prefill_tokens_total = 0  # prefill work done, recomputation after preemption included
        self.steps_total = 0
        self.busy_ns_total = 0
        self.prefix_cache = PrefixCache()

    # -- admission -------------------------------------------------------
    def fits(self, prompt_tokens: int, output_tokens: int) -> bool:
        """Whether a request of this size can ever be served (KV and model length)."""
        total = prompt_tokens + output_tokens
        return total <= self.cfg.max_model_len and _blocks(total, self.cfg.kv_block_tokens) <= self.total_blocks

    def add(self, req: SimRequest) -> None:
        """Queue a request (it must :meth:`fit`)."""
        self.waiting.append(req)
        self.prompt_tokens_total += req.prompt_tokens

    def abort(self, req: SimRequest) -> None:
        """Remove a request (client went away), freeing its KV blocks."""
        if req.state == "running":
            self.running.remove(req)
            self._free(req)
        elif req.state == "waiting":
            try:
                self.waiting.remove(req)
            except ValueError:
                pass
        req.state = "aborted"

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    @property
    def kv_usage(self) -> float:
        """Fraction of KV blocks in use, 0..1."""
        return 1.0 - self.free_blocks / self.total_blocks

    def _free(self, req: SimRequest) -> None:
        self.free_blocks += req.kv_blocks
        req.kv_blocks = 0

    def _preempt(self, req: SimRequest) -> None:
        self.running.remove(req)
        self._free(req)
        req.state = "waiting"
        req.prefilled = 0
        req.prefill_total = req.prompt_tokens + req.generated
        req.preemptions += 1
        self.preemptions_total += 1
        self.waiting.appendleft(req)

    # -- one step --------------------------------------------------------
    def step(self, t_ns: int, factor: float = 1.0) -> StepResult:
        """Run one engine step starting at virtual time ``t_ns`` (ns)."""
        cfg = self.cfg
        budget = cfg.max_batched_tokens
        decode: list[SimRequest] = []
        for req in list(self.running):
            if req.state != "running" or not req.prefill_done:
                continue
            need = _blocks(req.prompt_tokens + req.generated + 1, cfg.kv_block_tokens) - req.kv_blocks
            while need > self.free_blocks and req.state == "running":
                self._preempt(self.running[-1])
            if req.state != "running":
                continue
            self.free_blocks -= need
            req.kv_blocks += need
            decode.append(req)
            budget -= 1
        chunks: list[tuple[SimRequest, int]] = []
        for req in self.running:
            if not req.prefill_done and budget > 0:
                n = min(req.prefill_total - req.prefilled, budget)
                chunks.append((req, n))
                budget -= n
        while self.waiting and len(self.running) < cfg.max_num_seqs and budget > 0:
            req = self.waiting[0]
            need = _blocks(req.prefill_total + 1, cfg.kv_block_tokens)
            if need > self.free_blocks:
                break  # first-come first-served: the head of the queue blocks the rest
            self.waiting.popleft()
            self.free_blocks -= need
            req.kv_blocks = need
            req.state = "running"
            if req.scheduled_ns is None:
                req.scheduled_ns = t_ns
            self.running.append(req)
            n = min(req.prefill_total, budget)
            chunks.append((req, n))
            budget -= n
        prefill_tokens = sum(n for _, n in chunks)
        kv_tokens = sum(r.prompt_tokens + r.generated for r in self.running)
        ms = (
            cfg.step_base_ms
            + cfg.prefill_ms_per_token * prefill_tokens
            + cfg.decode_ms_per_seq * len(decode)
            + cfg.attn_ms_per_kv_token * kv_tokens
        )
        duration = int(ms * factor * 1e6)
        end = t_ns + duration
        emitted: list[tuple[SimRequest, int]] = []
        for req in decode:
            emitted.append((req, 1))
        for req, n in chunks:
            req.prefilled += n
            if req.prefill_done:
                emitted.append((req, 1))
        finished = []
        for req, _ in emitted:
            req.generated += 1
            req.token_ns.append(end)
            if req.first_token_ns is None:
                req.first_token_ns = end
            if req.generated >= req.target_tokens:
                req.state = "finished"
                req.finish_ns = end
                self.running.remove(req)
                self._free(req)
                finished.append(req)
        self.generation_tokens_total += len(emitted)
        self.prefill_tokens_total += prefill_tokens
        self.steps_total += 1
        self.busy_ns_total += duration
        return StepResult(t_ns, duration, emitted, finished, prefill_tokens, len(decode))


class EventSchedule:
    """Scheduled events relative to an epoch (virtual ns)."""

    def __init__(self, events: Iterable[SimEvent] = (), epoch_ns: int = 0) -> None:
        self.events: list[SimEvent] = list(events)
        self.epoch_ns = epoch_ns

    def _active(self, kind: str, t_ns: int) -> list[SimEvent]:
        s = (t_ns - self.epoch_ns) / 1e9
        return [e for e in self.events if e.kind == kind and e.start_s <= s < e.end_s]

    def factor_at(self, t_ns: int) -> float:
        """Product of the slowdown and throttle factors active at ``t_ns`` (step-time multiplier)."""
        f = self.throttle_at(t_ns)
        for e in self._active("slowdown", t_ns):
            f *= e.factor
        return f

    def throttle_at(self, t_ns: int) -> float:
        """Product of the throttle factors active at ``t_ns`` (the SM clock is max / this)."""
        f = 1.0
        for e in self._active("throttle", t_ns):
            f *= e.factor
        return f

    def stall_end(self, t_ns: int) -> int | None:
        """End (virtual ns) of a stall active at ``t_ns``, or None."""
        ends = [e.end_s for e in self._active("stall", t_ns)]
        return self.epoch_ns + int(max(ends) * 1e9) if ends else None

    def error_burst(self, t_ns: int) -> SimEvent | None:
        """The error burst active at ``t_ns``, if any."""
        active = self._active("error_burst", t_ns)
        return active[0] if active else None


class Stepper:
    """Advances an :class:`Engine` on a virtual clock, shared by server and replay.

    ``t_ns`` never goes backwards; when the engine is idle it jumps to the next
    arrival.  Arrivals are admitted only once ``t_ns`` has reached them, so the
    schedule depends on the arrivals alone, not on how late the caller runs.
    """

    def __init__(self, engine: Engine, schedule: EventSchedule, t0_ns: int) -> None:
        self.engine = engine
        self.schedule = schedule
        self.t_ns = t0_ns
        self.inbox: deque[SimRequest] = deque()

    def offer(self, req: SimRequest) -> None:
        """Hand over an arrived request (in non-decreasing arrival order)."""
        self.inbox.append(req)

    def advance(self) -> StepResult | None:
        """Do the next thing: admit, jump over idle time or a stall, or step.

        Returns the step's result, or None when no step ran (the caller then
        checks ``engine.has_work`` and ``inbox`` to decide whether to wait).
        """
        while self.inbox and self.inbox[0].arrival_ns <= self.t_ns:
            self.engine.add(self.inbox.popleft())
        if not self.engine.has_work:
            if self.inbox:
                self.t_ns = max(self.t_ns, self.inbox[0].arrival_ns)
            return None
        stall = self.schedule.stall_end(self.t_ns)
        if stall is not None:
            self.t_ns = max(self.t_ns + 1, stall)
            return None
        res = self.engine.step(self.t_ns, self.schedule.factor_at(self.t_ns))
        self.t_ns += res.duration_ns
        return res


def replay(config: SimConfig, arrivals: Iterable[tuple[int, int, int]], *, epoch_ns: int = 0) -> list[SimRequest]:
    """Run the engine offline on ``(arrival_ns, prompt_tokens, target_tokens)`` tuples.

    Returns the requests with their virtual ``scheduled_ns``, ``token_ns`` and
    ``finish_ns`` filled in, in arrival order.
    """
    reqs = [SimRequest(str(i), a, p, t) for i, (a, p, t) in enumerate(sorted(arrivals))]
    engine = Engine(config)
    stepper = Stepper(engine, EventSchedule(config.events, epoch_ns), reqs[0].arrival_ns if reqs else 0)
    for r in reqs:
        stepper.offer(r)
    while stepper.inbox or engine.has_work:
        stepper.advance()
    return reqs


def closed_loop_replay(
    config: SimConfig,
    users: int,
    duration_s: float,
    *,
    prompt_tokens: Callable[[np.random.Generator], int] | int = 256,
    output_tokens: Callable[[np.random.Generator], int] | int = 128,
    think_s: float = 0.0,
    seed: int = 0,
    epoch_ns: int = 0,
) -> list[SimRequest]:
    """Run the engine offline under ``users`` closed-loop users for ``duration_s`` s (virtual).

    Each user sends its next request ``think_s`` after its previous one finished (the first at ``epoch_ns``,
    users a microsecond apart), until ``duration_s`` has passed; requests in the engine then finish.
    ``prompt_tokens`` and ``output_tokens`` are lengths or functions drawing one from the generator.  Returns
    every request, in arrival order: ground truth for a closed-loop run, as :func:`replay` is for an
    open-loop one.
    """
    rng = np.random.default_rng(seed)

    def draw() -> int:
        return int(prompt_tokens(rng)) if callable(prompt_tokens) else int(prompt_tokens)

    def length() -> int:
        return max(1, int(output_tokens(rng))) if callable(output_tokens) else int(output_tokens)

    engine = Engine(config)
    stepper = Stepper(engine, EventSchedule(config.events, epoch_ns), epoch_ns)
    end_ns = epoch_ns + int(duration_s * 1e9)
    think_ns = int(think_s * 1e9)
    out: list[SimRequest] = []
    for u in range(users):
        req = SimRequest(str(len(out)), epoch_ns + 1000 * u, draw(), length())
        out.append(req)
        stepper.offer(req)
    while stepper.inbox or engine.has_work:
        res = stepper.advance()
        for done in res.finished if res is not None else ():
            nxt = (done.finish_ns or stepper.t_ns) + think_ns
            if nxt < end_ns:
                req = SimRequest(str(len(out)), nxt, draw(), length())
                out.append(req)
                stepper.offer(req)
    return sorted(out, key=lambda r: r.arrival_ns)
