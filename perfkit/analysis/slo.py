"""Percentile SLOs: whether each phase met them, with confidence, and the most load a sweep sustains.

An SLO here is a bound on a latency percentile, ``TTFT p99 ≤ 200 ms``, as operators and the
seeds' examples state them (per-request SLOs, a request meeting all of its class's bounds, are the
``slo_ok`` column and :meth:`perfkit.query.Catalog.slo`).

- :func:`slo_table` gives, per phase and SLO, the percentile with its interval
  (:func:`perfkit.analysis.percentile_ci`) and a verdict: ``met`` when the whole interval is within
  the bound, ``missed`` when the whole interval is beyond it, ``uncertain`` when it straddles the
  bound (the run is too short or too close to call), ``not estimable`` when the sample cannot
  support the percentile at all.  A failed request counts as an infinitely slow one, so errors
  cannot make a phase look faster.
- :func:`max_sustainable_load` reads a sweep (open-loop phases at increasing rates): the highest
  load at which every SLO is met.  Latency percentiles rise with load, so the capacity lies
  between the highest level that *confidently* meets every SLO and the lowest level that
  *confidently* misses one; that bracket is the confidence interval (each end a one-sided bound at
  ``(1 − level)/2``, Bonferroni over the SLOs), and its lower end is the load one can promise.
  The point estimate interpolates the worst SLO margin, ``max log(percentile / bound)``, linearly
  in load between the last level that meets it and the first that does not.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from perfkit.analysis.intervals import latency_samples, metric_percentiles
from perfkit.analysis.levels import load_levels
from perfkit.analysis.percentiles import PercentileEstimate, percentile_ci, percentile_lower_bound
from perfkit.query.catalog import Catalog
from perfkit.query.frames import phase_order, send_spans

__all__ = ["SLO_PRESETS", "SloCapacity", "SloTarget", "max_sustainable_load", "parse_slos", "slo_table"]

# "itl" is judged per output token: where a chunk carries several tokens, its gap is theirs together, and a
# per-token objective judged on chunk gaps would fail a server whose tokens come in time; "itl_chunk" asks for
# the gaps between chunks as they are
_METRICS = {"ttft": "ttft_ms", "itl": "itl_token_ms", "itl_chunk": "itl_ms", "tpot": "tpot_ms", "e2e": "e2e_ms"}
_LABEL = {"ttft_ms": "TTFT", "itl_token_ms": "ITL", "itl_ms": "ITL per chunk", "tpot_ms": "TPOT", "e2e_ms": "E2E"}
_FAILED_MS = 1e15  # a failed request's latency: beyond any bound, finite so that quantiles stay defined
_SPEC = re.compile(
    r"^\s*(ttft|itl_chunk|itl|tpot|e2e)\s*[_: ]?\s*p(\d+(?:\.\d+)?)\s*(<=|≤|<)\s*"
    r"(\d+(?:\.\d+)?)\s*(ms|s)?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SloTarget:
    """``metric``'s ``q``-quantile must not exceed ``limit_ms``.

    Parameters
    ----------
    metric : {"ttft_ms", "itl_token_ms", "itl_ms", "tpot_ms", "e2e_ms"}
        ``itl_token_ms`` (``itl`` in a spec) is over every output token, each chunk's gap divided over its
        tokens; ``itl_ms`` (``itl_chunk``) over every gap between chunks; the others are per request.
    q : float
        Quantile level in (0, 1), e.g. 0.99.
    limit_ms : float
        The bound, ms.
    """

    metric: str
    q: float
    limit_ms: float

    def __post_init__(self) -> None:
        if self.metric not in _LABEL:
            raise ValueError(f"SLO metric {self.metric!r} is not one of {', '.join(_LABEL)}")
        if not 0 < self.q < 1:
            raise ValueError(f"SLO quantile must be in (0, 1), got {self.q}")
        if not self.limit_ms > 0:
            raise ValueError(f"SLO bound must be > 0 ms, got {self.limit_ms}")

    @classmethod
    def parse(cls, text: str) -> SloTarget:
        """Read ``"ttft_p99<=200ms"``, ``"itl p99 <= 50"``, ``"e2e:p95<=3s"`` (ms unless ``s`` is given)."""
        m = _SPEC.match(text)
        if not m:
            raise ValueError(
                f"cannot read SLO {text!r}: write METRIC_pQ<=BOUND, e.g. 'ttft_p99<=200ms' or "
                f"'e2e_p95<=3s', with METRIC one of {', '.join(_METRICS)}"
            )
        metric, pct, _, bound, unit = m.groups()
        limit = float(bound) * (1000.0 if (unit or "ms").lower() == "s" else 1.0)
        return cls(_METRICS[metric.lower()], float(pct) / 100.0, limit)

    @property
    def label(self) -> str:
        pct = f"{100 * self.q:.3g}"
        return f"{_LABEL[self.metric]} p{pct} ≤ {self.limit_ms:g} ms"


def parse_slos(
    specs: str | list[str] | tuple[str, ...] | tuple[SloTarget, ...] | list[SloTarget],
) -> tuple[SloTarget, ...]:
    """SLO targets from a preset name (see :data:`SLO_PRESETS`), a comma-separated string, or a list."""
    if isinstance(specs, str):
        if specs in SLO_PRESETS:
            return SLO_PRESETS[specs]
        specs = [s for s in specs.split(",") if s.strip()]
    out = tuple(s if isinstance(s, SloTarget) else SloTarget.parse(s) for s in specs)
    if not out:
        raise ValueError("give at least one SLO, e.g. 'ttft_p99<=200ms'")
    return out


#: The seeds' examples of SLOs by kind of user; where they give no percentile, p99 is taken.
SLO_PRESETS: dict[str, tuple[SloTarget, ...]] = {
    "chat": (SloTarget("ttft_ms", 0.99, 200.0), SloTarget("itl_token_ms", 0.99, 50.0)),
    "rag": (
        SloTarget("ttft_ms", 0.99, 300.0),
        SloTarget("itl_token_ms", 0.99, 100.0),
        SloTarget("e2e_ms", 0.99, 3000.0),
    ),
}


def _samples(cat: Catalog, run_id: str, metric: str, class_name: str | None) -> dict[str, np.ndarray]:
    """Per phase, in time order: the metric's samples, failed requests as :data:`_FAILED_MS`."""
    return latency_samples(cat, run_id, metric, class_name=class_name, failed_ms=_FAILED_MS)


