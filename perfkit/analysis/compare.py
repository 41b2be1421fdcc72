"""Did run B regress against run A?  Percentile differences with intervals, one verdict.

For each latency metric and percentile, the relative difference
``Q_B / Q_A − 1`` gets a bootstrap interval: each run is resampled on its
own with a circular block bootstrap over *requests* (blocks of consecutive
requests, each with all its samples: a request's chunk gaps share its fate,
and one slow engine step delays every stream running at the time), and the
interval is the percentile interval of the resampled ratios.  Its bootstrap p-value (twice the smaller
tail mass beyond no change) is adjusted across every metric × percentile
tested with Holm's step-down method, which bounds the chance of any false
alarm in the table at ``alpha``.  A row is *regressed* (or *improved*) when
its adjusted p-value is below ``alpha`` and the change exceeds
``min_effect`` (default 5%): significance says the change is real, the
effect size says it matters.  A percentile is tested only where both runs
can estimate it (:func:`perfkit.analysis.percentile_cis`); elsewhere the row
says how many samples each run would need at its own autocorrelation.

Before any of it, the two runs' workloads are checked
(:mod:`perfkit.analysis.workloads`): a difference of model, API, lengths or
load shape refuses the comparison unless that kind is allowed on purpose.

Against a *history* of runs (:func:`compare_to_history`), each percentile of
the candidate is set against the same percentile of every history run: on
the log scale, the history's mean and standard deviation give a Student-t
prediction interval for one more run of the same kind (the history's spread
already holds each run's sampling noise and the run-to-run variation that
pooling their requests would hide); the same Holm adjustment, minimum effect
and verdicts follow.

References
----------
Holm, S., "A simple sequentially rejective multiple test procedure", *Scandinavian Journal of
Statistics* 6(2), 1979.
Politis, D. N. & Romano, J. P., "A circular block-resampling procedure for stationary data", 1992.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from perfkit.analysis.intervals import latency_clusters
from perfkit.analysis.percentiles import (
    PercentileEstimate,
    block_length,
    circular_block_indices,
    min_samples,
    percentile_cis,
    percentile_name,
)
from perfkit.analysis.workloads import WorkloadDifference, check_workloads
from perfkit.query.catalog import Catalog

__all__ = ["ComparisonResult", "compare_runs", "compare_to_history", "holm"]


def holm(p: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (same order as ``p``; NaN stays NaN)."""
    p = np.asarray(p, dtype=float)
    ok = ~np.isnan(p)
    out = np.full_like(p, np.nan)
    vals = p[ok]
    m = len(vals)
    order = np.argsort(vals)
    adj = np.maximum.accumulate((m - np.arange(m)) * vals[order])
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def _boot_quantiles(
    x: np.ndarray, k: np.ndarray, qs: tuple[float, ...], n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Replicates of the quantiles ``qs`` of ``x`` from a circular block bootstrap over the clusters ``k``.

    ``k`` is each sample's request index (non-decreasing).  Blocks are runs of consecutive requests, at
    least (requests)^(1/3) long and twice the autocorrelation time of the per-request share of samples
    below each quantile.  Returns shape (n_boot, len(qs)).
    """
    n_req = int(k[-1]) + 1
    bounds = np.searchsorted(k, np.arange(n_req + 1))  # samples of request i: bounds[i]:bounds[i+1]
    counts = np.diff(bounds)
    b = 1
    for q in qs:
        share = np.add.reduceat((x <= np.quantile(x, q)).astype(float), bounds[:-1]) / np.maximum(counts, 1)
        b = max(b, block_length(share))
    # A replicate is the original samples, each weighted by how often its request was drawn: its quantiles
    # are read off the cumulative weights over the samples sorted once (numpy's "linear" definition, exactly),
    # instead of gathering and partitioning a new array each time.
    order = np.argsort(x, kind="stable")
    xs, ks = x[order], k[order]
    qa = np.asarray(qs, dtype=float)
    out = np.empty((n_boot, len(qs)))
    for i, reqs in enumerate(circular_block_indices(n_req, b, rng, n_boot)):
        cw = np.cumsum(np.bincount(reqs, minlength=n_req)[ks])
        n = int(cw[-1])
        h = (n - 1) * qa
        lo = np.floor(h)
        pos = np.searchsorted(cw, np.concatenate([lo, np.minimum(lo + 1, n - 1)]), side="right")
        a, z = xs[pos[: len(qa)]], xs[pos[len(qa) :]]
        frac = h - lo
        out[i] = np.where(frac >= 0.5, z - (z - a) * (1 - frac), a + (z - a) * frac)
    return out


@dataclass
class ComparisonResult:
    """The table of :func:`compare_runs` and its verdict.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per metric × percentile: ``a``, ``b`` (ms), ``rel_change`` and its interval
        ``rel_lo``/``rel_hi``, ``p_boot``, ``p_adjusted`` (Holm), ``verdict`` and a ``note`` for rows not
        tested (saying what sample would allow the test).
    verdict : str
        ``regressed`` if any row regressed, else ``improved`` if any improved, else ``no significant change``.
    """

    run_a: str
    run_b: str
    table: pd.DataFrame
    verdict: str
    alpha: float
    min_effect: float
    differences: list[WorkloadDifference] = field(default_factory=list)
    """Differences of workload that were allowed (``allow``): to be read beside the verdict."""

    @property
    def regressed(self) -> bool:
        return self.verdict == "regressed"


def compare_runs(
    cat: Catalog,
    run_a: str,
    run_b: str,
    *,
    metrics: tuple[str, ...] = ("ttft_ms", "itl_ms", "e2e_ms"),
    qs: tuple[float, ...] = (0.5, 0.9, 0.99),
    phase: str | None = None,
    level: float = 0.95,
    alpha: float = 0.05,
    min_effect: float = 0.05,
    n_boot: int = 1000,
    seed: int = 0,
    allow: tuple[str, ...] = (),
) -> ComparisonResult:
    """Compare run B against baseline run A on latency percentiles (lower is better).

    Parameters
    ----------
    cat : Catalog
    run_a, run_b : str
        Baseline and candidate run ids (``latest`` allowed).
    metrics : tuple of str
        Latency metrics (``ttft_ms``, ``itl_ms``, ``tpot_ms``, ``e2e_ms``).
    qs : tuple of float
        Percentiles, as quantile levels.
    phase : str, optional
        Compare one phase present in both runs; default: every non-warm-up request.
    level : float
        Confidence level of the intervals.
    alpha : float
        Family-wise error rate over the whole table (Holm).
    min_effect : float
        Smallest relative change that counts as a regression or improvement (0.05 = 5%).
    n_boot : int
        Bootstrap resamples per run and metric.
    seed : int
    allow : tuple of str
        Kinds of workload difference to accept (:data:`perfkit.analysis.workloads.KINDS`, or ``"all"``);
        any other difference raises :class:`perfkit.analysis.WorkloadMismatchError`.
    """
    run_a, run_b = cat.require_run(run_a), cat.require_run(run_b)
    differences = check_workloads(cat, run_a, run_b, phase=phase, allow=allow)
    rng = np.random.default_rng(seed)
    rows = []
    for metric in metrics:
        (xa, ka), (xb, kb) = (latency_clusters(cat, r, metric, phase) for r in (run_a, run_b))
        ba = _boot_quantiles(xa, ka, qs, n_boot, rng) if len(xa) >= 2 else None
        bb = _boot_quantiles(xb, kb, qs, n_boot, rng) if len(xb) >= 2 else None
        est_a, est_b = percentile_cis(xa, qs), percentile_cis(xb, qs)
        for j, q in enumerate(qs):
            row = {"metric": metric, "q": q, "n_a": len(xa), "n_b": len(xb)}
            short = [(name, e) for name, e in (("A", est_a[j]), ("B", est_b[j])) if not e.estimable]
            if ba is None or bb is None or short:
                row.update(
                    a=float(np.quantile(xa, q)) if len(xa) else None,
                    b=float(np.quantile(xb, q)) if len(xb) else None,
                    p_boot=float("nan"),
                    note=_not_tested(short, q),
                )
                rows.append(row)
                continue
            a, b = float(np.quantile(xa, q)), float(np.quantile(xb, q))
            ratio = bb[:, j] / ba[:, j] - 1
            lo, hi = np.quantile(ratio, [(1 - level) / 2, 1 - (1 - level) / 2])
            p_boot = min(1.0, 2 * min(np.mean(ratio <= 0), np.mean(ratio >= 0)) + 1 / n_boot)
            row.update(a=a, b=b, rel_change=b / a - 1, rel_lo=float(lo), rel_hi=float(hi), p_boot=p_boot, note=None)
            rows.append(row)
    res = _verdicts(pd.DataFrame(rows), run_a, run_b, alpha, min_effect)
    res.differences = differences
    return res


def _not_tested(short: list[tuple[str, PercentileEstimate]], q: float) -> str:
    """What sample would allow the test: each short run's effective size and the samples it would need."""
    parts = []
    for name, e in short:
        if not e.n:
            parts.append(f"run {name} has no samples")
        else:
            need = f"; about {e.n_needed:,} at its correlation would do" if e.n_needed else ""
            parts.append(
                f"run {name} has {e.n:,} samples ({e.n_eff:.0f} effectively independent) where the "
                f"{percentile_name(q)} needs {min_samples(q)} effectively independent{need}"
            )
    return "not tested: " + "; ".join(parts)


def compare_to_history(
    cat: Catalog,
    history: list[str],
    run: str,
    *,
    metrics: tuple[str, ...] = ("ttft_ms", "itl_ms", "e2e_ms"),
    qs: tuple[float, ...] = (0.5, 0.9, 0.99),
    phase: str | None = None,
    level: float = 0.95,
    alpha: float = 0.05,
    min_effect: float = 0.05,
    allow: tuple[str, ...] = (),
) -> ComparisonResult:
    """Compare ``run`` against a history of at least 3 runs of the same kind (lower latency is better).

    ``a`` in the table is the history's geometric mean of the percentile, ``n_a`` the number of history
    runs; ``rel_lo``/``rel_hi`` bound the change at ``level`` (t interval on the log scale with
    ``k − 1`` degrees of freedom, scaled by √(1 + 1/k) for one new run).
    """
    history = [cat.require_run(h) for h in history]
    run = cat.require_run(run)
    if len(history) < 3:
        raise ValueError(f"a history needs at least 3 runs to estimate its spread; got {len(history)}")
    differences: list[WorkloadDifference] = []
    for h in history:  # every history run must measure the candidate's workload
        differences += check_workloads(cat, h, run, phase=phase, allow=allow)
    k = len(history)
    rows = []
    for metric in metrics:
        hist = [latency_clusters(cat, h, metric, phase)[0] for h in history]
        cand = latency_clusters(cat, run, metric, phase)[0]
        for q in qs:
            row = {"metric": metric, "q": q, "n_a": k, "n_b": len(cand)}
            if len(cand) == 0 or any(len(h) == 0 for h in hist):
                row.update(a=None, b=None, p_boot=float("nan"), note="not tested: a run has no samples")
                rows.append(row)
                continue
            logs = np.log([np.quantile(h, q) for h in hist])
            b = float(np.quantile(cand, q))
            m, sd = float(logs.mean()), float(logs.std(ddof=1))
            scale = max(sd, 1e-12) * math.sqrt(1 + 1 / k)
            d = math.log(b) - m
            half = special.stdtrit(k - 1, 1 - (1 - level) / 2) * scale
            p = float(2 * special.stdtr(k - 1, -abs(d) / scale))  # t.sf(|d|/s, k - 1) = stdtr(k - 1, -|d|/s)
            row.update(
                a=math.exp(m),
                b=b,
                rel_change=math.expm1(d),
                rel_lo=math.expm1(d - half),
                rel_hi=math.expm1(d + half),
                p_boot=p,
                note=None,
            )
            rows.append(row)
    res = _verdicts(pd.DataFrame(rows), ",".join(history), run, alpha, min_effect)
    res.differences = list({str(d): d for d in differences}.values())
    return res


def _verdicts(table: pd.DataFrame, run_a: str, run_b: str, alpha: float, min_effect: float) -> ComparisonResult:
    """Holm-adjust the table's p-values and give each row and the whole its verdict."""
    for col in ("rel_change", "rel_lo", "rel_hi"):
        if col not in table:
            table[col] = np.nan
    table["p_adjusted"] = holm(table["p_boot"].to_numpy())
    sig = table["p_adjusted"] < alpha
    table["verdict"] = np.where(
        sig & (table["rel_change"] > min_effect),
        "regressed",
        np.where(
            sig & (table["rel_change"] < -min_effect),
            "improved",
            np.where(table["p_boot"].isna(), "not tested", "no significant change"),
        ),
    )
    verdict = (
        "regressed"
        if (table["verdict"] == "regressed").any()
        else "improved"
        if (table["verdict"] == "improved").any()
        else "no significant change"
    )
    cols = [
        "metric",
        "q",
        "n_a",
        "n_b",
        "a",
        "b",
        "rel_change",
        "rel_lo",
        "rel_hi",
        "p_boot",
        "p_adjusted",
        "verdict",
        "note",
    ]
    return ComparisonResult(run_a, run_b, table[cols], verdict, alpha, min_effect)
