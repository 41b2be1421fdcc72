"""The faults perfkit can inject, and how they are written on the command line.

A fault is written ``KIND[:PROBABILITY][@START[+DURATION]]``:

- ``reset:0.2`` resets one streamed answer in five, for the whole run;
- ``http_503:1@10+5`` answers every request with HTTP 503 from 10 s to 15 s after the proxy started;
- ``restart@20+3`` drops every open connection 20 s in and refuses new ones for 3 s (a server restart).

Request faults (:data:`REQUEST_FAULTS`) hit each completion request with their
probability, drawn from one seeded generator in arrival order, so a run is
reproducible.  Window faults (:data:`WINDOW_FAULTS`) act on the listener for
their window and take no probability.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from perfkit.errors import ConfigError

__all__ = ["FAULTS", "Fault", "FaultOptions", "REQUEST_FAULTS", "WINDOW_FAULTS", "parse_fault"]

REQUEST_FAULTS: dict[str, str] = {
    "reset": "the connection is reset (RST) after a few events of the answer",
    "http_429": "HTTP 429 Too Many Requests with Retry-After, without asking the upstream",
    "http_500": "HTTP 500 with a JSON error body",
    "http_503": "HTTP 503 with a JSON error body",
    "malformed": "one event of the stream carries data that is not JSON",
    "no_done": "the stream ends cleanly, after its last token, without data: [DONE]",
    "truncated": "the stream stops part-way through an event",
    "stall": "the stream goes silent (connection open) for stall_s, longer than a read timeout",
    "drip": "the answer arrives a few bytes at a time, drip_ms apart",
    "giant_chunk": "one event of giant_mb MiB is sent in the middle of the stream",
    "wrong_content_type": "HTTP 200 with Content-Type text/html and an HTML body",
}
WINDOW_FAULTS: dict[str, str] = {
    "refused": "new connections are refused for the window (the listener is closed, idle keep-alive "
    "connections too; answers in flight finish)",
    "restart": "every open connection is reset at the window's start and new ones refused until its end",
}
FAULTS: dict[str, str] = {**REQUEST_FAULTS, **WINDOW_FAULTS}

_SPEC = re.compile(r"^(?P<kind>[a-z_0-9]+)(?::(?P<p>[^@]+))?(?:@(?P<start>[^+]+)(?:\+(?P<dur>.+))?)?$")


@dataclass(frozen=True)
class Fault:
    """One fault to inject.

    Attributes
    ----------
    kind : str
        One of :data:`FAULTS`.
    probability : float
        Share of completion requests hit while the fault is active (request faults; 1 for windows).
    start_s : float
        When it becomes active, s after the proxy started.
    duration_s : float or None
        How long it stays active, s; None means to the end (request faults only).
    """

    kind: str
    probability: float = 1.0
    start_s: float = 0.0
    duration_s: float | None = None

    def active(self, t_s: float) -> bool:
        """Whether the fault is active ``t_s`` seconds after the start."""
        return t_s >= self.start_s and (self.duration_s is None or t_s < self.start_s + self.duration_s)

    def __str__(self) -> str:
        s = self.kind if self.kind in WINDOW_FAULTS else f"{self.kind}:{self.probability:g}"
        if self.start_s or self.duration_s is not None:
            s += f"@{self.start_s:g}" + (f"+{self.duration_s:g}" if self.duration_s is not None else "")
        return s


@dataclass(frozen=True)
class FaultOptions:
    """How the faults behave.

    Attributes
    ----------
    after_events : int
        Events of the answer passed through before a mid-stream fault strikes.
    stall_s : float
        Silence of a ``stall``, s (set it above the client's read timeout).
    drip_bytes, drip_ms : int, float
        ``drip``: bytes per write and the pause between writes, ms.
    giant_mb : float
        Size of the ``giant_chunk`` event, MiB.
    retry_after_s : int
        ``Retry-After`` of the 429 answers, s.
    seed : int
        Seed of the per-request draws.
    """

    after_events: int = 3
    stall_s: float = 120.0
    drip_bytes: int = 7
    drip_ms: float = 2.0
    giant_mb: float = 64.0
    retry_after_s: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("after_events", "stall_s", "drip_bytes", "drip_ms", "giant_mb", "retry_after_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"fault option {name} must be >= 0, got {getattr(self, name)!r}")
        if self.drip_bytes < 1:
            raise ConfigError(f"fault option drip_bytes must be >= 1, got {self.drip_bytes!r}")


def _number(text: str, what: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"fault {spec!r}: {what} {text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"fault {spec!r}: {what} must be a finite number >= 0, got {text}")
    return value


def parse_fault(spec: str) -> Fault:
    """Read ``KIND[:PROBABILITY][@START[+DURATION]]`` (see the module docstring).

    Raises
    ------
    ConfigError
        Naming the part that is wrong and what is allowed.
    """
    m = _SPEC.match(spec.strip())
    if not m:
        raise ConfigError(
            f"fault {spec!r} must read KIND[:PROBABILITY][@START[+DURATION]], e.g. reset:0.2 or restart@20+3"
        )
    kind = m["kind"]
    if kind not in FAULTS:
        raise ConfigError(f"fault {spec!r}: unknown kind {kind!r}; known: {', '.join(FAULTS)}")
    p = 1.0
    if m["p"] is not None:
        if kind in WINDOW_FAULTS:
            raise ConfigError(
                f"fault {spec!r}: {kind} acts on the listener for a window and takes no "
                f"probability; write {kind}@START+DURATION"
            )
        p = _number(m["p"], "probability", spec)
        if p > 1:
            raise ConfigError(f"fault {spec!r}: probability must be in [0, 1], got {m['p']}")
    start = _number(m["start"], "start", spec) if m["start"] is not None else 0.0
    dur = _number(m["dur"], "duration", spec) if m["dur"] is not None else None
    if kind in WINDOW_FAULTS and (dur is None or dur <= 0):
        raise ConfigError(f"fault {spec!r}: {kind} needs a window, e.g. {kind}@20+3 (start 20 s, for 3 s)")
    return Fault(kind, p, start, dur)