def _verdict(est: float | None, lo: float | None, hi: float | None, limit: float) -> str:
    if est is None:
        return "not estimable"
    if hi is not None and hi <= limit:
        return "met"
    if lo is not None and lo > limit:
        return "missed"
    return "uncertain"


def _fmt(v: float | None) -> float | None:
    return None if v is None else (math.inf if v >= _FAILED_MS else v)


def slo_table(
    cat: Catalog,
    run_id: str,
    slos: str | list[str] | tuple[SloTarget, ...] | list[SloTarget],
    *,
    class_name: str | None = None,
    level: float = 0.95,
    method: str = "ess",
) -> pd.DataFrame:
    """One row per (phase, SLO): the percentile (ms) with its interval, the bound, and a verdict.

    Parameters
    ----------
    cat : Catalog
    run_id : str
    slos : preset name, comma-separated specs, or SloTarget list
        See :func:`parse_slos`.
    class_name : str, optional
        Only this user class's requests.
    level : float
        Confidence level of each interval.
    method : {"ess", "order", "block"}
        Interval method (:func:`perfkit.analysis.percentile_ci`).

    Returns
    -------
    pandas.DataFrame
        Columns ``phase, slo, metric, q, limit_ms, n, n_eff, estimate_ms, lo_ms, hi_ms, sample_ms,
        margin, verdict, n_needed, rate_per_s``, in phase order (``n_needed``: about how many samples
        the percentile would need at the phase's autocorrelation, see
        :func:`perfkit.analysis.sample_plans`).  Where a phase has no failed request and no class is
        picked, the figures are those of :func:`perfkit.analysis.percentile_table`, from the same code.
        ``estimate_ms`` is null where the percentile is not
        estimable; ``sample_ms`` is the sample quantile all the same (use it with care), and
        ``margin`` is ``sample_ms / limit_ms`` (above 1: beyond the bound), infinite where failed
        requests decide the percentile.  Where the percentile is not estimable, ``lo_ms`` may still
        hold a lower bound (:func:`perfkit.analysis.percentiles.percentile_lower_bound`), which can
        be enough to call the SLO missed.
    """
    targets = parse_slos(slos)
    run_id = cat.require_run(run_id)
    order = phase_order(cat, run_id, include_warmup=False)
    per_metric = {t.metric: _samples(cat, run_id, t.metric, class_name) for t in targets}
    shared: dict[str, dict[str, list[PercentileEstimate]]] = {}
    if class_name is None:
        # the run summary's own figures (one code path): for every phase without a failed request the samples
        # are the same, so the estimate and its interval must be too
        for metric in {t.metric for t in targets}:
            qs = tuple(sorted({t.q for t in targets if t.metric == metric}))
            shared[metric] = {
                ph: list(ests)
                for ph, ests in metric_percentiles(cat, run_id, metric, qs, level=level, method=method).items()
            }
    sp = send_spans(cat, run_id)
    spans = dict(zip(sp["phase"], sp["span_s"], strict=True))
    rows = []
    for phase in order:
        for t in targets:
            x = per_metric[t.metric].get(phase, np.array([]))
            failed = bool(len(x)) and bool((x >= _FAILED_MS).any())
            same = None if failed else next((e for e in shared.get(t.metric, {}).get(phase, []) if e.q == t.q), None)
            e = same or percentile_ci(x, t.q, level=level, method=method)
            est, lo, hi = e.estimate, e.lo, e.hi
            verdict = _verdict(est, lo, hi, t.limit_ms)
            if est is None and len(x):
                # too few samples for an estimate, but a lower bound may already be beyond the limit
                lb = percentile_lower_bound(x, t.q, level=level)
                if lb is not None and lb > t.limit_ms:
                    verdict, lo = "missed", lb
            sample = float(np.quantile(x, t.q)) if len(x) else None
            span = spans.get(phase, 0.0)
            rows.append(
                {
                    "phase": phase,
                    "slo": t.label,
                    "metric": t.metric,
                    "q": t.q,
                    "limit_ms": t.limit_ms,
                    "n": len(x),
                    "n_eff": e.n_eff,
                    "estimate_ms": _fmt(est),
                    "lo_ms": _fmt(lo),
                    "hi_ms": _fmt(hi),
                    "sample_ms": _fmt(sample),
                    "margin": None if (fs := _fmt(sample)) is None else fs / t.limit_ms,
                    "verdict": verdict,
                    "n_needed": e.n_needed,
                    "rate_per_s": len(x) / span if span > 0 else None,
                }
            )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SloCapacity:
    """The highest load meeting every SLO, from a sweep.

    Attributes
    ----------
    estimate : float or None
        Interpolated load (the sweep's unit: requests/s) where the worst SLO margin crosses 1;
        None when no level meets every SLO.
    lo, hi : float
        The confidence bracket: the highest level confidently meeting every SLO below the first
        level confidently missing one (0 when none), and that first level (inf when none).
    level : float
        Confidence of the bracket.
    binding : str or None
        The SLO that fails first (the one with the worst margin at the first failing level).
    levels : pandas.DataFrame
        Per load level: ``load, phase, worst_log_margin, verdict, binding`` and each SLO's estimate and bounds.
    """

    estimate: float | None
    lo: float
    hi: float
    level: float
    binding: str | None
    levels: pd.DataFrame = field(repr=False)
    unit: str = "req/s"

    def __str__(self) -> str:
        u = self.unit
        hi = "∞" if math.isinf(self.hi) else f"{self.hi:g} {u}"
        est = "none" if self.estimate is None else f"{self.estimate:.1f} {u}"
        if math.isinf(self.hi) and self.estimate is not None and self.estimate >= self.levels["load"].max():
            est = f"at least {est} (the sweep's highest rate met them)"
        return f"max load meeting the SLOs: {est} [{self.lo:g} {u}, {hi}] ({100 * self.level:.0f}% bracket)" + (
            f"; {self.binding} gives way first" if self.binding else ""
        )


