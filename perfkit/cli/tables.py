"""Every table the command line prints, in one place (rich): summaries, comparisons, SLOs, trade-offs."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from perfkit.query.metrics import chunk_warning, client_evidence, client_note

__all__ = [
    "print_attribution",
    "print_changes",
    "print_comparison",
    "print_frame",
    "print_percentiles",
    "print_run",
    "print_slo_table",
    "print_summary",
    "print_tradeoffs",
    "telemetry_line",
]

_SUMMARY = [
    ("phase", "phase"),
    ("requests", "n"),
    ("error_rate", "err %"),
    ("request_throughput_rps", "req/s"),
    ("output_token_throughput_tps", "tok/s"),
    ("ttft_mean_ms", "TTFT mean"),
    ("itl_mean_ms", "ITL mean"),
    ("e2e_mean_ms", "E2E mean"),
]
# the percentiles are in the table with intervals (print_percentiles): one figure per question


def _cell(v: object, col: str) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "–"
    if col == "error_rate":
        return f"{100 * float(v):.1f}"  # type: ignore[arg-type]
    if col == "p":
        return f"{float(v):.3g}"  # type: ignore[arg-type]
    if col in ("offset_ms", "offset_uncertainty_ms"):
        return f"{float(v):.3f}"  # type: ignore[arg-type]
    if isinstance(v, float):
        return f"{v:,.1f}"
    return str(v)


def print_summary(df: pd.DataFrame, console: Console | None = None) -> None:
    """Print a summary frame (from ``Catalog.summary``); latencies in ms."""
    console = console or Console(width=120)
    runs = df["run_id"].unique().tolist() if len(df) else []
    title = f"run {runs[0]} (means, ms; warm-up excluded)" if len(runs) == 1 else "summary (means, ms)"
    t = Table(title=title, title_justify="left")
    for col, head in _SUMMARY:
        t.add_column(head, justify="left" if col == "phase" else "right")
    for rec in df.to_dict("records"):
        t.add_row(*[_cell(rec[c], c) for c, _ in _SUMMARY])
    console.print(t)


def print_frame(df: pd.DataFrame, limit: int = 50, console: Console | None = None) -> None:
    """Print any frame as a table, at most ``limit`` rows."""
    console = console or Console(width=120)
    t = Table(show_lines=False)
    for c in df.columns:
        t.add_column(str(c))
    for rec in df.head(limit).itertuples(index=False):
        t.add_row(*[_cell(v, "") for v in rec])
    console.print(t)
    if len(df) > limit:
        console.print(f"({len(df) - limit} more rows; use --limit or --format csv)")


def print_prefix_cache(cat, run_id: str, console: Console) -> None:
    """One line: the server's prefix-cache hit rate per phase, where the server counts it."""
    from perfkit.analysis.serverview import prefix_cache_table

    pc = prefix_cache_table(cat, run_id)
    if pc.empty:
        return
    parts = [
        f"{r['phase']} {100 * r['hit_rate']:.1f}% of {r['queried_tokens']:,.0f}"
        for r in pc.to_dict("records")
        if r["hit_rate"] == r["hit_rate"]
    ]
    console.print("server prefix cache, prompt tokens found in it: " + "; ".join(parts))


def print_admission(cat, run_id: str, console: Console) -> None:
    """One line where the server refused requests at admission (vLLM's queue limits): how many per phase and why,
    beside the HTTP 503 answers the client recorded."""
    from perfkit.analysis.serverview import admission_table

    adm = admission_table(cat, run_id)
    adm = adm[adm["server_rejections"] > 0]
    if adm.empty:
        return
    parts = []
    for phase, g in adm.groupby("phase", sort=False):
        why = ", ".join(f"{r['server_rejections']:,.0f} for {r['reason']}" for r in g.to_dict("records"))
        stream = int(g["client_stream_errors"].iloc[0])
        inside = f" and {stream:,} errors inside 200 streams" if stream else ""
        parts.append(f"{phase} {why} (the client recorded {int(g['client_503'].iloc[0]):,} HTTP 503{inside})")
    console.print("[yellow]server refused requests at admission:[/] " + "; ".join(parts))


