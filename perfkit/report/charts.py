"""Altair charts from frames: latency over time, latency CDFs, throughput and telemetry over time, changes,
trade-offs.

Each function takes pandas frames (what :mod:`perfkit.query.frames` returns, already aggregated so that
a chart never carries millions of points) and returns an Altair chart; it reads no data itself, so each
is tested as a spec from a fixture frame.  :mod:`perfkit.report.figures` reads a run's frames and calls
these.  Time is seconds since the run's first intended send.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

__all__ = [
    "TELEMETRY_PANELS",
    "cdf_chart",
    "changes_chart",
    "compare_cdf_chart",
    "latency_over_time_chart",
    "phase_bands",
    "telemetry_chart",
    "throughput_chart",
    "tradeoff_chart",
]


def phase_bands(phases: pd.DataFrame) -> pd.DataFrame:
    """``phases`` (``phase``, ``start_s``, ``end_s``) with the shading and label row of each band."""
    df = phases.reset_index(drop=True).copy()
    df["shade"] = [i % 2 for i in range(len(df))]
    df["row"] = [i % 2 for i in range(len(df))]  # stagger labels of short neighbouring phases
    return df


def _phase_layer(phases: pd.DataFrame, domain: tuple[float, float] | None = None) -> alt.LayerChart:
    """Shaded phase bands with their names; clamped to ``domain`` (s) where the x axis has a fixed one.

    Clamping in the data rather than clipping the marks: vl-convert names clip paths with a counter
    that runs across renderings, which would make two reports of one run differ.
    """
    wins = phase_bands(phases)
    if domain is not None:
        wins = wins[(wins.end_s > domain[0]) & (wins.start_s < domain[1])].copy()
        wins["start_s"] = wins.start_s.clip(lower=domain[0])
        wins["end_s"] = wins.end_s.clip(upper=domain[1])
    base = alt.Chart(wins)
    rect = base.mark_rect(color="#777").encode(
        x="start_s:Q", x2="end_s:Q", opacity=alt.Opacity("shade:Q", scale=alt.Scale(range=[0.04, 0.12]), legend=None)
    )
    text = base.mark_text(align="left", baseline="top", dx=3, fontSize=10, color="#333").encode(
        x="start_s:Q", y=alt.YValue(alt.expr("3 + 12 * datum.row")), text="phase:N"
    )
    return rect + text


def _time_x(domain: tuple[float, float]) -> alt.X:
    """The time axis of a run's figures over exactly ``domain`` (s): no "nice" widening, which put ticks at
    −10 and −5 s before a run that starts at 0 and crowded their labels."""
    return alt.X("t_s:Q", title="time since start (s)", scale=alt.Scale(domain=list(domain), nice=False, zero=False))


def _span(*frames: pd.DataFrame, step: float = 0.0) -> tuple[float, float]:
    """The time span (s) of the ``t_s`` of ``frames``, the last bin's width ``step`` added at the end."""
    ts = pd.concat([f["t_s"] for f in frames if len(f)], ignore_index=True).astype(float)
    if ts.empty:
        return (0.0, 1.0)
    return (float(ts.min()), float(ts.max()) + step)


def _bin_width(df: pd.DataFrame) -> float:
    d = np.diff(np.unique(df["t_s"].to_numpy(dtype=float))) if len(df) > 1 else np.array([])
    return float(np.median(d)) if len(d) else 0.0


