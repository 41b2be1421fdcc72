"""Open-loop arrival processes: when each request is *intended* to be sent.

An arrival process yields offsets from the start of a phase, in integer
nanoseconds.  Closed-loop load (N users, each sending when its previous
request ends) has no arrival process: the runner derives it from the users.

Renewal processes (constant, Poisson, gamma) are generated in "operational
time" with unit mean gap and mapped to real time through the inverse of the
cumulative rate Λ(t) = ∫ r(s) ds of a :class:`RateProfile`, so one mechanism
gives constant rates, linear and step ramps, and spikes (Lewis & Shedler's
time-change construction of a non-homogeneous process).

Gamma gaps with shape k have coefficient of variation 1/√k; ``burstiness``
is that shape, as in vLLM's benchmark: 1 is Poisson, below 1 is burstier
(CV 3 needs burstiness 1/9), above 1 is smoother.

References
----------
Lewis, P. A. W. & Shedler, G. S. (1979). Simulation of nonhomogeneous
Poisson processes by thinning. Naval Research Logistics Quarterly 26(3).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from perfkit.errors import ConfigError

__all__ = [
    "ArrivalProcess",
    "ConstantArrivals",
    "GammaArrivals",
    "PoissonArrivals",
    "RateProfile",
    "TraceArrivals",
    "make_arrivals",
]

_BATCH = 1024


@dataclass(frozen=True)
class RateProfile:
    """A piecewise-linear request rate r(t), requests/s, t in s from phase start.

    ``points`` are ``(t_s, rate)`` knots in increasing time; the rate is
    linear between knots and constant after the last one.  A step is two
    knots at the same time.
    """

    points: tuple[tuple[float, float], ...]
    _cum: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pts = tuple((float(t), float(r)) for t, r in self.points)
        if not pts or pts[0][0] != 0.0:
            raise ConfigError("a rate profile must start at t = 0 s")
        for (t0, _), (t1, _) in zip(pts, pts[1:]):
            if t1 < t0:
                raise ConfigError(f"rate profile times must not decrease ({t0} then {t1})")
        if any(r < 0 for _, r in pts) or all(r == 0 for _, r in pts):
            raise ConfigError("rates must be >= 0 requests/s and not all 0")
        cum = [0.0]
        for (t0, r0), (t1, r1) in zip(pts, pts[1:]):
            cum.append(cum[-1] + (t1 - t0) * (r0 + r1) / 2)
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "_cum", tuple(cum))

    @classmethod
    def constant(cls, rate: float) -> RateProfile:
        return cls(((0.0, rate),))

    @classmethod
    def linear(cls, start: float, end: float, duration_s: float) -> RateProfile:
        """A linear ramp from ``start`` to ``end`` requests/s over ``duration_s``."""
        return cls(((0.0, start), (duration_s, end)))

    @classmethod
    def steps(cls, start: float, end: float, n: int, duration_s: float) -> RateProfile:
        """``n`` equal steps from ``start`` to ``end`` requests/s over ``duration_s``."""
        pts: list[tuple[float, float]] = []
        for i in range(n):
            rate = start + (end - start) * i / max(1, n - 1)
            t = duration_s * i / n
            pts += [(t, rate), (duration_s * (i + 1) / n, rate)]
        return cls(tuple(pts))

    def with_spikes(self, spikes: Sequence[tuple[float, float, float]]) -> RateProfile:
        """Multiply the rate by ``factor`` on ``[at_s, at_s + duration_s)`` for each spike."""
        knots = sorted({t for t, _ in self.points} | {a for a, _, _ in spikes} | {a + d for a, d, _ in spikes})
        pts: list[tuple[float, float]] = []
        for t in knots:
            before = self.rate(t, left=True) * _factor(spikes, t, left=True)
            after = self.rate(t) * _factor(spikes, t)
            if not pts or pts[-1] != (t, before):
                pts.append((t, before))
            if after != before:
                pts.append((t, after))
        return RateProfile(tuple(pts))

    def rate(self, t: float, left: bool = False) -> float:
        """r(t), requests/s (the left limit at a step when ``left``)."""
        pts = self.points
        i = (bisect.bisect_left if left else bisect.bisect_right)([p[0] for p in pts], t) - 1
        if i < 0:
            return pts[0][1]
        if i >= len(pts) - 1:
            return pts[-1][1]
        (t0, r0), (t1, r1) = pts[i], pts[i + 1]
        return r0 if t1 == t0 else r0 + (r1 - r0) * (t - t0) / (t1 - t0)

    def cumulative(self, t: float) -> float:
        """Λ(t): expected arrivals in [0, t)."""
        pts, cum = self.points, self._cum
        i = bisect.bisect_right([p[0] for p in pts], t) - 1
        if i >= len(pts) - 1:
            return cum[-1] + (t - pts[-1][0]) * pts[-1][1]
        (t0, r0) = pts[i]
        return cum[i] + (t - t0) * (r0 + self.rate(t)) / 2

    def inverse(self, u: float) -> float:
        """Λ⁻¹(u): the time (s) by which ``u`` arrivals are expected; inf if never."""
        pts, cum = self.points, self._cum
        i = bisect.bisect_right(cum, u) - 1
        if i >= len(pts) - 1:
            r = pts[-1][1]
            return pts[-1][0] + (u - cum[-1]) / r if r > 0 else math.inf
        (t0, r0), (t1, r1) = pts[i], pts[i + 1]
        du = u - cum[i]
        if t1 == t0:
            return t0
        slope = (r1 - r0) / (t1 - t0)
        if abs(slope) < 1e-12:
            return t0 + du / r0
        # solve r0·x + slope·x²/2 = du for the root in [0, t1 - t0]
        disc = r0 * r0 + 2 * slope * du
        return t0 + (math.sqrt(max(0.0, disc)) - r0) / slope

    @property
    def mean_rate_hint(self) -> float:
        return max(r for _, r in self.points)


def _factor(spikes: Sequence[tuple[float, float, float]], t: float, left: bool = False) -> float:
    f = 1.0
    for a, d, k in spikes:
        inside = (a < t <= a + d) if left else (a <= t < a + d)
        if inside:
            f *= k
    return f


class ArrivalProcess:
    """Base class: a seeded stream of intended send offsets (ns from phase start)."""

    profile: RateProfile

    def unit_gaps(self, rng: np.random.Generator) -> Iterator[float]:  # pragma: no cover
        raise NotImplementedError

    def offsets_ns(self, rng: np.random.Generator) -> Iterator[int]:
        """Offsets of arrivals, the first at 0 (work starts with the phase)."""
        u = 0.0
        yield 0
        for gap in self.unit_gaps(rng):
            u += gap
            t = self.profile.inverse(u)
            if math.isinf(t):
                return
            yield int(t * 1e9)

    @property
    def rate(self) -> float:
        return self.profile.mean_rate_hint


@dataclass(frozen=True)
class ConstantArrivals(ArrivalProcess):
    """Evenly spaced arrivals (in operational time) following ``profile``."""

    profile: RateProfile

    def unit_gaps(self, rng: np.random.Generator) -> Iterator[float]:
        while True:
            yield 1.0


@dataclass(frozen=True)
class PoissonArrivals(ArrivalProcess):
    """A (non-homogeneous) Poisson process following ``profile``: exponential gaps."""

    profile: RateProfile

    def unit_gaps(self, rng: np.random.Generator) -> Iterator[float]:
        while True:
            yield from rng.exponential(1.0, size=_BATCH).tolist()


@dataclass(frozen=True)
class GammaArrivals(ArrivalProcess):
    """Gamma-renewal arrivals: gaps with shape ``burstiness`` (CV = 1/√burstiness)."""

    profile: RateProfile
    burstiness: float = 1.0

    def __post_init__(self) -> None:
        if not self.burstiness > 0:
            raise ConfigError(f"burstiness must be > 0 (1 = Poisson, < 1 burstier), got {self.burstiness}")

    def unit_gaps(self, rng: np.random.Generator) -> Iterator[float]:
        k = self.burstiness
        while True:
            yield from rng.gamma(k, 1.0 / k, size=_BATCH).tolist()


@dataclass(frozen=True)
class TraceArrivals(ArrivalProcess):
    """Replay recorded arrival offsets (ns), each with its own prompt and output lengths."""

    offsets: tuple[int, ...]
    prompt_tokens: tuple[int, ...]
    output_tokens: tuple[int, ...]

    def offsets_ns(self, rng: np.random.Generator) -> Iterator[int]:
        return iter(self.offsets)

    @property
    def rate(self) -> float:
        span = (self.offsets[-1] - self.offsets[0]) / 1e9 if len(self.offsets) > 1 else 1.0
        return len(self.offsets) / max(span, 1e-9)


_KINDS = ("constant", "poisson", "gamma")


def make_arrivals(kind: str, rate: float | RateProfile, burstiness: float = 1.0) -> ArrivalProcess:
    """Build an arrival process by name.

    Parameters
    ----------
    kind : {"constant", "poisson", "gamma"}
    rate : float or RateProfile
        Requests per second (> 0), or a time-varying profile.
    burstiness : float
        Gamma shape (only for ``gamma``).
    """
    if kind not in _KINDS:
        raise ConfigError(f"arrival {kind!r} is not one of {', '.join(_KINDS)}")
    if isinstance(rate, RateProfile):
        profile = rate
    else:
        if not rate > 0:
            raise ConfigError(f"rate must be > 0 requests/s, got {rate}")
        profile = RateProfile.constant(float(rate))
    if kind == "constant":
        return ConstantArrivals(profile)
    if kind == "poisson":
        return PoissonArrivals(profile)
    return GammaArrivals(profile, burstiness)