def print_run(cat, run_id: str, console: Console | None = None) -> None:
    """Everything a run's end prints: the summary, schedule fidelity, per-class SLOs, warnings."""
    from perfkit.analysis.intervals import percentile_table
    from perfkit.analysis.series import change_table
    from perfkit.analysis.stability import stability_table

    console = console or Console(width=120)
    print_summary(cat.summary(run_id).df(), console)
    print_percentiles(percentile_table(cat, run_id), console)
    print_changes(change_table(cat, run_id), console)
    for r in stability_table(cat, run_id).to_dict("records"):
        style = "green" if r["verdict"] == "stable" else "yellow"
        console.print(
            f"stability of {r['phase']} (TTFT): [{style}]{r['verdict']}[/] ({r['reasons']}; warm-up "
            f"{r['warmup_requests']}, ramp-down {r['rampdown_requests']} of {r['requests']} requests)"
        )
    print_prefix_cache(cat, run_id, console)
    print_admission(cat, run_id, console)
    fid = cat.fidelity(run_id).df()
    t = Table(title="schedule fidelity (ms; rates in sessions/s)", title_justify="left")
    cols = [
        ("phase", "phase"),
        ("target_rate_rps", "requested"),
        ("scheduled_rate_rps", "scheduled"),
        ("achieved_rate_rps", "achieved"),
        ("schedule_lag_p50_ms", "lag p50"),
        ("schedule_lag_p99_ms", "lag p99"),
        ("ttft_p99_ms", "TTFT p99"),
        ("ttft_from_intended_p99_ms", "from intended"),
        ("e2e_p99_ms", "E2E p99"),
        ("e2e_from_intended_p99_ms", "from intended"),
    ]
    for c, h in cols:
        t.add_column(h, justify="left" if c == "phase" else "right")
    for rec in fid.to_dict("records"):
        t.add_row(*[_cell(rec[c], c) for c, _ in cols])
    console.print(t)
    slo = cat.slo(run_id).df()
    if slo["slo_attainment"].notna().any() or slo["class_name"].nunique() > 1:
        t = Table(
            title="user classes (SLO attainment: share of requests meeting the class's SLO)", title_justify="left"
        )
        cols = [
            ("phase", "phase"),
            ("class_name", "class"),
            ("requests", "n"),
            ("errors", "errors"),
            ("wrong_answers", "wrong"),
            ("slo_attainment", "SLO met %"),
            ("goodput_rps", "goodput/s"),
            ("ttft_p50_ms", "TTFT p50"),
            ("ttft_p99_ms", "p99"),
            ("tpot_p50_ms", "TPOT p50"),
            ("tpot_p99_ms", "p99"),
        ]
        for c, h in cols:
            t.add_column(h, justify="left" if c in ("phase", "class_name") else "right")
        for rec in slo.to_dict("records"):
            row = dict(rec)
            if row["slo_attainment"] is not None and not pd.isna(row["slo_attainment"]):
                row["slo_attainment"] = 100 * row["slo_attainment"]
            t.add_row(*[_cell(row[c], c) for c, _ in cols])
        console.print(t)
    eps = cat.endpoints(run_id).df()
    if eps["endpoint"].nunique() > 1:
        t = Table(title="endpoints (replicas)", title_justify="left")
        cols = [
            ("phase", "phase"),
            ("endpoint", "endpoint"),
            ("requests", "n"),
            ("share", "share %"),
            ("errors", "errors"),
            ("ttft_p50_ms", "TTFT p50"),
            ("ttft_p99_ms", "p99"),
            ("tpot_p50_ms", "TPOT p50"),
            ("e2e_p99_ms", "E2E p99"),
        ]
        for c, h in cols:
            t.add_column(h, justify="left" if c in ("phase", "endpoint") else "right")
        for rec in eps.to_dict("records"):
            rec["share"] = 100 * rec["share"]
            t.add_row(*[_cell(rec[c], c) for c, _ in cols])
        console.print(t)
    print_nodes(cat, run_id, console)
    line = telemetry_line(cat.manifest(run_id).get("telemetry"))
    if line:
        console.print(line)
    from perfkit.query.frames import chunk_sizes

    flagged = [rec for rec in chunk_sizes(cat, run_id).to_dict("records") if chunk_warning(rec)]
    if flagged:
        from perfkit.analysis.intervals import metric_percentiles

        per_token = metric_percentiles(cat, run_id, "itl_token_ms", (0.5, 0.99))
    for rec in flagged:
        console.print(f"[bold yellow]several tokens a chunk:[/] {chunk_warning(rec)}", soft_wrap=True)
        ests = per_token.get(rec["phase"], [])
        if ests:
            parts = [
                f"p{100 * e.q:g} {e.estimate:.1f} ms" + (f" [{e.lo:.1f}, {e.hi:.1f}]" if e.lo is not None else "")
                for e in ests
                if e.estimate is not None
            ]
            console.print(
                f"  ITL per token (each chunk's gap over its tokens; SLOs on ITL are judged on it): {', '.join(parts)}"
            )
    for rec in fid.to_dict("records"):
        if rec["client_bound"]:
            console.print(
                f"[bold yellow]client-bound:[/] phase {rec['phase']}: {client_evidence(rec)}; its latencies "
                "measure the client as well as the server (more client processes: --workers)"
            )
        elif client_note(rec):
            console.print(f"[dim]note:[/] phase {rec['phase']}: {client_note(rec)}", soft_wrap=True)


