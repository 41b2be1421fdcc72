"""Percentiles with confidence intervals that respect the autocorrelation of a run.

Requests in a run are not independent: a queue that builds up makes
neighbouring requests' latencies alike, so an interval that assumes
independent samples is too narrow (it behaves as if the run held more
information than it does).  Three methods:

``order``
    The distribution-free interval of independent samples: the level of the
    sample below the true ``q``-quantile is Beta(q (n + 1), (1 − q)(n + 1)) (fractional
    order statistics, Hutson 1999), whose quantiles are read off the sample as the
    bounds.  Right for independent data, too narrow for a queueing run.
``ess`` (default)
    The same fractional order statistics on the *effective* sample size of the
    indicator ``1{x_t <= x̂_q}`` (its autocorrelation, not the latencies', is what
    governs the error of a quantile estimate).  Its integrated autocorrelation
    time τ comes from overlapping batch means whose length grows with a pilot
    estimate, with its degrees of freedom (:func:`autocorrelation_time`), and
    the interval uses a t quantile on them.  The *decision* to give an interval
    at all is made on an upper confidence bound of τ, so that a short, strongly
    correlated series is called not estimable rather than given an interval that
    does not hold; where that decision was close, and for the far side of a tail
    quantile, the interval is drawn with a more conservative τ (selecting series
    whose estimate ran low would otherwise leave their intervals short).
    On AR(1) series with φ ∈ {0, 0.5, 0.9}, n from 300 to 20,000, lognormal and
    Pareto-tailed (``bench/percentile_coverage.py``, 1,000 replicates a cell,
    three batches of seeds), every cell that gave intervals covered the truth
    93.2–97.8% of the time for a nominal 95%, and cells whose true effective size
    is below the threshold gave an interval in at most 2.2% of replicates.
``block``
    A circular block bootstrap (blocks of consecutive requests, length at least
    ``n^(1/3)`` and twice the integrated autocorrelation time), percentile interval.

A percentile the sample cannot support is reported as not estimable, not as a
number: the rule is ``n_eff · min(q, 1 − q) >= 3`` (p99 needs about 300
effectively independent requests, p99.9 about 3,000), with ``n_eff`` from the upper
bound on τ; the note then says how many samples at the same correlation would do
(:func:`samples_needed`).  The interval of an estimable percentile may still reach
the sample's extreme, which is then noted.

References
----------
Hahn, G. J. & Meeker, W. Q., *Statistical Intervals*, Wiley, 1991, §5.2 (distribution-free
intervals for quantiles).
Geyer, C. J., "Practical Markov chain Monte Carlo", *Statistical Science* 7(4), 1992 (initial
positive sequence estimate of the integrated autocorrelation time).
Meketon, M. S. & Schmeiser, B., "Overlapping batch means: something for nothing?", *Proceedings
of the Winter Simulation Conference*, 1984 (overlapping batch means and their degrees of freedom).
Hutson, A. D., "Calculating nonparametric confidence intervals for quantiles using fractional order
statistics", *Journal of Applied Statistics* 26(3), 1999.
Alexopoulos, C., Goldsman, D., Mokashi, A. C. & Wilson, J. R., "Sequest: a sequential procedure for
estimating quantiles in steady-state simulations", *Operations Research* 67(4), 2019 (batching for
quantiles of dependent output).
Künsch, H. R., "The jackknife and the bootstrap for general stationary observations",
*Annals of Statistics* 17(3), 1989; Politis, D. N. & Romano, J. P., "A circular block-resampling
procedure for stationary data", 1992 (block bootstrap).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy import special

__all__ = [
    "AutocorrelationTime",
    "BATCH_TAUS",
    "DECIDE_ALPHA",
    "EVENT_DF",
    "METHODS",
    "MIN_BATCHES",
    "OBM_DF",
    "PercentileEstimate",
    "autocorrelation_time",
    "batch_means_time",
    "block_length",
    "bound_levels",
    "circular_block_indices",
    "effective_sample_size",
    "ess_widen",
    "geyer_sequence",
    "geyer_time",
    "integrated_autocorrelation_time",
    "interval_levels",
    "min_samples",
    "overlapping_batch_means_time",
    "percentile_ci",
    "percentile_cis",
    "percentile_lower_bound",
    "percentile_name",
    "samples_needed",
]

METHODS = ("ess", "order", "block")
_MIN_TAIL = 3.0  # effectively independent samples needed beyond the quantile


def min_samples(q: float) -> int:
    """Effectively independent samples needed to estimate the ``q``-quantile (p99: 300, p99.9: 3,000)."""
    return math.ceil(_MIN_TAIL / min(q, 1 - q) - 1e-9)


_EXACT_ACF_MAX = 1 << 18  # longer series: Geyer's sequence on batch means (below: on the series itself)


def geyer_time(x: np.ndarray) -> float:
    """Integrated autocorrelation time of ``x`` by Geyer's initial monotone positive sequence (at least 1)."""
    return geyer_sequence(x)[0]


