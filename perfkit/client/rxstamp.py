"""TCP connections whose every read carries the time the kernel received its bytes.

A client that takes the time when its event loop gets round to a socket
reports its own lateness as the server's: with hundreds of streams, a chunk
can wait milliseconds in the socket while the loop parses others.  Linux
stamps every received packet (``SO_TIMESTAMPNS``) and ``recvmsg`` hands the
stamp of the last packet a read consumed to the reader.  :class:`StampedTransport`
is a plain-TCP :class:`asyncio.Transport` that reads this way and gives its
protocol each read with that time on perfkit's clock (:func:`perfkit.clock.now_ns`):
how long the bytes waited (the wall clock now minus the stamp) taken off
the monotonic reading.  The wait itself is kept (:class:`ReadDelays`): it is
how late the event loop was, per read, and the evidence for a client-bound
verdict.

When the loop is later than the gap between two chunks of one stream, they
come in one read and both carry the later one's stamp: still no later than
the old way, and the read delays show it happened.  Where stamps are not to
be had (not Linux, TLS, the option refused), :func:`rx_stamps_supported` says
so and callers keep asyncio's own transports.

The read itself, stamp and wait included, is compiled (``perfkit.client._rx``,
built at install where a C compiler is found); without it, or with
``PERFKIT_NO_EXTENSIONS`` set, the same is done here in Python, about 2.5 us
dearer a read.

With the compiled module, a client's reads are by default not the event loop's
at all (:func:`read_thread_mode`): one thread per loop (``_rx.Reader``) waits on
every socket and reads each within :data:`READ_GAP_NS` of its bytes' arrival,
so that chunks of a stream are taken one by one, each with its own stamp,
however far behind the loop is; the loop takes the queued reads in batches.
Where permitted the thread runs realtime, so the scheduler does not make it
wait for the loop's time slice.  The waits it counts are then the thread's,
which is what the stamps' exactness depends on.  ``PERFKIT_RX_THREAD=normal``
keeps it off the realtime scheduler, ``PERFKIT_RX_THREAD=0`` keeps the reads on
the loop.  A protocol in the plain state of a stream (:meth:`StampedTransport.fast`)
can have the loop's take put each read of whole one-event chunks straight into its
record, in C, without a call to it; the first read that is anything else ends that
and reaches it as usual.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import socket
import struct
import sys
import time
from array import array
from typing import Any

from perfkit.clock import now_ns

__all__ = ["READ_DELAYS", "READ_GAP_NS", "ReadDelays", "StampedTransport", "compiled_reads", "enable_rx_stamps",
           "open_stamped", "read_thread_default", "read_thread_mode", "rx_stamps_supported"]

# SO_TIMESTAMPNS (== SCM_TIMESTAMPNS): the asm-generic value, which x86, arm and riscv use;
# Python's socket module does not export it.  Other architectures are left to user-space stamps.
_SO_TIMESTAMPNS = 35
_GENERIC_ARCH = ("x86_64", "i386", "i686", "aarch64", "arm", "riscv", "s390x", "ppc64")
_TIMESPEC = struct.Struct("@ll")
_ANC_SIZE = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
# below glibc's mmap threshold (128 KiB): a larger read buffer is mapped and unmapped at every read,
# which on the development VM made a read three times as dear (36 against 13 us)
_READ_SIZE = 64 * 1024
# a stamp further back than this is not a wait but the wall clock having been stepped: ignored
_MAX_WAIT_NS = 60 * 1_000_000_000
# the reading thread's least time between rounds of reads (ns): a chunk waits about this long at most, and
# only chunks of one stream closer together share a read; at 512 streams it makes a round take ~10 reads
READ_GAP_NS = 200_000


def _platform_stamps() -> bool:
    import platform

    return sys.platform.startswith("linux") and _ANC_SIZE > 0 and platform.machine().startswith(_GENERIC_ARCH)


_PLATFORM_STAMPS = _platform_stamps()


def _compiled() -> Any:
    """``perfkit.client._rx`` where it was built and ``PERFKIT_NO_EXTENSIONS`` is not set, else None."""
    if os.environ.get("PERFKIT_NO_EXTENSIONS", "").strip() not in ("", "0"):
        return None
    try:
        from perfkit.client import _rx
    except ImportError:
        return None
    return _rx


_RX = _compiled()


def compiled_reads() -> bool:
    """Whether reads go through the compiled ``perfkit.client._rx`` (else Python does the same, slower)."""
    return _RX is not None


_THREAD_MODES = {"": "realtime", "1": "realtime", "realtime": "realtime", "normal": "normal",
                 "0": "off", "off": "off", "no": "off", "false": "off"}


def read_thread_mode() -> str:
    """How client transports read by default: ``"realtime"`` (on a reading thread that the scheduler
    runs the moment it wakes), ``"normal"`` (on a reading thread under the ordinary scheduler) or
    ``"off"`` (on the event loop).

    ``PERFKIT_RX_THREAD`` chooses: unset or ``realtime``, ``normal``, ``0``/``off``.  Realtime needs
    the permission to use SCHED_FIFO (root, CAP_SYS_NICE or an RLIMIT_RTPRIO); without it the thread
    runs normal.  Without the compiled module it is ``"off"``.
    """
    if _RX is None:
        return "off"
    raw = os.environ.get("PERFKIT_RX_THREAD", "").strip().lower()
    mode = _THREAD_MODES.get(raw)
    if mode is None:
        raise ValueError(f"PERFKIT_RX_THREAD={raw!r} is not understood: use realtime (the default), normal, or 0 "
                         f"to read on the event loop")
    if mode == "realtime" and not _realtime_permitted():
        mode = "normal"
    return mode


def read_thread_default() -> bool:
    """Whether client transports read on a thread of their own by default (see :func:`read_thread_mode`)."""
    return read_thread_mode() != "off"


_REALTIME: bool | None = None


def _realtime_permitted() -> bool:
    """Whether this process may run a thread SCHED_FIFO (asked once, of a short-lived reading thread)."""
    global _REALTIME
    if _REALTIME is None:
        probe = _RX.Reader(gap_ns=READ_GAP_NS, realtime=True)
        _REALTIME = bool(probe.realtime)
        probe.close()
    return _REALTIME


def rx_stamps_supported() -> bool:
    """Whether a client is to time its reads by kernel receive stamps: Linux on a generic-ABI architecture,
    unless the environment says ``PERFKIT_RX_STAMPS=0`` (then each read is timed when the event loop takes it)."""
    if os.environ.get("PERFKIT_RX_STAMPS", "1").strip() in ("0", "off", "false", "no"):
        return False
    return _PLATFORM_STAMPS


def enable_rx_stamps(sock: socket.socket) -> bool:
    """Ask the kernel to stamp what ``sock`` receives; False where it will not (the environment's
    ``PERFKIT_RX_STAMPS`` is the client's choice, made before it opens a :class:`StampedTransport`).

    The first call in a process also makes sure that stamping is on before it returns (see
    :func:`_keep_stamping`), so that the first bytes a new connection receives are stamped too.
    """
    if not _PLATFORM_STAMPS:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        on = bool(sock.getsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS))
    except OSError:
        return False
    if on and _KEEPER is None:
        _keep_stamping()
    return on


# a loopback TCP pair whose receiving end asks for stamps, open for the life of the process (see _keep_stamping)
_KEEPER: tuple[socket.socket, socket.socket] | tuple[()] | None = None
# how long the first enable_rx_stamps waits at most for the kernel to turn stamping on (s)
_STAMPING_ON_WITHIN_S = 0.5


def _keep_stamping() -> bool:
    """Turn the kernel's packet stamping on for good in this process, and wait until it is on.

    Linux stamps received packets only while some socket asks for stamps, and it turns stamping on
    through deferred work: a packet that arrives before that work ran carries no stamp, and a TCP read
    of it none either.  On the development VM 6 in 50 first packets to a freshly stamped socket came
    unstamped, 2 ms after the option was set, while the system had no other stamped socket; a read
    timed that way falls back to when it was read and is missing from the read delays.  Stamping is
    also turned off again when the last such socket closes, and back on (with the same gap) at the
    next connection, as between phases.  So one stamped loopback pair stays open, and the first call
    sends a byte through it until a read of it carries a stamp (at most :data:`_STAMPING_ON_WITHIN_S`).

    Returns whether stamping was seen on (at a later call: whether the pair is kept); where it was not,
    reads without a stamp are timed when read, as before.
    """
    global _KEEPER
    if _KEEPER is not None:
        return bool(_KEEPER)
    _KEEPER = ()  # tried: a failure is not retried at every connection
    try:
        lsock = socket.create_server(("127.0.0.1", 0))
    except OSError:
        return False
    with lsock:
        try:
            tx = socket.create_connection(lsock.getsockname(), timeout=1.0)
        except OSError:
            return False
        try:
            rx, _ = lsock.accept()
        except OSError:
            tx.close()
            return False
    try:
        rx.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        rx.settimeout(1.0)
        deadline = time.monotonic() + _STAMPING_ON_WITHIN_S
        while True:
            tx.send(b"?")
            _, anc, _, _ = rx.recvmsg(1, _ANC_SIZE)
            stamped = any(level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS for level, kind, _ in anc)
            if stamped or time.monotonic() > deadline:  # kept all the same: stamping may yet come on
                _KEEPER = (tx, rx)
                atexit.register(_close_keeper)
                return stamped
            time.sleep(0.0005)
    except OSError:
        tx.close()
        rx.close()
        return False


def _close_keeper() -> None:
    """Close the pair :func:`_keep_stamping` keeps open (at exit)."""
    global _KEEPER
    for sock in _KEEPER or ():
        sock.close()
    _KEEPER = ()


class ReadDelays:
    """How long received bytes waited in the kernel before a read took them: a histogram of the reads.

    Buckets are 0.1 ms wide up to 100 ms (one bucket beyond); ``counts`` is an ``array('q')`` of
    the buckets' counts followed by the longest wait (ns), which the compiled read updates in
    place.  :meth:`add` runs on the event loop; :meth:`take`, from a sampler thread, swaps the
    array out without a lock, so a read counted at that instant may land in the next interval.
    """

    BUCKET_NS = 100_000
    BUCKETS = 1000

    def __init__(self) -> None:
        self.counts = self._fresh()

    @classmethod
    def _fresh(cls) -> array:
        return array("q", bytes(8 * (cls.BUCKETS + 2)))

    @property
    def max_ns(self) -> int:
        """Longest wait since the last :meth:`take`, ns."""
        return self.counts[-1]

    def add(self, wait_ns: int) -> None:
        _note_wait(self.counts, wait_ns)

    def take(self) -> tuple[int, float, float]:
        """``(reads, p99 ms, max ms)`` since the last call, then start afresh (p99: the upper edge of its bucket)."""
        counts, self.counts = self.counts, self._fresh()
        mx = counts[-1]
        n = sum(counts) - mx
        if not n:
            return 0, 0.0, 0.0
        rank, seen = 0.99 * n, 0
        for i in range(self.BUCKETS + 1):
            seen += counts[i]
            if seen >= rank:
                break
        p99_ns = min((i + 1) * self.BUCKET_NS, mx) if i < self.BUCKETS else mx
        return n, p99_ns / 1e6, mx / 1e6


def _note_wait(counts: array, wait_ns: int) -> None:
    """Count one wait in a :class:`ReadDelays` array (what the compiled read does in place)."""
    i = wait_ns // ReadDelays.BUCKET_NS
    counts[i if i < ReadDelays.BUCKETS else ReadDelays.BUCKETS] += 1
    if wait_ns > counts[-1]:
        counts[-1] = wait_ns


READ_DELAYS = ReadDelays()
"""This process's stamped reads (every :class:`~perfkit.client.fasthttp.FastClient` adds to it); the
host sampler reports it as ``read_delay_p99_ms`` and ``read_delay_max_ms``."""


class _ThreadReads:
    """The reading thread (``_rx.Reader``) of one event loop, and the transports it reads for.

    The thread queues reads and makes a descriptor readable; the loop's callback (:meth:`_drain`)
    hands each read to its transport in order.  It is made for the loop's first threaded transport
    and stopped with its last, so a loop that is closed leaves no thread behind.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, delays: ReadDelays | None) -> None:
        self._loop, self._delays = loop, delays
        self._reader = _RX.Reader(gap_ns=READ_GAP_NS, realtime=read_thread_mode() == "realtime")
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
            except Exception as exc:  # noqa: BLE001 - one protocol's bug must not cost the others their reads
                self._loop.call_exception_handler({"message": "protocol failed on a read", "exception": exc,
                                                   "transport": transport, "protocol": transport._protocol})
                transport._force_close(exc)

    def _stop(self) -> None:
        if _HUBS.get((self._loop, self._delays)) is self:
            del _HUBS[(self._loop, self._delays)]
        try:
            self._loop.remove_reader(self._wake)
        except RuntimeError:  # the loop is closed already
            pass
        self._reader.close()


