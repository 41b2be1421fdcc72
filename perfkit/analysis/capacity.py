"""Saturation from a sweep: the knee of latency against load, and the Universal Scalability Law.

Both take one point per load level of a sweep (a phase of a ramp or sweep scenario, or one run per
level): the offered load (concurrency or requests/s) and what was measured there.

- :func:`knee` fits two straight lines joined at a break (continuous, least squares over every
  candidate break between the levels, then refined), so the break is where latency stops being
  flat and starts to climb; its interval comes from a residual bootstrap.
- :func:`usl_fit` fits Gunther's Universal Scalability Law to throughput against concurrency,
  ``X(N) = λN / (1 + σ(N − 1) + κN(N − 1))``: λ the throughput of one user, σ contention, κ
  coherency (the cost that makes throughput fall past its peak at ``N* = √((1 − σ)/κ)``), with
  intervals from the fit's covariance.

References
----------
Gunther, N. J., *Guerrilla Capacity Planning*, Springer, 2007 (ch. 4-6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import optimize, stats

from perfkit.analysis.levels import load_levels
from perfkit.query.catalog import Catalog

__all__ = ["KneeFit", "UslFit", "knee", "run_knee", "run_usl", "usl_fit"]


@dataclass(frozen=True)
class KneeFit:
    """A continuous two-segment fit: the break ``x0`` with its interval, and each segment's slope."""

    x0: float
    x0_lo: float
    x0_hi: float
    y0: float
    slope_before: float
    slope_after: float
    level: float
    unit: str = ""

    def __str__(self) -> str:
        u = f" {self.unit}" if self.unit else ""
        return (
            f"knee at {self.x0:.1f}{u} [{self.x0_lo:.1f}{u}, {self.x0_hi:.1f}{u}] ({100 * self.level:.0f}% interval; "
            f"slope {self.slope_before:.3g} before, {self.slope_after:.3g} after, per{u or ' unit of load'})"
        )


def _two_segments(x: np.ndarray, y: np.ndarray, x0: float) -> tuple[float, np.ndarray]:
    """Least squares of y on [1, x, max(x − x0, 0)]: residual sum of squares and coefficients."""
    a = np.column_stack([np.ones_like(x), x, np.clip(x - x0, 0, None)])
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    r = y - a @ coef
    return float(r @ r), coef


