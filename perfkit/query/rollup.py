"""Reading a run's rollup (:mod:`perfkit.store.rollup`): histograms, percentiles, and when to use it.

The summaries read every sample of a run unless the run is large: from
:data:`HIST_MIN_SAMPLES` samples of a metric on, and when the run has an
up-to-date rollup, they read its per-second histograms instead (percentiles
within one 0.54% bucket of the exact figure, in practice far closer; counts and means exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq

from perfkit.errors import ConfigError
from perfkit.store.rollup import BUCKETS_PER_OCTAVE, ZERO_BUCKET, build_rollup, fresh_rollup_info

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "HISTOGRAM_MODES",
    "HIST_MIN_SAMPLES",
    "LatencyHistogram",
    "check_histograms",
    "hist_quantiles",
    "latency_frame",
    "per_second_quantile",
    "read_rollup",
    "rollup_for",
]

HIST_MIN_SAMPLES = 2_000_000  # below this, reading every sample takes about a second: exact figures
HISTOGRAM_MODES = ("auto", "always", "never")


@dataclass(frozen=True)
class LatencyHistogram:
    """Samples of one metric as (second, bucket, count, sum) rows.

    Attributes
    ----------
    seconds : ndarray of int
        Second of the run of each row (from the run's first send).
    buckets : ndarray of int
        Log bucket of each row (see :mod:`perfkit.store.rollup`).
    counts : ndarray of int
        Samples in the row.
    sums : ndarray of float
        Their sum, in the metric's unit (ms).
    """

    seconds: np.ndarray
    buckets: np.ndarray
    counts: np.ndarray
    sums: np.ndarray

    @property
    def n(self) -> int:
        """Samples."""
        return int(self.counts.sum())

    @property
    def mean(self) -> float | None:
        """Exact mean of the samples (None without any)."""
        n = self.n
        return float(self.sums.sum()) / n if n else None

    def merged(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct buckets in increasing order and the cumulative count up to each (inclusive)."""
        ub, inv = np.unique(self.buckets, return_inverse=True)
        c = np.bincount(inv, weights=self.counts, minlength=len(ub)).astype(np.int64)
        return ub, np.cumsum(c)

    @classmethod
    def from_samples(cls, values: np.ndarray, seconds: np.ndarray) -> LatencyHistogram:
        """Bin samples (ms) by second and log bucket, as a rollup bins them (values <= 0 in the zero bucket)."""
        x = np.asarray(values, dtype=float)
        pos = x > 0
        b = np.full(len(x), ZERO_BUCKET, dtype=np.int64)
        b[pos] = np.floor(np.log2(x[pos]) * BUCKETS_PER_OCTAVE).astype(np.int64)
        key = np.asarray(seconds, dtype=np.int64) * (1 << 32) + (b + (1 << 31))
        uk, inv = np.unique(key, return_inverse=True)
        return cls(
            uk >> 32, (uk & ((1 << 32) - 1)) - (1 << 31), np.bincount(inv).astype(np.int64), np.bincount(inv, weights=x)
        )

    @staticmethod
    def concat(parts: list[LatencyHistogram]) -> LatencyHistogram:
        """One histogram of several (phases pooled; seconds share the run's origin)."""
        return LatencyHistogram(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("seconds", "buckets", "counts", "sums"))
        )


def bucket_edges(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edge of buckets ``b``, ms (both 0 for the zero bucket)."""
    zero = b == ZERO_BUCKET
    return (
        np.where(zero, 0.0, np.exp2(b / BUCKETS_PER_OCTAVE)),
        np.where(zero, 0.0, np.exp2((b + 1) / BUCKETS_PER_OCTAVE)),
    )


def order_stat(ub: np.ndarray, cum: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 0-based order statistics ``i``: value, and lower and upper edge of its bucket.

    The ``c`` samples of a bucket are placed log-uniformly across it (the ``j``-th at
    ``(j + 0.5) / c`` of the way in log scale), so a value is within half a bucket of the truth.
    """
    k = np.searchsorted(cum, i, side="right")
    before = np.where(k > 0, cum[np.maximum(k - 1, 0)], 0)
    b = ub[k]
    frac = (i - before + 0.5) / (cum[k] - before)
    value = np.where(b == ZERO_BUCKET, 0.0, np.exp2((b + frac) / BUCKETS_PER_OCTAVE))
    lo, hi = bucket_edges(b)
    return value, lo, hi


def hist_quantiles(ub: np.ndarray, cum: np.ndarray, levels: np.ndarray | list[float]) -> np.ndarray:
    """Sample quantiles at ``levels`` from merged buckets (linear interpolation, numpy's default)."""
    n = int(cum[-1])
    h = (n - 1) * np.asarray(levels, dtype=float)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    v_lo = order_stat(ub, cum, lo)[0]
    v_hi = order_stat(ub, cum, hi)[0]
    return v_lo + (h - lo) * (v_hi - v_lo)


def read_rollup(
    path: str | Path, metrics: tuple[str, ...] | list[str] | None = None
) -> tuple[dict[tuple[str, str], LatencyHistogram], list[str]]:
    """The histograms of a rollup file per ``(metric, phase)``, and the phases in run order."""
    filters = [("metric", "in", list(metrics))] if metrics else None
    t = pq.read_table(path, filters=filters, read_dictionary=["metric", "phase"])
    if t.num_rows == 0:
        return {}, []
    metric = t["metric"].combine_chunks()
    phase = t["phase"].combine_chunks()
    m_idx = metric.indices.to_numpy().astype(np.int64)
    p_idx = phase.indices.to_numpy().astype(np.int64)
    p_names = phase.dictionary.to_pylist()
    m_names = metric.dictionary.to_pylist()
    cols = {c: t[c].to_numpy() for c in ("phase_index", "second", "bucket", "count", "sum_ms")}
    key = m_idx * (len(p_names) + 1) + p_idx
    order = np.argsort(key, kind="stable")  # dictionary indices need not follow the file's sort order
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(key)]
    out: dict[tuple[str, str], LatencyHistogram] = {}
    first_index: dict[str, int] = {}
    for s, e in zip(starts, ends):
        rows = order[s:e]
        mname, pname = m_names[m_idx[rows[0]]], p_names[p_idx[rows[0]]]
        first_index[pname] = min(first_index.get(pname, 1 << 30), int(cols["phase_index"][rows].min()))
        out[(mname, pname)] = LatencyHistogram(
            cols["second"][rows].astype(np.int64),
            cols["bucket"][rows].astype(np.int64),
            cols["count"][rows].astype(np.int64),
            cols["sum_ms"][rows],
        )
    return out, sorted(first_index, key=first_index.__getitem__)