_HUBS: dict[tuple[asyncio.AbstractEventLoop, ReadDelays | None], _ThreadReads] = {}


def _hub(loop: asyncio.AbstractEventLoop, delays: ReadDelays | None) -> _ThreadReads:
    hub = _HUBS.get((loop, delays))
    if hub is None or hub.pid != os.getpid():  # a forked child has the table but not the thread
        hub = _HUBS[(loop, delays)] = _ThreadReads(loop, delays)
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
    threaded : bool, optional
        Read on the loop's reading thread (see the module docstring) rather than in a loop callback;
        default :func:`read_thread_default`.  Needs the compiled module.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: asyncio.Protocol,
                 delays: ReadDelays | None = None, threaded: bool | None = None) -> None:
        super().__init__({"socket": sock})
        sock.setblocking(False)
        self._loop, self._sock, self._protocol, self._delays = loop, sock, protocol, delays
        self._fd = sock.fileno()
        self.stamped = enable_rx_stamps(sock)
        self._deliver = getattr(protocol, "data_stamped", None)
        self._recv = _RX.recv_stamped if _RX is not None else self._recv_py
        self._buf = bytearray()
        self._closing = False
        self._lost = False
        self._reading = True
        self._hub: _ThreadReads | None = None
        self._key = 0
        self._held: list[tuple[Any, int]] = []  # reads the thread queued after pause_reading
        try:
            self._extra["peername"] = sock.getpeername()
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            pass
        if threaded is None:
            threaded = read_thread_default()
        if threaded and _RX is not None:
            self._hub = _hub(loop, delays)
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
            self._held.append((data, t))  # type: ignore[arg-type]
            return
        if data.__class__ is bytes:
            if not data:
                self._eof()
            elif self._deliver is not None:
                self._deliver(data, t)
            else:
                self._protocol.data_received(data)  # type: ignore[arg-type]
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

    def _recv_py(self, fd: int, hist: array | None) -> tuple[bytes, int] | None:
        """What ``_rx.recv_stamped`` does, in Python: ``(data, t_ns)``, or None when there was nothing to read."""
        try:
            data, anc, _, _ = self._sock.recvmsg(_READ_SIZE, _ANC_SIZE)
        except (BlockingIOError, InterruptedError):
            return None
        t = now_ns()
        if anc:
            wall = time.time_ns()
            level, kind, raw = anc[0]
            if kind == _SO_TIMESTAMPNS and level == socket.SOL_SOCKET and len(raw) >= _TIMESPEC.size:
                sec, nsec = _TIMESPEC.unpack_from(raw)
                wait = wall - (sec * 1_000_000_000 + nsec)
                if 0 <= wait < _MAX_WAIT_NS:
                    t -= wait
                    if hist is not None:
                        _note_wait(hist, wait)
        return data, t

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


async def open_stamped(loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol, host: str, port: int,
                       delays: ReadDelays | None = None, threaded: bool | None = None) -> StampedTransport:
    """Connect to ``host:port`` (each address in turn) and wrap the socket in a :class:`StampedTransport`
    (``delays``, ``threaded``: as there)."""
    infos = _numeric(host, port) or await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             proto=socket.IPPROTO_TCP)
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
        return StampedTransport(loop, sock, protocol, delays, threaded)
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
