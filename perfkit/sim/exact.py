"""A streaming server that keeps an exact chunk schedule and logs when each chunk left: ground truth for clients.

Every streamed completion gets its first chunk ``ttft_ms`` after the server has
read the whole request, then one chunk every ``itl_ms``, one token per chunk,
``max_tokens`` chunks (default ``tokens``), then ``data: [DONE]``.  The server
notes, on the host's monotonic clock (:func:`perfkit.clock.now_ns`, shared by
every process), when it finished reading each request and when it handed each
chunk to the kernel.  A client on the same host that reports TTFT and ITL can
then be checked against what really happened: the difference is the client's
own error (sending late, reading late, timestamping late).

It is deliberately small: HTTP/1.1 with keep-alive and chunked transfer
encoding on a bare :class:`asyncio.Protocol`, no framework between the
schedule and the socket.  Endpoints::

    POST /v1/completions, /v1/chat/completions   the stream
    GET  /v1/models                              one model, ``exact``
    POST /truth/dump?path=FILE                   write the log (``.npz``) and clear it

Run it in its own process (``python -m perfkit.sim.exact --port P``, or
:class:`ExactServerProcess`), pinned to its own core where there is one, so
that the client being measured does not share its CPU.

It shares no code with the client it judges: it reads requests through the
neutral socket layer (:mod:`perfkit.net`, tested on its own), on its own event
loop, and writes chunks with its own HTTP framing.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import signal
import socket
import subprocess
import sys
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from perfkit.clock import now_ns
from perfkit.net import StampedTransport, compiled_module

__all__ = ["ExactLog", "ExactServerProcess", "load_log", "serve"]

# the compiled burst of sends (perfkit.net's send_each), where it was built
_SEND_EACH = getattr(compiled_module(), "send_each", None)
_SPIN_NS = 1_500_000  # sleep to this far short of a chunk's time, then yield until it is due
_CACHE_TOKENS = 4096  # answers up to this long have their chunks made once and kept


@dataclass
class ExactLog:
    """What the server sent: one row per request, one entry per chunk.

    Attributes
    ----------
    tags : numpy.ndarray of str
        The request's ``X-Request-Id`` (``""`` when it had none).
    recv_ns : numpy.ndarray of int64
        When the last bytes of the request reached the server's host, ns (monotonic): the kernel's
        receive stamp where it gives one (:mod:`perfkit.net`), else when the server read them.
    offsets : numpy.ndarray of int64
        ``write_ns[offsets[i]:offsets[i + 1]]`` are request ``i``'s chunks.
    write_ns : numpy.ndarray of int64
        When each content chunk was handed to the kernel, ns (monotonic).
    due_ns : numpy.ndarray of int64
        When each chunk was scheduled to leave, ns.
    read_ns : numpy.ndarray of int64
        When the server's event loop read the request's last bytes, ns (``read_ns - recv_ns`` is
        how late the server itself was to read it).
    """

    tags: np.ndarray
    recv_ns: np.ndarray
    offsets: np.ndarray
    write_ns: np.ndarray
    due_ns: np.ndarray
    read_ns: np.ndarray

    def chunks(self, i: int) -> np.ndarray:
        """Write times (ns) of request ``i``'s content chunks."""
        return self.write_ns[self.offsets[i] : self.offsets[i + 1]]


def load_log(path: str | Path) -> ExactLog:
    """Read a log written by ``POST /truth/dump``."""
    with np.load(path, allow_pickle=False) as z:
        read = z["read_ns"] if "read_ns" in z.files else z["recv_ns"]
        return ExactLog(z["tags"], z["recv_ns"], z["offsets"], z["write_ns"], z["due_ns"], read)


