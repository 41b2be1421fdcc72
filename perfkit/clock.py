"""One clock for everything perfkit records.

Every interval is measured with :func:`now_ns` (``time.perf_counter_ns``), an
integer count of nanoseconds on a monotonic clock.  On Linux this is
``CLOCK_MONOTONIC``, which is shared by every process on the host, so the
simulator, the load generator and the side-channel samplers can be compared
directly.  A run also records one :class:`ClockAnchor`: a pair of readings
(monotonic, UTC wall clock) taken back to back, which converts any monotonic
timestamp of that run to UTC for joining with other sources.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["ClockAnchor", "now_ns", "sleep_until_ns", "wait_until_ns"]

# asyncio timers fire up to ~1 ms late (epoll's millisecond timeout is rounded up), so a
# precise wait sleeps to this far short of the deadline and then yields until it passes
_SPIN_NS = 1_500_000

now_ns = time.perf_counter_ns


@dataclass(frozen=True, slots=True)
class ClockAnchor:
    """A monotonic reading and the UTC wall-clock reading taken with it.

    Attributes
    ----------
    mono_ns : int
        ``perf_counter_ns()`` at the anchor, in ns.
    wall_ns : int
        ``time.time_ns()`` at the anchor (UTC, ns since the Unix epoch).
    """

    mono_ns: int
    wall_ns: int

    @classmethod
    def take(cls) -> ClockAnchor:
        """Read both clocks; the monotonic one twice to bracket the wall read."""
        before = now_ns()
        wall = time.time_ns()
        after = now_ns()
        return cls(mono_ns=(before + after) // 2, wall_ns=wall)

    def to_wall_ns(self, mono_ns: int) -> int:
        """Convert a monotonic timestamp (ns) of the same host to UTC ns."""
        return self.wall_ns + (mono_ns - self.mono_ns)

    def to_datetime(self, mono_ns: int) -> datetime:
        """Convert a monotonic timestamp (ns) to an aware UTC datetime."""
        return datetime.fromtimestamp(self.to_wall_ns(mono_ns) / 1e9, tz=UTC)

    @property
    def utc_iso(self) -> str:
        """The anchor's wall time as an ISO-8601 UTC string."""
        return self.to_datetime(self.mono_ns).isoformat()


async def sleep_until_ns(deadline_ns: int) -> None:
    """Sleep on the running event loop until ``now_ns() >= deadline_ns`` (roughly).

    asyncio timers have about 1 ms resolution; callers that care record the
    actual time they woke up rather than trusting the deadline.
    """
    import asyncio

    delay = (deadline_ns - now_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


async def wait_until_ns(deadline_ns: int) -> None:
    """Wait until ``deadline_ns`` to well under a millisecond, still yielding to other tasks.

    Sleeps until 1.5 ms before the deadline, then yields (``sleep(0)``) until it
    passes: other callbacks keep running, at the cost of some CPU per wait.
    """
    import asyncio

    early = deadline_ns - _SPIN_NS
    if now_ns() < early:
        await asyncio.sleep((early - now_ns()) / 1e9)
    while now_ns() < deadline_ns:
        await asyncio.sleep(0)
