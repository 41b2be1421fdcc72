"""Series built from a run, for changepoint detection: windowed latency percentiles, throughput, errors, counters.

Every series comes from :meth:`perfkit.query.Catalog.timeline` (one row per time
bin, on the requests' clock): ``ttft_p50_ms``, ``ttft_p99_ms``, ``e2e_p50_ms``,
``itl_p50_ms``, ``itl_p99_ms``, ``output_tokens_per_s``, ``requests``, ``errors``
and the mean of any telemetry metric
(``sm_clock_mhz``, ``kv_usage``, ...), plus ``error_rate``.  Bins without
data are left out, not filled.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from perfkit.analysis.changepoints import ChangepointDetector, ChangepointResult
from perfkit.query.catalog import Catalog
from perfkit.query.frames import first_sent_ns, last_sent_ns
from perfkit.query.rollup import LatencyHistogram, per_second_quantile, read_rollup, rollup_for

__all__ = ["DEFAULT_CHANGE_SERIES", "change_table", "detect_changes", "injected_events", "run_series", "stable_seed"]

DEFAULT_CHANGE_SERIES = (
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "e2e_p50_ms",
    "output_tokens_per_s",
    "error_rate",
    "sm_clock_mhz",
    "kv_usage",
    "running",
)
_REQUEST_SERIES = (
    "ttft_p50_ms",
    "ttft_p99_ms",
    "e2e_p50_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "output_tokens_per_s",
    "requests",
    "errors",
    "error_rate",
)
_HIST_SERIES = {
    "ttft_p50_ms": ("ttft_ms", 0.5),
    "ttft_p99_ms": ("ttft_ms", 0.99),
    "e2e_p50_ms": ("e2e_ms", 0.5),
    "itl_p50_ms": ("itl_ms", 0.5),
    "itl_p99_ms": ("itl_ms", 0.99),
}


def run_series(
    cat: Catalog,
    run_id: str,
    metric: str = "ttft_p50_ms",
    *,
    bin_s: float = 1.0,
    include_warmup: bool = False,
    histograms: str = "auto",
) -> pd.DataFrame:
    """Columns ``t_s`` (bin start, s since the run's first send) and ``value``, bins with data only.

    A latency percentile in 1-s bins of a run with millions of samples comes from the run's
    rollup (``histograms="auto"``; within one 0.54% bucket of the exact figure), see
    :mod:`perfkit.query.rollup`; ``"never"`` reads every sample.
    """
    got = _series(cat, run_id, (metric,), bin_s=bin_s, include_warmup=include_warmup, histograms=histograms)
    if metric not in got:
        raise ValueError(f"no series {metric!r} in run {run_id}")
    return got[metric]


def _series(
    cat: Catalog,
    run_id: str,
    metrics: tuple[str, ...],
    *,
    bin_s: float = 1.0,
    include_warmup: bool = False,
    histograms: str = "auto",
) -> dict[str, pd.DataFrame]:
    """Each of ``metrics`` the run has, as :func:`run_series` gives it, from one timeline query for them all."""
    out: dict[str, pd.DataFrame] = {}
    rest = []
    for metric in metrics:
        hist = _HIST_SERIES.get(metric)
        if hist is not None and bin_s == 1.0 and not include_warmup:
            path = rollup_for(cat.data_dir, run_id, hist[0], histograms)
            if path is not None:
                hs, _ = read_rollup(path, (hist[0],))
                if hs:
                    sec, val = per_second_quantile(LatencyHistogram.concat(list(hs.values())), hist[1])
                    out[metric] = pd.DataFrame({"t_s": sec.astype(float), "value": val})
                    continue
        rest.append(metric)
    if not rest:
        return out
    tele = tuple(m for m in rest if m not in _REQUEST_SERIES)
    tl = cat.timeline(run_id, bin_s=bin_s, metrics=tele or ("sm_clock_mhz",), include_warmup=include_warmup).df()
    tl["error_rate"] = tl["errors"] / tl["requests"]
    for metric in rest:
        if metric in tl:
            s = tl[["t_s", metric]].rename(columns={metric: "value"})
            out[metric] = s[np.isfinite(s["value"].astype(float))].reset_index(drop=True)
    return out


def stable_seed(*parts: object) -> int:
    """A seed derived from names (a run, a phase, a series): the same analysis of the same data draws the same
    random numbers every time, and different runs draw different ones."""
    return zlib.crc32(":".join(map(str, parts)).encode())


def detect_changes(
    cat: Catalog,
    run_id: str,
    metric: str = "ttft_p50_ms",
    *,
    bin_s: float = 1.0,
    detector: ChangepointDetector | None = None,
) -> ChangepointResult:
    """Changepoints of one series of a run; times (``t``, ``t_lo``, ``t_hi``) in s since its first send.

    The default detector is :class:`ChangepointDetector` with its ``auto`` transform (log for a positive
    series, ranks otherwise), seeded from the run and the series.
    """
    rid = cat.require_run(run_id)
    s = run_series(cat, rid, metric, bin_s=bin_s)
    y = s["value"].to_numpy(dtype=float)
    det = detector or ChangepointDetector(seed=stable_seed(rid, metric))
    n, need = int(np.isfinite(y).sum()), 2 * det.min_size
    if n < need:
        raise ValueError(
            f"run {rid} has {n} windows of {bin_s:g} s with a {metric} value; a changepoint search needs at least"
            f" {need} (two segments of {det.min_size}): record a longer run, or pass a smaller bin_s"
        )
    return det.fit(y, s["t_s"].to_numpy(dtype=float))


def change_table(
    cat: Catalog,
    run_id: str,
    series: tuple[str, ...] = DEFAULT_CHANGE_SERIES,
    *,
    bin_s: float = 1.0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Every change found in each of ``series`` (those the run has), one row per change, by time.

    False alarms are controlled per run, not per series: each series is tested at ``alpha`` divided by
    the number of series the run has (Bonferroni), and Holm's adjustment runs across each series'
    candidates, so the chance that a steady run reports any change at all is at most about ``alpha``.
    Only whole windows inside the traffic (up to the last send) are scanned: the drain after it, when
    fewer and fewer requests are in flight, is the schedule's end, not a change of the deployment.  The
    request rate is left out by default for the same reason (it is what the scenario asked for; give
    ``series`` with ``"requests"`` to scan it).
    """
    rid = cat.require_run(run_id)
    t0, t1 = first_sent_ns(cat, rid), last_sent_ns(cat, rid)
    end_s = (t1 - t0) / 1e9 if t0 is not None and t1 is not None else np.inf
    present: list[tuple[str, pd.DataFrame]] = []
    got = _series(cat, rid, tuple(series), bin_s=bin_s)
    for metric in series:
        if metric not in got:  # the run has no such series
            continue
        s = got[metric]
        s = s[s["t_s"] + bin_s <= end_s].reset_index(drop=True)
        if len(s) >= 4:
            present.append((metric, s))
    rows = []
    for metric, s in present:
        det = ChangepointDetector(alpha=alpha / len(present), seed=stable_seed(rid, metric))
        try:
            res = det.fit(s["value"].to_numpy(dtype=float), s["t_s"].to_numpy(dtype=float))
        except ValueError:  # too few windows of it
            continue
        for c in res.changes:
            rows.append(
                {
                    "series": metric,
                    **{
                        k: getattr(c, k)
                        for k in ("t", "t_lo", "t_hi", "before", "after", "ratio", "ratio_lo", "ratio_hi", "p_adjusted")
                    },
                }
            )
    cols = ["series", "t", "t_lo", "t_hi", "before", "after", "ratio", "ratio_lo", "ratio_hi", "p_adjusted"]
    return pd.DataFrame(rows, columns=cols).sort_values(["t", "series"], kind="stable").reset_index(drop=True)


def injected_events(cat: Catalog, run_id: str) -> pd.DataFrame:
    """The simulator's injected events of a run (its ground truth), on the series' time axis.

    Columns ``kind``, ``start_s``, ``end_s`` (s since the run's first send, as ``t_s`` in
    :func:`run_series`) and ``factor``; empty for a run against a real endpoint.
    """
    rid = cat.require_run(run_id)
    sim = cat.manifest(rid).get("simulator") or {}
    cols = ["kind", "start_s", "end_s", "factor"]
    t0 = first_sent_ns(cat, rid)
    if not sim.get("events") or t0 is None or sim.get("epoch_ns") is None:
        return pd.DataFrame(columns=cols)
    off = (sim["epoch_ns"] - t0) / 1e9
    return pd.DataFrame(
        [
            {"kind": e["kind"], "start_s": off + e["start_s"], "end_s": off + e["end_s"], "factor": e.get("factor")}
            for e in sim["events"]
        ],
        columns=cols,
    )
