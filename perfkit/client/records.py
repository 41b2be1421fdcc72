"""What the client records about each request: one :class:`RequestRecord` per request.

Times are integer nanoseconds on :func:`perfkit.clock.now_ns`.  The column
definitions (with units, and how ITL maps to other tools) are in
``perfkit.store.schema``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ErrorKind", "RequestRecord"]


class ErrorKind:
    """The error kinds a request can end with (``error_kind`` column); None means success."""

    HTTP_STATUS = "http_status"  # a non-200 answer (other than 429); the code is in ``status``
    RATE_LIMITED = "rate_limited"  # HTTP 429; the message carries the server's Retry-After
    CONNECT = "connect_error"  # refused, DNS, unreachable
    CONNECT_TIMEOUT = "connect_timeout"
    READ_TIMEOUT = "read_timeout"  # no byte for longer than the read timeout (a stall)
    RESET = "connection_reset"  # the server closed or reset mid-response
    TRUNCATED = "truncated"  # the stream stopped part-way (mid-event, or before any finish_reason)
    MISSING_DONE = "missing_done"  # a finish_reason arrived and the stream ended cleanly, without ``[DONE]``
    OVERSIZED = "oversized_event"  # an event grew past perfkit.client.sse.MAX_EVENT_BYTES
    MALFORMED = "malformed_chunk"  # a data line that is not JSON
    STREAM_ERROR = "stream_error"  # an error object inside the stream
    EMPTY = "empty_response"  # a complete answer with no output text
    WRONG_CONTENT_TYPE = "wrong_content_type"
    CANCELLED = "cancelled"  # perfkit gave up on it (end of run, user cancellation)
    CLIENT = "client_error"  # anything else raised while sending or reading


def _ms(a: int | None, b: int | None) -> float | None:
    return (b - a) / 1e6 if a is not None and b is not None else None


@dataclass(slots=True)
class RequestRecord:
    """Everything measured for one request.  See ``perfkit.store.schema.REQUESTS`` for units."""

    request_id: int
    phase: str
    phase_index: int
    warmup: bool
    user_id: int | None
    intended_ns: int
    prompt_tokens_target: int
    output_tokens_target: int
    class_name: str = "default"
    session_id: int | None = None
    turn: int = 0
    target_rate_rps: float | None = None
    endpoint: str | None = None
    sent_ns: int | None = None
    headers_ns: int | None = None
    first_token_ns: int | None = None
    last_token_ns: int | None = None
    end_ns: int | None = None
    status: int | None = None
    error_kind: str | None = None
    error_message: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    output_tokens_usage: int | None = None
    empty_chunks: int = 0
    malformed_chunks: int = 0
    chunk_ns: list[int] = field(default_factory=list)
    chunk_tokens: list[int | None] = field(default_factory=list)
    chunk_chars: list[int] = field(default_factory=list)
    text_parts: list[str] | None = None  # kept only when a later turn or a check needs the answer
    slo_ok: bool | None = None
    check_ok: bool | None = None
    check_message: str | None = None

    def fail(self, kind: str, message: str | None = None) -> None:
        """Record the first failure; later ones do not overwrite it."""
        if self.error_kind is None:
            self.error_kind = kind
            self.error_message = (message or "")[:500] or None

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    @property
    def output_tokens(self) -> int:
        """Output tokens: the server's ``usage`` when given, else one per content chunk."""
        if self.output_tokens_usage is not None:
            return self.output_tokens_usage
        return len(self.chunk_ns)

    @property
    def ttft_ms(self) -> float | None:
        return _ms(self.sent_ns, self.first_token_ns)

    @property
    def e2e_ms(self) -> float | None:
        return _ms(self.sent_ns, self.end_ns)

    @property
    def tpot_ms(self) -> float | None:
        span = _ms(self.first_token_ns, self.last_token_ns)
        n = self.output_tokens
        return span / (n - 1) if span is not None and n > 1 else None

    @property
    def output_tokens_source(self) -> str:
        return "usage" if self.output_tokens_usage is not None else "chunks"
