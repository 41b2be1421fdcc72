"""Streamed requests on bare asyncio protocols: every chunk timestamped the moment its bytes arrive.

A general HTTP client pays, for every read of a stream, for a parser object,
a buffer, a future that wakes the reading task, a task step and a timer
reset: tens of microseconds, which at hundreds of streams is the client's
whole CPU, and the chunks then wait their turn (and are timestamped late).
Here a connection is an :class:`asyncio.Protocol` that does the whole job
as a read comes in: it takes the time, undoes the chunked framing, splits
the Server-Sent Events and parses each one into the :class:`RequestRecord`.
Over plain HTTP on Linux the time is the kernel's receive stamp of the read
(:mod:`perfkit.net`), so how late the loop got to the socket does not count;
elsewhere it is when the read happened.  How reads are made (stamps, a reading
thread, the compiled path) is the transport's :class:`~perfkit.net.ReadPath`.
The task that sent the request sleeps until the answer is complete; nothing
wakes it per chunk.  The stall timeout is one timer per request, re-armed
only when it fires.

It speaks just what OpenAI-compatible streaming needs: HTTP/1.1 POST with a
JSON body, keep-alive connections pooled per host, responses framed by
``Transfer-Encoding: chunked``, ``Content-Length`` or the connection's end,
TLS through :mod:`ssl`.  It sends no ``Accept-Encoding``, so answers come
uncompressed.  Every misbehaviour is recorded with the same error kinds as
:class:`~perfkit.client.aiohttp_transport.AiohttpTransport`, through the same
event semantics (:mod:`perfkit.client.events`).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

from perfkit.client.events import MAX_ERROR_BODY, configure_compiled, handle_event, judge_end, status_error
from perfkit.client.sse import EventTooLarge, SSEParser
from perfkit.client.transport import Request
from perfkit.clock import now_ns
from perfkit.net import ReadDelays, ReadPath, compiled_module, open_stamped
from perfkit.net.tls import TlsOptions
from perfkit.rows import ErrorKind, RequestRecord

__all__ = ["FastTransport", "one_event_py"]
_MAX_HEAD = 64 * 1024
_HEAD_END = b"\r\n\r\n"


def one_event_py(data: bytes) -> bytes | None:
    """The payload of ``data`` when it is exactly one HTTP chunk (1-8 hex digits of size, CRLF, the chunk,
    CRLF) holding exactly one event ``data: PAYLOAD\\n\\n`` with no line break in the payload; else None.

    Without the compiled ``perfkit.client._rx`` this is the fast path of a read; anything else goes to
    the general parser.
    """
    i = data.find(b"\r\n", 0, 10)
    if not 0 < i <= 8 or data[i + 2 : i + 8] != b"data: " or data[-4:] != b"\n\n\r\n" or len(data) < i + 12:
        return None
    head = data[:i]
    if head.strip(b"0123456789abcdefABCDEF"):
        return None
    end = len(data) - 4
    if int(head, 16) != end - i or data.find(b"\n", i + 2, end) >= 0 or data.find(b"\r", i + 2, end) >= 0:
        return None
    return data[i + 8 : end]


class _Stale(Exception):
    """A pooled connection the server had closed: the request may be sent again on a new one."""


class _Conn(asyncio.Protocol):
    """One keep-alive connection carrying one exchange at a time."""

    def __init__(self, client: FastTransport, key: tuple[str, str, int]) -> None:
        self.client, self.key = client, key
        self._take = client._take  # the compiled take of this transport's read path (None: Python)
        self.transport: asyncio.Transport | None = None
        self._fast: Any = None
        self.closed = False
        self.reused = False
        self._reset_exchange(None, None)

    def _reset_exchange(self, rec: RequestRecord | None, fut: asyncio.Future[None] | None) -> None:
        if self.transport is not None and self._fast is not None:
            self.transport.unfast()  # type: ignore[attr-defined]
        self.rec, self.fut = rec, fut
        self.head = b""
        self.in_body = False
        self.got_bytes = False
        self.framing = "close"  # chunked | length | close
        self.remaining = 0  # length framing: bytes left; chunked: bytes left in the current chunk
        self.cstate = 0  # chunked: 0 size line expected, 1 in chunk data, 2 CRLF after data, 3 finished
        self.cbuf = b""
        self.ok = False
        self.keep_alive = True
        self.err_body = bytearray()
        self.retry_after: str | None = None
        self.parser = SSEParser()
        self.tokens = [0]
        self.done = False
        self.draining = False  # the record is finished ([DONE] seen) but the body has not ended yet
        self.last_ns = now_ns()
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol --------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # a transport read on a reading thread can hand whole one-event chunks to the record itself
        self._fast = getattr(transport, "fast", None) if getattr(transport, "threaded", False) else None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        self.data_stamped(data, now_ns())

    def data_stamped(self, data: bytes, t: int) -> None:
        """``data`` arrived at ``t`` (ns; from :class:`~perfkit.net.StampedTransport`, the kernel's time)."""
        self._data(data, t)
        if (
            self._fast is not None
            and self.rec is not None
            and self.in_body
            and self.framing == "chunked"
            and not self.closed
            and self._at_event_start()
            and self._take is not None
        ):
            # the next reads, whole one-event chunks as a rule, go from the reading thread's queue to the
            # record in C (StampedTransport.fast) until one is not, which comes back here
            self._fast(self, self.rec, self.tokens)

    def _at_event_start(self) -> bool:
        """Chunked body of a 200 answer, between HTTP chunks and between events: where the compiled path
        can take the next bytes."""
        return self.cstate == 0 and not self.cbuf and self.ok and not self.draining and not self.parser.pending

    def fast_done(self) -> None:
        """``[DONE]`` came in a read the transport took on the fast path (then the rest of it comes here)."""
        self._answer_done()

    def _data(self, data: bytes, t: int) -> None:
        self.last_ns = t
        rec = self.rec
        if rec is None:  # bytes nobody asked for: this connection cannot be trusted again
            self.abort()
            return
        self.got_bytes = True
        if not self.in_body:
            head = self.head + data
            end = head.find(_HEAD_END)
            if end < 0:
                if len(head) > _MAX_HEAD:
                    self._finish(ErrorKind.CLIENT, "response head longer than 64 KiB", close=True)
                else:
                    self.head = head
                return
            if not self._parse_head(head[:end], t):
                return
            data = head[end + 4 :]
            if not data:
                return
        if self.framing == "chunked":
            take = self._take
            if self.cstate in (1, 2) and take is not None:  # a chunk begun in the last read: end it first,
                # so that the rest of this read, whole chunks as a rule, takes the compiled path
                k = self.remaining + 2 if self.cstate == 1 else 2 - len(self.cbuf)
                if 0 < k < len(data):
                    self._chunked(data[:k], t)
                    if self.rec is None:
                        return
                    data = data[k:]
            if self._at_event_start():
                if take is not None:  # compiled: every whole one-event chunk at the head of the read
                    pos, done = take(data, self.rec, t, self.tokens)
                    if done:
                        self._answer_done()
                    if pos == len(data):
                        return
                    data = data[pos:]
                else:  # the common read: exactly one HTTP chunk holding exactly one "data: ..." event
                    payload = one_event_py(data)
                    if payload is not None:
                        if handle_event(self.rec, payload, t, self.tokens):  # type: ignore[arg-type]
                            self._answer_done()
                        return
            self._chunked(data, t)
        elif self.framing == "length":
            take = data[: self.remaining]
            self.remaining -= len(take)
            self._payload(take, t)
            if self.remaining <= 0 and self.rec is not None:
                self._body_end()
        else:
            self._payload(data, t)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        self.client._forget(self)
        if self.rec is None:
            return
        if self.draining:
            self._release(reuse=False)
        elif not self.got_bytes and self.reused:
            self._cancel_timer()
            fut, self.rec = self.fut, None
            if fut is not None and not fut.done():
                fut.set_exception(_Stale())
        elif self.in_body and self.framing == "close" and exc is None:
            self._body_end()
        else:
            what = f"{type(exc).__name__}: {exc}" if exc else "the server closed the connection"
            where = "mid-response" if self.in_body else "before answering"
            self._finish(ErrorKind.RESET, f"{what} ({where})")

    # -- parsing -----------------------------------------------------------
    def _parse_head(self, head: bytes, t: int) -> bool:
        rec = self.rec
        assert rec is not None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            self._finish(ErrorKind.CLIENT, f"not an HTTP status line: {lines[0][:100]!r}", close=True)
            return False
        headers: dict[str, str] = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        rec.headers_ns = t
        rec.status = status
        self.retry_after = headers.get("retry-after")
        self.in_body = True
        self.ok = status == 200
        te = headers.get("transfer-encoding", "").lower()
        if "chunked" in te:
            self.framing = "chunked"
        elif "content-length" in headers:
            self.framing, self.remaining = "length", int(headers["content-length"] or 0)
        else:
            self.framing = "close"
        conn_hdr = headers.get("connection", "").lower()
        self.keep_alive = parts[0] != "HTTP/1.0" and "close" not in conn_hdr and self.framing != "close"
        if self.ok and "text/event-stream" not in headers.get("content-type", ""):
            rec.fail(ErrorKind.WRONG_CONTENT_TYPE, headers.get("content-type", "(none)"))
        if self.framing == "length" and self.remaining == 0:
            self._body_end()
            return False
        return True

    def _chunked(self, data: bytes, t: int) -> None:
        buf = self.cbuf + data if self.cbuf else data
        pos, n = 0, len(buf)
        # the payloads of every HTTP chunk in this read go to the SSE parser at once: they share the
        # read's timestamp, and one call instead of one per chunk is a good part of a chunk's CPU
        # when a busy server's chunks arrive several to a read
        out: list[bytes] = []
        while pos < n:
            st = self.cstate
            if st == 1:
                take = buf[pos : pos + self.remaining]
                pos += len(take)
                self.remaining -= len(take)
                out.append(take)
                if self.remaining:
                    break
                self.cstate = 2
            elif st == 2:
                if n - pos < 2:
                    break
                pos += 2
                self.cstate = 0
            elif st == 0:
                i = buf.find(b"\r\n", pos)
                if i < 0:
                    break
                try:
                    size = int(buf[pos:i], 16)
                except ValueError:
                    try:  # a chunk extension (";name=value") after the size
                        size = int(buf[pos:i].split(b";", 1)[0], 16)
                    except ValueError:
                        size = -1
                if size < 0:
                    if out:  # what came before the bad line is kept
                        self._payload(b"".join(out), t)
                        if self.rec is None:
                            return
                    self._finish(ErrorKind.RESET, f"bad chunk size line {buf[pos:i][:40]!r}", close=True)
                    return
                pos = i + 2
                if size == 0:
                    if out:
                        self._payload(b"".join(out), t)
                        out = []
                        if self.rec is None:  # the payload ended the exchange (an oversized event)
                            return
                    self.cstate = 3
                    self.keep_alive = self.keep_alive and buf[pos:] == b"\r\n"  # no trailers, nothing after
                    self.cbuf = b""
                    self._body_end()
                    return
                if pos + size + 2 <= n:  # the whole chunk and its CRLF are in this read: take it at once
                    out.append(buf[pos : pos + size])
                    pos += size + 2
                    continue
                self.cstate, self.remaining = 1, size
            else:  # the body has ended (out is empty: the end returned above)
                return
        self.cbuf = buf[pos:] if pos < n else b""
        if out:  # after cbuf is set: a payload that ends the exchange resets it
            self._payload(out[0] if len(out) == 1 else b"".join(out), t)

    def _payload(self, data: bytes, t: int) -> None:
        if not data or self.draining:
            return
        rec = self.rec
        assert rec is not None
        if not self.ok:
            room = MAX_ERROR_BODY - len(self.err_body)
            if room > 0:
                self.err_body += data[:room]
            return
        toks = self.tokens
        done = False
        try:
            payloads = self.parser.feed_data(data)
        except EventTooLarge as exc:
            self._finish(ErrorKind.OVERSIZED, str(exc), close=True)
            return
        for payload in payloads:
            done = handle_event(rec, payload, t, toks) or done
        if done:
            self._answer_done()

    def _answer_done(self) -> None:
        """``[DONE]`` arrived: finish the record now and let the framing end in the background."""
        self.done = True
        self._complete()
        if self.rec is not None:
            self.draining = True

    def _body_end(self) -> None:
        if self.draining:
            self._release(reuse=self.keep_alive)
            return
        self._complete()
        self._release(reuse=self.keep_alive)

    def _complete(self) -> None:
        """The answer is over: judge it and wake the sender (the connection's fate is decided apart)."""
        rec = self.rec
        if rec is None or self.draining:
            return
        if self.ok:
            tail, partial = self.parser.close()
            for ev in tail:
                self.done = handle_event(rec, ev.data.encode(), now_ns(), self.tokens) or self.done
            judge_end(rec, partial, self.done)
        elif rec.status is not None:
            status_error(rec, bytes(self.err_body), rec.status, self.retry_after)
        rec.end_ns = now_ns()
        self._cancel_timer()
        if self.fut is not None and not self.fut.done():
            self.fut.set_result(None)

    def _finish(self, kind: str, message: str, close: bool = False) -> None:
        """End the exchange with an error; the connection is not reused."""
        if self.rec is not None and not self.draining:
            self.rec.fail(kind, message)
            self.rec.end_ns = now_ns()
            self._cancel_timer()
            if self.fut is not None and not self.fut.done():
                self.fut.set_result(None)
        self._release(reuse=False)

    def _release(self, reuse: bool) -> None:
        self._cancel_timer()
        self._reset_exchange(None, None)
        if reuse and not self.closed:
            self.client._idle[self.key].append(self)
        else:
            self.abort()

    # -- the exchange ------------------------------------------------------
    def start(self, rec: RequestRecord, request: bytes, fut: asyncio.Future[None], read_timeout_s: float) -> None:
        self._reset_exchange(rec, fut)
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(read_timeout_s, self._check_stall, read_timeout_s)
        assert self.transport is not None
        self.transport.write(request)

    def _check_stall(self, timeout_s: float) -> None:
        self.timer = None
        if self.rec is None or self.draining:
            return
        quiet_s = (now_ns() - self.last_ns) / 1e9
        if quiet_s >= timeout_s:
            self._finish(ErrorKind.READ_TIMEOUT, f"no data for {quiet_s:.1f} s (read timeout {timeout_s:g} s)")
        else:
            self.timer = asyncio.get_running_loop().call_later(timeout_s - quiet_s, self._check_stall, timeout_s)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class FastTransport:
    """A :class:`~perfkit.client.transport.Transport` on pooled keep-alive connections (see the module docstring).

    Parameters
    ----------
    connect_timeout_s : float
        Longest wait for a TCP (and TLS) connection, s.
    read_timeout_s : float
        Longest silence inside a response, s (a stall).
    read_path : ReadPath, optional
        How reads are made and timed; default :meth:`ReadPath.from_env` (kernel receive stamps, a
        realtime reading thread and the compiled path, where each is to be had).
    read_delays : ReadDelays, optional
        Where stamped reads count how long their bytes waited (pass the one the host sampler reads);
        default a new one.
    tls : TlsOptions, optional
        Verification of HTTPS servers (default: the system's trust store).

    Attributes
    ----------
    read_delays : ReadDelays
    read_path : ReadPath
        What the read path asked for came to on this machine.
    """

    def __init__(
        self,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        *,
        read_path: ReadPath | None = None,
        read_delays: ReadDelays | None = None,
        tls: TlsOptions | None = None,
    ) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.asked = read_path or ReadPath.from_env()
        self.read_path = self.asked.resolved()
        self.read_delays = read_delays if read_delays is not None else ReadDelays()
        self.tls = tls or TlsOptions()
        rx = compiled_module() if self.read_path.compiled else None
        if rx is not None:
            configure_compiled(rx)
        self._take = rx.take_events if rx is not None else None
        self._idle: defaultdict[tuple[str, str, int], list[_Conn]] = defaultdict(list)
        self._all: set[_Conn] = set()
        self._targets: dict[str, tuple[tuple[str, str, int], bytes]] = {}

    def __reduce__(self) -> tuple[Any, ...]:  # a copy for another process: the settings, no connections
        return (_rebuild, (self.connect_timeout_s, self.read_timeout_s, self.asked, self.tls))

    def _target(self, url: str) -> tuple[tuple[str, str, int], bytes]:
        got = self._targets.get(url)
        if got is None:
            u = urlsplit(url)
            port = u.port or (443 if u.scheme == "https" else 80)
            host = u.hostname or ""
            host_hdr = u.netloc.rsplit("@", 1)[-1]
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
            got = self._targets[url] = (
                (u.scheme, host, port),
                f"POST {path} HTTP/1.1\r\nHost: {host_hdr}\r\n".encode(),
            )
        return got

    def _forget(self, conn: _Conn) -> None:
        self._all.discard(conn)
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)

    async def _connect(self, key: tuple[str, str, int]) -> _Conn:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        ctx = self.tls.context if scheme == "https" else None
        conn = _Conn(self, key)
        rp = self.read_path
        if ctx is None and rp.stamps:
            await asyncio.wait_for(
                open_stamped(
                    loop,
                    conn,
                    host,
                    port,
                    self.read_delays,
                    threaded=rp.thread != "off",
                    realtime=rp.thread == "realtime",
                    compiled=rp.compiled,
                ),
                self.connect_timeout_s,
            )
        else:
            await asyncio.wait_for(loop.create_connection(lambda: conn, host, port, ssl=ctx), self.connect_timeout_s)
        self._all.add(conn)
        return conn

    async def send(self, request: Request, record: RequestRecord) -> RequestRecord:
        """Send one streamed request and fill ``record`` with what happened (never raises but for cancellation)."""
        rec = record
        key, start_line = self._target(request.url)
        head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items()) + "User-Agent: perfkit\r\n"
        body = request.body
        raw = start_line + f"{head}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body
        loop = asyncio.get_running_loop()
        rec.sent_ns = now_ns()
        conn: _Conn | None = None
        try:
            for attempt in range(2):
                idle = self._idle[key]
                conn = None
                while idle and conn is None:
                    c = idle.pop()
                    if not c.closed:
                        conn = c
                if conn is None:
                    try:
                        conn = await self._connect(key)
                    except TimeoutError:
                        rec.fail(
                            ErrorKind.CONNECT_TIMEOUT,
                            f"no connection to {key[1]}:{key[2]} within {self.connect_timeout_s:g} s",
                        )
                        return rec
                    except (OSError, ssl.SSLError) as exc:
                        rec.fail(ErrorKind.CONNECT, f"{type(exc).__name__}: {exc}")
                        return rec
                else:
                    conn.reused = True
                fut: asyncio.Future[None] = loop.create_future()
                conn.start(rec, raw, fut, self.read_timeout_s)
                try:
                    await fut
                    return rec
                except _Stale:
                    if attempt:
                        rec.fail(ErrorKind.RESET, "the server closed the connection before answering")
                        return rec
        except asyncio.CancelledError:
            rec.fail(ErrorKind.CANCELLED, "cancelled by perfkit")
            if conn is not None and conn.rec is rec:
                conn.rec = None
                conn.abort()
            raise
        except Exception as exc:
            rec.fail(ErrorKind.CLIENT, f"{type(exc).__name__}: {exc}")
        finally:
            rec.end_ns = now_ns() if rec.end_ns is None else rec.end_ns
        return rec

    async def close(self) -> None:
        """Close every connection."""
        for conn in list(self._all):
            conn.abort()
        self._all.clear()
        self._idle.clear()
        await asyncio.sleep(0)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "fast",
            "connect_timeout_s": self.connect_timeout_s,
            "read_timeout_s": self.read_timeout_s,
            **self.asked.describe(),
            "tls": self.tls.describe(),
        }


def _rebuild(connect_timeout_s: float, read_timeout_s: float, read_path: ReadPath, tls: TlsOptions) -> FastTransport:
    return FastTransport(connect_timeout_s, read_timeout_s, read_path=read_path, tls=tls)
