"""A fault-injecting HTTP proxy: :class:`ChaosProxy`, behind ``perfkit chaos`` and ``perfkit sim --fault``.

It stands between a client and any OpenAI-compatible server and speaks plain
HTTP/1.1 on both sides: keep-alive towards the client, one upstream
connection per request.  Answers pass through unchanged (re-framed as
chunked) except where a fault strikes.  Only completion requests (``POST``
to a path ending in ``/completions``) draw faults; ``/v1/models`` and
``/metrics`` pass untouched, except through a window fault, which closes
the listener itself.

Faults are made at the byte level, the way real servers and networks fail:
an RST (``transport.abort``), a stream whose chunked body ends part-way
through an event, an event that is not JSON, silence on an open connection.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import numpy as np

from perfkit.chaos.faults import REQUEST_FAULTS, WINDOW_FAULTS, Fault, FaultOptions
from perfkit.clock import now_ns
from perfkit.errors import ConfigError

__all__ = ["ChaosProxy"]

_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "content-length",
    "te",
    "trailer",
    "upgrade",
}
_CANNED = {
    "http_429": (429, "Too Many Requests", "rate limit reached (injected by perfkit chaos)"),
    "http_500": (500, "Internal Server Error", "internal error (injected by perfkit chaos)"),
    "http_503": (503, "Service Unavailable", "service unavailable (injected by perfkit chaos)"),
}


class _Closed(Exception):
    """The client's side of the exchange is gone (or was reset on purpose): drop the connection."""


