"""Synthetic latency series with known changepoints: the ground truth the detectors are scored on.

Windowed latency percentiles of a real deployment are positive, right-skewed,
autocorrelated and now and then hit by a spike (a GC pause, a preemption, a
retry storm); their level moves in steps when something changes.
:func:`heavy_tailed_shifts` makes such series: a piecewise-constant level in
log space with jumps of 25–150% up or down, AR(1) noise on the log scale, and
multiplicative spikes with a Pareto tail.  Like ruptures' ``pw_constant``,
it returns the series and the indices where its segments start.
"""

from __future__ import annotations

import numpy as np

__all__ = ["heavy_tailed_shifts"]


def heavy_tailed_shifts(
    n: int = 600,
    n_changes: int = 3,
    *,
    base_ms: float = 30.0,
    noise: float = 0.12,
    phi: float = 0.4,
    spike_rate: float = 0.03,
    spike_alpha: float = 1.5,
    min_jump: float = 0.25,
    max_jump: float = 1.5,
    min_gap: int = 40,
    seed: int = 0,
) -> tuple[np.ndarray, list[int]]:
    """A positive latency-like series (ms) and its true changepoints.

    Parameters
    ----------
    n : int
        Length (windows).
    n_changes : int
        Number of level shifts.
    base_ms : float
        Level of the first segment, ms.
    noise : float
        Standard deviation of the log-scale AR(1) noise.
    phi : float
        AR(1) coefficient of that noise (windows are not independent).
    spike_rate : float
        Share of windows hit by a spike.
    spike_alpha : float
        Pareto tail index of the spikes' multiplicative size (1.5: heavy, infinite variance).
    min_jump, max_jump : float
        Range of a shift's relative size (0.25 = +25% or −20%).
    min_gap : int
        Shortest segment, windows.
    seed : int

    Returns
    -------
    y : ndarray of float
        The series, ms.
    changes : list of int
        Index of the first window of each new segment (sorted, without 0).
    """
    rng = np.random.default_rng(seed)
    changes: list[int] = []
    while len(changes) < n_changes:  # draw locations at least min_gap apart and from the ends
        cand = sorted(rng.choice(np.arange(min_gap, n - min_gap), size=n_changes, replace=False).tolist())
        if all(b - a >= min_gap for a, b in zip([0, *cand], [*cand, n])):
            changes = cand
    level = np.full(n, np.log(base_ms))
    for c in changes:
        size = np.log1p(rng.uniform(min_jump, max_jump))
        level[c:] += size if rng.random() < 0.5 or level[c - 1] < np.log(base_ms) - 0.5 else -size
    e = rng.normal(0, noise * np.sqrt(1 - phi**2), n)
    z = np.empty(n)
    z[0] = rng.normal(0, noise)
    for i in range(1, n):
        z[i] = phi * z[i - 1] + e[i]
    spikes = (rng.random(n) < spike_rate) * (rng.pareto(spike_alpha, n) + 1.0)
    return np.exp(level + z) * np.where(spikes > 0, 1 + spikes, 1.0), changes
