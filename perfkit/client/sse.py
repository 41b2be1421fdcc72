"""A pure, incremental parser of Server-Sent Events (the WHATWG ``text/event-stream`` format).

Bytes go in as they arrive from the socket, in pieces of any size; complete
events come out.  Lines may end in ``\\n``, ``\\r\\n`` or ``\\r``; lines starting
with ``:`` are comments (servers send them as keep-alives); an event is
dispatched at a blank line, its ``data`` lines joined by ``\\n``; an event
with no data is not dispatched.  :meth:`SSEParser.close` says whether the
stream stopped part-way through an event (a truncated stream).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["EventTooLarge", "MAX_EVENT_BYTES", "SSEEvent", "SSEParser"]

MAX_EVENT_BYTES = 1 << 20
"""Longest event (or line) held while it is incomplete, bytes: a streamed completion's events are
hundreds of bytes, so a megabyte without an end is a broken or hostile server, and memory stays bounded."""


class EventTooLarge(ValueError):
    """An event grew past :data:`MAX_EVENT_BYTES` without ending; the stream cannot be trusted further."""


class SSEEvent(NamedTuple):
    """One dispatched event: its ``event`` type (default ``"message"``), ``data`` and last ``id``."""

    data: str
    event: str = "message"
    id: str | None = None


class SSEParser:
    """Incremental SSE parser.

    Attributes
    ----------
    comments : int
        Comment lines seen (keep-alives).
    """

    __slots__ = ("_buf", "_data", "_event", "_id", "comments")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self.comments = 0

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add bytes; return the events they complete, in order.

        Raises
        ------
        EventTooLarge
            When an unfinished event holds more than :data:`MAX_EVENT_BYTES`.
        """
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            keep_cr = buf.endswith(b"\r")  # a "\r\n" may be split across reads
            if keep_cr:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            lines = buf.split(b"\n")
            self._buf = lines.pop() + (b"\r" if keep_cr else b"")
        else:
            lines = buf.split(b"\n")
            self._buf = lines.pop()
        out: list[SSEEvent] = []
        for raw in lines:
            if not raw:
                if self._data:
                    out.append(SSEEvent("\n".join(self._data), self._event or "message", self._id))
                self._data = []
                self._event = ""
                continue
            line = raw.decode("utf-8", errors="replace")
            if line[0] == ":":
                self.comments += 1
                continue
            name, sep, value = line.partition(":")
            if sep and value.startswith(" "):
                value = value[1:]
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id" and "\0" not in value:
                self._id = value
            # "retry" and unknown fields are ignored, as the standard says
        if len(self._buf) > MAX_EVENT_BYTES or (self._data and sum(map(len, self._data)) > MAX_EVENT_BYTES):
            self._too_large()
        return out

    def _too_large(self) -> None:
        held = len(self._buf) + sum(map(len, self._data))
        self._buf, self._data, self._event = b"", [], ""
        raise EventTooLarge(
            f"an event of more than {MAX_EVENT_BYTES >> 20} MiB without an end "
            f"({held} bytes held); the stream was abandoned"
        )

    def feed_data(self, chunk: bytes) -> list[bytes]:
        """Add bytes; return the ``data`` of the events they complete, as bytes, in order.

        What a streaming client needs, fast: the common shape (``data: ...``
        then a blank line, ``\\n`` line ends) is split in one pass, and any
        other piece (comments, several fields, ``\\r``, an ``event:`` type)
        goes through :meth:`feed`, so the result is always what :meth:`feed`
        would give (its events' ``data``, whatever their type).
        """
        buf = self._buf + chunk if self._buf else chunk
        if self._data or self._event or b"\r" in buf:
            return [ev.data.encode() for ev in self.feed_tail(buf)]
        pieces = buf.split(b"\n\n")
        tail = pieces.pop()
        out: list[bytes] = []
        for piece in pieces:
            if piece[:5] == b"data:" and b"\n" not in piece:
                out.append(piece[6:] if piece[5:6] == b" " else piece[5:])
            elif piece:
                out.extend(ev.data.encode() for ev in self.feed_tail(piece + b"\n\n"))
            # an empty piece is a blank line after a dispatched event: nothing to do
        if tail[:1] == b"\n":  # "\n\n\n...": the first newline ends a line that is already empty
            out.extend(ev.data.encode() for ev in self.feed_tail(tail))
        else:
            self._buf = tail
            if len(tail) > MAX_EVENT_BYTES:
                self._too_large()
        return out

    @property
    def pending(self) -> bool:
        """Whether bytes or fields of an unfinished event are held (a fresh event may not be split alone)."""
        return bool(self._buf or self._data or self._event)

    def feed_tail(self, buf: bytes) -> list[SSEEvent]:
        """:meth:`feed` with ``buf`` replacing the held-back bytes (they are already in it)."""
        self._buf = b""
        return self.feed(buf)

    def close(self) -> tuple[list[SSEEvent], bool]:
        """End of stream.

        Returns the events completed by a final lone ``\\r`` (held back in case
        a ``\\n`` followed), and True when the stream stopped part-way through
        an event.
        """
        events: list[SSEEvent] = []
        if self._buf:  # complete lines :meth:`feed_data` held back, and a final lone "\r"
            held = self._buf
            events = self.feed_tail(held + b"\n" if held.endswith(b"\r") else held)
        partial = bool(self._buf) or bool(self._data)
        self._buf, self._data, self._event = b"", [], ""
        return events, partial