class _Stream:
    __slots__ = (
        "conn",
        "tag",
        "recv_ns",
        "read_ns",
        "n",
        "sent",
        "prompt_tokens",
        "chat",
        "writes",
        "dues",
        "payloads",
    )

    def __init__(
        self, conn: _Conn, tag: str, recv_ns: int, read_ns: int, n: int, prompt_tokens: int, chat: bool
    ) -> None:
        self.conn, self.tag, self.recv_ns, self.read_ns, self.n, self.sent = conn, tag, recv_ns, read_ns, n, 0
        self.prompt_tokens, self.chat = prompt_tokens, chat
        self.writes: array[int] = array("q")
        self.dues: array[int] = array("q")
        self.payloads: list[bytes] | None = None


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
_DONE = _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"


class _Server:
    def __init__(self, ttft_ms: float, itl_ms: float, tokens: int) -> None:
        self.ttft_ns, self.itl_ns, self.tokens = int(ttft_ms * 1e6), int(itl_ms * 1e6), tokens
        self.heap: list[tuple[int, int, _Stream]] = []
        self.seq = 0
        self.done: list[_Stream] = []
        self.wake = asyncio.Event()
        self.payloads: dict[tuple[bool, int, int], list[bytes]] = {}

    def start(self, s: _Stream) -> None:
        s.conn.transport.write(_HEAD)  # type: ignore[union-attr]
        s.payloads = self._payloads(s)
        self.seq += 1
        heapq.heappush(self.heap, (s.recv_ns + self.ttft_ns, self.seq, s))
        self.wake.set()

    def _payloads(self, s: _Stream) -> list[bytes] | None:
        """Every chunk of an answer like ``s``'s, made once: they depend only on its kind, prompt and length,
        and formatting them per chunk was a fifth of the server's CPU at full speed.  None for an answer
        too long to keep (its chunks are made as they go)."""
        if s.n > _CACHE_TOKENS:
            return None
        key = (s.chat, s.prompt_tokens, s.n)
        out = self.payloads.get(key)
        if out is None:
            if len(self.payloads) >= 256:
                self.payloads.clear()
            out = self.payloads[key] = [self._payload(s.chat, s.prompt_tokens, k, s.n) for k in range(1, s.n + 1)]
        return out

    @staticmethod
    def _payload(chat: bool, prompt_tokens: int, k: int, n: int) -> bytes:
        usage = b'"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}' % (
            prompt_tokens,
            k,
            prompt_tokens + k,
        )
        fin = b'"length"' if k == n else b"null"
        if chat:
            body = (
                b'{"id":"x","object":"chat.completion.chunk","model":"exact","choices":[{"index":0,'
                b'"delta":{"content":" t%d"},"finish_reason":%s}],%s}' % (k, fin, usage)
            )
        else:
            body = (
                b'{"id":"x","object":"text_completion","model":"exact","choices":[{"index":0,'
                b'"text":" t%d","finish_reason":%s}],%s}' % (k, fin, usage)
            )
        return _chunk(b"data: " + body + b"\n\n")

    async def pump(self) -> None:
        """Write every chunk at its time; the only timer in the server."""
        heap = self.heap
        while True:
            if not heap:
                self.wake.clear()
                await self.wake.wait()
                continue
            due = heap[0][0]
            early = due - _SPIN_NS
            if now_ns() < early:
                await asyncio.sleep((early - now_ns()) / 1e9)
                continue  # an earlier chunk may have been scheduled meanwhile
            if now_ns() < due:
                await asyncio.sleep(0)
                continue
            now = now_ns()
            while heap and heap[0][0] <= now:
                due, _, s = heapq.heappop(heap)
                tr = s.conn.transport
                if tr is None or tr.is_closing():
                    self.done.append(s)
                    continue
                if self.itl_ns == 0:  # every chunk due now: the heap would give this stream the next turn anyway
                    self._rest(s, tr, due)
                else:
                    payload = (
                        s.payloads[s.sent]
                        if s.payloads is not None
                        else self._payload(s.chat, s.prompt_tokens, s.sent + 1, s.n)
                    )
                    t = now_ns()
                    tr.write(payload)
                    s.writes.append(t)
                    s.dues.append(due)
                    s.sent += 1
                if s.sent < s.n:
                    self.seq += 1
                    heapq.heappush(heap, (due + self.itl_ns, self.seq, s))
                else:
                    tr.write(_DONE)
                    self.done.append(s)
                    s.conn.busy = False
                    s.conn.next_request()
                now = now_ns()

    def _rest(self, s: _Stream, tr: Any, due: int) -> None:
        """Write the rest of ``s``'s chunks back to back, one write each, as the heap would with no gap
        between chunks (its entry is due again at once, before any later stream's), without a push and
        a pop a chunk: at full speed the server, not the client, sets the pace of
        ``bench/client_capacity.py``, so its own cost a chunk is kept to the write."""
        writes, payloads, k = s.writes, s.payloads, s.sent
        sock = tr.get_extra_info("socket")
        if _SEND_EACH is not None and payloads is not None and sock is not None and tr.get_write_buffer_size() == 0:
            # compiled: every send of the burst, and its time, with no Python between them; from the first
            # send the kernel does not take whole, the transport writes (in order, buffering or closing)
            stamps = array("q", bytes(8 * (s.n - k)))
            j, sent = _SEND_EACH(sock.fileno(), payloads, k, s.n, stamps)
            writes.extend(stamps[: j - k + (j < s.n)])
            if j < s.n:
                tr.write(payloads[j][sent:])
                j += 1
            k = j
        while k < s.n and not tr.is_closing():
            writes.append(now_ns())
            tr.write(payloads[k] if payloads is not None else self._payload(s.chat, s.prompt_tokens, k + 1, s.n))
            k += 1
        s.dues.extend(array("q", [due]) * (k - s.sent))
        s.sent = k

    def dump(self, path: str) -> int:
        done, self.done = self.done, []
        offsets = np.zeros(len(done) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(s.writes) for s in done])

        def cat(attr: str) -> np.ndarray:
            if not done:
                return np.zeros(0, dtype=np.int64)
            return np.concatenate([np.frombuffer(getattr(s, attr), dtype=np.int64) for s in done])

        np.savez(
            path,
            tags=np.array([s.tag for s in done], dtype=str),
            recv_ns=np.array([s.recv_ns for s in done], dtype=np.int64),
            offsets=offsets,
            write_ns=cat("writes"),
            due_ns=cat("dues"),
            read_ns=np.array([s.read_ns for s in done], dtype=np.int64),
        )
        return len(done)


