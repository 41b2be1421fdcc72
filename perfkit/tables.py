"""Terminal tables for summaries and query results (rich)."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

__all__ = ["print_frame", "print_run", "print_summary", "telemetry_line"]

_SUMMARY = [("phase", "phase"), ("requests", "n"), ("error_rate", "err %"), ("request_throughput_rps", "req/s"),
            ("output_token_throughput_tps", "tok/s"), ("ttft_mean_ms", "TTFT mean"), ("ttft_p50_ms", "p50"),
            ("ttft_p90_ms", "p90"), ("ttft_p99_ms", "p99"), ("itl_mean_ms", "ITL mean"), ("itl_p50_ms", "p50"),
            ("itl_p90_ms", "p90"), ("itl_p99_ms", "p99"), ("e2e_mean_ms", "E2E mean"), ("e2e_p50_ms", "p50"),
            ("e2e_p90_ms", "p90"), ("e2e_p99_ms", "p99")]


def _cell(v: object, col: str) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "–"
    if col == "error_rate":
        return f"{100 * float(v):.1f}"  # type: ignore[arg-type]
    if isinstance(v, float):
        return f"{v:,.1f}"
    return str(v)


def print_summary(df: pd.DataFrame, console: Console | None = None) -> None:
    """Print a summary frame (from ``Catalog.summary``); latencies in ms."""
    console = console or Console(width=200)
    runs = df["run_id"].unique().tolist() if len(df) else []
    title = f"run {runs[0]} (latencies in ms, warm-up excluded)" if len(runs) == 1 else "summary (ms)"
    t = Table(title=title, title_justify="left")
    for col, head in _SUMMARY:
        t.add_column(head, justify="left" if col == "phase" else "right")
    for rec in df.to_dict("records"):
        t.add_row(*[_cell(rec[c], c) for c, _ in _SUMMARY])
    console.print(t)


def print_frame(df: pd.DataFrame, limit: int = 50, console: Console | None = None) -> None:
    """Print any frame as a table, at most ``limit`` rows."""
    console = console or Console(width=200)
    t = Table(show_lines=False)
    for c in df.columns:
        t.add_column(str(c))
    for rec in df.head(limit).itertuples(index=False):
        t.add_row(*[_cell(v, "") for v in rec])
    console.print(t)
    if len(df) > limit:
        console.print(f"({len(df) - limit} more rows; use --limit or --format csv)")


def print_run(cat, run_id: str, console: Console | None = None) -> None:  # type: ignore[no-untyped-def]
    """Everything a run's end prints: the summary, schedule fidelity, per-class SLOs, warnings."""
    console = console or Console(width=200)
    print_summary(cat.summary(run_id).df(), console)
    fid = cat.fidelity(run_id).df()
    t = Table(title="schedule fidelity (ms; rates in sessions/s)", title_justify="left")
    cols = [("phase", "phase"), ("target_rate_rps", "requested"), ("scheduled_rate_rps", "scheduled"),
            ("achieved_rate_rps", "achieved"),
            ("schedule_lag_p50_ms", "lag p50"), ("schedule_lag_p99_ms", "lag p99"), ("ttft_p99_ms", "TTFT p99"),
            ("ttft_from_intended_p99_ms", "from intended"), ("e2e_p99_ms", "E2E p99"),
            ("e2e_from_intended_p99_ms", "from intended")]
    for c, h in cols:
        t.add_column(h, justify="left" if c == "phase" else "right")
    for rec in fid.to_dict("records"):
        t.add_row(*[_cell(rec[c], c) for c, _ in cols])
    console.print(t)
    slo = cat.slo(run_id).df()
    if slo["slo_attainment"].notna().any() or slo["class_name"].nunique() > 1:
        t = Table(title="user classes (SLO attainment: share of requests meeting the class's SLO)",
                  title_justify="left")
        cols = [("phase", "phase"), ("class_name", "class"), ("requests", "n"), ("errors", "errors"),
                ("wrong_answers", "wrong"), ("slo_attainment", "SLO met %"), ("goodput_rps", "goodput/s"), ("ttft_p50_ms", "TTFT p50"),
                ("ttft_p99_ms", "p99"), ("tpot_p50_ms", "TPOT p50"), ("tpot_p99_ms", "p99")]
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
        cols = [("phase", "phase"), ("endpoint", "endpoint"), ("requests", "n"), ("share", "share %"),
                ("errors", "errors"), ("ttft_p50_ms", "TTFT p50"), ("ttft_p99_ms", "p99"), ("tpot_p50_ms", "TPOT p50"),
                ("e2e_p99_ms", "E2E p99")]
        for c, h in cols:
            t.add_column(h, justify="left" if c in ("phase", "endpoint") else "right")
        for rec in eps.to_dict("records"):
            rec["share"] = 100 * rec["share"]
            t.add_row(*[_cell(rec[c], c) for c, _ in cols])
        console.print(t)
    line = telemetry_line(cat.manifest(run_id).get("telemetry"))
    if line:
        console.print(line)
    for rec in fid.to_dict("records"):
        if rec["client_behind"]:
            console.print(f"[bold yellow]warning:[/] phase {rec['phase']}: the client fell behind its schedule "
                          f"(lag p99 {rec['schedule_lag_p99_ms']:.1f} ms, achieved {_cell(rec['achieved_rate_rps'], '')}"
                          f" of {_cell(rec['scheduled_rate_rps'], '')} scheduled/s): its latencies measure the client "
                          "as well as the server")


def telemetry_line(t: dict | None) -> str:  # type: ignore[type-arg]
    """One line saying what was recorded beside the requests (from the manifest's ``telemetry``)."""
    if not t:
        return ""
    gpu = t.get("gpu") or {}
    samplers = t.get("samplers") or {}
    if gpu.get("source"):
        n = sum(samplers.get(k, {}).get("readings", 0) for k in ("gpu-fast", "gpu-sim"))
        kind = "[bold]SIMULATED[/] by the simulator" if gpu.get("simulated") else f"NVML, driver {gpu.get('driver')}"
        lost = sum(1 for d in gpu.get("devices") or [] if d.get("lost_ns"))
        parts = [f"GPU {kind}: {len(gpu.get('devices') or [])} device(s), {n} readings"
                 + (f", [bold red]{lost} lost[/]" if lost else "")]
    else:
        parts = [f"GPU off ({gpu.get('off_reason')})"]
    sm = t.get("server_metrics") or {}
    srcs = sm.get("sources") or []
    if srcs:
        parts.append("server /metrics: " + ", ".join(f"{s.get('engine') or 'unknown engine'} ({s['ok_scrapes']} "
                                                     f"scrapes)" for s in srcs))
    elif sm.get("enabled"):
        parts.append("no server /metrics")
    if (t.get("host") or {}).get("enabled"):
        parts.append("host CPU, memory and event-loop lag")
    return "telemetry: " + "; ".join(parts) + " (tables gpu_samples, server_metrics, host_samples)"