def _frame(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class ChaosProxy:
    """Serve ``upstream`` on ``host:port`` with ``faults`` injected.

    Parameters
    ----------
    upstream : str
        Base URL of the real server (``http://host:port``, an optional path prefix is kept).
    faults : sequence of Fault
        What to inject (see :mod:`perfkit.chaos.faults`).
    options : FaultOptions, optional
    host : str
        Address to listen on.
    port : int
        Port to listen on; 0 picks a free one (see :attr:`url` after :meth:`start`).
    log_path : str or Path, optional
        Append one JSON line at time 0 (``kind`` ``start``) and one per injected fault: ``t_s`` since
        start, ``mono_ns`` (the clock of :func:`perfkit.clock.now_ns`, shared by the processes of one
        host), ``kind``, the request line.

    from_first_request : bool
        Count the faults' times from the first completion request instead of from :meth:`start`, so
        that a schedule lines up with a run however long the client takes to start.

    Attributes
    ----------
    injected : Counter
        Faults injected so far, by kind (window faults count their windows).
    requests : int
        Completion requests seen.
    """

    def __init__(
        self,
        upstream: str,
        faults: Sequence[Fault] = (),
        options: FaultOptions | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: str | Path | None = None,
        from_first_request: bool = False,
    ) -> None:
        u = urlsplit(upstream if "://" in upstream else f"http://{upstream}")
        if u.scheme != "http" or not u.hostname:
            raise ConfigError(
                f"--upstream {upstream!r} must be an http:// URL with a host, e.g. "
                "http://127.0.0.1:8000 (perfkit chaos does not speak TLS)"
            )
        self.up_host, self.up_port = u.hostname, u.port or 80
        self.up_prefix = u.path.rstrip("/")
        if self.up_prefix.endswith("/v1"):
            self.up_prefix = self.up_prefix[:-3]
        self.faults = list(faults)
        self.options = options or FaultOptions()
        self.host, self.port = host, port
        self.log_path = Path(log_path) if log_path else None
        self.from_first_request = from_first_request
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self._rng = np.random.default_rng(self.options.seed)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._busy: set[asyncio.StreamWriter] = set()
        self._timers: list[asyncio.TimerHandle] = []
        self._t0 = 0.0
        self.t0_ns = 0
        self._log_file: IO[str] | None = None
        self._closed_windows = 0

    # -- life cycle -----------------------------------------------------------
    @property
    def url(self) -> str:
        """The proxy's base URL (after :meth:`start`)."""
        return f"http://{self.host}:{self.port}"

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port, backlog=4096, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def start(self) -> ChaosProxy:
        """Bind, and arm the faults: their times count from now, or from the first completion request."""
        await self._listen()
        if not self.from_first_request:
            self._arm()
        return self

    def _arm(self) -> None:
        self._t0 = time.monotonic()
        self.t0_ns = now_ns()
        self._log({"t_s": 0.0, "mono_ns": self.t0_ns, "kind": "start", "what": ", ".join(map(str, self.faults))})
        loop = asyncio.get_running_loop()
        for f in self.faults:
            if f.kind in WINDOW_FAULTS:
                assert f.duration_s is not None
                self._timers.append(loop.call_later(f.start_s, self._window_open, f))
                self._timers.append(loop.call_later(f.start_s + f.duration_s, self._window_close, f))

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        for h in self._timers:
            h.cancel()
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        await asyncio.sleep(0)

    async def __aenter__(self) -> ChaosProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _window_open(self, f: Fault) -> None:
        self._note(f.kind, f"window of {f.duration_s:g} s")
        self._closed_windows += 1
        if self._server is not None:
            self._server.close()  # new connections are refused from now on
            self._server = None
        for w in list(self._writers):
            if f.kind == "restart":
                w.transport.abort()  # a dying server: every connection reset, streams cut
            elif w not in self._busy:
                w.close()  # a server going away: idle keep-alive connections closed, answers in flight finish

    def _window_close(self, f: Fault) -> None:
        self._closed_windows -= 1
        if self._closed_windows == 0:
            asyncio.get_running_loop().create_task(self._listen())

    def _note(self, kind: str, what: str) -> None:
        self.injected[kind] += 1
        self._log({"t_s": round(time.monotonic() - self._t0, 6), "mono_ns": now_ns(), "kind": kind, "what": what})

    def _log(self, line: dict[str, Any]) -> None:
        if self.log_path is not None:  # opened once, line-buffered: one small write per fault on the loop
            if self._log_file is None:
                self._log_file = self.log_path.open("a", buffering=1)
            self._log_file.write(json.dumps(line) + "\n")

    def _draw(self) -> str | None:
        """The fault of the next completion request (one draw per request fault, in a fixed order)."""
        t = time.monotonic() - self._t0
        hit = None
        for f in self.faults:
            if f.kind in REQUEST_FAULTS:
                u = self._rng.random()
                if hit is None and f.active(t) and u < f.probability:
                    hit = f.kind
        return hit

    # -- one client connection ----------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head[:-4].decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                if len(parts) != 3:
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                headers = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])]
                lower = {k.lower(): v for k, v in headers}
                if "chunked" in lower.get("transfer-encoding", "").lower():
                    self._canned(writer, 411, "Length Required", "perfkit chaos needs a Content-Length body")
                    return
                body = await reader.readexactly(int(lower.get("content-length") or 0))
                self._busy.add(writer)
                try:
                    keep = await self._exchange(parts[0], parts[1], headers, body, reader, writer)
                finally:
                    self._busy.discard(writer)
                if self._server is None:  # a window closed the listener: no more requests on this connection
                    return
                if not keep or "close" in lower.get("connection", "").lower():
                    return
        except (_Closed, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            return  # the client went away, a fault ended the connection, or the upstream sent garbage
        finally:
            self._writers.discard(writer)
            writer.close()

    def _canned(self, writer: asyncio.StreamWriter, status: int, reason: str, message: str, extra: str = "") -> None:
        body = json.dumps({"error": {"message": message, "type": reason.replace(" ", ""), "code": status}}).encode()
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    async def _exchange(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request; False when the client connection must end."""
        fault = None
        if method == "POST" and target.split("?", 1)[0].endswith("/completions"):
            self.requests += 1
            if self.t0_ns == 0:
                self._arm()
            fault = self._draw()
            if fault is not None:
                self._note(fault, f"{method} {target}")
        if fault in _CANNED:
            status, reason, message = _CANNED[fault]
            extra = f"Retry-After: {self.options.retry_after_s}\r\n" if status == 429 else ""
            self._canned(writer, status, reason, message, extra)
            await writer.drain()
            return True
        if fault == "wrong_content_type":
            page = b"<html><body><h1>Welcome to nginx!</h1></body></html>"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(page), page)
            )
            await writer.drain()
            return True
        try:
            up_r, up_w = await asyncio.open_connection(self.up_host, self.up_port)
        except OSError as exc:
            self._canned(
                writer, 502, "Bad Gateway", f"perfkit chaos: upstream {self.up_host}:{self.up_port} unreachable: {exc}"
            )
            await writer.drain()
            return True
        try:
            out = [f"{method} {self.up_prefix}{target} HTTP/1.1"]
            out += [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP and k.lower() != "host"]
            out += [f"Host: {self.up_host}:{self.up_port}", "Connection: close", f"Content-Length: {len(body)}"]
            up_w.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
            await up_w.drain()
            try:
                head = await up_r.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
                self._canned(writer, 502, "Bad Gateway", f"perfkit chaos: no answer from upstream: {exc!r}")
                await writer.drain()
                return True
            lines = head[:-4].decode("latin-1").split("\r\n")
            up_headers = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])]
            lower = {k.lower(): v for k, v in up_headers}
            keep = [f"{k}: {v}" for k, v in up_headers if k.lower() not in _HOP]
            writer.write(("\r\n".join([lines[0], *keep, "Transfer-Encoding: chunked"]) + "\r\n\r\n").encode("latin-1"))
            pieces = _body(up_r, lower)
            stream = lines[0].split(" ")[1:2] == ["200"] and "text/event-stream" in lower.get("content-type", "")
            if fault is None or not stream:
                async for piece in pieces:
                    writer.write(_frame(piece))
                    await writer.drain()
            elif not await self._faulty_stream(fault, pieces, reader, writer):
                return False
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        finally:
            up_w.transport.abort()

    async def _faulty_stream(
        self, fault: str, pieces: AsyncIterator[bytes], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Relay an event stream event by event with ``fault`` applied; False when the connection must end."""
        opt = self.options
        n = 0
        buf = b""

        async def send(data: bytes) -> None:
            if fault == "drip":
                for i in range(0, len(data), opt.drip_bytes):
                    writer.write(_frame(data[i : i + opt.drip_bytes]))
                    await writer.drain()
                    await asyncio.sleep(opt.drip_ms / 1e3)
            else:
                writer.write(_frame(data))
                await writer.drain()

        async for piece in pieces:
            buf += piece
            while (i := buf.find(b"\n\n")) >= 0:
                ev, buf = buf[: i + 2], buf[i + 2 :]
                if n == opt.after_events:
                    if fault == "reset":
                        writer.transport.abort()
                        raise _Closed
                    if fault == "truncated":  # the body will end cleanly, part-way through an event
                        await send(ev[: len(ev) // 2])
                        return True
                    if fault == "malformed":
                        await send(b'data: {"choices": [{"index": 0, "text": "tok\n\n')
                    if fault == "stall":
                        try:  # silent until the client gives up (EOF) or stall_s passes
                            await asyncio.wait_for(reader.read(1), opt.stall_s)
                        except TimeoutError:
                            pass
                        return False
                    if fault == "giant_chunk":
                        await self._giant(writer)
                n += 1
                if fault == "no_done" and ev.startswith(b"data: [DONE]"):
                    continue
                await send(ev)
        if buf:
            await send(buf)
        return True

    async def _giant(self, writer: asyncio.StreamWriter) -> None:
        mib = b"x" * (1 << 20)
        writer.write(_frame(b'data: {"choices": [{"index": 0, "text": "'))
        whole, part = divmod(int(self.options.giant_mb * (1 << 20)), 1 << 20)
        for _ in range(whole):
            writer.write(_frame(mib))
            await writer.drain()
        if part:
            writer.write(_frame(mib[:part]))
        writer.write(_frame(b'", "finish_reason": null}]}\n\n'))
        await writer.drain()

    def describe(self) -> dict[str, Any]:
        """What the proxy did: requests seen and faults injected by kind."""
        return {
            "upstream": f"http://{self.up_host}:{self.up_port}{self.up_prefix}",
            "listen": self.url,
            "started_mono_ns": self.t0_ns,
            "faults": [str(f) for f in self.faults],
            "requests": self.requests,
            "injected": dict(self.injected),
        }


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> AsyncIterator[bytes]:
    """The payload of an upstream answer as it arrives, whatever its framing."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected
                return
            data = await reader.readexactly(size + 2)
            yield data[:-2]
    elif "content-length" in headers:
        left = int(headers["content-length"] or 0)
        while left > 0:
            data = await reader.read(min(left, 1 << 16))
            if not data:
                return
            left -= len(data)
            yield data
    else:
        while data := await reader.read(1 << 16):
            yield data