def print_nodes(cat, run_id: str, console: Console) -> None:
    """The nodes of a split run (``--cluster``, ``perfkit merge``): each share's lag and clock, who fell behind."""
    nodes = cat.nodes(run_id)
    if nodes.empty:
        return
    t = Table(title="nodes (ms; offset: the node's clock against the run's, ± its uncertainty)", title_justify="left")
    cols = [
        ("share", "share"),
        ("host", "host"),
        ("requests", "n"),
        ("errors", "errors"),
        ("schedule_lag_p50_ms", "lag p50"),
        ("schedule_lag_p99_ms", "lag p99"),
        ("loop_lag_max_ms", "loop lag max"),
        ("worker_cpu_pct", "CPU %"),
        ("offset_ms", "offset"),
        ("offset_uncertainty_ms", "±"),
    ]
    for c, h in cols:
        t.add_column(h, justify="left" if c == "host" else "right")
    for rec in nodes.to_dict("records"):
        t.add_row(*[_cell(rec[c], c) if c != "share" else str(rec[c]) for c, _ in cols])
    console.print(t)
    for rec in nodes.to_dict("records"):
        if rec["lost"]:
            console.print(f"[bold red]lost:[/] share {rec['share']} on {rec['host']} at {rec['lost']}")
        if rec["behind"]:
            console.print(f"[bold yellow]node behind:[/] share {rec['share']} on {rec['host']}: {rec['behind']}")


def telemetry_line(t: dict | None) -> str:
    """One line saying what was recorded beside the requests (from the manifest's ``telemetry``)."""
    if not t:
        return ""
    gpu = t.get("gpu") or {}
    samplers = t.get("samplers") or {}
    if gpu.get("source"):
        n = sum(samplers.get(k, {}).get("readings", 0) for k in ("gpu-fast", "gpu-sim"))
        kind = "[bold]SIMULATED[/] by the simulator" if gpu.get("simulated") else f"NVML, driver {gpu.get('driver')}"
        lost = sum(1 for d in gpu.get("devices") or [] if d.get("lost_ns"))
        parts = [
            f"GPU {kind}: {len(gpu.get('devices') or [])} device(s), {n} readings"
            + (f", [bold red]{lost} lost[/]" if lost else "")
        ]
    else:
        parts = [f"GPU off ({gpu.get('off_reason')})"]
    sm = t.get("server_metrics") or {}
    srcs = sm.get("sources") or []
    if srcs:
        parts.append(
            "server /metrics: "
            + ", ".join(f"{s.get('engine') or 'unknown engine'} ({s['ok_scrapes']} scrapes)" for s in srcs)
        )
    elif sm.get("enabled"):
        parts.append("no server /metrics")
    if (t.get("host") or {}).get("enabled"):
        parts.append("host CPU, memory and event-loop lag")
    return "telemetry: " + "; ".join(parts) + " (tables gpu_samples, server_metrics, host_samples)"


def _pct(v: object) -> str:
    return "–" if v is None or (isinstance(v, float) and pd.isna(v)) else f"{100 * float(v):+.1f}%"  # type: ignore[arg-type]


