"""Ground truth from the simulator's engine, computed offline: what an analysis should find.

The engine is deterministic given its arrivals (:func:`perfkit.sim.engine.replay`), so the
latency a load level *really* has can be measured without a client, a socket or a clock: replay
many independent Poisson schedules at each rate and average.  This is the dense sweep that a
sweep over the network is checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfkit.sim.config import SimConfig
from perfkit.sim.engine import replay

__all__ = ["DenseSweep", "dense_sweep", "replay_latencies"]


def replay_latencies(
    config: SimConfig, rate: float, duration_s: float, prompt_tokens: int, output_tokens: int, seed: int
) -> dict[str, np.ndarray]:
    """Replay one Poisson schedule of ``rate`` requests/s for ``duration_s`` s; latencies in ms.

    Returns ``ttft_ms`` and ``e2e_ms`` per request and ``itl_ms`` per token gap, in arrival order.
    """
    rng = np.random.default_rng(seed)
    n = int(rng.poisson(rate * duration_s))
    times = np.sort(rng.uniform(0.0, duration_s, n))
    reqs = replay(config, [(int(t * 1e9), prompt_tokens, output_tokens) for t in times])
    ttft = np.array([(r.first_token_ns - r.arrival_ns) / 1e6 for r in reqs if r.first_token_ns is not None])
    e2e = np.array([(r.finish_ns - r.arrival_ns) / 1e6 for r in reqs if r.finish_ns is not None])
    itl = np.concatenate([np.diff(r.token_ns) / 1e6 for r in reqs]) if reqs else np.array([])
    return {"ttft_ms": ttft, "e2e_ms": e2e, "itl_ms": itl}


@dataclass(frozen=True)
class DenseSweep:
    """Mean ``q``-quantile of ``metric`` per rate over seeds, its standard error, and the SLO crossing."""

    rates: np.ndarray
    mean_ms: np.ndarray
    se_ms: np.ndarray
    limit_ms: float
    capacity: float | None

    def __str__(self) -> str:
        cap = "below the lowest rate" if self.capacity is None else f"{self.capacity:.2f} req/s"
        return f"dense sweep over {len(self.rates)} rates: the bound {self.limit_ms:g} ms is reached at {cap}"


def dense_sweep(
    config: SimConfig,
    rates: np.ndarray | list[float],
    *,
    metric: str = "ttft_ms",
    q: float = 0.9,
    limit_ms: float,
    duration_s: float,
    prompt_tokens: int,
    output_tokens: int,
    seeds: int = 20,
) -> DenseSweep:
    """The rate at which the mean (over ``seeds`` schedules) ``q``-quantile of ``metric`` reaches ``limit_ms``.

    The crossing is interpolated linearly in log latency between the two rates around it; with
    rates 0.25 req/s apart that interpolation error is far below the seed-to-seed spread.
    """
    rates = np.asarray(sorted(rates), dtype=float)
    vals = np.array(
        [
            [
                np.quantile(
                    replay_latencies(config, r, duration_s, prompt_tokens, output_tokens, seed=1000 * s + i)[metric], q
                )
                for s in range(seeds)
            ]
            for i, r in enumerate(rates)
        ]
    )
    mean, se = vals.mean(axis=1), vals.std(axis=1, ddof=1) / np.sqrt(seeds)
    logm = np.log(mean / limit_ms)
    above = np.flatnonzero(logm > 0)
    if len(above) == 0:
        cap: float | None = float(rates[-1])
    elif above[0] == 0:
        cap = None
    else:
        i = int(above[0])
        cap = float(rates[i - 1] + (rates[i] - rates[i - 1]) * -logm[i - 1] / (logm[i] - logm[i - 1]))
    return DenseSweep(rates, mean, se, limit_ms, cap)
