"""How a client reads its sockets: one configuration object instead of five paths chosen by environment.

A streamed chunk is timed when its bytes arrive.  Three choices decide how:

``stamps``
    Take the time from the kernel's receive stamp of each read (Linux, plain TCP), so that how late
    the reader got to the socket does not count; else the time the read happened.
``thread``
    ``"realtime"``: reads on a thread of their own that the scheduler runs the moment it wakes
    (SCHED_FIFO, where the process may use it); ``"normal"``: the same thread under the ordinary
    scheduler; ``"off"``: reads on the event loop.
``compiled``
    Use the compiled read path (``perfkit.net._rx``); else the same in Python, slower.

:meth:`ReadPath.resolved` says what a choice comes to on this machine (a thread needs the compiled
module; realtime needs the permission; stamps need Linux), and :meth:`ReadPath.describe` is what the
run's manifest records.  The environment variables of earlier versions are aliases, read by
:meth:`ReadPath.from_env`: ``PERFKIT_RX_STAMPS=0``, ``PERFKIT_RX_THREAD=realtime|normal|0`` and
``PERFKIT_NO_EXTENSIONS=1``; the command line's ``--rx-stamps/--no-rx-stamps``, ``--read-thread`` and
``--no-compiled-reads`` set the same fields.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from perfkit.errors import ConfigError
from perfkit.net.compiled import compiled_module
from perfkit.net.stamps import platform_stamps

__all__ = ["READ_THREAD_MODES", "ReadPath", "realtime_permitted"]

READ_THREAD_MODES = ("realtime", "normal", "off")
_THREAD_WORDS = {
    "": "realtime",
    "1": "realtime",
    "realtime": "realtime",
    "normal": "normal",
    "0": "off",
    "off": "off",
    "no": "off",
    "false": "off",
}
_OFF_WORDS = ("0", "off", "false", "no")
READ_GAP_NS = 200_000  # the reading thread's least time between rounds of reads (see perfkit.net.transport)

_REALTIME: bool | None = None


def realtime_permitted() -> bool:
    """Whether this process may run a thread SCHED_FIFO (asked once, of a short-lived reading thread)."""
    global _REALTIME
    rx = compiled_module()
    if rx is None:
        return False
    if _REALTIME is None:
        probe = rx.Reader(gap_ns=READ_GAP_NS, realtime=True)
        _REALTIME = bool(probe.realtime)
        probe.close()
    return _REALTIME


@dataclass(frozen=True)
class ReadPath:
    """The read path a client asks for (see the module docstring).

    Parameters
    ----------
    stamps : bool
        Time reads by the kernel's receive stamps where the platform has them.
    thread : {"realtime", "normal", "off"}
        Where reads happen: a realtime or ordinary reading thread, or the event loop.
    compiled : bool
        Use the compiled read path where it was built.
    """

    stamps: bool = True
    thread: str = "realtime"
    compiled: bool = True

    def __post_init__(self) -> None:
        if self.thread not in READ_THREAD_MODES:
            raise ConfigError(f"read thread {self.thread!r} is not one of {', '.join(READ_THREAD_MODES)}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **override: Any) -> ReadPath:
        """The default read path, with the environment's aliases applied, then ``override``'s fields.

        Raises
        ------
        ConfigError
            For a ``PERFKIT_RX_THREAD`` value it does not understand.
        """
        env = os.environ if env is None else env
        stamps = env.get("PERFKIT_RX_STAMPS", "1").strip().lower() not in _OFF_WORDS
        raw = env.get("PERFKIT_RX_THREAD", "").strip().lower()
        thread = _THREAD_WORDS.get(raw)
        if thread is None:
            raise ConfigError(
                f"PERFKIT_RX_THREAD={raw!r} is not understood: use realtime (the default), normal, "
                "or 0 to read on the event loop (or --read-thread)"
            )
        compiled = env.get("PERFKIT_NO_EXTENSIONS", "").strip() in ("", "0")
        path = cls(stamps=stamps, thread=thread, compiled=compiled)
        return replace(path, **{k: v for k, v in override.items() if v is not None})

    def resolved(self) -> ReadPath:
        """What this choice comes to here: without the compiled module there is no compiled path and no
        reading thread; without the permission a realtime thread runs normal; without Linux, no stamps."""
        compiled = self.compiled and compiled_module() is not None
        thread = self.thread if compiled else "off"
        if thread == "realtime" and not realtime_permitted():
            thread = "normal"
        stamps = self.stamps and platform_stamps()
        if not stamps:
            thread = "off"  # the thread reads stamped sockets; without stamps the loop reads as asyncio does
        return ReadPath(stamps=stamps, thread=thread, compiled=compiled)

    def describe(self) -> dict[str, Any]:
        """The manifest's record of the read path: what was asked for and what it came to."""
        got = self.resolved()
        return {
            "rx_stamps": "kernel" if got.stamps else "read",
            "read_thread": got.thread,
            "compiled_reads": got.compiled,
            "asked": {"stamps": self.stamps, "thread": self.thread, "compiled": self.compiled},
        }