def latency_over_time_chart(
    points: pd.DataFrame, windows: pd.DataFrame, phases: pd.DataFrame, window_s: float = 2.0
) -> alt.LayerChart:
    """TTFT per request (``points``: ``t_s``, ``ttft_ms``, ``phase``) with windowed p50 and p99 (``windows``:
    ``t_s``, ``p50``, ``p99``, and optionally ``p50_lo``/``p50_hi``, drawn as the p50's interval band) as lines,
    log scale, ``phases`` shaded."""
    win = windows[["t_s", "p50", "p99"]].melt("t_s", var_name="statistic", value_name="ttft_ms").dropna()
    domain = _span(points, windows, step=_bin_width(windows))
    x = _time_x(domain)
    values = pd.concat([points["ttft_ms"], win["ttft_ms"]])
    lo_hi = values[values > 0]
    ticks = log_ticks(float(lo_hi.min()), float(lo_hi.max())) if len(lo_hi) else []
    scale = alt.Scale(type="log", domain=[ticks[0], ticks[-1]], nice=False) if ticks else alt.Scale(type="log")
    y = alt.Y("ttft_ms:Q", title="TTFT (ms)", scale=scale, axis=alt.Axis(values=ticks) if ticks else alt.Axis())
    pts = (
        alt.Chart(points)
        .mark_circle(opacity=0.35, size=10)
        .encode(x=x, y=y, color=alt.Color("phase:N", title="phase", sort=None))
    )
    layers: list[alt.Chart | alt.LayerChart] = [_phase_layer(phases, domain), pts]
    if {"p50_lo", "p50_hi"} <= set(windows.columns):
        band = windows.dropna(subset=["p50_lo", "p50_hi"])
        layers.append(
            alt.Chart(band)
            .mark_area(opacity=0.25, color="#000", interpolate="monotone")
            .encode(x=x, y=alt.Y("p50_lo:Q", scale=scale), y2="p50_hi:Q")
        )
    lines = (
        alt.Chart(win)
        .mark_line(strokeWidth=2)
        .encode(
            x=x, y=y, strokeDash=alt.StrokeDash("statistic:N", title=f"{window_s:g}-s window"), color=alt.value("#000")
        )
    )
    return (
        alt.layer(*layers, lines)
        .properties(title="Time to first token over the run", width=640, height=240)
        .resolve_scale(color="independent")
    )


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks 1, 2, 5 × 10^k from ``lo`` to ``hi`` (positive), the one at or below ``lo`` and at or above ``hi``
    included: a log axis labelled at values a reader reads at a glance, never at 3, 4, 6, 7 and 8 too."""
    if not (lo > 0 and hi >= lo):
        return []
    out = []
    for k in range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1):
        for m in (1, 2, 5):
            out.append(float(f"{m}e{k}"))
    below = [v for v in out if v <= lo]
    above = [v for v in out if v >= hi]
    first, last = (below[-1] if below else out[0]), (above[0] if above else out[-1])
    return [v for v in out if first <= v <= last]


def _log_latency_x(values: pd.Series | None = None) -> alt.X:
    """A log latency axis labelled at 1-2-5 steps over ``values`` (ms), labels that never overlap (every other
    label goes where they would)."""
    pos = values[values > 0] if values is not None else pd.Series(dtype=float)
    ticks = log_ticks(float(pos.min()), float(pos.max())) if len(pos) else []
    return alt.X(
        "value_ms:Q",
        title="latency (ms)",
        scale=alt.Scale(type="log"),
        axis=alt.Axis(labelOverlap="greedy", format="~g", labelFlush=True, values=ticks or alt.Undefined),
    )


def _positive(cdf: pd.DataFrame) -> pd.DataFrame:
    """The points of a CDF a log axis can draw: a zero gap (chunks under one read) has no place on it, and the
    line then starts at the share of zeros."""
    return cdf[cdf["value_ms"] > 0]


def cdf_chart(cdf: pd.DataFrame) -> alt.Chart:
    """Empirical CDFs of TTFT, ITL (per chunk) and E2E (``cdf``: ``metric``, ``value_ms``, ``p``), log scale; zero
    values are left out of the drawing (the line starts at their share)."""
    return (
        alt.Chart(_positive(cdf))
        .mark_line(strokeWidth=2)
        .encode(
            x=_log_latency_x(cdf["value_ms"]),
            y=alt.Y("p:Q", title="fraction of samples", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("metric:N", legend=None),
        )
        .properties(width=200, height=200)
        .facet(column=alt.Column("metric:N", title=None, sort=["TTFT", "ITL", "E2E"]))
        .resolve_scale(x="independent")
        .properties(title="Latency distributions (warm-up excluded)")
    )


def compare_cdf_chart(cdfs: dict[str, pd.DataFrame]) -> alt.Chart:
    """The CDFs of several runs overlaid (``cdfs``: label -> CDF frame, the baseline first), one colour per run,
    one panel per metric."""
    labels = list(cdfs)
    df = pd.concat([_positive(f).assign(run=lab) for lab, f in cdfs.items()], ignore_index=True)
    return (
        alt.Chart(df)
        .mark_line(strokeWidth=1.8)
        .encode(
            x=_log_latency_x(df["value_ms"]),
            y=alt.Y("p:Q", title="fraction of samples", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color(
                "run:N", sort=labels, legend=alt.Legend(orient="bottom", title=None, direction="vertical", labelLimit=0)
            ),
        )
        .properties(width=200, height=200)
        .facet(column=alt.Column("metric:N", title=None, sort=["TTFT", "ITL", "E2E"]))
        .resolve_scale(x="independent")
        .properties(title="Latency distributions by run (warm-up excluded)")
    )


def throughput_chart(tokens: pd.DataFrame, requests: pd.DataFrame, phases: pd.DataFrame) -> alt.VConcatChart:
    """Output tokens per second (``tokens``: ``t_s``, ``value``) and completed / failed requests per second
    (``requests``: ``t_s``, ``completed``, ``failed``), per time bin, ``phases`` shaded."""
    toks = tokens
    reqs = requests[["t_s", "completed", "failed"]].melt("t_s", var_name="series", value_name="value")
    domain = _span(tokens, requests, step=_bin_width(requests))
    x = _time_x(domain)
    top = alt.layer(
        _phase_layer(phases, domain),
        alt.Chart(toks).mark_line(interpolate="step-after").encode(x=x, y=alt.Y("value:Q", title="output tokens/s")),
    ).properties(width=640, height=160)
    bottom = alt.layer(
        _phase_layer(phases, domain),
        alt.Chart(reqs)
        .mark_line(interpolate="step-after")
        .encode(x=x, y=alt.Y("value:Q", title="requests/s"), color=alt.Color("series:N", title="requests/s")),
    ).properties(width=640, height=140)
    return alt.vconcat(top, bottom).properties(title="Throughput over the run")


# panels of the telemetry figure: title, y-axis title, metrics of the ``telemetry`` view, scale factor
TELEMETRY_PANELS = (
    ("GPU clock", "SM clock (MHz)", ("sm_clock_mhz",), 1.0),
    ("GPU activity", "percent", ("gpu_util_pct", "mem_util_pct"), 1.0),
    ("GPU power", "W", ("power_w",), 1.0),
    ("Server KV cache", "KV-cache use (%)", ("kv_usage",), 100.0),
    ("Server batch", "requests", ("running", "waiting"), 1.0),
    ("CPU of the client and a local server", "% of one core", ("client_cpu_pct", "server_cpu_pct"), 1.0),
    ("Client event loop", "max lag (ms)", ("client_loop_lag_max_ms",), 1.0),
)


def telemetry_chart(
    df: pd.DataFrame, phases: pd.DataFrame, bin_s: float, simulated: bool = False
) -> alt.VConcatChart | None:
    """GPU, server and client counters over the run (``df``: ``t_s``, ``metric``, ``value`` per bin of ``bin_s``
    s), one panel each (:data:`TELEMETRY_PANELS`), on the requests' time axis.

    Panels without data are left out; None when there is none at all.  The GPU panels' titles say
    SIMULATED when the counters came from the simulator.
    """
    if df.empty:
        return None
    tag = " (SIMULATED)" if simulated else ""
    domain = (float(df.t_s.min()), float(df.t_s.max() + bin_s))
    x = _time_x(domain)
    panels = []
    for title, unit, metrics, scale in TELEMETRY_PANELS:
        part = df[df.metric.isin(metrics)].copy()
        if part.empty:
            continue
        part["value"] *= scale
        full = f"{title}{tag}" if title.startswith("GPU") else title
        line = (
            alt.Chart(part)
            .mark_line(interpolate="step-after")
            .encode(x=x, y=alt.Y("value:Q", title=unit), color=alt.Color("metric:N", title=None))
        )
        panels.append(alt.layer(_phase_layer(phases, domain), line).properties(title=full, width=640, height=80))
    if not panels:
        return None
    return (
        alt.vconcat(*panels)
        .resolve_scale(color="independent")
        .properties(title=f"Telemetry on the requests' clock{tag}")
    )


def changes_chart(
    series: pd.DataFrame,
    changes: list,
    title: str,
    *,
    truth: list[tuple[float, float]] | None = None,
) -> alt.LayerChart | alt.FacetChart:
    """A windowed series (``t_s``, ``value``) with each detected change and its location interval.

    Parameters
    ----------
    series : DataFrame
        From :func:`perfkit.analysis.run_series`.
    changes : list of Change
        From :func:`perfkit.analysis.detect_changes` (``t``, ``t_lo``, ``t_hi``, ``before``, ``after``).
    truth : list of (start_s, end_s), optional
        Injected events (ground truth on the simulator), drawn as shaded spans.
    """
    pos = series["value"][series["value"] > 0]
    ticks = log_ticks(float(pos.min()), float(pos.max())) if len(pos) else []
    y_scale = alt.Scale(type="log", domain=[ticks[0], ticks[-1]], nice=False) if ticks else alt.Scale(type="log")
    span = _span(series, step=_bin_width(series))
    x_scale = alt.Scale(domain=list(span), nice=False, zero=False)
    base = (
        alt.Chart(series)
        .mark_line(point=alt.OverlayMarkDef(size=12), strokeWidth=1.5)
        .encode(
            x=alt.X("t_s:Q", title="time since first send (s)", scale=x_scale),
            y=alt.Y("value:Q", title=title, scale=y_scale, axis=alt.Axis(values=ticks) if ticks else alt.Axis()),
        )
    )
    cdf = pd.DataFrame(
        [{"t": c.t, "t_lo": c.t_lo, "t_hi": c.t_hi + 1e-9, "label": f"×{c.ratio:.2f}"} for c in changes],
        columns=["t", "t_lo", "t_hi", "label"],
    )
    band = alt.Chart(cdf).mark_rect(color="#D55E00", opacity=0.18).encode(x="t_lo:Q", x2="t_hi:Q")
    rule = alt.Chart(cdf).mark_rule(color="#D55E00", strokeWidth=2).encode(x="t:Q")
    text = (
        alt.Chart(cdf)
        .mark_text(align="left", dx=4, dy=-4, baseline="top", color="#D55E00")
        .encode(x="t:Q", y=alt.YValue(0), text="label:N")
    )
    layers = [band, rule, text]
    if truth:
        tdf = pd.DataFrame(truth, columns=["start_s", "end_s"]).assign(label="injected")
        tdf = tdf[(tdf.end_s > span[0]) & (tdf.start_s < span[1])].copy()  # clamped in the data, as phases are
        tdf[["start_s", "end_s"]] = tdf[["start_s", "end_s"]].clip(lower=span[0], upper=span[1])
        layers.insert(0, alt.Chart(tdf).mark_rect(color="#777", opacity=0.10).encode(x="start_s:Q", x2="end_s:Q"))
    return alt.layer(*layers, base).properties(
        width=640, height=220, title=f"{title}: changes found (red, with location interval), injected events (grey)"
    )


def tradeoff_chart(
    tab: pd.DataFrame, x: str = "cost_per_mtok_usd", y: str = "quality"
) -> alt.LayerChart | alt.FacetChart:
    """Quality against cost per million output tokens, one point per variant, the Pareto frontier drawn.

    ``tab`` is :func:`perfkit.analysis.tradeoffs`' table: error bars are its ``_lo``/``_hi``
    columns, filled points are on the frontier, and each label gives the bootstrap probability of
    being on it.
    """
    titles = {
        "cost_per_mtok_usd": "cost per 1M output tokens at the SLO-feasible load ($)",
        "quality": "quality" + (f" ({tab.attrs['quality_task']})" if tab.attrs.get("quality_task") else ""),
    }
    df = tab[tab[x].notna() & tab[y].notna()].copy()
    if df.empty:
        raise ValueError(f"no variant has both {x} and {y}: none met the SLOs at any load level of its runs")
    # a variant without a point (no load level met the SLOs, so no cost) is named, never silently left out
    missing = [str(v) for v in tab.loc[~tab.index.isin(df.index), "variant"]]
    subtitle = (
        [f"not drawn: {', '.join(missing)} (no load level met the SLOs with confidence, so no cost)"] if missing else []
    )
    df["frontier"] = df["on_front"].map({True: "on the Pareto frontier", False: "dominated"})
    df["label"] = [f"{v}  P(front)={p:.2f}" for v, p in zip(df["variant"], df["p_front"])]

    def domain(col: str) -> tuple[float, float]:
        """Every point and error bar with a margin of 8% of their span, but a cost, a latency or an energy
        never below 0 (Vega's pixel padding widened a cost axis to -$0.04)."""
        vals = pd.concat([df[c] for c in (col, f"{col}_lo", f"{col}_hi") if c in df]).astype(float)
        vals = vals[np.isfinite(vals)]
        lo, hi = float(vals.min()), float(vals.max())
        pad = 0.08 * (hi - lo) if hi > lo else max(abs(hi) * 0.1, 1e-9)
        first = lo - pad if lo - pad >= 0 or col == "quality" or lo < 0 else 0.0
        return first, hi + pad

    scales = {}
    for col in (x, y):
        first, last = domain(col)
        for end in (f"{col}_lo", f"{col}_hi"):  # an unbounded end (an infinite cost) runs to the edge
            if end in df:
                df[end] = df[end].astype(float).clip(first, last)
        scales[col] = alt.Scale(domain=[first, last], nice=False, zero=False)
    xs = alt.X(f"{x}:Q", title=titles.get(x, x), scale=scales[x])
    ys = alt.Y(f"{y}:Q", title=titles.get(y, y), scale=scales[y])
    base = alt.Chart(df)
    xbar = base.mark_rule(strokeWidth=1.2, opacity=0.6).encode(x=alt.X(f"{x}_lo:Q"), x2=f"{x}_hi:Q", y=ys)
    ybar = base.mark_rule(strokeWidth=1.2, opacity=0.6).encode(x=xs, y=alt.Y(f"{y}_lo:Q"), y2=f"{y}_hi:Q")
    front = df[df["on_front"]].sort_values(x)
    line = (
        alt.Chart(front)
        .mark_line(strokeDash=[5, 3], strokeWidth=1.5, color="#555", interpolate="step-after")
        .encode(x=xs, y=ys)
    )
    pts = base.mark_point(size=140, strokeWidth=2).encode(
        x=xs,
        y=ys,
        fill=alt.Fill(
            "frontier:N",
            scale=alt.Scale(domain=["on the Pareto frontier", "dominated"], range=["#1f6fb4", "white"]),
            legend=alt.Legend(orient="bottom", title=None),
        ),
        color=alt.value("#1f6fb4"),
    )
    # labels above and to the right of the point, clear of its vertical error bar
    text = base.mark_text(align="left", baseline="bottom", dx=10, dy=-10, fontSize=11).encode(
        x=xs, y=ys, text="label:N"
    )
    return alt.layer(line, xbar, ybar, pts, text).properties(
        width=520,
        height=320,
        title=alt.TitleParams("Compression trade-off: quality against serving cost", subtitle=subtitle),
    )
