"""Is a phase in steady state, and is it stable?  Warm-up and ramp-down (MSER-5), then a verdict with evidence.

**Warm-up**: MSER-5 batches the series in fives and picks the truncation
``d`` (at most half the batches) minimising the marginal standard error of
what remains, ``Σ(Z_j − Z̄)² / (k − d)²``; the same on the reversed series
finds a ramp-down.  When the minimum sits at the half-way limit, no steady
state was reached.

**Stability** of the steady part, from windowed statistics: windows of
``window_s`` seconds of sends, by default as many as give each window at
least 10 requests, up to 20; a verdict needs at least 8 windows:

* *trend*: Theil–Sen slope of the log of the windowed median against time,
  with its 95% interval; a trend when the interval excludes 0 and the fitted
  change over the phase exceeds ``max_drift`` (default 10%);
* *dispersion*: the coefficient of variation of the windowed medians
  (``max_cv_p50``, default 0.15) and of the windowed p99 (``max_cv_p99``,
  default 0.30).

The verdict is ``stable``, ``trend``, ``unsteady`` (variation above the
limits), ``no steady state`` (warm-up reaching the MSER limit) or
``too short``, with every figure it rests on.  The limits are engineering
judgements, stated so that they can be changed, not statistical constants.

References
----------
White, K. P., "An effective truncation heuristic for bias reduction in simulation output",
*Simulation* 69(6), 1997; Franklin, W. W. & White, K. P., "Stationarity tests and MSER-5",
Winter Simulation Conference, 2008.
Sen, P. K., "Estimates of the regression coefficient based on Kendall's tau", *JASA* 63, 1968.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from perfkit.query.catalog import Catalog, check_run_id
from perfkit.query.frames import stability_samples

__all__ = ["StabilityVerdict", "mser5", "phase_stability", "stability_table"]


def _tie_sizes(v: np.ndarray) -> np.ndarray:
    _, counts = np.unique(v, return_counts=True)
    return counts[counts > 1]


def theil_sen(y: np.ndarray, x: np.ndarray, alpha: float = 0.95) -> tuple[float, float, float]:
    """The Theil-Sen slope of ``y`` on ``x`` and its ``alpha`` confidence interval (Sen 1968): the median of the
    pairwise slopes, the interval from their order statistics with Kendall's variance corrected for ties.  The
    same figures as ``scipy.stats.theilslopes`` (checked in the tests), without loading ``scipy.stats``."""
    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    dx = x[:, None] - x
    dy = y[:, None] - y
    slopes = np.sort(dy[dx > 0] / dx[dx > 0])
    med = float(np.median(slopes))
    a = 1 - alpha if alpha > 0.5 else alpha
    z = float(special.ndtri(a / 2))
    nt, ny = len(slopes), len(y)
    ties = sum(float(k * (k - 1) * (2 * k + 5)) for k in (*_tie_sizes(x), *_tie_sizes(y)))
    sigma = float(np.sqrt((ny * (ny - 1) * (2 * ny + 5) - ties) / 18.0))
    ru = min(int(np.round((nt - z * sigma) / 2.0)), nt - 1)
    rl = max(int(np.round((nt + z * sigma) / 2.0)) - 1, 0)
    return med, float(slopes[rl]), float(slopes[ru])


def mser5(x: np.ndarray | list[float], batch: int = 5) -> tuple[int, bool]:
    """Samples to drop at the start (a multiple of ``batch``), and whether a steady state was found."""
    x = np.asarray(x, dtype=float)
    k = len(x) // batch
    if k < 4:
        return 0, False
    z = x[: k * batch].reshape(k, batch).mean(axis=1)
    best, best_d = np.inf, 0
    for d in range(k // 2 + 1):
        rest = z[d:]
        m = float(np.sum((rest - rest.mean()) ** 2)) / (k - d) ** 2
        if m < best:
            best, best_d = m, d
    return best_d * batch, best_d < k // 2


@dataclass(frozen=True)
class StabilityVerdict:
    """A phase's steady-state window and stability verdict, with its evidence (times in s since the first send)."""

    phase: str
    metric: str
    verdict: str
    requests: int
    warmup_requests: int
    rampdown_requests: int
    steady_from_s: float | None
    steady_to_s: float | None
    windows: int
    drift: float | None
    drift_lo: float | None
    drift_hi: float | None
    cv_p50: float | None
    cv_p99: float | None
    reasons: str


