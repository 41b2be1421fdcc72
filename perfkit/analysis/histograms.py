"""Percentiles with intervals from a run's per-second log histograms (its rollup), for very large runs.

:mod:`perfkit.analysis.percentiles` reads every sample; at 10^8 inter-token
latencies that alone takes tens of seconds.  A rollup
(:mod:`perfkit.store.rollup`) holds, per second of the run, the count of samples
in each log bucket 0.54% wide, which is all that the ``ess`` interval needs:

* the estimate is the sample percentile (linear interpolation, numpy's default),
  with the order statistics placed inside their bucket log-uniformly: within
  one bucket (0.54%) of the exact figure, and in practice within a few hundredths of a percent;
* the interval's bounds are read at the same sample quantile levels as the
  exact method, then widened to the edges of their buckets, so the bucketing
  cannot make it cover less;
* the effective sample size comes from the per-second counts below the
  estimate: the sums of the indicator ``1{x <= x̂}`` over one-second batches,
  whose long-run variance Geyer's initial positive sequence and overlapping
  batch means (a tenth of the run) estimate as the sample-level method
  does for series longer than 2^18 (there, over batches of a few samples).

The result is the same kind of :class:`~perfkit.analysis.percentiles.PercentileEstimate`,
with a note saying that it came from histograms.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from perfkit.analysis.percentiles import (
    DECIDE_ALPHA,
    EVENT_DF,
    OBM_DF,
    AutocorrelationTime,
    PercentileEstimate,
    geyer_time,
    interval_levels,
    min_samples,
    percentile_name,
    samples_needed,
)
from perfkit.query.rollup import LatencyHistogram, hist_quantiles, order_stat
from perfkit.store.rollup import BUCKETS_PER_OCTAVE, ZERO_BUCKET

__all__ = ["HIST_NOTE", "hist_percentile_cis", "histogram_ess"]

HIST_NOTE = "from per-second histograms (bounds widened to 0.54% buckets)"


def _weibull_bracket(ub: np.ndarray, cum: np.ndarray, p_lo: float, p_hi: float) -> tuple[float, float]:
    """Lower bound at Weibull level ``p_lo`` and upper at ``p_hi``, each widened to its bucket's edge."""
    n = int(cum[-1])
    r_lo = min(max(p_lo * (n + 1) - 1, 0.0), n - 1)  # 0-based fractional ranks
    r_hi = min(max(p_hi * (n + 1) - 1, 0.0), n - 1)
    lo_edge = order_stat(ub, cum, np.array([math.floor(r_lo)]))[1]
    hi_edge = order_stat(ub, cum, np.array([math.ceil(r_hi)]))[2]
    return float(lo_edge[0]), float(hi_edge[0])


def histogram_ess(h: LatencyHistogram, at: float) -> tuple[float, bool]:
    """Effective sample size of the indicator ``1{x <= at}``, and whether the batch-means estimate set it.

    From per-second sums of the indicator's residuals ``r_s = k_s − p̂ n_s`` (``k_s`` samples of
    second ``s`` at or below ``at``, the straddling bucket split log-uniformly; empty seconds
    count as zero): τ is the larger of ``S · var(r) · τ_Geyer(r) / (n p̂ (1 − p̂))`` and the
    overlapping-batch-means estimate over windows of a tenth of the run's seconds.
    """
    n = h.n
    if n == 0:
        return 0.0, False
    if at <= 0:
        below = np.where(h.buckets == ZERO_BUCKET, h.counts, 0).astype(float)
    else:
        pos = math.log2(at) * BUCKETS_PER_OCTAVE
        kx = math.floor(pos)
        below = np.where(h.buckets < kx, h.counts.astype(float), 0.0)
        below += np.where(h.buckets == kx, h.counts * (pos - kx), 0.0)  # the zero bucket is below kx
    s = h.seconds - h.seconds.min()
    k_s = np.bincount(s, weights=below)
    n_s = np.bincount(s, weights=h.counts.astype(float))
    p = float(k_s.sum()) / n
    var = p * (1 - p)
    if var <= 0:
        return float(n), False
    r = k_s - p * n_s
    S = len(r)
    geyer = max(1.0, float(r @ r) * geyer_time(r) / (n * var)) if S >= 4 else 1.0  # S var(r) τ_r / (n p q)
    w = S // 10
    obm = 1.0
    if w >= 1 and S - w >= 1:
        c = np.concatenate([[0.0], np.cumsum(r)])
        sums = c[w:] - c[:-w]
        per_window = n * w / S  # samples in a window, on average
        obm = max(1.0, float(sums @ sums) / len(sums) / per_window / var * S / (S - w))
    return n / max(geyer, obm), obm > geyer


def _histogram_time(n: int, n_eff: float, by_batches: bool, q: float) -> AutocorrelationTime:
    """τ of a rollup's indicator with the degrees of freedom of the estimate that set it (batch means over
    tenths of the run: 13.5; Geyer's over seconds: many), the events' count included as for samples."""
    tau = n / max(n_eff, 1e-9)
    df = OBM_DF * (10 - 1) if by_batches else 1e6
    events = n * min(q, 1 - q)
    df = max(1.0, 1.0 / (1.0 / df + EVENT_DF * tau / (2.0 * events)))
    return AutocorrelationTime(tau, df, tau * df / float(special.chdtri(df, 1 - DECIDE_ALPHA)), 1)


def hist_percentile_cis(
    h: LatencyHistogram, qs: tuple[float, ...] | list[float], *, level: float = 0.95, method: str = "ess"
) -> list[PercentileEstimate]:
    """Percentiles ``qs`` of a histogram with ``level`` intervals (``ess``, or ``order`` for independent samples).

    The counterpart of :func:`perfkit.analysis.percentiles.percentile_cis` on a rollup; see the
    module docstring for what differs (estimates within one 0.54% bucket, bounds widened to bucket edges).
    """
    if method not in ("ess", "order"):
        raise ValueError(f"method {method!r} is not available from histograms; use 'ess' or 'order'")
    n = h.n
    if n == 0:
        return [PercentileEstimate(q, 0, 0.0, None, None, None, level, method, False, "no samples") for q in qs]
    ub, cum = h.merged()
    ests = hist_quantiles(ub, cum, list(qs))
    alpha = 1 - level
    out = []
    for q, est in zip(qs, ests):
        est = float(est)
        n_eff, by_batches = histogram_ess(h, est) if method == "ess" else (float(n), False)
        tau = (
            _histogram_time(n, n_eff, by_batches, q) if method == "ess" else AutocorrelationTime(1.0, math.inf, 1.0, 1)
        )
        need = min_samples(q)
        if n / tau.upper < need:
            more = samples_needed(tau, q)
            why = (
                f"not estimable: {n} samples ({n_eff:.0f} effectively independent) where the "
                f"{percentile_name(q)} needs at least {need}; at this correlation about {more:,} samples would do"
            )
            out.append(PercentileEstimate(q, n, n_eff, None, None, None, level, method, False, why, tau.tau, more))
            continue
        p_lo, p_hi, note = interval_levels(q, n_eff, alpha, tau.df, n)
        lo, hi = _weibull_bracket(ub, cum, p_lo, p_hi)
        note = HIST_NOTE if note is None else f"{note}; {HIST_NOTE}"
        out.append(
            PercentileEstimate(q, n, n_eff, est, min(lo, est), max(hi, est), level, method, True, note, tau.tau, n)
        )
    return out
