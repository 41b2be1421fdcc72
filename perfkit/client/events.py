"""What an OpenAI-compatible stream means: each Server-Sent Event applied to the request's record.

This is the one home of those semantics.  :func:`handle_event` takes one SSE ``data:`` payload;
:func:`apply_event` the same once parsed; :func:`judge_end` decides how a stream that has ended went;
:func:`status_error` records a non-200 answer.  Both transports (:mod:`perfkit.client.fasthttp`,
:mod:`perfkit.client.aiohttp_transport`) call them.

The compiled read path (``perfkit.net._rx``) takes the *common* chunk itself, for speed: one choice
whose text is a non-empty string, a finish reason or none, and usage counts or none.  It knows the
shape of that chunk but not its words: :data:`COMPILED_NAMES` names the chunk's fields and the
record's attributes, and :func:`configure_compiled` hands them, with :func:`handle_event` and
:func:`apply_event` for every other shape, to the compiled module.  The differential tests
(``tests/test_rx_compiled.py``) hold the two paths to the same records.

Semantics, per chunk:

* an ``error`` object is a ``stream_error``;
* ``usage.prompt_tokens`` and ``usage.completion_tokens`` update the record (the latter is cumulative:
  the difference since the previous chunk is the chunk's token count);
* the text is ``choices[i].delta.content`` plus ``delta.reasoning_content`` (chat) or ``choices[i].text``
  (completions), over every choice; a chunk with text is a content chunk (``chunk_ns``, ``chunk_chars``,
  ``chunk_tokens``; the first sets ``first_token_ns``), one without is counted in ``empty_chunks``;
* a non-empty ``finish_reason`` is kept; ``[DONE]`` ends the stream.
"""

from __future__ import annotations

import json
from typing import Any

from perfkit.rows import ErrorKind, RequestRecord

__all__ = [
    "COMPILED_NAMES",
    "MAX_ERROR_BODY",
    "apply_event",
    "configure_compiled",
    "error_message",
    "handle_event",
    "judge_end",
    "loads",
    "status_error",
]

try:  # several times faster on the small objects of a stream; optional
    from orjson import loads
except ImportError:  # pragma: no cover - orjson is a dependency, but a missing wheel must not stop a run
    loads = json.loads  # type: ignore[assignment]

MAX_ERROR_BODY = 4096
"""Bytes of a non-200 answer's body kept for its error message."""

COMPILED_NAMES: dict[str, str] = {
    # the record's attributes the common chunk updates
    "record.text_parts": "text_parts",
    "record.first_token_ns": "first_token_ns",
    "record.last_token_ns": "last_token_ns",
    "record.chunk_ns": "chunk_ns",
    "record.chunk_chars": "chunk_chars",
    "record.chunk_tokens": "chunk_tokens",
    "record.prompt_tokens": "prompt_tokens",
    "record.output_tokens": "output_tokens_usage",
    "record.finish_reason": "finish_reason",
    # the chunk's fields
    "chunk.error": "error",
    "chunk.usage": "usage",
    "chunk.choices": "choices",
    "chunk.finish_reason": "finish_reason",
    "chunk.delta": "delta",
    "chunk.content": "content",
    "chunk.reasoning_content": "reasoning_content",
    "chunk.text": "text",
    "chunk.prompt_tokens": "prompt_tokens",
    "chunk.completion_tokens": "completion_tokens",
}
"""What the compiled path's roles are called: the record's attributes, then the chunk's fields."""


def handle_event(rec: RequestRecord, data: bytes, t: int, state: list[int]) -> bool:
    """Apply one SSE data payload to the record; True at ``[DONE]``.

    ``state[0]`` is the last cumulative ``completion_tokens`` seen.  This runs for every chunk of
    every stream, on the event loop: it is kept to one JSON parse (orjson where installed) and a few
    dictionary lookups.
    """
    if data == b"[DONE]":
        return True
    try:
        obj = loads(data)
    except ValueError:
        rec.malformed_chunks += 1
        rec.fail(ErrorKind.MALFORMED, f"not JSON: {data[:200].decode('utf-8', 'replace')!r}")
        return False
    return apply_event(rec, obj, data, t, state)


def apply_event(rec: RequestRecord, obj: Any, data: bytes, t: int, state: list[int]) -> bool:
    """The rest of :func:`handle_event`, once ``data`` has been parsed to ``obj`` (False: not the end)."""
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


def judge_end(rec: RequestRecord, partial: bool, done: bool) -> None:
    """Judge a 200 stream that has ended: truncated, missing ``[DONE]``, empty, or fine."""
    if partial:
        rec.fail(ErrorKind.TRUNCATED, "the stream stopped part-way through an event")
    elif not done and rec.finish_reason is not None:
        rec.fail(
            ErrorKind.MISSING_DONE,
            f"finish_reason {rec.finish_reason!r} arrived, then the stream ended without data: [DONE]",
        )
    elif not done:
        rec.fail(ErrorKind.TRUNCATED, "the stream ended without data: [DONE]")
    elif not rec.chunk_ns:
        rec.fail(ErrorKind.EMPTY, "no output text in a complete stream")


def status_error(rec: RequestRecord, raw: bytes, status: int, retry_after: str | None) -> None:
    """Record a non-200 answer: ``rate_limited`` for 429 (with its Retry-After), else ``http_status``."""
    if status == 429:
        wait = f" (Retry-After: {retry_after[:40]})" if retry_after else " (no Retry-After)"
        rec.fail(ErrorKind.RATE_LIMITED, error_message(raw, status)[:440] + wait)
    else:
        rec.fail(ErrorKind.HTTP_STATUS, error_message(raw, status))


def error_message(raw: bytes, status: int) -> str:
    """``HTTP STATUS: message`` from an error body (the ``error.message`` of a JSON body, else its text)."""
    text = raw.decode("utf-8", errors="replace")
    try:
        obj = json.loads(text)
        err = obj.get("error", obj)
        msg = err.get("message", text) if isinstance(err, dict) else str(err)
    except (ValueError, AttributeError):
        msg = text
    return f"HTTP {status}: {msg}"[:500]


_CONFIGURED: set[int] = set()


def configure_compiled(module: Any) -> None:
    """Give the compiled read path these semantics: the JSON parser, the handlers and :data:`COMPILED_NAMES`."""
    if id(module) not in _CONFIGURED:
        module.configure(loads, handle_event, apply_event, dict(COMPILED_NAMES))
        _CONFIGURED.add(id(module))