def phase_stability(
    t_s: np.ndarray,
    x: np.ndarray,
    *,
    phase: str = "",
    metric: str = "",
    window_s: float | None = None,
    max_drift: float = 0.10,
    max_cv_p50: float = 0.15,
    max_cv_p99: float = 0.30,
) -> StabilityVerdict:
    """Verdict for one phase: samples ``x`` (positive, e.g. TTFT ms) sent at ``t_s`` (s), in send order."""
    t_s, x = np.asarray(t_s, dtype=float), np.asarray(x, dtype=float)
    n = len(x)
    warm, found = mser5(x)
    down, found_down = mser5(x[::-1])
    down = down if found_down else 0
    keep = slice(warm, n - down if n - down > warm else n)
    ts, xs = t_s[keep], x[keep]
    base: dict[str, Any] = {
        "phase": phase,
        "metric": metric,
        "requests": n,
        "warmup_requests": warm,
        "rampdown_requests": down,
    }
    if n < 40 or len(xs) < 20:
        return StabilityVerdict(
            **base,
            verdict="too short",
            steady_from_s=None,
            steady_to_s=None,
            windows=0,
            drift=None,
            drift_lo=None,
            drift_hi=None,
            cv_p50=None,
            cv_p99=None,
            reasons=f"{n} requests: at least 40 are needed for a verdict",
        )
    if window_s is None:
        window_s = max(float(ts[-1] - ts[0]), 1e-9) / max(1, min(20, len(xs) // 10)) * (1 + 1e-9)
    win = np.floor((ts - ts[0]) / window_s).astype(int)
    ids = np.unique(win)
    med = np.array([np.median(xs[win == w]) for w in ids])
    p99 = np.array([np.quantile(xs[win == w], 0.99) for w in ids])
    mid = (ids + 0.5) * window_s
    steady = (float(ts[0]), float(ts[-1]))
    if len(ids) < 8:
        return StabilityVerdict(
            **base,
            verdict="too short",
            steady_from_s=steady[0],
            steady_to_s=steady[1],
            windows=len(ids),
            drift=None,
            drift_lo=None,
            drift_hi=None,
            cv_p50=None,
            cv_p99=None,
            reasons=f"{len(ids)} windows of {window_s:.3g} s (at least 10 requests each): at least 8 are needed",
        )
    slope, lo, hi = theil_sen(np.log(med), mid, alpha=0.95)
    span = float(mid[-1] - mid[0])
    drift, drift_lo, drift_hi = (float(np.expm1(v * span)) for v in (slope, lo, hi))
    cv50 = float(np.std(med, ddof=1) / np.mean(med))
    cv99 = float(np.std(p99, ddof=1) / np.mean(p99))
    reasons = []
    if not found:
        reasons.append(f"MSER-5 put the warm-up at its limit (half the phase, {warm} requests): no steady state")
    if (drift_lo > 0 or drift_hi < 0) and abs(drift) > max_drift:
        reasons.append(
            f"trend: the windowed median changes by {100 * drift:+.0f}% over the phase "
            f"(95% interval {100 * drift_lo:+.0f}% to {100 * drift_hi:+.0f}%)"
        )
    if cv50 > max_cv_p50:
        reasons.append(f"windowed medians vary by CV {cv50:.2f} > {max_cv_p50:g}")
    if cv99 > max_cv_p99:
        reasons.append(f"windowed p99 vary by CV {cv99:.2f} > {max_cv_p99:g}")
    verdict = (
        "no steady state"
        if not found
        else "trend"
        if any(r.startswith("trend") for r in reasons)
        else "unsteady"
        if reasons
        else "stable"
    )
    return StabilityVerdict(
        **base,
        verdict=verdict,
        steady_from_s=steady[0],
        steady_to_s=steady[1],
        windows=len(ids),
        drift=drift,
        drift_lo=drift_lo,
        drift_hi=drift_hi,
        cv_p50=cv50,
        cv_p99=cv99,
        reasons="; ".join(reasons) or "no trend, variation within limits",
    )


def stability_table(cat: Catalog, run_id: str, metric: str = "ttft_ms", **kw: float) -> pd.DataFrame:
    """:func:`phase_stability` for every non-warm-up phase of a run (successful requests, in send order)."""
    rid = check_run_id(cat.require_run(run_id))
    if metric not in ("ttft_ms", "e2e_ms", "tpot_ms"):
        raise ValueError(f"metric {metric!r} is not one of ttft_ms, e2e_ms, tpot_ms")
    df = stability_samples(cat, rid, metric)
    rows = [
        asdict(phase_stability(g["t_s"].to_numpy(), g["v"].to_numpy(), phase=str(p), metric=metric, **kw))
        for p, g in df.groupby("phase", sort=False)
    ]
    return pd.DataFrame(rows)