def _sse_grid(x: np.ndarray, ys: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Residual sums of squares of the two-segment fit of each row of ``ys`` at each break: (rows, breaks)."""
    a = np.stack([np.column_stack([np.ones_like(x), x, np.clip(x - g, 0, None)]) for g in grid])  # (G, n, 3)
    ata = np.einsum("gni,gnj->gij", a, a) + 1e-12 * np.eye(3)
    aty = np.einsum("gni,bn->gbi", a, ys)  # (G, B, 3)
    coef = np.linalg.solve(ata[:, None], aty[..., None])[..., 0]  # (G, B, 3)
    explained = np.einsum("gbi,gbi->gb", aty, coef)
    return ((ys**2).sum(axis=1)[None, :] - explained).T


def _grid(x: np.ndarray) -> np.ndarray:
    xs = np.unique(x)
    return np.linspace(xs[1], xs[-2], 200) if len(xs) > 3 else xs[1:-1]


def _best_break(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    grid = _grid(x)
    sse = _sse_grid(x, y[None, :], grid)[0]
    g0 = grid[int(np.argmin(sse))]
    step = (grid[1] - grid[0]) if len(grid) > 1 else 1.0
    res = optimize.minimize_scalar(lambda g: _two_segments(x, y, g)[0], bounds=(g0 - step, g0 + step), method="bounded")
    x0 = float(res.x) if res.fun <= sse.min() else float(g0)
    return x0, _two_segments(x, y, x0)[1]


def knee(
    load: np.ndarray | list[float],
    latency: np.ndarray | list[float],
    *,
    level: float = 0.95,
    n_boot: int = 500,
    seed: int = 0,
) -> KneeFit:
    """Where latency turns from flat to climbing: a continuous two-segment fit over a sweep.

    Parameters
    ----------
    load : array
        Offered load per level (requests/s or users); at least 5 distinct levels.
    latency : array
        The latency measured there (for example the level's TTFT p50 or p99, or its log).
    level : float
        Confidence level of the break's interval (residual bootstrap).
    n_boot : int
    seed : int
    """
    x, y = np.asarray(load, dtype=float), np.asarray(latency, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(np.unique(x)) < 5:
        raise ValueError(f"a knee needs at least 5 distinct load levels, got {len(np.unique(x))}")
    x0, coef = _best_break(x, y)
    fitted = np.column_stack([np.ones_like(x), x, np.clip(x - x0, 0, None)]) @ coef
    resid = y - fitted
    rng = np.random.default_rng(seed)
    ys = fitted[None, :] + rng.choice(resid, (n_boot, len(resid)))
    grid = _grid(x)
    boots = grid[np.argmin(_sse_grid(x, ys, grid), axis=1)]  # the grid's resolution: 1/200 of the range
    lo, hi = np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2])
    return KneeFit(
        x0, float(lo), float(hi), float(coef[0] + coef[1] * x0), float(coef[1]), float(coef[1] + coef[2]), level
    )


@dataclass(frozen=True)
class UslFit:
    """Universal Scalability Law parameters with standard errors and intervals, and the peak they imply."""

    lam: float
    sigma: float
    kappa: float
    se: tuple[float, float, float]
    ci: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    n_peak: float
    x_peak: float
    level: float

    def predict(self, n: np.ndarray | list[float]) -> np.ndarray:
        """Throughput the fit predicts at concurrency ``n``."""
        return _usl(np.asarray(n, dtype=float), self.lam, self.sigma, self.kappa)


def _usl(n: np.ndarray, lam: float, sigma: float, kappa: float) -> np.ndarray:
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def usl_fit(
    concurrency: np.ndarray | list[float], throughput: np.ndarray | list[float], *, level: float = 0.95
) -> UslFit:
    """Fit the Universal Scalability Law to throughput measured at several concurrencies.

    Parameters
    ----------
    concurrency : array
        Users (closed loop) or requests in flight, per level; at least 4 distinct levels.
    throughput : array
        Completed requests (or tokens) per second at each level.
    level : float
        Confidence level of the parameters' intervals (t quantiles on the fit's covariance).
    """
    n, x = np.asarray(concurrency, dtype=float), np.asarray(throughput, dtype=float)
    keep = np.isfinite(n) & np.isfinite(x) & (n > 0)
    n, x = n[keep], x[keep]
    if len(np.unique(n)) < 4:
        raise ValueError(f"a USL fit needs throughput at 4 or more concurrencies, got {len(np.unique(n))}")
    lam0 = float(np.max(x[n == n.min()] / n.min()))
    (lam, sig, kap), cov = optimize.curve_fit(
        _usl, n, x, p0=(lam0, 0.05, 0.001), bounds=([0, 0, 0], [np.inf, 1, 1]), maxfev=20000
    )
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    t = stats.t.ppf(0.5 + level / 2, max(1, len(n) - 3))
    lo, hi = (lam, sig, kap) - t * se, (lam, sig, kap) + t * se
    ci = ((float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1])), (float(lo[2]), float(hi[2])))
    n_peak = math.sqrt((1 - sig) / kap) if kap > 0 else math.inf
    x_peak = float(_usl(np.array(n_peak), lam, sig, kap)) if math.isfinite(n_peak) else math.inf
    return UslFit(
        float(lam), float(sig), float(kap), (float(se[0]), float(se[1]), float(se[2])), ci, n_peak, x_peak, level
    )


def run_knee(
    cat: Catalog, run_id: str, metric: str = "ttft_p50_ms", *, load: str = "achieved", log: bool = True, **kw: Any
) -> KneeFit:
    """:func:`knee` of one sweep run: ``metric`` of its summary (its log with ``log``) against each level's load.

    ``load``: ``"achieved"`` (the rate the client sent) or ``"target"`` (the rate asked for).  Refuses a run that
    is not a sweep of five or more rising rates (:class:`perfkit.analysis.NotASweepError`, naming the scenario
    to run).
    """
    levels = load_levels(cat, run_id, minimum=5, purpose="a knee")
    summary = cat.summary(levels.run_id).df()
    lv = levels.frame.merge(summary[["phase", metric]], on="phase")
    y = lv[metric].to_numpy(dtype=float)
    x = (lv["achieved_rate_rps"] if load == "achieved" else lv["load"]).to_numpy(dtype=float)
    fit = knee(x, np.log(y) if log else y, **kw)
    return replace(fit, unit=levels.unit)


def run_usl(cat: Catalog, run_id: str, **kw: Any) -> UslFit:
    """:func:`usl_fit` of one closed-loop sweep run: completed requests/s against users, one point per level.

    Refuses a run that is not four or more closed-loop phases of rising users
    (:class:`perfkit.analysis.NotASweepError`).
    """
    levels = load_levels(cat, run_id, axis="users", minimum=4, purpose="a USL fit")
    summary = cat.summary(levels.run_id).df()
    lv = levels.frame.merge(summary[["phase", "request_throughput_rps"]], on="phase")
    return usl_fit(lv["load"].to_numpy(dtype=float), lv["request_throughput_rps"].to_numpy(dtype=float), **kw)
