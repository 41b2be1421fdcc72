"""Kernel receive stamps: whether a socket's reads can carry the time its bytes arrived, and how long they waited.

Linux stamps every received packet (``SO_TIMESTAMPNS``) and ``recvmsg`` hands the stamp of the last
packet a read consumed to the reader.  A reader that takes its time from that stamp does not count
how late it got to the socket; the wait itself (the wall clock now minus the stamp) is kept in a
:class:`ReadDelays` histogram, the evidence of how prompt the reader was.

This is the neutral socket layer that both the client (:mod:`perfkit.client.fasthttp`) and the
ground-truth server (:mod:`perfkit.sim.exact`) name; it knows nothing of HTTP or of LLM streams.
"""

from __future__ import annotations

import atexit
import socket
import struct
import sys
import time
from array import array

from perfkit.clock import now_ns

__all__ = [
    "ANC_SIZE",
    "MAX_WAIT_NS",
    "READ_SIZE",
    "ReadDelays",
    "enable_rx_stamps",
    "note_wait",
    "platform_stamps",
    "recv_stamped",
]

# SO_TIMESTAMPNS (== SCM_TIMESTAMPNS): the asm-generic value, which x86, arm and riscv use;
# Python's socket module does not export it.  Other architectures are left to user-space stamps.
_SO_TIMESTAMPNS = 35
_GENERIC_ARCH = ("x86_64", "i386", "i686", "aarch64", "arm", "riscv", "s390x", "ppc64")
_TIMESPEC = struct.Struct("@ll")
ANC_SIZE = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
# below glibc's mmap threshold (128 KiB): a larger read buffer is mapped and unmapped at every read,
# which on the development VM made a read three times as dear (36 against 13 us)
READ_SIZE = 64 * 1024
# a stamp further back than this is not a wait but the wall clock having been stepped: ignored
MAX_WAIT_NS = 60 * 1_000_000_000


def _platform_stamps() -> bool:
    import platform

    return sys.platform.startswith("linux") and ANC_SIZE > 0 and platform.machine().startswith(_GENERIC_ARCH)


_PLATFORM_STAMPS = _platform_stamps()


def platform_stamps() -> bool:
    """Whether this platform gives kernel receive stamps: Linux on a generic-ABI architecture."""
    return _PLATFORM_STAMPS


def enable_rx_stamps(sock: socket.socket) -> bool:
    """Ask the kernel to stamp what ``sock`` receives; False where it will not.

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
            _, anc, _, _ = rx.recvmsg(1, ANC_SIZE)
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

    One object is passed to whoever needs it: the client's transport counts into it, the host
    sampler (:class:`perfkit.collect.host.HostSource`) takes from it.
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
        note_wait(self.counts, wait_ns)

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


def note_wait(counts: array, wait_ns: int) -> None:
    """Count one wait in a :class:`ReadDelays` array (what the compiled read does in place)."""
    i = wait_ns // ReadDelays.BUCKET_NS
    counts[i if i < ReadDelays.BUCKETS else ReadDelays.BUCKETS] += 1
    if wait_ns > counts[-1]:
        counts[-1] = wait_ns


def recv_stamped(sock: socket.socket, hist: array | None) -> tuple[bytes, int] | None:
    """What the compiled ``recv_stamped`` does, in Python: one read of ``sock`` as ``(data, t_ns)``, ``t_ns``
    the kernel's receive stamp on :func:`perfkit.clock.now_ns`'s clock (the read's time where the read
    carried none); None when there was nothing to read.  Each stamped wait is counted in ``hist`` (a
    :class:`ReadDelays` array)."""
    try:
        data, anc, _, _ = sock.recvmsg(READ_SIZE, ANC_SIZE)
    except (BlockingIOError, InterruptedError):
        return None
    t = now_ns()
    if anc:
        wall = time.time_ns()
        level, kind, raw = anc[0]
        if kind == _SO_TIMESTAMPNS and level == socket.SOL_SOCKET and len(raw) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(raw)
            wait = wall - (sec * 1_000_000_000 + nsec)
            if 0 <= wait < MAX_WAIT_NS:
                t -= wait
                if hist is not None:
                    note_wait(hist, wait)
    return data, t
