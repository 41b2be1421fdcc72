"""One share of a run started on its own: ``perfkit run --partition W/N --start-at UTC_TIME``.

A share is what one worker of a :class:`~perfkit.record.workers.WorkerGroup` sends (arrivals
``W, W + N, ...`` of every schedule), run by a process that knows nothing of the others: a
Kubernetes Indexed Job's pod, a shell loop over ssh.  The shares agree on one start instant given
in wall-clock time (UTC); each turns it into its own host's monotonic clock, so their schedules
line up to the accuracy of the hosts' wall clocks (NTP: about a millisecond; PTP: microseconds).
``perfkit merge`` joins them into one run (:mod:`perfkit.store.merge`), after checking that they
belong together: the same seed, phases, share count, start instant and endpoint, which the
:func:`group_key` digests.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from perfkit.clock import ClockAnchor
from perfkit.errors import ConfigError

__all__ = ["Share", "group_key", "parse_partition", "parse_start_at", "start_mono_ns"]


@dataclass(frozen=True)
class Share:
    """Share ``index`` of ``count`` (0-based)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_partition(text: str) -> Share:
    """Parse ``W/N`` (``0 <= W < N``) as given to ``--partition``."""
    try:
        w, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--partition {text!r} must be W/N, e.g. 0/4 for the first of four shares") from None
    if n < 1 or not 0 <= w < n:
        raise ConfigError(f"--partition {text!r}: the share W must be 0 to N-1 of N shares (N at least 1)")
    return Share(w, n)


def parse_start_at(text: str, now_wall_ns: int | None = None) -> int:
    """The UTC instant of ``--start-at``, in ns since the Unix epoch.

    Accepts ISO-8601 (``2026-12-04T15:00:00Z``, ``...+01:00``; without a zone it is UTC), Unix seconds
    (``@1796400000``) or ``+S``: the next whole multiple of S seconds of UTC at least one second ahead, so
    that shares started together (a loop over hosts, pods of one job) agree on it without a shared clock
    reading.  An instant already past is refused: the shares would start late and out of step.
    """
    now = time.time_ns() if now_wall_ns is None else now_wall_ns
    t = text.strip()
    try:
        if t.startswith("+"):
            step = int(float(t[1:]) * 1e9)
            if step < 1_000_000_000:
                raise ValueError(t)
            wall = -(-(now + 1_000_000_000) // step) * step
        elif t.startswith("@"):
            wall = int(float(t[1:]) * 1e9)
        else:
            d = datetime.fromisoformat(t.replace("Z", "+00:00"))
            if d.tzinfo is None:
                d = d.replace(tzinfo=UTC)
            wall = int(d.timestamp()) * 1_000_000_000 + d.microsecond * 1000
    except ValueError:
        raise ConfigError(
            f"--start-at {text!r} is not a time: give UTC ISO-8601 (2026-12-04T15:00:00Z), @UNIX_SECONDS "
            "or +SECONDS (the next multiple of that many seconds, 1 or more)"
        ) from None
    if wall <= now:
        raise ConfigError(
            f"--start-at {text!r} is {(now - wall) / 1e9:.1f} s in the past; give an instant far enough ahead "
            "for every share to start (a few seconds, more for pods still being scheduled)"
        )
    return wall


def start_mono_ns(wall_ns: int, anchor: ClockAnchor) -> int:
    """The instant ``wall_ns`` (UTC) on this host's monotonic clock, through ``anchor``."""
    return anchor.mono_ns + (wall_ns - anchor.wall_ns)


def group_key(seed: int, count: int, start_wall_ns: int, phases: list[dict[str, Any]], endpoint: str) -> str:
    """A digest of what the shares of one run must share (16 hex digits)."""
    blob = json.dumps([seed, count, start_wall_ns, phases, endpoint], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