def print_comparison(res, console: Console | None = None) -> None:
    """Print a :class:`~perfkit.analysis.compare.ComparisonResult` and its verdict."""
    console = console or Console(width=120)
    base = f"a history of {res.table['n_a'].iloc[0]} runs" if "," in res.run_a else f"baseline {res.run_a}"
    t = Table(title=f"run {res.run_b} against {base} (ms; interval 95%, Holm-adjusted p)", title_justify="left")
    for h in ("metric", "pct", "n A", "n B", "A", "B", "change", "interval", "p adj", "verdict"):
        t.add_column(h, justify="left" if h in ("metric", "verdict") else "right")
    style = {"regressed": "bold red", "improved": "green"}
    for r in res.table.to_dict("records"):
        interval = "–" if pd.isna(r["rel_lo"]) else f"[{_pct(r['rel_lo'])}, {_pct(r['rel_hi'])}]"
        note = r.get("note")
        verdict = (
            f"{r['verdict']} ({note})"
            if isinstance(note, str) and r["verdict"] != "not tested"
            else (note if isinstance(note, str) else r["verdict"])
        )
        t.add_row(
            r["metric"].removesuffix("_ms"),
            f"p{100 * r['q']:g}",
            str(r["n_a"]),
            str(r["n_b"]),
            _cell(r["a"], ""),
            _cell(r["b"], ""),
            _pct(r["rel_change"]),
            interval,
            _cell(r["p_adjusted"], "p"),
            f"[{style[r['verdict']]}]{verdict}[/]" if r["verdict"] in style else verdict,
        )
    console.print(t)
    console.print(
        f"verdict: [bold]{res.verdict}[/] (a change counts when Holm-adjusted p < {res.alpha:g} "
        f"and it exceeds {100 * res.min_effect:g}%)"
    )
    if res.differences:
        console.print("[yellow]the workloads differ (allowed), so part of any change is theirs:[/]")
        for d in res.differences:
            console.print(f"  {d}", soft_wrap=True)


def print_percentiles(df: pd.DataFrame, console: Console | None = None) -> None:
    """Print a percentile table (from ``perfkit.analysis.percentile_table``): estimates with intervals."""
    console = console or Console(width=120)
    if df.empty:
        console.print("latency percentiles: no successful request, so no latency to summarise")
        return
    t = Table(
        title="latency percentiles with 95% intervals (ms; n_eff: effectively independent samples)",
        title_justify="left",
    )
    qs = sorted(df["q"].unique())
    t.add_column("phase")
    t.add_column("metric")
    for q in qs:
        t.add_column(f"p{100 * q:g}", justify="right")
    t.add_column("n / n_eff", justify="right")
    for (phase, metric), g in df.groupby(["phase", "metric"], sort=False):
        cells = []
        for q in qs:
            r = g[g.q == q].iloc[0]
            cells.append("n/e" if not r["estimable"] else f"{r['estimate']:,.1f} [{r['lo']:,.1f}, {r['hi']:,.1f}]")
        t.add_row(str(phase), str(metric).removesuffix("_ms"), *cells, f"{g['n'].iloc[0]} / {g['n_eff'].min():.0f}")
    console.print(t)
    console.print(
        "n/e: not estimable: too few effectively independent samples for that percentile (p99 needs about 300)"
    )
    print_plans(df, console)


def print_plans(df: pd.DataFrame, console: Console, limit: int = 8) -> None:
    """One line per percentile that is not estimable: how many samples, and how many more seconds, would do."""
    from perfkit.analysis.intervals import sample_plans

    plans = sample_plans(df)
    for p in plans[:limit]:
        console.print(f"  {p}", soft_wrap=True)
    if len(plans) > limit:
        console.print(f"  ({len(plans) - limit} more not estimable; perfkit.analysis.sample_plans lists them all)")


def print_changes(df: pd.DataFrame, console: Console | None = None) -> None:
    """Print a change table (from ``perfkit.analysis.change_table``): when each series changed, by how much."""
    console = console or Console(width=120)
    if df.empty:
        console.print("changes: none detected in TTFT, E2E, throughput, errors or the counters (1-s windows)")
        return
    t = Table(title="changes detected (1-s windows; s since the first send; 95% intervals)", title_justify="left")
    for h in ("at (s)", "interval (s)", "series", "before", "after", "ratio", "ratio interval"):
        t.add_column(h, justify="left" if h == "series" else "right")
    for r in df.to_dict("records"):
        ratio = "–" if pd.isna(r["ratio"]) else f"{r['ratio']:.2f}"
        interval = "–" if pd.isna(r["ratio_lo"]) else f"[{r['ratio_lo']:.2f}, {r['ratio_hi']:.2f}]"
        t.add_row(
            f"{r['t']:.0f}",
            f"[{r['t_lo']:.0f}, {r['t_hi']:.0f}]",
            r["series"],
            _cell(r["before"], ""),
            _cell(r["after"], ""),
            ratio,
            interval,
        )
    console.print(t)


