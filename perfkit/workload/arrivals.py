"""Open-loop arrival processes: when each request is *intended* to be sent.

An arrival process yields offsets from the start of a phase, in integer
nanoseconds.  Closed-loop load (N users, each sending when its previous
request ends) has no arrival process: the runner derives it from the users.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from perfkit.errors import ConfigError

__all__ = ["ArrivalProcess", "ConstantArrivals", "PoissonArrivals", "make_arrivals"]

_BATCH = 1024


class ArrivalProcess:
    """Base class: a seeded stream of intended send offsets (ns from phase start)."""

    rate: float

    def offsets_ns(self, rng: np.random.Generator) -> Iterator[int]:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ConstantArrivals(ArrivalProcess):
    """Evenly spaced arrivals at ``rate`` requests per second, the first at offset 0."""

    rate: float

    def offsets_ns(self, rng: np.random.Generator) -> Iterator[int]:
        gap = 1e9 / self.rate
        i = 0
        while True:
            yield int(round(i * gap))
            i += 1


@dataclass(frozen=True, slots=True)
class PoissonArrivals(ArrivalProcess):
    """A Poisson process of ``rate`` requests per second (exponential gaps).

    The first arrival is at offset 0 so that a phase starts with work, and the
    gaps after it are i.i.d. exponential with mean ``1 / rate`` seconds.
    """

    rate: float

    def offsets_ns(self, rng: np.random.Generator) -> Iterator[int]:
        t = 0.0
        yield 0
        while True:
            for gap in rng.exponential(1e9 / self.rate, size=_BATCH):
                t += gap
                yield int(t)


_PROCESSES: dict[str, type[ArrivalProcess]] = {
    "constant": ConstantArrivals,
    "poisson": PoissonArrivals,
}


def make_arrivals(kind: str, rate: float) -> ArrivalProcess:
    """Build an arrival process by name.

    Parameters
    ----------
    kind : {"constant", "poisson"}
    rate : float
        Requests per second, > 0.
    """
    if kind not in _PROCESSES:
        raise ConfigError(f"arrival {kind!r} is not one of {', '.join(sorted(_PROCESSES))}")
    if not rate > 0:
        raise ConfigError(f"rate must be > 0 requests/s, got {rate}")
    return _PROCESSES[kind](float(rate))
