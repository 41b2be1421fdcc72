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
from perfkit.query.catalog import Catalog, check_run_id
from perfkit.query.rollup import LatencyHistogram, check_histograms, read_rollup, rollup_for
from perfkit.store.rollup import ROLLUP_METRICS

__all__ = ["LATENCY_METRICS", "latency_clusters", "latency_samples", "percentile_table"]

LATENCY_METRICS = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms")


def latency_samples(cat: Catalog, run_id: str, metric: str, phase: str | None = None, *,
                    class_name: str | None = None, failed_ms: float | None = None) -> dict[str, np.ndarray]:
    """The samples of ``metric`` per phase (or of one phase), in time order, as numpy arrays (ms).

    ``class_name`` keeps one user class's requests.  With ``failed_ms``, a failed request (not a
    cancelled one: the client chose that) counts as a sample of that value, for SLO checks where a
    failure is a miss; per-request metrics only.
    """
    if metric not in LATENCY_METRICS:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(LATENCY_METRICS)}")
    rid = check_run_id(run_id)
    where = f"r.run_id = '{rid}' AND NOT r.warmup"
    if phase is not None:
        where += " AND r.phase = '" + phase.replace("'", "''") + "'"
    if class_name is not None:
        where += " AND r.class_name = '" + class_name.replace("'", "''") + "'"
    if metric == "itl_ms":
        sql = (f"SELECT r.phase_index AS p, c.itl_ms AS v FROM chunks c JOIN requests r USING (run_id, request_id) "
               f"WHERE {where} AND r.ok AND c.itl_ms IS NOT NULL ORDER BY c.arrival_ns")
    elif failed_ms is not None:
        sql = (f"SELECT r.phase_index AS p, CASE WHEN r.ok THEN r.{metric} ELSE {float(failed_ms)!r} END AS v "
               f"FROM requests r WHERE {where} AND coalesce(r.error_kind, '') <> 'cancelled' "
               f"AND (NOT r.ok OR r.{metric} IS NOT NULL) ORDER BY r.sent_ns NULLS LAST, r.request_id")
    else:
        sql = (f"SELECT r.phase_index AS p, r.{metric} AS v FROM requests r WHERE {where} AND r.ok "
               f"AND r.{metric} IS NOT NULL ORDER BY r.sent_ns")
    # numpy columns, the phase as its index: no Python object per sample (a run can hold 10^8 chunks)
    cols = cat.sql(sql).fetchnumpy()
    idx, v = np.asarray(cols["p"]), np.asarray(cols["v"], dtype=float)
    names = dict(cat.sql(f"SELECT DISTINCT phase_index, phase FROM requests WHERE run_id = '{rid}'").fetchall())
    present = np.flatnonzero(np.bincount(idx)) if len(idx) else np.array([], dtype=np.int64)
    by_name: dict[str, list[int]] = {}
    for i in sorted(present, key=lambda i: int(np.argmax(idx == i))):  # in the order their samples start
        by_name.setdefault(str(names[int(i)]), []).append(int(i))
    out: dict[str, np.ndarray] = {}
    for name, members in by_name.items():
        out[name] = v if len(present) == len(members) else v[np.isin(idx, members)]
    return out


def latency_clusters(cat: Catalog, run_id: str, metric: str, phase: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every non-warm-up sample of ``metric`` with the index of the request it belongs to.

    Returns ``(values, request_index)``, both in request send order (chunks of a request together,
    in arrival order); ``request_index`` counts 0, 1, ... over the requests that have samples.
    For per-request metrics each request is its own one-sample cluster.
    """
    if metric not in LATENCY_METRICS:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(LATENCY_METRICS)}")
    where = f"r.run_id = '{check_run_id(run_id)}' AND r.ok AND NOT r.warmup"
    if phase is not None:
        where += " AND r.phase = '" + phase.replace("'", "''") + "'"
    if metric == "itl_ms":
        sql = (f"SELECT c.itl_ms AS v, dense_rank() OVER (ORDER BY r.sent_ns, r.request_id) - 1 AS k "
               f"FROM chunks c JOIN requests r USING (run_id, request_id) WHERE {where} AND c.itl_ms IS NOT NULL "
               "ORDER BY r.sent_ns, r.request_id, c.chunk_index")
    else:
        sql = (f"SELECT r.{metric} AS v, row_number() OVER (ORDER BY r.sent_ns, r.request_id) - 1 AS k "
               f"FROM requests r WHERE {where} AND r.{metric} IS NOT NULL ORDER BY r.sent_ns, r.request_id")
    df = cat.sql(sql).df()
    return df["v"].to_numpy(dtype=float), df["k"].to_numpy(dtype=np.int64)


def percentile_table(cat: Catalog, run_id: str, *, metrics: tuple[str, ...] = ("ttft_ms", "itl_ms", "e2e_ms"),
                     qs: tuple[float, ...] = (0.5, 0.9, 0.99), level: float = 0.95, method: str = "ess",
                     by_phase: bool = True, histograms: str = "auto") -> pd.DataFrame:
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
            order = cat.sql(f"SELECT phase FROM requests WHERE run_id = '{check_run_id(run_id)}' GROUP BY phase "
                            "ORDER BY min(phase_index)").df()["phase"].tolist()
        per_phase = latency_samples(cat, run_id, metric)
        groups = {p: per_phase[p] for p in order if p in per_phase}
        if not by_phase:
            groups = {"all": np.concatenate(list(groups.values())) if groups else np.array([])}
        for phase, x in groups.items():
            for e in percentile_cis(x, qs, level=level, method=method):
                rows.append({"run_id": run_id, "phase": phase, "metric": metric, **e.to_dict()})
    return pd.DataFrame(rows)