class _Conn(asyncio.Protocol):
    """One HTTP/1.1 connection: requests in order, one at a time (no pipelining)."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.busy = False
        self.stamp = (0, 0)  # (arrived, read) of the latest bytes, ns

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.data_stamped(data, now_ns())

    def data_stamped(self, data: bytes, t: int) -> None:
        self.stamp = (t, now_ns())
        self.buf += data
        if not self.busy:
            self.next_request()

    def next_request(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.transport is None:
            return
        head = self.buf[:end].decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        length = int(headers.get("content-length", "0"))
        if len(self.buf) < end + 4 + length:
            return
        body, self.buf = self.buf[end + 4 : end + 4 + length], self.buf[end + 4 + length :]
        t, read = self.stamp  # a request pipelined behind a stream gets the time of the latest bytes
        method, target, _ = (head[0].split(" ") + ["", "", ""])[:3]
        path = urlsplit(target).path
        if method == "POST" and path.endswith("/completions"):
            try:
                req = json.loads(body or b"{}")
            except ValueError:
                return self._reply(400, b'{"error":{"message":"body is not JSON"}}')
            n = int(req.get("max_tokens") or self.server.tokens)
            prompt = req.get("prompt") or " ".join(m.get("content", "") for m in req.get("messages") or ())
            self.busy = True
            self.server.start(
                _Stream(
                    self,
                    headers.get("x-request-id", ""),
                    t,
                    read,
                    max(1, n),
                    max(1, len(str(prompt)) // 4),
                    path.endswith("/chat/completions"),
                )
            )
        elif method == "GET" and path.endswith("/models"):
            self._reply(200, b'{"object":"list","data":[{"id":"exact","object":"model","owned_by":"perfkit"}]}')
        elif method == "POST" and path == "/truth/dump":
            dest = parse_qs(urlsplit(target).query).get("path", [""])[0]
            n = self.server.dump(dest) if dest else 0
            self._reply(200 if dest else 400, json.dumps({"requests": n, "path": dest}).encode())
        else:
            self._reply(404, b'{"error":{"message":"not found"}}')

    def _reply(self, status: int, body: bytes) -> None:
        assert self.transport is not None
        reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}[status]
        self.transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (status, reason, len(body), body)
        )
        self.next_request()


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ttft_ms: float = 50.0,
    itl_ms: float = 10.0,
    tokens: int = 128,
    ready: Any = None,
) -> None:
    """Serve until cancelled.  ``ready`` (a callable) receives the bound port."""
    server = _Server(ttft_ms, itl_ms, tokens)
    loop = asyncio.get_running_loop()
    lsock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((host, port))
    lsock.listen(4096)
    lsock.setblocking(False)

    def accept() -> None:  # connections read with the kernel's receive stamps: a request's arrival is
        while True:  # when it came, not when this loop, busy writing chunks, got to it
            try:
                sock, _ = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of descriptors, say: listen again in a moment rather than spin
                loop.remove_reader(lsock.fileno())
                loop.call_later(0.05, loop.add_reader, lsock.fileno(), accept)
                return
            StampedTransport(loop, sock, _Conn(server))  # read on this loop, with the kernel's receive stamps

    loop.add_reader(lsock.fileno(), accept)
    if ready is not None:
        ready(lsock.getsockname()[1])
    pump = loop.create_task(server.pump())
    try:
        await asyncio.Event().wait()
    finally:
        pump.cancel()
        loop.remove_reader(lsock.fileno())
        lsock.close()


class ExactServerProcess:
    """:func:`serve` in a child process (a context manager); ``url`` is its base URL.

    Parameters
    ----------
    ttft_ms, itl_ms : float
        Time to the first chunk after the request is read, and between chunks, ms.
    tokens : int
        Chunks per answer when the request gives no ``max_tokens``.
    cpu : int, optional
        Pin the server to this CPU (Linux), away from the client being measured.
    """

    def __init__(self, ttft_ms: float = 50.0, itl_ms: float = 10.0, tokens: int = 128, cpu: int | None = None) -> None:
        self.args = ["--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms), "--tokens", str(tokens)]
        if cpu is not None:
            self.args += ["--cpu", str(cpu)]
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> ExactServerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "perfkit.sim.exact", *self.args], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("port "):
            self.proc.kill()
            raise RuntimeError(f"the exact server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def dump(self, path: str | Path) -> ExactLog:
        """Ask the server to write what it sent so far (and forget it); read it back."""
        import urllib.request

        req = urllib.request.Request(f"{self.url}/truth/dump?path={Path(path).resolve()}", method="POST")
        with urllib.request.urlopen(req, timeout=60) as resp:
            resp.read()
        return load_log(path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m perfkit.sim.exact", description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ttft-ms", type=float, default=50.0)
    ap.add_argument("--itl-ms", type=float, default=10.0)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--cpu", type=int, default=None, help="pin to this CPU (Linux)")
    a = ap.parse_args(argv)
    if a.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {a.cpu})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(
            serve(
                a.host,
                a.port,
                ttft_ms=a.ttft_ms,
                itl_ms=a.itl_ms,
                tokens=a.tokens,
                ready=lambda p: print(f"port {p}", flush=True),
            )
        )
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