def _num(v: object, fmt: str = "{:,.1f}") -> str:
    """A number for a table cell; "–" for what does not apply (None, NaN), "∞" for infinity."""
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "–"
    f = float(v)  # type: ignore[arg-type]
    if f == float("inf"):
        return "∞"
    return fmt.format(f)


def print_slo_table(tab: pd.DataFrame, console: Console | None = None) -> None:
    """Print :func:`perfkit.analysis.slo_table`: each SLO's percentile with its interval (ms) and verdict."""
    console = console or Console(width=120)
    if tab.empty:
        console.print("SLOs: no phase with requests to judge")
        return
    t = Table(
        title="SLOs per phase (ms; 95% interval; a failed request counts as infinitely slow)", title_justify="left"
    )
    for h in ("phase", "SLO", "n", "estimate", "interval", "verdict"):
        t.add_column(h, justify="left" if h in ("phase", "SLO", "verdict") else "right")
    style = {"met": "green", "missed": "bold red", "uncertain": "yellow"}
    for r in tab.to_dict("records"):
        interval = "–" if r["lo_ms"] is None and r["hi_ms"] is None else f"[{_num(r['lo_ms'])}, {_num(r['hi_ms'])}]"
        v = r["verdict"]
        t.add_row(
            str(r["phase"]),
            str(r["slo"]),
            str(r["n"]),
            _num(r["estimate_ms"]),
            interval,
            f"[{style[v]}]{v}[/]" if v in style else v,
        )
    console.print(t)
    print_plans(tab, console)


def print_tradeoffs(tab: pd.DataFrame, console: Console | None = None) -> None:
    """Print :func:`perfkit.analysis.tradeoffs`: per variant, load, cost, energy, quality and the frontier."""
    console = console or Console(width=120)
    t = Table(title="model variants at their SLO-feasible load (95% brackets)", title_justify="left")
    heads = (
        "variant",
        "workload",
        "max load (req/s)",
        "$ / 1M tokens",
        "J / token",
        "quality",
        "recovery",
        "P(frontier)",
    )
    for h in heads:
        t.add_column(h, justify="left" if h in ("variant", "workload") else "right")
    for r in tab.to_dict("records"):
        load = (
            "–"
            if r.get("load") is None or pd.isna(r.get("load"))
            else f"{_num(r['load'])} [{_num(r.get('load_lo'))}, {_num(r.get('load_hi'))}]"
        )
        t.add_row(
            str(r["variant"]),
            str(r.get("workload", "–")),
            load,
            _num(r.get("cost_per_mtok_usd"), "{:.3f}"),
            _num(r.get("energy_j_per_token"), "{:.3g}"),
            _num(r.get("quality"), "{:.3f}"),
            _num(r.get("quality_recovery_pct"), "{:.1f}%"),
            _num(r.get("p_front"), "{:.2f}"),
        )
    console.print(t)


def print_attribution(res: list, console: Console | None = None) -> None:
    """Print :func:`perfkit.analysis.attribute`: each phase's verdict, evidence and time breakdown (ms)."""
    console = console or Console(width=120)
    for p in res:
        b = p.breakdown
        console.print(f"[bold]{p.phase}[/]: {p.verdict} (confidence {100 * p.confidence:.0f}%): {'; '.join(p.reasons)}")
        names = {"connect": "connect", "stream_end": "stream end", "outside_server": "outside the server"}
        parts = " + ".join(f"{names.get(k, k)} {_num(b[k])}" for k in p.parts)
        source = p.evidence.get("timing_source", "")
        console.print(
            f"  mean request (ms): {parts} = end to end {_num(b['e2e'])}; client lag before the send "
            f"{_num(b['schedule_lag'])} ({source})",
            soft_wrap=True,
        )
        if p.evidence.get("client_note"):
            console.print(f"  note: {p.evidence['client_note']}", soft_wrap=True)
        if "little_ratio" in p.little:
            console.print(
                f"  Little's law: server holds {p.little['L_server']:.2f} on average, arrival rate x time "
                f"inside = {p.little['lambda_W']:.2f} (ratio {p.little['little_ratio']:.2f})"
            )
