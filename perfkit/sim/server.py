"""The simulated OpenAI-compatible endpoint: an aiohttp app around :class:`Engine`.

Routes: ``/v1/models``, ``/v1/completions``, ``/v1/chat/completions`` (SSE
streaming or not), ``/metrics`` (Prometheus text, vLLM names), ``/health``,
and for tests and ground truth ``/sim/gpu`` (SIMULATED GPU counters), ``/sim/log`` (what it did per request, on its
own monotonic clock), ``/sim/config`` and ``/sim/events`` (POST a list of
events whose times count from the moment of the POST).

The simulator runs in its own process (:class:`SimProcess`, or
``perfkit sim``), never on the load generator's event loop.

Tokens: one token per whitespace-separated word of the prompt (chat messages:
the words of every message's content); each generated token is one word.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from typing import Any

import numpy as np
from aiohttp import web

from perfkit.clock import now_ns, sleep_until_ns
from perfkit.errors import ConfigError
from perfkit.sim.config import SimConfig, SimEvent
from perfkit.sim.engine import Engine, EventSchedule, SimRequest, Stepper
from perfkit.sim.gpu import SimGpu
from perfkit.sim.metrics import Histogram, render_metrics

__all__ = ["SimServer", "make_app"]

_WORDS = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua"
).split()
_LOG_MAX = 20_000  # per-token lists make entries large; --log keeps everything on disk


# the fields every request of perfkit's carries; the log keeps the others (sampling, stop, vendor fields)
_STANDARD_FIELDS = frozenset(
    {"model", "prompt", "messages", "max_tokens", "max_completion_tokens", "min_tokens", "ignore_eos"}
    | {"stream", "stream_options"}
)


def _has_field(body: dict[str, Any], name: str) -> bool:
    """Whether ``body`` holds the field ``name`` (``a.b``: the key ``b`` of the object ``a``)."""
    head, _, rest = name.partition(".")
    if not rest:
        return head in body
    inner = body.get(head)
    return isinstance(inner, dict) and rest in inner


def _error(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
    body = {"error": {"message": message, "type": kind, "code": status}}
    headers = {"Retry-After": "1"} if status == 429 else None
    return web.json_response(body, status=status, headers=headers)


def _prompt_words(body: dict[str, Any], chat: bool) -> list[str] | None:
    """The prompt's words in order (the messages' contents one after another): what the simulator counts as
    prompt tokens and keys its prefix cache on; None when the body has no prompt."""
    if chat:
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return None
        out: list[str] = []
        for m in msgs:
            content = m.get("content", "") if isinstance(m, dict) else ""
            if isinstance(content, list):  # content parts
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            out += str(content).split()
        return out
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        prompt = " ".join(map(str, prompt))
    return prompt.split() if isinstance(prompt, str) else None


class SimServer:
    """State of one simulated endpoint: engine, step loop, log and metrics.

    Parameters
    ----------
    config : SimConfig
    log_path : str, optional
        Append one JSON line per finished request to this file.
    """

    def __init__(self, config: SimConfig, log_path: str | None = None) -> None:
        self.cfg = config
        self.engine = Engine(config)
        self.epoch_ns = now_ns()
        self.schedule = EventSchedule(config.events, self.epoch_ns)
        self.stepper = Stepper(self.engine, self.schedule, self.epoch_ns)
        self.log: deque[dict[str, Any]] = deque(maxlen=_LOG_MAX)
        # line-buffered: one write per finished request, readable while the simulator runs
        self._log_file = open(log_path, "a", buffering=1) if log_path else None
        self._wake = asyncio.Event()
        self._rng = np.random.default_rng(config.seed)
        self._n_arrivals = 0
        self.success_total = 0
        self.errors_total = 0
        self.admission_rejections = 0
        self._in_flight = 0  # admitted and not yet answered (what --max-num-queued-reqs counts)
        self.hist = {
            "ttft": Histogram("vllm:time_to_first_token_seconds", "Time to first token."),
            "itl": Histogram("vllm:inter_token_latency_seconds", "Time between output tokens."),
            "tpot": Histogram("vllm:time_per_output_token_seconds", "Time per output token (older name)."),
            "e2e": Histogram("vllm:e2e_request_latency_seconds", "End-to-end request latency."),
            "queue": Histogram("vllm:request_queue_time_seconds", "Time waiting before first scheduled."),
            "prefill": Histogram("vllm:request_prefill_time_seconds", "Time from first scheduled to first token."),
            "decode": Histogram("vllm:request_decode_time_seconds", "Time from first token to last token."),
            "inference": Histogram("vllm:request_inference_time_seconds", "Time from first scheduled to last token."),
        }
        self._frontend = asyncio.Lock()
        self.gpu = SimGpu(self.engine, self.schedule, self.epoch_ns)
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------
    async def start(self, _app: web.Application | None = None) -> None:
        self._task = asyncio.get_running_loop().create_task(self._step_loop())

    async def stop(self, _app: web.Application | None = None) -> None:
        if self._task:
            self._task.cancel()
        if self._log_file:
            self._log_file.close()

    async def _step_loop(self) -> None:
        st = self.stepper
        while True:
            res = st.advance()
            if res is None:
                if self.engine.has_work or st.inbox:
                    await sleep_until_ns(st.t_ns)  # idle gap or stall on the virtual clock
                    continue
                self._wake.clear()
                await self._wake.wait()
                continue
            await sleep_until_ns(st.t_ns)
            for req, n in res.emitted:
                req.handle.put_nowait(n)
            for req in res.finished:
                req.handle.put_nowait(None)

    # -- handlers ----------------------------------------------------------
    async def models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {
                        "id": self.cfg.model,
                        "object": "model",
                        "created": 0,
                        "owned_by": "perfkit-sim",
                        "max_model_len": self.cfg.max_model_len,
                    }
                ],
            }
        )

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def metrics(self, request: web.Request) -> web.Response:
        text = render_metrics(
            self.engine,
            self.cfg.model,
            list(self.hist.values()),
            self.success_total,
            self.errors_total,
            self.admission_rejections,
        )
        return web.Response(
            text=text, content_type="text/plain", charset="utf-8", headers={"X-Content-Type-Options": "nosniff"}
        )

    async def get_gpu(self, request: web.Request) -> web.Response:
        """SIMULATED GPU counters driven by the engine (see :mod:`perfkit.sim.gpu`)."""
        t = now_ns()
        return web.json_response(
            {
                "simulated": True,
                "t_ns": t,
                "devices": [
                    {"index": 0, "name": self.gpu.spec.name, "uuid": "GPU-SIMULATED-0", "metrics": self.gpu.read(t)}
                ],
            }
        )

    async def get_log(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.log))

    async def get_config(self, request: web.Request) -> web.Response:
        return web.json_response({**self.cfg.to_dict(), "epoch_ns": self.schedule.epoch_ns})

    async def post_events(self, request: web.Request) -> web.Response:
        """Schedule events whose windows count from now; returns the new epoch (ns)."""
        try:
            raw = await request.json()
            events = [SimEvent(**e) for e in raw]
        except (ValueError, TypeError, ConfigError) as exc:
            return _error(400, f"events must be a JSON list of event mappings: {exc}")
        self.schedule.epoch_ns = now_ns()
        self.schedule.events = events
        return web.json_response({"epoch_ns": self.schedule.epoch_ns, "events": len(events)})

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=False)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=True)

    async def _generate(self, request: web.Request, chat: bool) -> web.StreamResponse:
        http_arrival = now_ns()
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object")
        refused = [f for f in self.cfg.reject_fields if _has_field(body, f)]
        if refused:
            return _error(400, f"Unrecognized request argument supplied: {refused[0]}")
        if body.get("model", self.cfg.model) != self.cfg.model:
            return _error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        words = _prompt_words(body, chat)
        if words is None:
            return _error(400, "'messages' must be a non-empty list" if chat else "'prompt' must be a string")
        prompt_tokens = len(words)
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 16))
        min_tokens = body.get("min_tokens", 0) or 0
        if not isinstance(max_tokens, int) or max_tokens < 1 or not isinstance(min_tokens, int):
            return _error(400, "max_tokens must be an integer >= 1 and min_tokens an integer")
        if not self.engine.fits(prompt_tokens, max_tokens):
            return _error(
                400,
                f"This model's maximum context length is {self.cfg.max_model_len} tokens "
                f"and its KV cache holds {self.cfg.kv_capacity_tokens}; the request asks "
                f"for {prompt_tokens} prompt + {max_tokens} output tokens.",
            )
        rid = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        if 0 < self.cfg.max_num_queued_reqs <= self._in_flight:  # vLLM's API server refuses before the engine
            self.admission_rejections += 1
            self.errors_total += 1
            self._record(rid, http_arrival, http_arrival, None, prompt_tokens, 0, [], [], 503, "admission_rejected")
            return _error(
                503,
                f"The server is at its limit of {self.cfg.max_num_queued_reqs} requests in flight; retry later.",
                "ServiceUnavailableError",
            )
        self._in_flight += 1
        try:
            return await self._admitted(request, body, chat, words, rid, http_arrival)
        finally:
            self._in_flight -= 1

    async def _admitted(
        self, request: web.Request, body: dict[str, Any], chat: bool, prompt: list[str], rid: str, http_arrival: int
    ) -> web.StreamResponse:
        """Serve a request past admission (its body checked): the engine's answer, streamed or whole."""
        prompt_tokens = len(prompt)
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 16))
        min_tokens = body.get("min_tokens", 0) or 0
        self.engine.prefix_cache.lookup(prompt)
        index = self._n_arrivals
        self._n_arrivals += 1
        draw = np.random.default_rng([self.cfg.seed, index])
        expected = request.headers.get("X-Perfkit-Expected")
        words: list[str] | None = None
        if expected is not None:  # a probe: answer it, wrongly more often when the batch is fuller
            fill = len(self.engine.running) / self.cfg.max_num_seqs
            p_wrong = self.cfg.probe_wrong_rate + (self.cfg.probe_wrong_rate_full - self.cfg.probe_wrong_rate) * fill
            words = expected.split() or [""]
            if draw.random() < p_wrong:
                words = [_WORDS[(i + index) % len(_WORDS)] for i in range(len(words))]
        if body.get("ignore_eos"):
            target = max_tokens
        elif words is not None:
            target = min(max_tokens, len(words))
        else:
            natural = int(draw.lognormal(np.log(self.cfg.natural_output_median), self.cfg.natural_output_sigma))
            target = min(max_tokens, max(min_tokens, natural, 1))
        if self.cfg.frontend_ms > 0:  # the API server, one request at a time, before the engine sees it
            async with self._frontend:
                await asyncio.sleep(self.cfg.frontend_ms / 1000)
        arrival = now_ns()
        burst = self.schedule.error_burst(arrival)
        fail_in_stream = False
        if burst is not None and self._rng.random() < burst.rate:
            if burst.status:
                self.errors_total += 1
                self._record(
                    rid, http_arrival, arrival, None, prompt_tokens, 0, [], [], burst.status, "injected_error_burst"
                )
                return _error(burst.status, "injected error burst", "ServiceUnavailableError")
            fail_in_stream = True
        req = SimRequest(rid, arrival, prompt_tokens, target)
        req.words = words
        req.params = {k: v for k, v in body.items() if k not in _STANDARD_FIELDS}
        req.handle = asyncio.Queue()
        self.stepper.offer(req)
        self._wake.set()
        stream = bool(body.get("stream"))
        opts = body.get("stream_options") or {}
        try:
            if stream:
                return await self._stream(
                    request,
                    req,
                    chat,
                    http_arrival,
                    fail_in_stream,
                    bool(opts.get("include_usage")),
                    bool(opts.get("continuous_usage_stats")),
                )
            return await self._unary(req, chat, http_arrival)
        finally:
            if req.state in ("waiting", "running"):
                self.engine.abort(req)

    async def _unary(self, req: SimRequest, chat: bool, http_arrival: int) -> web.Response:
        while await req.handle.get() is not None:
            pass
        end = now_ns()
        self._finish(req, http_arrival, end, [end], 200, None)
        text = self._text(req, 0, req.generated)
        choice: dict[str, Any] = {"index": 0, "finish_reason": self._finish_reason(req)}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return web.json_response(
            {
                "id": f"cmpl-{req.rid}",
                "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()),
                "model": self.cfg.model,
                "choices": [choice],
                "usage": self._usage(req),
            }
        )

    async def _stream(
        self,
        request: web.Request,
        req: SimRequest,
        chat: bool,
        http_arrival: int,
        fail_in_stream: bool,
        include_usage: bool,
        continuous_usage: bool,
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        obj = "chat.completion.chunk" if chat else "text_completion"
        head = (
            f'{{"id":"cmpl-{req.rid}","object":"{obj}","created":{int(time.time())},'
            f'"model":"{self.cfg.model}","choices":['
        )
        write_ns: list[int] = []
        tok_ns: list[int] = []
        sent = 0
        pending = 0
        try:
            if chat:
                role = head + '{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}'
                await resp.write(f"data: {role}\n\n".encode())
            while (n := await req.handle.get()) is not None or pending:
                if n is not None:
                    pending += n
                    if pending < self.cfg.stream_interval and req.generated < req.target_tokens:
                        continue
                text = json.dumps(self._text(req, sent, pending))
                part = f'"delta":{{"content":{text}}}' if chat else f'"text":{text}'
                chunk = head + f'{{"index":0,{part},"finish_reason":null}}]'
                sent += pending
                pending = 0
                if continuous_usage:
                    chunk += (
                        f',"usage":{{"prompt_tokens":{req.prompt_tokens},"completion_tokens":{sent},'
                        f'"total_tokens":{req.prompt_tokens + sent}}}'
                    )
                await resp.write(f"data: {chunk}}}\n\n".encode())
                t = now_ns()
                write_ns.append(t)
                tok_ns.extend([t] * (sent - len(tok_ns)))
                if fail_in_stream:
                    err = {"error": {"message": "injected in-stream error", "type": "InternalServerError", "code": 500}}
                    await resp.write(f"data: {json.dumps(err)}\n\ndata: [DONE]\n\n".encode())
                    self.errors_total += 1
                    self._record(
                        req.rid,
                        http_arrival,
                        req.arrival_ns,
                        req,
                        req.prompt_tokens,
                        sent,
                        write_ns,
                        tok_ns,
                        200,
                        "injected_stream_error",
                    )
                    return resp
                if n is None:
                    break
            fin = '"delta":{}' if chat else '"text":""'
            tail = head + f'{{"index":0,{fin},"finish_reason":"{self._finish_reason(req)}"}}]}}'
            out = f"data: {tail}\n\n"
            if include_usage:
                out += f'data: {head}],"usage":{json.dumps(self._usage(req))}}}\n\n'
            await resp.write((out + "data: [DONE]\n\n").encode())
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError) as exc:
            self._record(
                req.rid,
                http_arrival,
                req.arrival_ns,
                req,
                req.prompt_tokens,
                sent,
                write_ns,
                tok_ns,
                499,
                f"client_disconnected: {type(exc).__name__}",
            )
            if isinstance(exc, asyncio.CancelledError):
                raise
            return resp
        self._finish(req, http_arrival, now_ns(), write_ns, 200, None, tok_ns)
        return resp

    # -- helpers -----------------------------------------------------------
    def _text(self, req: SimRequest, start: int, n: int) -> str:
        words = req.words
        return "".join(
            " " + (words[k] if words and k < len(words) else _WORDS[k % len(_WORDS)]) for k in range(start, start + n)
        )

    def _usage(self, req: SimRequest) -> dict[str, int]:
        return {
            "prompt_tokens": req.prompt_tokens,
            "completion_tokens": req.generated,
            "total_tokens": req.prompt_tokens + req.generated,
        }

    def _finish_reason(self, req: SimRequest) -> str:
        return "length" if req.generated >= req.target_tokens and req.target_tokens > 0 else "stop"

    def _finish(
        self,
        req: SimRequest,
        http_arrival: int,
        end: int,
        write_ns: list[int],
        status: int,
        error: str | None,
        tok_ns: list[int] | None = None,
    ) -> None:
        self.success_total += 1
        # as vLLM's engine counts them: from the request's arrival in the engine, after the front end
        ttft = ((write_ns[0] if write_ns else end) - req.arrival_ns) / 1e9
        self.hist["ttft"].observe(ttft)
        self.hist["e2e"].observe((end - req.arrival_ns) / 1e9)
        if req.scheduled_ns is not None:
            self.hist["queue"].observe(max(0, req.scheduled_ns - req.arrival_ns) / 1e9)
            if req.token_ns:
                first, last = req.token_ns[0], req.token_ns[-1]
                self.hist["prefill"].observe(max(0, first - req.scheduled_ns) / 1e9)
                self.hist["decode"].observe(max(0, last - first) / 1e9)
                self.hist["inference"].observe(max(0, last - req.scheduled_ns) / 1e9)
        for a, b in zip(req.token_ns, req.token_ns[1:]):
            self.hist["itl"].observe((b - a) / 1e9)
            self.hist["tpot"].observe((b - a) / 1e9)
        self._record(
            req.rid,
            http_arrival,
            req.arrival_ns,
            req,
            req.prompt_tokens,
            req.generated,
            write_ns,
            tok_ns if tok_ns is not None else write_ns,
            status,
            error,
            end,
        )

    def _record(
        self,
        rid: str,
        http_arrival: int,
        arrival: int,
        req: SimRequest | None,
        prompt_tokens: int,
        output_tokens: int,
        write_ns: list[int],
        tok_ns: list[int],
        status: int,
        error: str | None,
        end: int | None = None,
    ) -> None:
        rec = {
            "request_id": rid,
            "http_arrival_ns": http_arrival,
            "arrival_ns": arrival,
            "scheduled_ns": req.scheduled_ns if req else None,
            "first_token_ns": write_ns[0] if write_ns else None,
            "finish_ns": end if end is not None else now_ns(),
            "chunk_write_ns": write_ns,
            "token_write_ns": tok_ns,
            "token_virtual_ns": list(req.token_ns) if req else [],
            "prompt_tokens": prompt_tokens,
            "output_tokens": output_tokens,
            "preemptions": req.preemptions if req else 0,
            "status": status,
            "error": error,
            "params": req.params if req else {},
        }
        self.log.append(rec)
        if self._log_file:
            self._log_file.write(json.dumps(rec) + "\n")


def make_app(config: SimConfig, log_path: str | None = None) -> web.Application:
    """Build the aiohttp application of a simulated endpoint."""
    sim = SimServer(config, log_path)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app["sim"] = sim
    app.on_startup.append(sim.start)
    app.on_cleanup.append(sim.stop)
    app.router.add_get("/v1/models", sim.models)
    app.router.add_post("/v1/completions", sim.completions)
    app.router.add_post("/v1/chat/completions", sim.chat)
    app.router.add_get("/metrics", sim.metrics)
    app.router.add_get("/health", sim.health)
    app.router.add_get("/sim/log", sim.get_log)
    app.router.add_get("/sim/gpu", sim.get_gpu)
    app.router.add_get("/sim/config", sim.get_config)
    app.router.add_post("/sim/events", sim.post_events)
    return app
