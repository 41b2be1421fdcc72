"""TCP connections whose every read carries the time the kernel received its bytes.

A client that takes the time when its event loop gets round to a socket
reports its own lateness as the server's: with hundreds of streams, a chunk
can wait milliseconds in the socket while the loop parses others.
:class:`StampedTransport` is a plain-TCP :class:`asyncio.Transport` that reads
with ``recvmsg`` and gives its protocol each read with the kernel's receive
stamp on perfkit's clock (:func:`perfkit.clock.now_ns`): how long the bytes
waited (the wall clock now minus the stamp, :mod:`perfkit.net.stamps`) taken
off the monotonic reading.  The wait itself is counted in a
:class:`~perfkit.net.stamps.ReadDelays` given to the transport: it is how late
the reader was, per read, and the evidence for a client-bound verdict.

When the reader is later than the gap between two chunks of one stream, they
come in one read and both carry the later one's stamp: still no later than
the old way, and the read delays show it happened.

A transport reads on the event loop, or (``threaded=True``, compiled module
only) on the loop's reading thread (``_rx.Reader``), which waits on every
socket and reads each within :data:`~perfkit.net.readpath.READ_GAP_NS` of its
bytes' arrival, so that chunks of a stream are taken one by one, each with its
own stamp, however far behind the loop is; the loop takes the queued reads in
batches.  With ``realtime=True`` the thread runs SCHED_FIFO where permitted, so
the scheduler does not make it wait for the loop's time slice.  A protocol in
the plain state of a stream (:meth:`StampedTransport.fast`) can have the loop's
take put each read of whole one-event chunks straight into its record, in C,
without a call to it; the first read that is anything else ends that and
reaches it as usual.  Which of these a client uses is its
:class:`~perfkit.net.readpath.ReadPath`.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

from perfkit.net.compiled import compiled_module
from perfkit.net.readpath import READ_GAP_NS
from perfkit.net.stamps import ReadDelays, enable_rx_stamps, recv_stamped

__all__ = ["StampedTransport", "open_stamped"]


class _ThreadReads:
    """The reading thread (``_rx.Reader``) of one event loop, and the transports it reads for.

    The thread queues reads and makes a descriptor readable; the loop's callback (:meth:`_drain`)
    hands each read to its transport in order.  It is made for the loop's first threaded transport
    and stopped with its last, so a loop that is closed leaves no thread behind.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, delays: ReadDelays | None, realtime: bool) -> None:
        self._loop, self._delays, self._realtime = loop, delays, realtime
        rx = compiled_module()
        assert rx is not None
        self._reader = rx.Reader(gap_ns=READ_GAP_NS, realtime=realtime)
        self.realtime: bool = self._reader.realtime
        self._wake = self._reader.fileno()
        self._by_key: dict[int, StampedTransport] = {}
        # key -> (protocol, record, tokens): sockets whose whole one-event chunks the take puts straight
        # into the record (see StampedTransport.fast)
        self.fast: dict[int, tuple[Any, Any, list[int]]] = {}
        self.pid = os.getpid()
        loop.add_reader(self._wake, self._drain)

    def add(self, transport: StampedTransport, fd: int) -> int:
        key: int = self._reader.add(fd)
        self._by_key[key] = transport
        return key

    def remove(self, key: int) -> None:
        """Stop reading ``key``'s socket (on return the thread no longer touches it)."""
        self._reader.remove(key)
        self.fast.pop(key, None)
        if self._by_key.pop(key, None) is not None and not self._by_key:
            self._stop()

    def pause(self, key: int) -> None:
        self.fast.pop(key, None)
        self._reader.pause(key)

    def resume(self, key: int) -> None:
        self._reader.resume(key)

    def _drain(self) -> None:
        delays = self._delays
        by_key = self._by_key
        for key, t, data in self._reader.take(None if delays is None else delays.counts, self.fast):
            transport = by_key.get(key)
            if transport is None:  # removed since the thread read it: dropped, as a closed socket's
                continue
            try:
                transport._got(data, t)
            except Exception as exc:
                self._loop.call_exception_handler(
                    {
                        "message": "protocol failed on a read",
                        "exception": exc,
                        "transport": transport,
                        "protocol": transport._protocol,
                    }
                )
                transport._force_close(exc)

    def _stop(self) -> None:
        key = (self._loop, self._delays, self._realtime)
        if _HUBS.get(key) is self:
            del _HUBS[key]
        try:
            self._loop.remove_reader(self._wake)
        except RuntimeError:  # the loop is closed already
            pass
        self._reader.close()


