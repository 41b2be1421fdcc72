"""What a server supports, found by asking it: ``perfkit probe URL``.

A handful of requests, each recorded the way a run records them: the models ``/v1/models`` lists; one
streamed completion with every non-standard field perfkit sends by default (``ignore_eos``/``min_tokens``
for exact lengths, usage in every chunk); where that is refused, the same without each field in turn, to name
the one the server rejects; what came back (usage in the stream, per chunk or at the end, exact output
length, tokens per chunk); ``/metrics`` and the engine its names belong to; TLS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from dataclasses import dataclass, field
from typing import Any

from perfkit.client.endpoint import Endpoint, list_models
from perfkit.client.transport import Request, Transport
from perfkit.collect.prometheus import detect_engine, parse_metrics
from perfkit.net.get import get, server_root
from perfkit.rows import RequestRecord

__all__ = ["ProbeResult", "find_accepted", "preflight", "probe"]

_ASK_TOKENS = 16


@dataclass
class ProbeResult:
    """What :func:`probe` found; ``lines()`` says it in words."""

    base_url: str
    models: list[str] | None = None
    models_error: str | None = None
    streaming: bool = False
    status: int | None = None
    error: str | None = None
    rejected: list[str] = field(default_factory=list)
    usage_in_stream: bool = False
    usage_per_chunk: bool = False
    exact_length: bool | None = None
    output_tokens: int | None = None
    chunks: int = 0
    tokens_per_chunk: float | None = None
    ttft_ms: float | None = None
    metrics: str | None = None
    engine: str | None = None
    tls: str | None = None

    def lines(self) -> list[str]:
        """One line per finding."""
        ok = lambda b: "yes" if b else "no"  # noqa: E731
        out = [f"endpoint: {self.base_url}"]
        out.append(
            f"models: {', '.join(self.models)}" if self.models else f"models: none listed ({self.models_error or '-'})"
        )
        if self.tls:
            out.append(f"TLS: {self.tls}")
        if self.error and not self.streaming:
            out.append(f"streaming completion: failed ({self.error})")
        else:
            out.append(f"streaming completion: {ok(self.streaming)} (first token after {self.ttft_ms:.1f} ms)")
        if self.rejected:
            out.append(f"rejected: {', '.join(self.rejected)} (perfkit run: --no-ignore-eos / --no-continuous-usage)")
        out.append(f"usage in the stream: {ok(self.usage_in_stream)}; in every chunk: {ok(self.usage_per_chunk)}")
        if self.exact_length is not None:
            out.append(f"exact output length: {ok(self.exact_length)} (asked {_ASK_TOKENS}, got {self.output_tokens})")
        if self.tokens_per_chunk is not None:
            out.append(f"tokens per chunk: {self.tokens_per_chunk:.2f} over {self.chunks} chunks")
        out.append(f"/metrics: {self.metrics or 'not found'}" + (f" ({self.engine})" if self.engine else ""))
        return out


async def _one(transport: Transport, endpoint: Endpoint, n: int) -> RequestRecord:
    rec = RequestRecord(
        request_id=n,
        phase="probe",
        phase_index=0,
        warmup=False,
        user_id=None,
        intended_ns=0,
        prompt_tokens_target=8,
        output_tokens_target=_ASK_TOKENS,
    )
    body = endpoint.payload("Count from one to twenty in words, please.", _ASK_TOKENS)
    return await transport.send(Request(endpoint.url, endpoint.headers(), body), rec)


async def find_accepted(endpoint: Endpoint, transport: Transport) -> tuple[Endpoint, RequestRecord, list[str], int]:
    """Send one small request with perfkit's non-standard fields; where it is refused (HTTP 400), the same
    without each field in turn.  Returns the endpoint settings the server accepted (or ``endpoint`` as given
    when none was), the last request's record, the names of the fields dropped and the requests sent."""
    rec = await _one(transport, endpoint, 0)
    sent = 1
    if rec.status != 400:
        return endpoint, rec, [], sent
    trials = (
        ("ignore_eos/min_tokens", dataclasses.replace(endpoint, ignore_eos=False)),
        ("continuous usage", dataclasses.replace(endpoint, continuous_usage=False)),
        ("ignore_eos/min_tokens", dataclasses.replace(endpoint, ignore_eos=False, continuous_usage=False)),
    )
    for i, (name, trial) in enumerate(trials):
        if trial == endpoint:
            continue
        again = await _one(transport, trial, i + 1)
        sent += 1
        if again.error_kind is None:
            dropped = [name] if i < 2 else ["ignore_eos/min_tokens", "continuous usage"]
            return trial, again, dropped, sent
    return endpoint, rec, [], sent


async def preflight(endpoint: Endpoint, transport: Transport) -> tuple[Endpoint, dict[str, Any]]:
    """Before a run: the endpoint settings the server accepts, and what the manifest says of them.

    One request (a few more where fields are refused); a server that fails it for another reason is left to
    the run, which records its errors as data.
    """
    accepted, rec, dropped, sent = await find_accepted(endpoint, transport)
    note: dict[str, Any] = {
        "requests": sent,
        "dropped": dropped,
        "status": rec.status,
        "error": None if rec.error_kind is None else f"{rec.error_kind}: {rec.error_message or ''}".strip(),
    }
    return accepted, note


async def probe(endpoint: Endpoint, transport: Transport, context: ssl.SSLContext | None = None) -> ProbeResult:
    """Ask the server what it supports (a few small requests); never raises for the server's behaviour."""
    res = ProbeResult(endpoint.base_url)
    if endpoint.base_url.startswith("https"):
        res.tls = "verified" if not getattr(getattr(transport, "tls", None), "insecure", False) else "not verified"
    res.models, res.models_error = await list_models(endpoint, context=context)
    if res.models and not endpoint.model:
        endpoint = dataclasses.replace(endpoint, model=res.models[0])
    endpoint, rec, res.rejected, _ = await find_accepted(endpoint, transport)
    res.status = rec.status
    res.error = None if rec.error_kind is None else f"{rec.error_kind}: {rec.error_message or ''}".strip()
    res.streaming = rec.error_kind is None and bool(rec.chunk_ns)
    if rec.first_token_ns and rec.sent_ns:
        res.ttft_ms = (rec.first_token_ns - rec.sent_ns) / 1e6
    res.chunks = len(rec.chunk_ns)
    tokens = [t for t in rec.chunk_tokens if t is not None]
    res.usage_per_chunk = bool(rec.chunk_tokens) and len(tokens) == len(rec.chunk_tokens)
    res.usage_in_stream = rec.output_tokens_usage is not None
    if res.streaming:
        res.output_tokens = rec.output_tokens_usage if rec.output_tokens_usage is not None else res.chunks
        res.exact_length = res.output_tokens == _ASK_TOKENS if res.usage_in_stream else None
        res.tokens_per_chunk = (res.output_tokens or 0) / res.chunks if res.chunks else None
    root = server_root(endpoint.base_url)
    got = await asyncio.to_thread(get, root + "/metrics", 5.0, endpoint.headers(), 32 * 2**20, context)
    if got.status == 200:
        try:
            names = {s["name"] for s in parse_metrics(got.body)}
            res.metrics, res.engine = f"{root}/metrics, {len(names)} series", detect_engine(names)
        except ValueError:
            res.metrics = f"{root}/metrics answers, but not in Prometheus format"
    return res
