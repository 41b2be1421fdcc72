"""A run's latency percentiles with confidence intervals, per phase: the table behind the summary.

Samples are read in the order they happened (requests by send time, ITL by
chunk arrival), because the intervals account for their autocorrelation
(:mod:`perfkit.analysis.percentiles`).  Latencies are over successful
requests, warm-up left out, as in :meth:`perfkit.query.Catalog.summary`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from perfkit.analysis.histograms import hist_percentile_cis
from perfkit.analysis.percentiles import PercentileEstimate, percentile_cis, percentile_name
from perfkit.query.catalog import Catalog
from perfkit.query.frames import LATENCY_METRICS, latency_clusters, latency_samples, phase_order, send_spans
from perfkit.query.rollup import LatencyHistogram, check_histograms, read_rollup, rollup_for
from perfkit.store.rollup import ROLLUP_METRICS

__all__ = [
    "LATENCY_METRICS",
    "SamplePlan",
    "latency_clusters",
    "latency_samples",
    "metric_percentiles",
    "percentile_table",
    "sample_plans",
]

_UNIT = {
    "ttft_ms": "requests",
    "e2e_ms": "requests",
    "tpot_ms": "requests",
    "itl_ms": "inter-token gaps",
    "itl_token_ms": "output tokens",
}
_LABEL = {"ttft_ms": "TTFT", "itl_ms": "ITL", "tpot_ms": "TPOT", "e2e_ms": "E2E", "itl_token_ms": "ITL per token"}


def metric_percentiles(
    cat: Catalog,
    run_id: str,
    metric: str,
    qs: tuple[float, ...],
    *,
    level: float = 0.95,
    method: str = "ess",
    by_phase: bool = True,
    histograms: str = "auto",
) -> dict[str, list[PercentileEstimate]]:
    """Per phase (in the order they ran; ``"all"`` with ``by_phase=False``), the estimates of ``metric`` at ``qs``.

    The one place a run's latency percentile is computed: :func:`percentile_table` (the run summary, the report,
    the notebooks) and :func:`perfkit.analysis.slo_table` call it, so that the same question gets the same
    number everywhere.  Deterministic: the samples come in a fixed order and the ``ess`` and ``order`` methods
    draw no random numbers (``block`` draws from a fixed seed).
    """
    check_histograms(histograms)
    path = None
    if method != "block" and metric in ROLLUP_METRICS:
        path = rollup_for(cat.data_dir, run_id, metric, histograms)
    if path is not None:
        hs, phases = read_rollup(path, (metric,))
        hgroups = {p: hs[(metric, p)] for p in phases if (metric, p) in hs}
        if not by_phase:
            hgroups = {"all": LatencyHistogram.concat(list(hgroups.values()))} if hgroups else {}
        return {phase: hist_percentile_cis(h, qs, level=level, method=method) for phase, h in hgroups.items()}
    order = phase_order(cat, run_id)
    per_phase = latency_samples(cat, run_id, metric)
    groups = {p: per_phase[p] for p in order if p in per_phase}
    if not by_phase:
        groups = {"all": np.concatenate(list(groups.values())) if groups else np.array([])}
    return {phase: percentile_cis(x, qs, level=level, method=method) for phase, x in groups.items()}


def percentile_table(
    cat: Catalog,
    run_id: str,
    *,
    metrics: tuple[str, ...] = ("ttft_ms", "itl_ms", "e2e_ms"),
    qs: tuple[float, ...] = (0.5, 0.9, 0.99),
    level: float = 0.95,
    method: str = "ess",
    by_phase: bool = True,
    histograms: str = "auto",
) -> pd.DataFrame:
    """One row per (phase, metric, quantile): estimate, interval, n, effective n, estimable, note.

    With ``by_phase=False`` the phases are pooled (phase ``'all'``), in time order.

    ``histograms``: ``"auto"`` reads a metric with millions of samples from the run's rollup
    (:mod:`perfkit.analysis.histograms`: estimates within one 0.54% bucket, bounds widened to their
    buckets, noted in ``note``) when it has an up-to-date one; ``"always"`` reads the rollup
    (building it if needed); ``"never"`` reads every sample.  The ``block`` method and the
    ``tpot_ms`` metric always read the samples.

    Besides the estimate's fields (:class:`perfkit.analysis.PercentileEstimate`, with ``n_needed``: the
    samples that would make a percentile estimable at the phase's own autocorrelation), ``rate_per_s``: the
    phase's samples per second of sending, with which :func:`sample_plans` turns samples into seconds.
    """
    run_id = cat.require_run(run_id)
    spans = send_spans(cat, run_id)
    total = float(spans["span_s"].sum()) if len(spans) else 0.0
    span = dict(zip(spans["phase"], spans["span_s"], strict=True))
    rows = []
    for metric in metrics:
        per = metric_percentiles(
            cat, run_id, metric, qs, level=level, method=method, by_phase=by_phase, histograms=histograms
        )
        for phase, ests in per.items():
            secs = total if phase == "all" and not by_phase else span.get(phase, 0.0)
            for e in ests:
                rate = e.n / secs if secs > 0 else None
                rows.append({"run_id": run_id, "phase": phase, "metric": metric, **e.to_dict(), "rate_per_s": rate})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SamplePlan:
    """How much more of a phase would make a percentile estimable.

    Attributes
    ----------
    phase, metric : str
    q : float
    n : int
        Samples the phase had.
    n_needed : int
        About how many it would need at its own autocorrelation.
    unit : str
        What a sample is (``requests``, ``inter-token gaps``).
    more_s : float or None
        The extra seconds of sending that would collect them at the phase's rate; None without a rate.
    """

    phase: str
    metric: str
    q: float
    n: int
    n_needed: int
    unit: str
    more_s: float | None

    def __str__(self) -> str:
        name = f"{_LABEL.get(self.metric, self.metric)} {percentile_name(self.q)}"
        more = "" if self.more_s is None else f"; about {self.more_s:,.0f} s more at its rate"
        return (
            f"{name} of phase {self.phase!r} needs about {self.n_needed:,} {self.unit} at this correlation; "
            f"it had {self.n:,}{more}"
        )


def sample_plans(table: pd.DataFrame) -> list[SamplePlan]:
    """The plan for each row of a :func:`percentile_table` (or :func:`perfkit.analysis.slo_table`) that is
    not estimable and has samples: how many it would need and how long that would take at the phase's rate."""
    out = []
    for r in table.to_dict("records"):
        need = r.get("n_needed")
        if r.get("estimable", r.get("estimate_ms") is not None) or need is None or pd.isna(need) or not r["n"]:
            continue
        rate = r.get("rate_per_s")
        more = None if rate is None or pd.isna(rate) or rate <= 0 else max(0.0, (int(need) - int(r["n"])) / rate)
        out.append(
            SamplePlan(
                str(r["phase"]),
                str(r["metric"]),
                float(r["q"]),
                int(r["n"]),
                int(need),
                _UNIT.get(str(r["metric"]), "samples"),
                more,
            )
        )
    return out
