"""A run's latency percentiles with confidence intervals, per phase: the table behind the summary.

Samples are read in the order they happened (requests by send time, ITL by
chunk arrival), because the intervals account for their autocorrelation
(:mod:`perfkit.analysis.percentiles`).  Latencies are over successful
requests, warm-up left out, as in :meth:`perfkit.query.Catalog.summary`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perfkit.analysis.histograms import hist_percentile_cis
from perfkit.analysis.percentiles import percentile_cis
from perfkit.query.catalog import Catalog
from perfkit.query.frames import LATENCY_METRICS, latency_clusters, latency_samples, phase_order
from perfkit.query.rollup import LatencyHistogram, check_histograms, read_rollup, rollup_for
from perfkit.store.rollup import ROLLUP_METRICS

__all__ = ["LATENCY_METRICS", "latency_clusters", "latency_samples", "percentile_table"]


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
    """
    check_histograms(histograms)
    run_id = cat.require_run(run_id)
    rows = []
    order: list[str] | None = None
    for metric in metrics:
        path = None
        if method != "block" and metric in ROLLUP_METRICS:
            path = rollup_for(cat.data_dir, run_id, metric, histograms)
        if path is not None:
            hs, phases = read_rollup(path, (metric,))
            hgroups = {p: hs[(metric, p)] for p in phases if (metric, p) in hs}
            if not by_phase:
                hgroups = {"all": LatencyHistogram.concat(list(hgroups.values()))} if hgroups else {}
            for phase, h in hgroups.items():
                for e in hist_percentile_cis(h, qs, level=level, method=method):
                    rows.append({"run_id": run_id, "phase": phase, "metric": metric, **e.to_dict()})
            continue
        if order is None:
            order = phase_order(cat, run_id)
        per_phase = latency_samples(cat, run_id, metric)
        groups = {p: per_phase[p] for p in order if p in per_phase}
        if not by_phase:
            groups = {"all": np.concatenate(list(groups.values())) if groups else np.array([])}
        for phase, x in groups.items():
            for e in percentile_cis(x, qs, level=level, method=method):
                rows.append({"run_id": run_id, "phase": phase, "metric": metric, **e.to_dict()})
    return pd.DataFrame(rows)