def _log_margin(m: float | None) -> float:
    if m is None or (isinstance(m, float) and math.isnan(m)):
        return math.nan
    return math.inf if math.isinf(m) else math.log(m)


def _interpolate(loads: np.ndarray, worst: np.ndarray) -> float | None:
    """Load where ``worst`` (log margins, rising with load) first crosses 0, linearly between levels."""
    above = np.flatnonzero(worst > 0)
    if len(above) == 0:
        return float(loads[-1])  # every level met: at least the highest
    i = int(above[0])
    if i == 0:
        return None
    x0, x1, y0, y1 = loads[i - 1], loads[i], worst[i - 1], worst[i]
    if not np.isfinite(y1):
        return float(x0)  # the next level failed outright: nothing to interpolate with
    return float(x0 + (x1 - x0) * (0 - y0) / (y1 - y0))


def max_sustainable_load(
    cat: Catalog,
    run_id: str,
    slos: str | list[str] | tuple[SloTarget, ...] | list[SloTarget],
    *,
    level: float = 0.95,
    load: str = "target",
    class_name: str | None = None,
    method: str = "ess",
) -> SloCapacity:
    """The highest load of a sweep at which every SLO holds, with a confidence bracket.

    Parameters
    ----------
    cat : Catalog
    run_id : str
        A run whose open-loop phases step through rates (a sweep, a step ramp, or any phases with
        a requested rate); closed-loop and warm-up phases are ignored.
    slos : preset name, comma-separated specs, or SloTarget list
    level : float
        Confidence of the bracket (see the module docstring).
    load : {"target", "achieved"}
        The load axis: the phase's requested rate, or the rate the client actually sent.
    class_name : str, optional
        Only this user class's requests count.
    method : str
        Percentile interval method.

    Raises
    ------
    perfkit.analysis.NotASweepError
        When the run is not a sweep: its open-loop phases are not two or more steady rates rising from
        phase to phase, untouched by injected events (:func:`perfkit.analysis.load_levels`).
    """
    if load not in ("target", "achieved"):
        raise ValueError(f"load must be 'target' or 'achieved', got {load!r}")
    targets = parse_slos(slos)
    k = len(targets)
    each = 1 - (1 - level) / k  # two-sided per SLO: each end of the bracket is one-sided at (1-level)/2 overall
    levels = load_levels(cat, run_id, minimum=2, purpose="the maximum load meeting SLOs")
    tab = slo_table(cat, run_id, targets, class_name=class_name, level=each, method=method)
    col = "load" if load == "target" else "achieved_rate_rps"
    loads = dict(zip(levels.frame["phase"], levels.frame[col], strict=True))
    tab = tab[tab["phase"].isin(loads)]
    rows = []
    for phase, g in tab.groupby("phase", sort=False):
        logm = np.array([_log_margin(m) for m in g["margin"]], dtype=float)
        verdicts = list(g["verdict"])
        verdict = "missed" if "missed" in verdicts else "met" if all(v == "met" for v in verdicts) else "uncertain"
        known = ~np.isnan(logm)
        if verdict == "missed" and not (logm[known] > 0).any():
            logm[:] = np.where(known, logm, math.inf)  # missed on a lower percentile: the bound is beyond reach
            known = ~np.isnan(logm)
        row = {
            "load": float(loads[phase]),
            "phase": phase,
            "worst_log_margin": float(logm[known].max()) if known.any() else math.nan,
            "verdict": verdict,
            "binding": g["slo"].iloc[int(np.argmax(np.where(known, logm, -np.inf)))],
        }
        for _, r in g.iterrows():
            row[f"{r['slo']} (ms)"] = r["estimate_ms"]
            row[f"{r['slo']} lo"] = r["lo_ms"]
            row[f"{r['slo']} hi"] = r["hi_ms"]
        rows.append(row)
    lv = pd.DataFrame(rows).sort_values("load", kind="stable").reset_index(drop=True)
    x = lv["load"].to_numpy(float)
    fails = np.flatnonzero(lv["verdict"].to_numpy() == "missed")
    hi = float(x[fails[0]]) if len(fails) else math.inf
    ok = np.flatnonzero((lv["verdict"].to_numpy() == "met") & (x < hi))
    lo = float(x[ok[-1]]) if len(ok) else 0.0
    worst = lv["worst_log_margin"].to_numpy(float)
    known = ~np.isnan(worst)
    est = _interpolate(x[known], worst[known]) if known.any() else None
    if est is not None:
        est = min(max(est, lo), hi)
    first_bad = np.flatnonzero(worst > 0)
    binding = str(lv["binding"].iloc[first_bad[0]]) if len(first_bad) else None
    return SloCapacity(est, lo, hi, level, binding, lv, levels.unit)


