"""Quantiles beyond the data: peaks over a threshold, with a generalised Pareto tail.

A p99.99 from 5,000 requests rests on half a request: the empirical quantile is the sample's
maximum, whatever the true tail.  Above a high threshold ``u`` the excesses of almost any latency
distribution are close to generalised Pareto (Pickands–Balkema–de Haan), so

    Q(q) = u + σ/ξ · (((1 − q)/ζ)^(−ξ) − 1),        ζ = share of samples above u

(``u − σ log((1 − q)/ζ)`` as ξ → 0).  ξ and σ are estimated by probability-weighted moments
(Hosking & Wallis 1987: closed form, reliable for ξ < 0.5, which covers latency tails that have
a mean and a variance), so the whole procedure can be bootstrapped: intervals come from a
circular block bootstrap that keeps the autocorrelation of consecutive requests, threshold
re-chosen in every resample.

References
----------
Hosking, J. R. M. & Wallis, J. R., "Parameter and quantile estimation for the generalized Pareto
distribution", *Technometrics* 29(3), 1987.
Coles, S., *An Introduction to Statistical Modeling of Extreme Values*, Springer, 2001 (ch. 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from perfkit.analysis.percentiles import block_length, circular_block_indices

__all__ = ["TailEstimate", "gpd_pwm", "gpd_tail_quantile", "pot_quantile"]


@dataclass(frozen=True)
class TailEstimate:
    """A quantile from a peaks-over-threshold fit, with its interval and the fit it rests on."""

    q: float
    estimate: float
    lo: float
    hi: float
    threshold: float
    n_exceed: int
    xi: float
    sigma: float
    level: float


def gpd_pwm(excess: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Pareto shape ξ and scale σ of excesses, by probability-weighted moments.

    ``excess`` is one sample (1-D) or many (2-D, one per row, each sorted ascending is not
    required); returns arrays of ξ and σ (one per row).
    """
    y = np.sort(np.atleast_2d(excess), axis=1)
    m = y.shape[1]
    p = (np.arange(1, m + 1) - 0.35) / m
    a0 = y.mean(axis=1)
    a1 = (y * (1 - p)).mean(axis=1)
    k = a0 / (a0 - 2 * a1) - 2  # Hosking & Wallis's shape k = −ξ
    sigma = 2 * a0 * a1 / (a0 - 2 * a1)
    return -k, sigma


def gpd_tail_quantile(u: np.ndarray, xi: np.ndarray, sigma: np.ndarray, zeta: float, q: float) -> np.ndarray:
    """The ``q``-quantile of a generalised Pareto tail (shape ``xi``, scale ``sigma``) above threshold ``u``
    that holds the share ``zeta`` of the data."""
    r = (1 - q) / zeta
    small = np.abs(xi) < 1e-6
    safe = np.where(small, 1.0, xi)
    return np.where(small, u - sigma * math.log(r), u + sigma / safe * (r ** (-safe) - 1))


def pot_quantile(
    x: np.ndarray,
    q: float,
    *,
    threshold_q: float = 0.9,
    level: float = 0.95,
    n_boot: int = 1000,
    block: int | None = None,
    seed: int = 0,
) -> TailEstimate:
    """The ``q`` quantile of ``x`` (samples in time order) from a generalised Pareto tail.

    Parameters
    ----------
    x : array
        Samples, in the order they were taken (the bootstrap keeps runs of neighbours together).
    q : float
        Quantile level, above ``threshold_q``.
    threshold_q : float
        The threshold is this empirical quantile; at least 30 samples must exceed it.
    level : float
        Confidence level of the interval.
    n_boot : int
        Bootstrap resamples.
    block : int, optional
        Bootstrap block length; default from the autocorrelation of the tail indicator.
    seed : int
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if not threshold_q < q < 1:
        raise ValueError(f"q must lie between threshold_q={threshold_q} and 1, got {q}")
    n = len(x)
    zeta = 1 - threshold_q
    if n * zeta < 30:
        raise ValueError(
            f"{n} samples leave {n * zeta:.0f} above the {threshold_q:g} threshold; a tail fit needs "
            f"at least 30 (lower threshold_q or record more requests)"
        )
    u = float(np.quantile(x, threshold_q))
    exc = x[x > u] - u
    xi, sigma = (float(v[0]) for v in gpd_pwm(exc))
    est = float(gpd_tail_quantile(np.array(u), np.array(xi), np.array(sigma), len(exc) / n, q))
    rng = np.random.default_rng(seed)
    b = block or block_length(x, threshold_q)
    xs = x[circular_block_indices(n, b, rng, n_boot)]
    us = np.quantile(xs, threshold_q, axis=1)
    k = int(round(n * zeta))  # the same count above the threshold in every resample: a rectangular array
    tops = np.sort(xs, axis=1)[:, n - k :] - us[:, None]
    bx, bs = gpd_pwm(np.clip(tops, 0, None))
    boots = gpd_tail_quantile(us, bx, bs, k / n, q)
    boots = boots[np.isfinite(boots)]
    lo, hi = np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2])
    return TailEstimate(q, est, float(lo), float(hi), u, len(exc), xi, sigma, level)
