"""A run's figures: the frames of :mod:`perfkit.query.frames` read from a catalog, drawn by
:mod:`perfkit.report.charts`.

The thin layer the reports and notebooks use (``cdf_figure(cat, run)``); the charts themselves take
frames, so other tools' data and fixture frames go through the same drawing code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import altair as alt
import pandas as pd

from perfkit.query import frames
from perfkit.report.charts import (
    TELEMETRY_PANELS,
    cdf_chart,
    compare_cdf_chart,
    latency_over_time_chart,
    telemetry_chart,
    throughput_chart,
)

if TYPE_CHECKING:
    from perfkit.query.catalog import Catalog

__all__ = [
    "cdf_figure",
    "compare_cdf_figure",
    "latency_figure",
    "phase_windows",
    "run_names",
    "telemetry_figure",
    "throughput_figure",
]

_MAX_POINTS = 4000


def phase_windows(cat: Catalog, run_id: str) -> pd.DataFrame:
    """Phase start/end (``phase``, ``start_s``, ``end_s``; s since the run's first intended send), from the
    manifest's phase windows or, without them, the requests."""
    t0 = frames.first_intended_ns(cat, run_id)
    wins = cat.manifest(run_id).get("phase_windows") or []
    if wins:
        last = frames.last_end_ns(cat, run_id) or t0
        return pd.DataFrame(
            [
                {
                    "phase": w["phase"],
                    "start_s": (w["start_ns"] - t0) / 1e9,
                    "end_s": ((w["end_ns"] or last) - t0) / 1e9,
                }
                for w in wins
            ]
        )
    return frames.phase_spans(cat, run_id, t0)


def latency_figure(cat: Catalog, run_id: str, window_s: float = 2.0) -> alt.LayerChart:
    """TTFT over the run (:func:`~perfkit.report.charts.latency_over_time_chart`)."""
    t0 = frames.first_intended_ns(cat, run_id)
    return latency_over_time_chart(
        frames.ttft_points(cat, run_id, t0, _MAX_POINTS),
        frames.ttft_windows(cat, run_id, t0, window_s),
        phase_windows(cat, run_id),
        window_s,
    )


def cdf_figure(cat: Catalog, run_id: str) -> alt.Chart:
    """Latency CDFs of a run (:func:`~perfkit.report.charts.cdf_chart`)."""
    return cdf_chart(frames.cdf_frame(cat, run_id))


def run_names(cat: Catalog, run_ids: list[str]) -> list[str]:
    """A reader's name for each run: its tags (``variant=int8``) or its label, told apart where two are alike by
    the seed or the run id; the first, the baseline, says so."""
    manifests = [cat.manifest(r) for r in run_ids]
    base = [
        ", ".join(f"{k}={v}" for k, v in sorted((m.get("tags") or {}).items())) or str(m.get("label") or r)
        for r, m in zip(run_ids, manifests)
    ]
    names = []
    for i, (r, m, name) in enumerate(zip(run_ids, manifests, base)):
        if base.count(name) > 1:
            seeds = [x.get("seed") for x, b in zip(manifests, base) if b == name]
            name += f" · seed {m.get('seed')}" if seeds.count(m.get("seed")) == 1 else f" · {r}"
        names.append(name + (" (baseline)" if i == 0 and len(run_ids) > 1 else ""))
    return names


def compare_cdf_figure(cat: Catalog, run_ids: list[str], labels: list[str] | None = None) -> alt.Chart:
    """Latency CDFs of several runs overlaid, each named by ``labels`` (default: :func:`run_names`)."""
    labels = labels or run_names(cat, run_ids)
    return compare_cdf_chart({lab: frames.cdf_frame(cat, r) for r, lab in zip(run_ids, labels)})


def throughput_figure(cat: Catalog, run_id: str, bin_s: float = 1.0) -> alt.VConcatChart:
    """Throughput over the run (:func:`~perfkit.report.charts.throughput_chart`)."""
    t0 = frames.first_intended_ns(cat, run_id)
    return throughput_chart(
        frames.token_rate_frame(cat, run_id, t0, bin_s),
        frames.request_rate_frame(cat, run_id, t0, bin_s),
        phase_windows(cat, run_id),
    )


def telemetry_figure(cat: Catalog, run_id: str, max_points: int = 1500) -> alt.VConcatChart | None:
    """Telemetry over the run (:func:`~perfkit.report.charts.telemetry_chart`); None without telemetry."""
    span = frames.telemetry_span(cat, run_id)
    if not span:
        return None
    bin_s = max(0.5, float(span) / max_points)
    names = [m for _, _, ms, _ in TELEMETRY_PANELS for m in ms]
    df, simulated = frames.telemetry_timeline(cat, run_id, frames.first_intended_ns(cat, run_id), bin_s, names)
    return telemetry_chart(df, phase_windows(cat, run_id), bin_s, simulated)