def capacity_replicates(
    cat: Catalog,
    run_id: str,
    slos: str | list[str] | tuple[SloTarget, ...] | list[SloTarget],
    *,
    n_boot: int = 500,
    seed: int = 0,
    class_name: str | None = None,
) -> np.ndarray:
    """Bootstrap replicates of :func:`max_sustainable_load`'s point estimate (req/s).

    Each replicate resamples every level's samples in circular blocks (length ≈ n^(1/3), so
    autocorrelation within a level is kept), recomputes each SLO's sample quantile, and
    interpolates the crossing again.  This is the estimate's sampling spread, not the error of
    interpolating between levels: the bracket of :func:`max_sustainable_load` covers that.
    A replicate where no level meets the SLOs is NaN.
    """
    from perfkit.analysis.percentiles import circular_block_indices

    targets = parse_slos(slos)
    fid = cat.fidelity(run_id).df()
    fid = fid[fid["target_rate_rps"].notna()]
    loads = dict(zip(fid["phase"], fid["target_rate_rps"].astype(float)))
    per = {t: _samples(cat, run_id, t.metric, class_name) for t in targets}
    phases = sorted((p for p in loads if all(p in per[t] and len(per[t][p]) for t in targets)), key=lambda p: loads[p])
    if len(phases) < 2:
        raise ValueError(f"run {run_id} has fewer than two open-loop phases with samples; nothing to bootstrap")
    rng = np.random.default_rng(seed)
    worst = np.full((n_boot, len(phases)), -np.inf)
    for j, p in enumerate(phases):
        for t in targets:
            x = per[t][p]
            idx = circular_block_indices(len(x), max(1, round(len(x) ** (1 / 3))), rng, n_boot)
            q = np.quantile(x[idx], t.q, axis=1, overwrite_input=True)  # a temporary: no copy
            worst[:, j] = np.maximum(
                worst[:, j], np.log(np.minimum(q, _FAILED_MS) / t.limit_ms) + np.where(q >= _FAILED_MS, np.inf, 0.0)
            )
    x = np.array([loads[p] for p in phases])
    return np.array([np.nan if (e := _interpolate(x, w)) is None else e for w in worst])
