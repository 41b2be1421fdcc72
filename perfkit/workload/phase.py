"""A phase of a run: a load shape, a duration or count, and the user mix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perfkit.errors import ConfigError
from perfkit.workload.arrivals import (
    ArrivalProcess,
    RateProfile,
    TraceArrivals,
    make_arrivals,
)
from perfkit.workload.content import UserClass, Workload

__all__ = ["PhaseSpec", "StopRule"]


@dataclass(frozen=True)
class StopRule:
    """End a sweep early once a step's error rate or TTFT p99 passes a limit, or the server saturates.

    ``min_completion`` detects saturation: the rate at which a step's requests
    completed, (n − 1) / (last − first end), over the rate at which they were
    scheduled, (n − 1) / (last − first intended send).  Below saturation each
    request ends a roughly constant time after it was sent, so the two rates
    agree whatever the step's length; past the knee the engine completes
    work at its capacity and the ratio falls below one.
    """

    error_rate: float | None = None
    ttft_p99_ms: float | None = None
    min_completion: float | None = None

    def fired(
        self, errors: int, done: int, ttft_p99_ms: float | None, completion_ratio: float | None = None
    ) -> str | None:
        """The reason to stop, or None."""
        if self.min_completion is not None and completion_ratio is not None and completion_ratio < self.min_completion:
            return (
                f"saturated: requests completed at {completion_ratio:.0%} of the rate they were scheduled "
                f"(< {self.min_completion:.0%})"
            )
        if self.error_rate is not None and done and errors / done > self.error_rate:
            return f"error rate {errors / done:.1%} > {self.error_rate:.1%}"
        if self.ttft_p99_ms is not None and ttft_p99_ms is not None and ttft_p99_ms > self.ttft_p99_ms:
            return f"TTFT p99 {ttft_p99_ms:.0f} ms > {self.ttft_p99_ms:g} ms"
        return None


@dataclass(frozen=True)
class PhaseSpec:
    """One phase of a run.

    Parameters
    ----------
    name : str
    duration_s : float, optional
        Stop issuing after this many seconds.
    requests : int, optional
        Stop issuing after this many requests (whichever limit comes first).
    concurrency : int, optional
        Closed loop: this many users.
    rate : float, optional
        Open loop: requests (sessions) per second.
    arrival : {"constant", "poisson", "gamma"}
        Open-loop arrival process.
    burstiness : float
        Gamma shape: 1 is Poisson, < 1 burstier (CV = 1/√burstiness).
    profile : RateProfile, optional
        Open loop with a time-varying rate (ramps, steps, spikes) instead of ``rate``.
    trace : TraceArrivals, optional
        Open loop replaying recorded arrivals and their lengths.
    max_in_flight : int, optional
        Open loop: cap on requests in flight; waiting shows as schedule lag.
    prompt_tokens, output_tokens : LengthDist or str or int
        Target lengths (tokens) of the default class (when ``classes`` is not given).
    classes : tuple of UserClass, optional
        The user mix of this phase.
    think_time_s : float
        Closed loop: pause between a user's sessions, s.
    ramp_users_s : float
        Closed loop: start the users evenly over this many seconds.
    warmup : bool
        Recorded and flagged, left out of summaries.
    group : str, optional
        Phases of one sweep share a group; when ``stop_when`` fires after one of
        them, the group's remaining phases are skipped.
    stop_when : StopRule, optional
    auto_rate : (int, int), optional
        Step ``i`` of ``n`` of an automatic sweep: the runner sets this phase's
        rate, when it starts, to ``r_sync + (r_max - r_sync) * i / (n + 1)`` from
        the request rates its group's synchronous and throughput phases achieved.
    """

    name: str
    duration_s: float | None = None
    requests: int | None = None
    concurrency: int | None = None
    rate: float | None = None
    arrival: str = "poisson"
    burstiness: float = 1.0
    profile: RateProfile | None = None
    trace: TraceArrivals | None = field(default=None, repr=False)
    max_in_flight: int | None = None
    prompt_tokens: Any = 256
    output_tokens: Any = 128
    classes: tuple[UserClass, ...] | None = None
    think_time_s: float = 0.0
    ramp_users_s: float = 0.0
    warmup: bool = False
    group: str | None = None
    stop_when: StopRule | None = None
    auto_rate: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        where = f"phase {self.name!r}"
        open_loop = sum(x is not None for x in (self.rate, self.profile, self.trace))
        if (self.concurrency is None) == (open_loop == 0) or open_loop > 1:
            raise ConfigError(
                f"{where}: give exactly one of concurrency (closed loop), rate, a rate profile or a trace (open loop)"
            )
        if self.concurrency is not None and self.concurrency < 1:
            raise ConfigError(f"{where}: concurrency must be >= 1, got {self.concurrency}")
        if self.duration_s is None and self.requests is None and self.trace is None:
            raise ConfigError(f"{where}: give a duration_s or a number of requests")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError(f"{where}: duration_s must be > 0, got {self.duration_s}")
        if self.requests is not None and self.requests < 1:
            raise ConfigError(f"{where}: requests must be >= 1, got {self.requests}")
        if self.max_in_flight is not None and self.max_in_flight < 1:
            raise ConfigError(f"{where}: max_in_flight must be >= 1, got {self.max_in_flight}")
        if self.think_time_s < 0 or self.ramp_users_s < 0:
            raise ConfigError(f"{where}: think_time_s and ramp_users_s must be >= 0")
        if self.rate is not None or self.profile is not None:
            self.arrivals()  # validates kind, rate, burstiness
        if self.classes is None:
            object.__setattr__(self, "classes", (UserClass("default", 1.0, self.prompt_tokens, self.output_tokens),))
        else:
            Workload(self.classes)  # validates names
        classes = self.classes
        assert classes is not None
        object.__setattr__(self, "prompt_tokens", classes[0].prompt_tokens)
        object.__setattr__(self, "output_tokens", classes[0].output_tokens)

    @property
    def closed_loop(self) -> bool:
        return self.concurrency is not None

    def arrivals(self) -> ArrivalProcess:
        if self.trace is not None:
            return self.trace
        return make_arrivals(self.arrival, self.profile or float(self.rate), self.burstiness)  # type: ignore[arg-type]

    @property
    def requested_rate(self) -> float | None:
        """Mean requested arrival rate over the phase, sessions/s (None in closed loop)."""
        if self.closed_loop:
            return None
        if self.trace is not None:
            return self.trace.rate
        if self.profile is not None and self.duration_s:
            return self.profile.cumulative(self.duration_s) / self.duration_s
        return float(self.rate) if self.rate else None

    @property
    def max_concurrency_hint(self) -> int:
        """A guess at the most requests this phase holds in flight (for pool sizing)."""
        if self.concurrency is not None:
            return self.concurrency
        return self.max_in_flight or 1024
