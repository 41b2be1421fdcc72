"""Requests to OpenAI-compatible endpoints (completions and chat), streamed and timed.

:func:`send` never raises for an endpoint's misbehaviour: HTTP errors, timeouts,
resets, malformed or truncated streams and error objects inside the stream
are written into the :class:`RequestRecord` as data.  Only cancellation
propagates (after being recorded).

The API key is read from an environment variable at request time and exists
only in the ``Authorization`` header; it is never stored in a record, a
manifest or a log.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from perfkit.client.records import ErrorKind, RequestRecord
from perfkit.client.sse import EventTooLarge, SSEParser
from perfkit.clock import now_ns
from perfkit.errors import ConfigError, EndpointError
from perfkit.secrets import register_secret

__all__ = ["API_KEY_ENV", "Endpoint", "check_model", "discover_model", "make_session", "send"]

try:  # several times faster on the small objects of a stream; optional
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is a dependency, but a missing wheel must not stop a run
    _loads = json.loads

API_KEY_ENV = ("PERFKIT_API_KEY", "OPENAI_API_KEY")
_MAX_ERROR_BODY = 4096


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to send requests.

    Parameters
    ----------
    base_url : str
        The server's base URL, with or without the trailing ``/v1``.
    model : str
        Model name sent in every request.
    api : {"completions", "chat"}
    ignore_eos : bool
        Ask the server to produce exactly ``max_tokens`` (vLLM, SGLang).
    continuous_usage : bool
        Ask for ``usage`` in every chunk (vLLM's ``continuous_usage_stats``),
        which gives the tokens in each chunk.
    api_key_env : str, optional
        Environment variable holding the API key; by default the first set of
        ``PERFKIT_API_KEY`` and ``OPENAI_API_KEY``.
    """

    base_url: str
    model: str = ""
    api: str = "completions"
    ignore_eos: bool = True
    continuous_usage: bool = True
    api_key_env: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", normalize_base_url(self.base_url))
        if self.api not in ("completions", "chat"):
            raise ConfigError(f"api {self.api!r} is not one of completions, chat")
        self.api_key()  # registered for redaction before anything can be written

    def api_key(self) -> str | None:
        """The key from the environment (see ``api_key_env``), registered with :func:`perfkit.secrets.redact`."""
        for name in (self.api_key_env,) if self.api_key_env else API_KEY_ENV:
            key = os.environ.get(name)
            if key:
                register_secret(key)
                return key
        return None

    @property
    def url(self) -> str:
        return self.base_url + ("/chat/completions" if self.api == "chat" else "/completions")

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        key = self.api_key()
        if key:
            h["Authorization"] = f"Bearer {key}"
        return h

    def payload(self, prompt: str, max_tokens: int, messages: list[dict[str, str]] | None = None,
                exact_length: bool = True) -> bytes:
        """The JSON body of one streamed request (``messages`` for chat, else one user message).

        ``exact_length=False`` lets the model stop on its own (probes must end
        with their answer), whatever ``ignore_eos`` says.
        """
        body: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "stream": True,
                                "stream_options": {"include_usage": True}}
        if self.continuous_usage:
            body["stream_options"]["continuous_usage_stats"] = True
        if self.ignore_eos and exact_length:
            body["ignore_eos"] = True
            body["min_tokens"] = max_tokens
        if self.api == "chat":
            body["messages"] = messages if messages is not None else [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        return json.dumps(body).encode()


def normalize_base_url(url: str) -> str:
    """``http://h:8000``, ``http://h:8000/``, ``http://h:8000/v1/`` -> ``http://h:8000/v1``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"endpoint {url!r} is not an http(s) URL; use e.g. http://127.0.0.1:8000 "
                          "(the server's base URL, with or without /v1)")
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return f"{parts.scheme}://{parts.netloc}{path}"


def make_session(pool_size: int, connect_timeout_s: float = 10.0, read_timeout_s: float = 60.0) -> aiohttp.ClientSession:
    """A session whose pool size and timeouts are all set explicitly.

    aiohttp's defaults (100 connections, 300 s total) would silently cap a
    load test or cut long generations; here there is no total timeout, a
    connect timeout, and a read timeout that bounds any silence (a stall).
    """
    connector = aiohttp.TCPConnector(limit=pool_size, limit_per_host=0, ttl_dns_cache=300,
                                     keepalive_timeout=30, enable_cleanup_closed=True)
    timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout_s, sock_connect=connect_timeout_s,
                                    sock_read=read_timeout_s)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, read_bufsize=1 << 16,
                                 auto_decompress=True, trust_env=False)


async def discover_model(session: aiohttp.ClientSession, endpoint: Endpoint) -> str:
    """The first model ``/v1/models`` lists.

    Raises
    ------
    EndpointError
        When the endpoint cannot be reached or lists no model.
    """
    url = endpoint.base_url + "/models"
    try:
        async with session.get(url, headers=endpoint.headers()) as resp:
            if resp.status != 200:
                raise EndpointError(f"GET {url} answered HTTP {resp.status}; pass --model to skip discovery")
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise EndpointError(f"cannot reach {url}: {type(exc).__name__}: {exc}. Is the server running? "
                            "(`perfkit sim` starts a simulated one)") from None
    models = [m.get("id") for m in (data.get("data") or []) if isinstance(m, dict)]
    if not models:
        raise EndpointError(f"{url} lists no model; pass --model")
    return str(models[0])


async def check_model(session: aiohttp.ClientSession, endpoint: Endpoint) -> None:
    """Refuse a model the endpoint does not list in ``/v1/models`` (skipped when it lists none or fails).

    Raises
    ------
    EndpointError
        Naming the model, the endpoint and the models it does serve.
    """
    url = endpoint.base_url + "/models"
    try:
        async with session.get(url, headers=endpoint.headers(), timeout=aiohttp.ClientTimeout(total=10)) as resp:
            if resp.status != 200:
                return
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return  # unreachable or not listing: the requests themselves will say so, as data
    models = [m.get("id") for m in (data.get("data") or []) if isinstance(m, dict)] if isinstance(data, dict) else []
    if models and endpoint.model not in models:
        near = difflib.get_close_matches(endpoint.model, [str(m) for m in models], n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise EndpointError(f"model {endpoint.model!r} is not served by {endpoint.base_url}{hint}; it lists "
                            f"{', '.join(map(str, models[:10]))}. Pass one of them with --model, or leave --model "
                            "out to use the first")


def _handle_event(rec: RequestRecord, data: bytes, t: int, state: list[int]) -> bool:
    """Apply one SSE data payload to the record; True at ``[DONE]``.

    This runs for every chunk of every stream, on the event loop: it is kept
    to one JSON parse (orjson where installed) and a few dictionary lookups.
    """
    if data == b"[DONE]":
        return True
    try:
        obj = _loads(data)
    except ValueError:
        rec.malformed_chunks += 1
        rec.fail(ErrorKind.MALFORMED, f"not JSON: {data[:200].decode('utf-8', 'replace')!r}")
        return False
    return _apply_event(rec, obj, data, t, state)


def _apply_event(rec: RequestRecord, obj: Any, data: bytes, t: int, state: list[int]) -> bool:
    """The rest of :func:`_handle_event`, once ``data`` has been parsed to ``obj`` (False: not the end)."""
    if type(obj) is not dict:
        rec.malformed_chunks += 1
        rec.fail(ErrorKind.MALFORMED, f"not a JSON object: {data[:200].decode('utf-8', 'replace')!r}")
        return False
    err = obj.get("error")
    if err:
        msg = err.get("message") if isinstance(err, dict) else str(err)
        rec.fail(ErrorKind.STREAM_ERROR, str(msg))
        return False
    usage = obj.get("usage")
    completion = None
    if type(usage) is dict:
        completion = usage.get("completion_tokens")
        prompt = usage.get("prompt_tokens")
        if prompt is not None:
            rec.prompt_tokens = prompt
        if completion is not None:
            rec.output_tokens_usage = completion
    text = ""
    choices = obj.get("choices")
    for choice in choices if type(choices) is list else ():
        if type(choice) is not dict:
            continue
        delta = choice.get("delta")
        if type(delta) is dict:
            text += (delta.get("content") or "") + (delta.get("reasoning_content") or "")
        else:
            text += choice.get("text") or ""
        if choice.get("finish_reason"):
            rec.finish_reason = choice["finish_reason"]
    if not text:
        if choices:
            rec.empty_chunks += 1
        if completion is not None:
            state[0] = completion
        return False
    if rec.text_parts is not None:
        rec.text_parts.append(text)
    if rec.first_token_ns is None:
        rec.first_token_ns = t
    rec.last_token_ns = t
    rec.chunk_ns.append(t)
    rec.chunk_chars.append(len(text))
    if completion is not None:
        rec.chunk_tokens.append(completion - state[0])
        state[0] = completion
    else:
        rec.chunk_tokens.append(None)
    return False


async def send(session: aiohttp.ClientSession, endpoint: Endpoint, rec: RequestRecord, body: bytes,
               request_tag: str | None = None, extra_headers: dict[str, str] | None = None) -> RequestRecord:
    """Send one streamed request and fill ``rec`` with what happened.

    ``request_tag`` goes out as the ``X-Request-Id`` header, which lets the
    server's own log be joined to the record.  ``extra_headers`` carries, for
    probes, ``X-Perfkit-Expected``: the answer perfkit's simulator should give
    (real servers ignore it).
    """
    headers = endpoint.headers()
    if request_tag is not None:
        headers["X-Request-Id"] = request_tag
    if extra_headers:
        headers.update(extra_headers)
    rec.sent_ns = now_ns()
    try:
        async with session.post(endpoint.url, data=body, headers=headers) as resp:
            rec.headers_ns = now_ns()
            rec.status = resp.status
            if resp.status != 200:
                raw = await resp.content.read(_MAX_ERROR_BODY)
                status_error(rec, raw, resp.status, resp.headers.get("Retry-After"))
                return rec
            if "text/event-stream" not in resp.headers.get("Content-Type", ""):
                rec.fail(ErrorKind.WRONG_CONTENT_TYPE, resp.headers.get("Content-Type", "(none)"))
            parser = SSEParser()
            state = [0]
            done = False
            async for data in resp.content.iter_any():
                t = now_ns()
                for payload in parser.feed_data(data):
                    if _handle_event(rec, payload, t, state):
                        done = True
                if done:
                    break
            tail, partial = parser.close()
            for ev in tail:
                done = _handle_event(rec, ev.data.encode(), now_ns(), state) or done
            judge_end(rec, partial, done)
    except EventTooLarge as exc:
        rec.fail(ErrorKind.OVERSIZED, str(exc))
    except asyncio.CancelledError:
        rec.fail(ErrorKind.CANCELLED, "cancelled by perfkit")
        raise
    except aiohttp.ConnectionTimeoutError as exc:
        rec.fail(ErrorKind.CONNECT_TIMEOUT, str(exc))
    except (aiohttp.SocketTimeoutError, asyncio.TimeoutError) as exc:
        rec.fail(ErrorKind.READ_TIMEOUT, str(exc) or "no data within the read timeout")
    except aiohttp.ClientConnectorError as exc:
        rec.fail(ErrorKind.CONNECT, str(exc))
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError,
            ConnectionResetError) as exc:
        rec.fail(ErrorKind.RESET, f"{type(exc).__name__}: {exc}")
    except aiohttp.ClientError as exc:
        rec.fail(ErrorKind.CLIENT, f"{type(exc).__name__}: {exc}")
    finally:
        rec.end_ns = now_ns()
    return rec


def judge_end(rec: RequestRecord, partial: bool, done: bool) -> None:
    """Judge a 200 stream that has ended: truncated, missing ``[DONE]``, empty, or fine."""
    if partial:
        rec.fail(ErrorKind.TRUNCATED, "the stream stopped part-way through an event")
    elif not done and rec.finish_reason is not None:
        rec.fail(ErrorKind.MISSING_DONE, f"finish_reason {rec.finish_reason!r} arrived, then the stream ended "
                                         "without data: [DONE]")
    elif not done:
        rec.fail(ErrorKind.TRUNCATED, "the stream ended without data: [DONE]")
    elif not rec.chunk_ns:
        rec.fail(ErrorKind.EMPTY, "no output text in a complete stream")


def status_error(rec: RequestRecord, raw: bytes, status: int, retry_after: str | None) -> None:
    """Record a non-200 answer: ``rate_limited`` for 429 (with its Retry-After), else ``http_status``."""
    if status == 429:
        wait = f" (Retry-After: {retry_after[:40]})" if retry_after else " (no Retry-After)"
        rec.fail(ErrorKind.RATE_LIMITED, _error_message(raw, status)[:440] + wait)
    else:
        rec.fail(ErrorKind.HTTP_STATUS, _error_message(raw, status))


def _error_message(raw: bytes, status: int) -> str:
    text = raw.decode("utf-8", errors="replace")
    try:
        obj = json.loads(text)
        err = obj.get("error", obj)
        msg = err.get("message", text) if isinstance(err, dict) else str(err)
    except (ValueError, AttributeError):
        msg = text
    return f"HTTP {status}: {msg}"[:500]
