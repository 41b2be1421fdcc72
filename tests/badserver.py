"""A raw TCP server that answers every request with one canned, misbehaving HTTP response.

It runs its own event loop in a thread, so the client under test and the
server never share a loop.  Each mode is a way real endpoints fail.
"""

from __future__ import annotations

import asyncio
import threading

_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
_CHUNK = b'data: {"choices":[{"index":0,"text":" tok","finish_reason":null}]}\n\n'

MODES: dict[str, bytes] = {
    "truncated": _HEAD + _CHUNK * 3,  # no [DONE], connection closed
    "malformed": _HEAD + _CHUNK + b"data: {not json\n\n" + _CHUNK + b"data: [DONE]\n\n",
    "error_object": _HEAD
    + _CHUNK
    + b'data: {"error": {"message": "CUDA out of memory", "code": 500}}\n\n'
    + b"data: [DONE]\n\n",
    "wrong_content_type": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html>hi</html>",
    "empty": _HEAD + b'data: {"choices":[{"index":0,"text":"","finish_reason":"stop"}]}\n\ndata: [DONE]\n\n',
    "keepalive_comments": _HEAD + b": ping\n\n" + _CHUNK + b": ping\n\n" + _CHUNK + b"data: [DONE]\n\n",
    "http_429": b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 40\r\nConnection: close\r\n\r\n" + b'{"error": {"message": "slow down now!!"}}'[:40],
    "http_404": b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 44\r\n"
    b"Connection: close\r\n\r\n" + b'{"error": {"message": "no route /v1/things"}}'[:44],
    "reset": b"",  # handled specially: close the socket mid-response
    "echo_key": b"",  # handled specially: HTTP 401 quoting the Authorization header's key
    "echo_key_stream": b"",  # handled specially: a stream whose text and error object quote the key
}


class BadServer:
    """Serve one failure mode on 127.0.0.1 (a free port) until stopped."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = 0
        self.seen: list[str] = []  # echo modes: the keys the server was sent
        self.heads: list[str] = []  # echo modes: the request lines
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = [int(ln.split(b":")[1]) for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")]
            if length:
                await reader.readexactly(length[0])
            if self.mode.startswith("echo_key"):  # a server that quotes back the key it was given
                auth = [
                    ln.split(b":", 1)[1].strip()
                    for ln in head.split(b"\r\n")
                    if ln.lower().startswith(b"authorization")
                ]
                key = auth[0].removeprefix(b"Bearer ") if auth else b"(none)"
                self.seen.append(key.decode())
                self.heads.append(head.split(b"\r\n", 1)[0].decode())
                if self.mode == "echo_key":
                    body = b'{"error": {"message": "Incorrect API key provided: ' + key + b'"}}'
                    writer.write(
                        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                    )
                else:
                    writer.write(
                        _HEAD
                        + b'data: {"choices":[{"index":0,"text":"key '
                        + key
                        + b'"}]}\n\n'
                        + b'data: {"error": {"message": "bad key '
                        + key
                        + b'"}}\n\ndata: [DONE]\n\n'
                    )
                await writer.drain()
                return
            if self.mode == "reset":  # chunked, as uvicorn and aiohttp servers stream SSE
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(_CHUNK) + _CHUNK + b"\r\n"
                )
                await writer.drain()
                writer.transport.abort()  # RST mid-stream
                return
            writer.write(MODES[self.mode])
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> BadServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