def geyer_sequence(x: np.ndarray) -> tuple[float, float]:
    """Geyer's τ (at least 1) and ``Σ k ρ_k`` over the same lags (the first-order bias of batch means of length
    ``b`` is ``-2 Σ k ρ_k / b`` in τ)."""
    n = len(x)
    if n < 4:
        return 1.0, 0.0
    d = x - x.mean()
    var = float(d @ d) / n
    if var == 0:
        return 1.0, 0.0
    f = np.fft.rfft(d, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n] / (var * n)
    tau, prev, moment = -1.0, math.inf, 0.0
    for k in range(0, n - 1, 2):
        pair = acf[k] + acf[k + 1]
        if pair <= 0:
            break
        pair = min(pair, prev)  # initial monotone sequence
        tau += 2 * pair
        moment += k * acf[k] + (k + 1) * acf[k + 1]
        prev = pair
    return max(1.0, tau), max(0.0, moment)


def _batch_means(x: np.ndarray, batches: int) -> tuple[np.ndarray, int]:
    """Means of ``batches`` consecutive batches of ``x`` (bool or float, no float copy of ``x``) and their size."""
    b = len(x) // batches
    return x[: batches * b].reshape(batches, b).mean(axis=1, dtype=float), b


def _variance(x: np.ndarray) -> float:
    if x.dtype == np.bool_:  # an indicator: p (1 - p), without a float copy
        p = float(np.count_nonzero(x)) / len(x)
        return p * (1 - p)
    return float(np.var(x))


