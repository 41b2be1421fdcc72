"""Routing requests across several endpoints (replicas of one deployment).

Policies:

* ``round_robin``: endpoints in turn;
* ``least_outstanding``: the endpoint with the fewest requests in flight (ties to the lowest index);
* ``weighted``: smooth weighted round robin (as nginx does it): over any
  window each endpoint receives its weight's share, evenly interleaved and
  with no randomness.
"""

from __future__ import annotations

from collections.abc import Sequence

from perfkit.errors import ConfigError

__all__ = ["ROUTING_POLICIES", "Router"]

ROUTING_POLICIES = ("round_robin", "least_outstanding", "weighted")


class Router:
    """Pick an endpoint index per request and track requests in flight per endpoint.

    Parameters
    ----------
    n : int
        Number of endpoints.
    policy : {"round_robin", "least_outstanding", "weighted"}
    weights : sequence of float, optional
        For ``weighted``: one positive weight per endpoint.
    """

    def __init__(self, n: int, policy: str = "round_robin", weights: Sequence[float] | None = None) -> None:
        if policy not in ROUTING_POLICIES:
            raise ConfigError(f"routing {policy!r} is not one of {', '.join(ROUTING_POLICIES)}")
        if n < 1:
            raise ConfigError("routing needs at least one endpoint")
        if weights is not None and (len(weights) != n or any(not w > 0 for w in weights)):
            raise ConfigError(f"weights must be {n} positive numbers, one per endpoint; got {list(weights)}")
        if policy == "weighted" and weights is None:
            raise ConfigError("weighted routing needs --weights, one per endpoint")
        self.policy = policy
        self.weights = list(weights) if weights is not None else [1.0] * n
        self.outstanding = [0] * n
        self._next = 0
        self._current = [0.0] * n

    def pick(self) -> int:
        """The endpoint for the next request."""
        n = len(self.outstanding)
        if self.policy == "round_robin":
            i = self._next
            self._next = (i + 1) % n
            return i
        if self.policy == "least_outstanding":
            return min(range(n), key=lambda k: (self.outstanding[k], k))
        total = sum(self.weights)
        for k in range(n):
            self._current[k] += self.weights[k]
        i = max(range(n), key=lambda k: (self._current[k], -k))
        self._current[i] -= total
        return i

    def started(self, i: int) -> None:
        self.outstanding[i] += 1

    def finished(self, i: int) -> None:
        self.outstanding[i] -= 1