_HUBS: dict[tuple[asyncio.AbstractEventLoop, ReadDelays | None, bool], _ThreadReads] = {}


def _hub(loop: asyncio.AbstractEventLoop, delays: ReadDelays | None, realtime: bool) -> _ThreadReads:
    hub = _HUBS.get((loop, delays, realtime))
    if hub is None or hub.pid != os.getpid():  # a forked child has the table but not the thread
        hub = _HUBS[(loop, delays, realtime)] = _ThreadReads(loop, delays, realtime)
    return hub


class StampedTransport(asyncio.Transport):
    """A connected, non-blocking TCP socket read with ``recvmsg``; see the module docstring.

    The protocol gets ``data_stamped(data, t_ns)`` when it has that method (``t_ns``: the kernel's
    receive time on :func:`perfkit.clock.now_ns`'s clock, or the read's time when the read carried
    no stamp), else ``data_received(data)``.  ``connection_made`` is called here, ``connection_lost``
    soon after the socket is closed, as asyncio's own transports do.

    Parameters
    ----------
    loop : asyncio.AbstractEventLoop
    sock : socket.socket
        Connected TCP socket (made non-blocking here).
    protocol : asyncio.Protocol
    delays : ReadDelays, optional
        Where to note each stamped read's wait.
    threaded : bool
        Read on the loop's reading thread (see the module docstring) rather than in a loop callback.
        Needs the compiled module (without it the loop reads).
    realtime : bool
        The reading thread runs SCHED_FIFO where the process may (with ``threaded``).
    compiled : bool
        Read with the compiled ``recv_stamped`` where it was built (else the Python one).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.Protocol,
        delays: ReadDelays | None = None,
        threaded: bool = False,
        realtime: bool = False,
        compiled: bool = True,
    ) -> None:
        super().__init__({"socket": sock})
        sock.setblocking(False)
        self._loop, self._sock, self._protocol, self._delays = loop, sock, protocol, delays
        self._fd = sock.fileno()
        self.stamped = enable_rx_stamps(sock)
        self._deliver = getattr(protocol, "data_stamped", None)
        rx = compiled_module() if compiled else None
        self._recv = rx.recv_stamped if rx is not None else self._recv_py
        self._buf = bytearray()
        self._closing = False
        self._lost = False
        self._reading = True
        self._hub: _ThreadReads | None = None
        self._key = 0
        self._held: list[tuple[Any, int]] = []  # reads the thread queued after pause_reading
        try:
            self._extra["peername"] = sock.getpeername()  # type: ignore[attr-defined]  # asyncio.Transport's
            self._extra["sockname"] = sock.getsockname()  # type: ignore[attr-defined]
        except OSError:
            pass
        if threaded and compiled_module() is not None:
            self._hub = _hub(loop, delays, realtime)
        protocol.connection_made(self)
        if not self._lost:
            if self._hub is not None:
                self._key = self._hub.add(self, self._fd)
            else:
                loop.add_reader(self._fd, self._read_ready)

    @property
    def threaded(self) -> bool:
        """Whether this transport is read by the loop's reading thread."""
        return self._hub is not None

    # -- reading -----------------------------------------------------------
    def _read_ready(self) -> None:
        delays = self._delays
        try:
            got = self._recv(self._fd, None if delays is None else delays.counts)
        except OSError as exc:
            self._force_close(exc)
            return
        if got is None:  # nothing after all (EAGAIN, EINTR)
            return
        data, t = got
        if not data:
            self._eof()
        elif self._deliver is not None:
            self._deliver(data, t)
        else:
            self._protocol.data_received(data)

    def fast(self, target: Any, rec: Any, tokens: list[int]) -> bool:
        """Let the reading thread's take put this socket's next reads, while each is whole one-event
        chunks, straight into ``rec`` as ``perfkit.client._rx.take_events`` does (and set
        ``target.last_ns``), without a call to the protocol; the first read it does not take whole ends
        this and reaches the protocol as usual, after ``fast_done()`` where ``[DONE]`` came in it.
        False where reads are not the thread's, or are held or paused."""
        hub = self._hub
        if hub is None or not self._key or not self._reading or self._lost or self._closing or self._held:
            return False
        hub.fast[self._key] = (target, rec, tokens)
        return True

    def unfast(self) -> None:
        """End :meth:`fast`: every read goes to the protocol again."""
        if self._hub is not None:
            self._hub.fast.pop(self._key, None)

    def _got(self, data: bytes | int | bool | BaseException, t: int) -> None:
        """One read from the reading thread: bytes (empty at the end of the stream) or a read's errno;
        from a :meth:`fast` take also ``True`` ([DONE] came) or the exception its update raised."""
        if self._lost:
            return
        if not self._reading:
            self._held.append((data, t))
            return
        if data.__class__ is bytes:
            if not data:
                self._eof()
            elif self._deliver is not None:
                self._deliver(data, t)
            else:
                self._protocol.data_received(data)
        elif data is True:
            self._protocol.fast_done()  # type: ignore[attr-defined]
        elif isinstance(data, BaseException):
            raise data
        else:
            self._force_close(OSError(data, os.strerror(data)))  # type: ignore[arg-type]

    def _flush_held(self) -> None:
        while self._held and self._reading and not self._lost:
            data, t = self._held.pop(0)
            self._got(data, t)

    def _stop_reads(self) -> None:
        if self._hub is not None:
            if self._key:  # (remove() also ends a fast path)
                self._hub.remove(self._key)
                self._key = 0
        else:
            self._loop.remove_reader(self._fd)

    def _recv_py(self, fd: int, hist: Any) -> tuple[bytes, int] | None:
        """What ``_rx.recv_stamped`` does, in Python (:func:`perfkit.net.stamps.recv_stamped`)."""
        return recv_stamped(self._sock, hist)

    def _eof(self) -> None:
        self._stop_reads()
        self._reading = False
        keep_open = self._protocol.eof_received()
        if not keep_open:
            self.close()

    def pause_reading(self) -> None:
        if self._reading and not self._lost:
            if self._hub is not None:
                self._hub.pause(self._key)
            else:
                self._loop.remove_reader(self._fd)
            self._reading = False

    def resume_reading(self) -> None:
        if not self._reading and not self._lost and not self._closing:
            self._reading = True
            if self._hub is not None:
                self._hub.resume(self._key)
                if self._held:
                    self._loop.call_soon(self._flush_held)
            else:
                self._loop.add_reader(self._fd, self._read_ready)

    def is_reading(self) -> bool:
        return self._reading

    # -- writing -----------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._lost or self._closing:
            return
        if not self._buf:
            try:
                n = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as exc:
                self._force_close(exc)
                return
            if n == len(data):
                return
            data = memoryview(data)[n:]
            self._loop.add_writer(self._fd, self._write_ready)
        self._buf += data

    def _write_ready(self) -> None:
        try:
            n = self._sock.send(self._buf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._force_close(exc)
            return
        del self._buf[:n]
        if not self._buf:
            self._loop.remove_writer(self._fd)
            if self._closing:
                self._force_close(None)

    def get_write_buffer_size(self) -> int:
        return len(self._buf)

    def can_write_eof(self) -> bool:
        return False

    # -- closing -----------------------------------------------------------
    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        if self._closing or self._lost:
            return
        self._closing = True
        if self._reading:
            self._stop_reads()
            self._reading = False
        if not self._buf:
            self._force_close(None)

    def abort(self) -> None:
        self._force_close(None)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._lost = self._closing = True
        self._stop_reads()
        self._held.clear()
        if self._buf:
            self._loop.remove_writer(self._fd)
            self._buf.clear()
        self._reading = False
        self._loop.call_soon(self._call_lost, exc)

    def _call_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)  # type: ignore[arg-type]
        finally:
            self._sock.close()

    def __del__(self) -> None:  # a transport dropped unclosed must not leak its socket
        sock = getattr(self, "_sock", None)
        if sock is not None and not getattr(self, "_lost", True) and sock.fileno() >= 0:
            sock.close()


async def open_stamped(
    loop: asyncio.AbstractEventLoop,
    protocol: asyncio.Protocol,
    host: str,
    port: int,
    delays: ReadDelays | None = None,
    threaded: bool = False,
    realtime: bool = False,
    compiled: bool = True,
) -> StampedTransport:
    """Connect to ``host:port`` (each address in turn) and wrap the socket in a :class:`StampedTransport`
    (``delays``, ``threaded``, ``realtime``, ``compiled``: as there)."""
    infos = _numeric(host, port) or await loop.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    last: OSError | None = None
    for family, type_, proto, _, addr in infos:
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, addr)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        except BaseException:  # cancelled or timed out: the socket must not leak
            sock.close()
            raise
        return StampedTransport(loop, sock, protocol, delays, threaded, realtime, compiled)
    raise last if last is not None else OSError(f"no address for {host}:{port}")


def _numeric(host: str, port: int) -> list[tuple[Any, ...]]:
    """The address of an IP literal without a resolver round trip (asyncio's goes through a thread)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        addr = (host, port) if family == socket.AF_INET else (host, port, 0, 0)
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", addr)]
    return []