def integrated_autocorrelation_time(x: np.ndarray) -> float:
    """τ = 1 + 2 Σ ρ_k, summed by Geyer's initial positive sequence (τ = 1 for independent data).

    Series longer than 262,144 samples (2^18) are first averaged in consecutive batches of ``b``
    (so that 65,536 to 131,072 remain): then ``τ = b · var(batch means) · τ_means / var(x)``, the
    identity between the long-run variances of the series and of its batch means, which keeps the
    cost linear and the memory at that of the batch means.
    """
    x = np.asarray(x)
    n = len(x)
    if n <= _EXACT_ACF_MAX:
        return geyer_time(np.asarray(x, dtype=float))
    var = _variance(x)
    if var == 0:
        return 1.0
    size = -(-n // (_EXACT_ACF_MAX // 2))  # batch length that leaves 2^16 to 2^17 batches
    means, b = _batch_means(x, n // size)
    return max(1.0, b * float(np.var(means)) * geyer_time(means) / var)


_BATCHES = 20


def batch_means_time(x: np.ndarray, batches: int = _BATCHES) -> float:
    """Autocorrelation time from the variance of ``batches`` batch means (1 when batches are too short)."""
    x = np.asarray(x)
    if x.dtype != np.bool_ or len(x) <= _EXACT_ACF_MAX:  # long indicators stay bool: no float copy
        x = np.asarray(x, dtype=float)
    b = len(x) // batches
    var = _variance(x) if len(x) else 0.0
    if b < 2 or var == 0:
        return 1.0
    means, b = _batch_means(x, batches)
    return max(1.0, b * means.var(ddof=1) / var)


_OBM_BATCHES = 10  # overlapping batches are n / 10 long
_OBM_DF = 1.5 * (_OBM_BATCHES - 1)  # degrees of freedom of that variance estimate (Meketon & Schmeiser)


def overlapping_batch_means_time(x: np.ndarray, batches: int = _OBM_BATCHES) -> float:
    """Autocorrelation time from overlapping batch means of length ``n // batches`` (1 when too short).

    Every window of that length, one per start, not only disjoint ones: the variance estimate has
    about 1.5× the degrees of freedom of disjoint batch means of the same length.
    """
    x = np.asarray(x)
    n = len(x)
    b = n // batches
    var = _variance(x if x.dtype == np.bool_ else np.asarray(x, dtype=float)) if n else 0.0
    if b < 2 or var == 0:
        return 1.0
    c = np.empty(n + 1)
    c[0] = 0.0
    np.cumsum(x, dtype=float, out=c[1:])
    sums = c[b:] - c[:-b]
    sums -= b * (c[-1] / n)  # window sums about the mean
    return max(1.0, float(sums @ sums) / (n - b + 1) / b / var * n / (n - b))


# tuning of the indicator's autocorrelation time (checked on bench/percentile_coverage.py's AR(1) grid)
# The rules below were chosen on bench/percentile_coverage.py's grid (AR(1) series, phi up to 0.9, n from 300
# to 20,000, p50/p90/p99; docs/methods.md has the figures).
BATCH_TAUS = 20.0  # overlapping batches span this many pilot autocorrelation times beyond the first
MIN_BATCHES = 8  # ... but the series holds at least this many batch lengths
OBM_DF = 1.5  # degrees of freedom per batch length of overlapping batch means (Meketon & Schmeiser)
EVENT_DF = 0.7  # weight of the events' count in an indicator's degrees of freedom (see autocorrelation_time)
DECIDE_ALPHA = 0.05  # a percentile is estimable when the (1 - DECIDE_ALPHA) upper bound on tau allows it
SLACK_POWER = 3.5  # how fast an interval's width returns to the point estimate as the decision's slack grows
TAIL_Q = 0.95  # quantiles at least this far out draw their far bound with ...
TAIL_WEIGHT = 0.5  # ... the geometric mean of tau and its upper bound raised to this weight


@dataclass(frozen=True)
class AutocorrelationTime:
    """The integrated autocorrelation time of a series, with the uncertainty of its estimate.

    Attributes
    ----------
    tau : float
        Point estimate (1 for independent samples), from overlapping batch means.
    df : float
        Degrees of freedom of the long-run variance behind it (about 1.5 (n / batch - 1)).
    upper : float
        One-sided upper confidence bound at ``1 - DECIDE_ALPHA`` (chi-square on ``df``).
    batch : int
        Batch length, samples: about :data:`BATCH_TAUS` pilot autocorrelation times, at least n^(1/3).
    """

    tau: float
    df: float
    upper: float
    batch: int

    def effective(self, n: int) -> float:
        """The effective sample size of ``n`` samples at this autocorrelation."""
        return n / self.tau


def autocorrelation_time(series: np.ndarray) -> AutocorrelationTime:
    """τ of ``series`` (in its order) from overlapping batch means whose length grows with a pilot τ.

    Batches must be long against the memory of the series, or batch means underestimate the long-run
    variance (by about ``2 Σ k ρ_k / (τ b)``); and the fewer batches there are, the less the estimate
    is worth.  So the batch length grows with a pilot (Geyer's initial positive sequence, which alone
    truncates a long memory too early): ``n^(1/3) + BATCH_TAUS (pilot - 1)``, at most ``n / MIN_BATCHES``;
    the first-order bias ``2 Σ k ρ_k / b`` is added back from the pilot's lags; τ is the larger of that and
    the pilot.  The estimate carries its degrees of freedom (Meketon & Schmeiser's ``1.5 (n/b - 1)``, fewer
    for the indicator of a rare event): intervals use a t quantile on them, and the decision to give an
    interval uses a chi-square upper confidence bound on τ.
    """
    x = np.asarray(series)
    n = len(x)
    if n < 8 or _variance(x if x.dtype == np.bool_ else np.asarray(x, dtype=float)) == 0:
        return AutocorrelationTime(1.0, 0.0 if n < 8 else math.inf, 1.0 if n >= 8 else math.inf, 1)
    if n <= _EXACT_ACF_MAX:
        pilot, moment = geyer_sequence(np.asarray(x, dtype=float))
    else:  # long: batches are then long against any memory Geyer's sequence sees, and the bias small
        pilot, moment = integrated_autocorrelation_time(x), 0.0
    b = int(min(max(2, n // MIN_BATCHES), math.ceil(BATCH_TAUS * (pilot - 1) + n ** (1 / 3))))
    # batch means of length b fall short of tau by about 2 Σ k ρ_k / b: added back from the pilot's lags
    obm = overlapping_batch_means_time(x, batches=max(1, n // b)) + 2 * moment / b
    tau = max(1.0, obm, pilot)
    df = max(1.0, OBM_DF * (n / b - 1))
    if x.dtype == np.bool_:
        # an indicator of a rare event: its variance is known only as well as its events are counted, whose
        # relative variance is about tau / events on top of the batch means' 2 / df
        p = float(np.count_nonzero(x)) / n
        events = n * min(p, 1 - p)
        if events > 0:
            df = max(1.0, 1.0 / (1.0 / df + EVENT_DF * tau / (2.0 * events)))
    upper = tau * df / float(special.chdtri(df, 1 - DECIDE_ALPHA))
    return AutocorrelationTime(tau, df, upper, b)


def _width_time(tau: AutocorrelationTime, n: int, need: int) -> float:
    """The autocorrelation time an estimable percentile's interval is drawn with.

    The point estimate where the decision to give an interval was easy; towards the upper bound where
    it was close.  Among series whose upper bound barely allowed an interval, those whose estimate ran
    low are over-represented, and their intervals, drawn with the estimate alone, would be too narrow
    (the post-selection bias of a data-driven decision).  With ``s = n / (upper · need) >= 1``
    the slack of the decision, the time is ``tau^(1 - w) · upper^w`` with ``w = 1 / s^SLACK_POWER``.
    """
    if not math.isfinite(tau.upper) or tau.upper <= tau.tau:
        return tau.tau
    slack = max(1.0, n / (tau.upper * need))
    w = slack**-SLACK_POWER
    return float(tau.tau ** (1 - w) * tau.upper**w)


def _indicator_time(x: np.ndarray, q: float | None, at: float | None) -> AutocorrelationTime:
    x = np.asarray(x, dtype=float)
    if q is not None and len(x):
        series = x <= (np.quantile(x, q) if at is None else at)
    else:
        series = x
    return autocorrelation_time(series)


def _ess(x: np.ndarray, q: float | None, at: float | None) -> tuple[float, bool]:
    """Effective sample size (point estimate), and whether batch means set it (always, now)."""
    t = _indicator_time(x, q, at)
    return len(x) / t.tau, True


def samples_needed(tau: AutocorrelationTime | float, q: float) -> int:
    """About how many samples a series with this autocorrelation needs before its ``q``-quantile is estimable.

    The rule of :func:`percentile_cis` (``n / upper(τ) >= min_samples(q)``) solved for ``n``, where the upper
    bound tightens as the series grows (batches and events add degrees of freedom).  The τ planned with is the
    geometric mean of the estimate and its upper bound: a short series' estimate runs low, and a plan made
    from it would fall short.
    """
    need = min_samples(q)
    if not isinstance(tau, AutocorrelationTime):
        return int(math.ceil(need * max(1.0, float(tau))))
    t = max(1.0, math.sqrt(tau.tau * tau.upper) if math.isfinite(tau.upper) else tau.tau)
    events_share = min(q, 1 - q)
    n = need * t
    for _ in range(100):
        b = min(max(2.0, n / MIN_BATCHES), n ** (1 / 3) + BATCH_TAUS * (t - 1))
        df = max(1.0, OBM_DF * (n / b - 1))
        df = max(1.0, 1.0 / (1.0 / df + EVENT_DF * t / (2.0 * n * events_share)))
        nxt = need * t * df / float(special.chdtri(df, 1 - DECIDE_ALPHA))
        if abs(nxt - n) < 1:
            break
        n = nxt
    return int(math.ceil(n))


def effective_sample_size(x: np.ndarray, q: float | None = None, *, at: float | None = None) -> float:
    """Effective sample size of ``x`` (in its order), or of its indicator below the ``q``-quantile.

    ``n / τ`` with τ the larger of Geyer's estimate and the overlapping-batch-means one.  ``at`` is
    the ``q``-quantile of ``x`` when the caller has it already.
    """
    return _ess(x, q, at)[0]


def block_length(x: np.ndarray, q: float | None = None) -> int:
    """Block length for the bootstrap: at least n^(1/3) and twice the autocorrelation time, at most n/4."""
    n = len(x)
    series = (x <= np.quantile(x, q)).astype(float) if q is not None and n else x
    tau = integrated_autocorrelation_time(series)
    return int(max(1, min(n // 4 or 1, math.ceil(max(n ** (1 / 3), 2 * tau)))))


@dataclass(frozen=True)
class PercentileEstimate:
    """A percentile with its interval.

    Attributes
    ----------
    q : float
        The quantile level (0.99 for p99).
    n : int
        Samples.
    n_eff : float
        Effective sample size of the indicator below the estimate.
    estimate, lo, hi : float or None
        The sample percentile (linear interpolation) and the interval's bounds, in the data's unit;
        None when not estimable.
    level : float
        Confidence level of the interval.
    method : str
    estimable : bool
    note : str or None
        Why it is not estimable (and how many samples would do), or a caveat on the interval.
    tau : float or None
        Integrated autocorrelation time of the indicator below the estimate (1: independent samples).
    n_needed : int or None
        Samples this autocorrelation needs for the percentile to be estimable (at most ``n`` when it is).
    """

    q: float
    n: int
    n_eff: float
    estimate: float | None
    lo: float | None
    hi: float | None
    level: float
    method: str
    estimable: bool
    note: str | None = None
    tau: float | None = None
    n_needed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def interval_levels(
    q: float, m: float, alpha: float, df: float = math.inf, n: int | None = None
) -> tuple[float, float, str | None]:
    """Sample-quantile levels of a ``1 - alpha`` interval for the ``q``-quantile from ``m`` effectively
    independent samples, and a note where a bound falls beyond the ``n`` samples' range.

    The fractional order statistics of an independent sample: the level below the true quantile is
    Beta(q (m + 1), (1 - q) (m + 1)) (Hutson 1999); its quantiles at ``alpha/2`` and ``1 - alpha/2`` are
    the bounds' levels, read off the sample by the same interpolation as the estimate.  Unlike whole
    ranks, these are not conservative by the binomial's discreteness.  Where ``m`` itself is estimated
    with ``df`` degrees of freedom, it is divided by ``(t_df / z)²``: a t interval in place of a normal one.
    """
    if math.isfinite(df):
        df = max(df, 0.5)  # no degrees of freedom at all: as good as no information, not a NaN
        m = m / (float(special.stdtrit(df, 1 - alpha / 2)) / float(special.ndtri(1 - alpha / 2))) ** 2
    m = max(m, 1.0) if math.isfinite(m) else 1.0
    a, b = q * (m + 1), (1 - q) * (m + 1)
    lo, hi = float(special.betaincinv(a, b, alpha / 2)), float(special.betaincinv(a, b, 1 - alpha / 2))
    n = int(round(m)) if n is None else n
    note = None
    if lo < 1 / (n + 1):
        note = "lower bound at the sample minimum: its coverage is below the nominal level"
    if hi > n / (n + 1):
        note = "upper bound at the sample maximum: its coverage is below the nominal level"
    return lo, hi, note


def bound_levels(q: float, m: float, alpha: float) -> tuple[float, float, str | None]:
    """:func:`interval_levels` for ``m`` independent samples (kept for the rollup's intervals)."""
    return interval_levels(q, m, alpha)


def _order_bounds(
    x: np.ndarray, q: float, m: float, alpha: float, df: float = math.inf
) -> tuple[float, float, str | None]:
    """Bounds at the levels of :func:`interval_levels`, read off the sample ``x``."""
    p_lo, p_hi, note = interval_levels(q, m, alpha, df, len(x))
    lo, hi = np.quantile(x, [p_lo, p_hi])
    return float(lo), float(hi), note


def ess_widen(alpha: float, df: float = 13.5) -> float:
    """Factor dividing an effective sample size estimated with ``df`` degrees of freedom: ``(t_df / z)²``."""
    return float((special.stdtrit(df, 1 - alpha / 2) / special.ndtri(1 - alpha / 2)) ** 2)


def percentile_ci(
    x: np.ndarray | list[float],
    q: float,
    *,
    level: float = 0.95,
    method: str = "ess",
    n_boot: int = 1000,
    seed: int = 0,
) -> PercentileEstimate:
    """The ``q``-quantile of ``x`` (samples in the order they happened) with a ``level`` interval.

    Parameters
    ----------
    x : array of float
        Samples in time order (the order matters for ``ess`` and ``block``), any unit.
    q : float
        Quantile level in (0, 1).
    level : float
        Confidence level.
    method : {"ess", "order", "block"}
        See the module docstring.
    n_boot : int
        Bootstrap resamples (``block``).
    seed : int
        Seed of the bootstrap.
    """
    return percentile_cis(x, (q,), level=level, method=method, n_boot=n_boot, seed=seed)[0]


def percentile_cis(
    x: np.ndarray | list[float],
    qs: tuple[float, ...] | list[float],
    *,
    level: float = 0.95,
    method: str = "ess",
    n_boot: int = 1000,
    seed: int = 0,
) -> list[PercentileEstimate]:
    """:func:`percentile_ci` for several quantile levels of one sample, reading it fewer times.

    The same numbers as one call per level; on a long sample (tens of millions of inter-token
    latencies) the estimates come from one selection pass and the interval bounds from another,
    instead of a sort per level.
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
    for q in qs:
        if not 0 < q < 1:
            raise ValueError(f"q must be in (0, 1), got {q}")
    arr = np.asarray(x, dtype=float)
    arr = arr[np.isfinite(arr)]
    n = len(arr)
    alpha = 1 - level
    if n == 0:
        return [PercentileEstimate(q, 0, 0.0, None, None, None, level, method, False, "no samples") for q in qs]
    ests = np.quantile(arr, list(qs))
    out: list[PercentileEstimate | None] = [None] * len(qs)
    levels: list[float] = []
    pending: list[tuple[int, float, str | None]] = []  # (position, n_eff, note) of ess/order estimates
    for j, q in enumerate(qs):
        est = float(ests[j])
        need = min_samples(q)
        if method == "order":
            tau = AutocorrelationTime(1.0, math.inf, 1.0, 1)
        else:
            tau = _indicator_time(arr, q, est)
        n_eff = n / tau.tau
        if n / tau.upper < need:
            more = samples_needed(tau, q)
            why = (
                f"not estimable: {n} samples ({n_eff:.0f} effectively independent) where the "
                f"{percentile_name(q)} needs at least {need}; at this correlation (τ ≈ {tau.tau:.1g}) about "
                f"{more:,} samples would do"
            )
            out[j] = PercentileEstimate(q, n, n_eff, None, None, None, level, method, False, why, tau.tau, more)
        elif method == "block":
            lo, hi = _block_bootstrap(arr, q, alpha, n_boot, seed)
            out[j] = PercentileEstimate(
                q, n, n_eff, est, min(lo, est), max(hi, est), level, method, True, None, tau.tau, n
            )
        else:
            p_lo, p_hi, note = interval_levels(q, n / _width_time(tau, n, need), alpha, tau.df, n)
            if max(q, 1 - q) >= TAIL_Q and math.isfinite(tau.upper):
                # the far side of a tail quantile, where a cluster of extremes would have put it, is drawn with
                # a more conservative tau (see the module docstring)
                far = tau.tau ** (1 - TAIL_WEIGHT) * tau.upper**TAIL_WEIGHT
                t_lo, t_hi, _ = interval_levels(q, n / far, alpha, tau.df, n)
                p_hi, p_lo = (max(p_hi, t_hi), p_lo) if q > 0.5 else (p_hi, min(p_lo, t_lo))
            levels += [p_lo, p_hi]
            pending.append((j, n_eff, note))
            out[j] = PercentileEstimate(q, n, n_eff, est, None, None, level, method, True, note, tau.tau, n)
    if pending:
        bounds = np.quantile(arr, levels)
        for i, (j, _n_eff, _note) in enumerate(pending):
            est = float(ests[j])
            lo, hi = float(bounds[2 * i]), float(bounds[2 * i + 1])
            e = out[j]
            assert e is not None
            out[j] = replace(e, lo=min(lo, est), hi=max(hi, est))
    return [e for e in out if e is not None]


def percentile_lower_bound(x: np.ndarray | list[float], q: float, *, level: float = 0.95) -> float | None:
    """A one-sided lower confidence bound (at ``(1 − level)/2``) for the ``q``-quantile, even from few samples.

    The ``ess`` interval's lower end, computed also where the sample is too small for an
    estimate: a bound from Binomial ranks needs far fewer effectively independent samples than
    the estimate does (from about 3 samples for a p90).  None when even that is not possible.
    Useful to show that a percentile is *at least* some value, e.g. that an overloaded phase
    missed a latency bound although its p99 cannot be estimated.
    """
    arr = np.asarray(x, dtype=float)
    arr = arr[np.isfinite(arr)]  # time order kept for the effective sample size
    if len(arr) < 2:
        return None
    alpha = 1 - level
    t = _indicator_time(arr, q, None)
    # a bound that is to hold where the sample is short: the size at the geometric mean of τ and its upper bound,
    # as the planner uses (the upper bound alone would leave an overloaded phase, whose queue only grows, without
    # any bound although every request in it was late)
    m = len(arr) / math.sqrt(t.tau * t.upper) if math.isfinite(t.upper) else 0.0
    if not m >= 1 or special.bdtr(0, int(round(m)), q) >= alpha / 2:  # binom.ppf(alpha / 2, m, q) < 1
        return None
    lo, _, _ = _order_bounds(arr, q, m, alpha, t.df)
    return lo


def circular_block_indices(n: int, block: int, rng: np.random.Generator, reps: int) -> np.ndarray:
    """Index arrays of a circular block bootstrap of ``n`` items: ``reps`` rows of ``n`` indices.

    Each row strings together blocks of ``block`` consecutive indices (wrapping past the end),
    starting at uniform random places, cut to length ``n``.
    """
    k = math.ceil(n / block)
    starts = rng.integers(0, n, size=(reps, k))
    idx = starts[:, :, None] + np.arange(block)
    if block <= n:  # every index is below 2n: one subtraction wraps it, ten times faster than a modulo
        np.subtract(idx, n, out=idx, where=idx >= n)
    else:
        idx %= n
    return idx.reshape(reps, k * block)[:, :n]


def _block_bootstrap(x: np.ndarray, q: float, alpha: float, n_boot: int, seed: int) -> tuple[float, float]:
    n = len(x)
    b = block_length(x, q)
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    step = max(1, 20_000_000 // n)  # resamples per chunk: bounded memory (~160 MB of indices at most)
    for s in range(0, n_boot, step):
        m = min(step, n_boot - s)
        out[s : s + m] = np.quantile(x[circular_block_indices(n, b, rng, m)], q, axis=1, overwrite_input=True)
    lo, hi = np.quantile(out, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def percentile_name(q: float) -> str:
    """``0.99`` -> ``p99``."""
    return f"p{100 * q:g}"