def check_histograms(histograms: str) -> None:
    """Refuse a ``histograms`` mode that is not one of :data:`HISTOGRAM_MODES`."""
    if histograms not in HISTOGRAM_MODES:
        raise ConfigError(f"histograms={histograms!r} is not one of {', '.join(HISTOGRAM_MODES)}")


def rollup_for(data_dir: str | Path, run_id: str, metric: str | None = None, histograms: str = "auto") -> Path | None:
    """The rollup to read instead of the samples, or None to read the samples.

    ``histograms``: ``"auto"`` uses an up-to-date rollup when it holds at least
    :data:`HIST_MIN_SAMPLES` samples of ``metric`` (of its largest metric when None);
    ``"always"`` uses one, building it when missing or stale; ``"never"`` reads the samples.
    """
    check_histograms(histograms)
    if histograms == "never":
        return None
    fresh = fresh_rollup_info(data_dir, run_id)
    if histograms == "always":
        return fresh[0] if fresh else build_rollup(data_dir, run_id)
    if fresh is None:
        return None
    path, info = fresh
    samples = info.get("samples") or {}
    assert isinstance(samples, dict)
    n = samples.get(metric, 0) if metric else max(samples.values(), default=0)
    return path if n >= HIST_MIN_SAMPLES else None


def per_second_quantile(h: LatencyHistogram, q: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``q``-quantile of each second's samples (linear interpolation): ``(seconds, values)``.

    Rows of several phases may share a second (at a phase boundary): they are pooled, as a
    time bin of :meth:`perfkit.query.Catalog.timeline` pools them.
    """
    if not len(h.counts):
        return np.array([], dtype=np.int64), np.array([])
    key = np.lexsort((h.buckets, h.seconds))
    sec, bkt, cnt = h.seconds[key], h.buckets[key], h.counts[key]
    new = np.r_[True, (sec[1:] != sec[:-1]) | (bkt[1:] != bkt[:-1])]  # merge equal (second, bucket) rows
    idx = np.cumsum(new) - 1
    sec, bkt = sec[new], bkt[new]
    cnt = np.bincount(idx, weights=cnt).astype(np.int64)
    cum = np.cumsum(cnt)
    starts = np.flatnonzero(np.r_[True, sec[1:] != sec[:-1]])
    ends = np.r_[starts[1:], len(sec)] - 1
    offset = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0)
    n = cum[ends] - offset
    h_pos = (n - 1) * q
    lo = np.floor(h_pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    v_lo = order_stat(bkt, cum, offset + lo)[0]
    v_hi = order_stat(bkt, cum, offset + hi)[0]
    return sec[starts], v_lo + (h_pos - lo) * (v_hi - v_lo)


_Q = (0.5, 0.9, 0.99)


def latency_frame(path: str | Path, run_id: str, by_phase: bool = True) -> pd.DataFrame:
    """The summary's latency columns (``ttft_*``, ``itl_*``, ``e2e_*``) per phase, or ``'all'``, from a rollup."""
    import pandas as pd  # not at import: ``import perfkit`` stays free of pandas

    hs, order = read_rollup(path)
    groups = [(p, [p]) for p in order] if by_phase else [("all", order)]
    rows = []
    for phase, members in groups:
        row: dict[str, object] = {"run_id": run_id, "phase": phase}
        for metric in ("ttft_ms", "itl_ms", "e2e_ms"):
            name = metric.removesuffix("_ms")
            parts = [hs[(metric, p)] for p in members if (metric, p) in hs]
            h = LatencyHistogram.concat(parts) if parts else None
            row[f"{name}_mean_ms"] = h.mean if h is not None else None
            qs = hist_quantiles(*h.merged(), list(_Q)) if h is not None and h.n else [None] * len(_Q)
            for q, v in zip(_Q, qs):
                row[f"{name}_p{int(q * 100)}_ms"] = None if v is None else float(v)
        rows.append(row)
    return pd.DataFrame(rows)
