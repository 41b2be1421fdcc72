"""Render a run as one self-contained HTML file: no script, style or font from outside.

Figures are Altair charts rendered to inline SVG by vl-convert (vector, no
JavaScript needed to view them, identical from one rendering to the next).
Two reports of the same run differ only in the "Generated" line.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import vl_convert as vlc

from perfkit.query.catalog import Catalog
from perfkit.report.charts import cdf_chart, latency_over_time_chart, telemetry_chart, throughput_chart
from perfkit.report.theme import themed_spec

__all__ = ["build_report", "chart_svg"]

_CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.8em;margin:.6em 0}th,td{padding:.2em .4em;border-bottom:1px solid #e3e3e3;text-align:right}
th{background:#f4f4f4}th.grp{border-bottom:1px solid #bbb;text-align:center}td.l,th.l{text-align:left}.meta td{text-align:left}.warn{background:#fff6e0;border-left:4px solid #E69F00;padding:.5em 1em}
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}.generated{color:#777;font-size:.8em}code{font-size:.9em}
.wide{overflow-x:auto}
"""


def chart_svg(chart: alt.TopLevelMixin) -> str:
    """A chart as an SVG string, in perfkit's theme."""
    return vlc.vegalite_to_svg(themed_spec(chart))


def _fmt(v: Any, col: str) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "–"
    if col in ("requests", "errors"):
        return f"{int(v):,}"
    if col == "error_rate":
        return f"{100 * v:.2f}%"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:,.2f}"
    return html.escape(str(v))


_LEFT = [("phase", "phase"), ("requests", "requests"), ("errors", "errors"), ("error_rate", "error rate"),
         ("duration_s", "span (s)"), ("request_throughput_rps", "req/s"), ("output_token_throughput_tps", "out tok/s")]
_GROUPS = [("TTFT (ms)", "ttft", ("mean", "p50", "p90", "p99")), ("ITL (ms)", "itl", ("mean", "p50", "p90", "p99")),
           ("TPOT (ms)", "tpot", ("mean",)), ("E2E (ms)", "e2e", ("mean", "p50", "p90", "p99"))]


def _table(df: pd.DataFrame) -> str:
    """The summary as an HTML table with grouped latency columns."""
    top = "".join(f'<th rowspan="2" class="{"l" if c == "phase" else ""}">{h}</th>' for c, h in _LEFT)
    top += "".join(f'<th colspan="{len(stats)}" class="grp">{g}</th>' for g, _, stats in _GROUPS)
    sub = "".join(f"<th>{st}</th>" for _, _, stats in _GROUPS for st in stats)
    cols = [c for c, _ in _LEFT] + [f"{k}_{st}_ms" for _, k, stats in _GROUPS for st in stats]
    rows = []
    for rec in df.to_dict("records"):
        cells = "".join(f'<td class="{"l" if c == "phase" else ""}">{_fmt(rec[c], c)}</td>' for c in cols)
        rows.append(f"<tr>{cells}</tr>")
    return f'<div class="wide"><table class="summary"><tr>{top}</tr><tr>{sub}</tr>{"".join(rows)}</table></div>'


def _simple_table(df: pd.DataFrame, cols: list[tuple[str, str]], pct: tuple[str, ...] = (),
                  left: tuple[str, ...] = ()) -> str:
    """An HTML table of ``cols`` (name, heading); the first two columns and ``left`` ones aligned left."""
    def cls(i: int, c: str) -> str:
        return "l" if i < 2 or c in left else ""

    heads = "".join(f'<th class="{cls(i, c)}">{html.escape(h)}</th>' for i, (c, h) in enumerate(cols))
    rows = []
    for rec in df.to_dict("records"):
        cells = []
        for i, (c, _) in enumerate(cols):
            v = rec.get(c)
            text = "–" if v is None or (isinstance(v, float) and pd.isna(v)) else (
                f"{100 * v:.1f}%" if c in pct else _fmt(v, c))
            cells.append(f'<td class="{cls(i, c)}">{text}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f'<div class="wide"><table><tr>{heads}</tr>{"".join(rows)}</table></div>'


def _interval_section(cat: Catalog, run_id: str) -> str:
    """Percentiles with 95% intervals that account for autocorrelation; 'not estimable' where they must be."""
    from perfkit.analysis.intervals import percentile_table

    df = percentile_table(cat, run_id)
    qs = sorted(df["q"].unique())
    head = "".join(f"<th>p{100 * q:g}</th>" for q in qs)
    rows = []
    for (phase, metric), g in df.groupby(["phase", "metric"], sort=False):
        cells = []
        for q in qs:
            r = g[g.q == q].iloc[0]
            if not r["estimable"]:
                cells.append(f'<td title="{html.escape(str(r["note"]))}">not estimable</td>')
            else:
                cells.append(f"<td>{r['estimate']:,.1f} [{r['lo']:,.1f}, {r['hi']:,.1f}]</td>")
        rows.append(f"<tr><td class='l'>{html.escape(str(phase))}</td><td class='l'>"
                    f"{html.escape(str(metric).removesuffix('_ms').upper())}</td>{''.join(cells)}"
                    f"<td>{int(g['n'].iloc[0]):,}</td><td>{g['n_eff'].min():,.0f}</td></tr>")
    return ("<h2>Percentiles with 95% intervals</h2><p>Milliseconds. Intervals are distribution-free "
            "(order statistics) on the <i>effective</i> sample size, which accounts for the autocorrelation of "
            "consecutive requests; a percentile is reported only when the phase holds at least 3/(1 − q) "
            "effectively independent samples (p99: 300), otherwise it is marked not estimable. n_eff is the "
            "smallest effective sample size of the row.</p>"
            f"<div class='wide'><table><tr><th class='l'>phase</th><th class='l'>metric</th>{head}"
            f"<th>n</th><th>n_eff</th></tr>{''.join(rows)}</table></div>")


def _change_section(cat: Catalog, run_id: str) -> str:
    """Changes detected in the run's windowed series, with their location and size intervals."""
    from perfkit.analysis.series import change_table

    df = change_table(cat, run_id)
    intro = ("<h2>Changes detected</h2><p>Robust changepoint detection (log scale, spikes clipped, BIC-type "
             "penalty on the long-run variance, each change tested by block permutation with Holm's "
             "adjustment, at least 5%) on 1-s windows of each series; times in seconds since the first send, "
             "intervals at 95%.</p>")
    if df.empty:
        return intro + "<p>No change detected.</p>"
    def interval(r: dict[str, Any]) -> str:
        return "–" if pd.isna(r["ratio_lo"]) else f"[{r['ratio_lo']:.2f}, {r['ratio_hi']:.2f}]"

    rows = "".join(
        f"<tr><td>{r['t']:.0f}</td><td>[{r['t_lo']:.0f}, {r['t_hi']:.0f}]</td><td class='l'>{html.escape(r['series'])}"
        f"</td><td>{_fmt(r['before'], '')}</td><td>{_fmt(r['after'], '')}</td><td>{_fmt(r['ratio'], '')}</td>"
        f"<td>{interval(r)}</td></tr>" for r in df.to_dict("records"))
    return intro + ("<table><tr><th>at (s)</th><th>interval (s)</th><th class='l'>series</th><th>before</th>"
                    f"<th>after</th><th>ratio</th><th>ratio interval</th></tr>{rows}</table>")


def _stability_section(cat: Catalog, run_id: str) -> str:
    """Steady state (MSER-5) and a stability verdict per phase, with its evidence."""
    from perfkit.analysis.stability import stability_table

    df = stability_table(cat, run_id)
    cols = [("phase", "phase"), ("verdict", "verdict"), ("requests", "requests"), ("warmup_requests", "warm-up"),
            ("rampdown_requests", "ramp-down"), ("windows", "windows"), ("drift", "drift"),
            ("cv_p50", "CV p50"), ("cv_p99", "CV p99"), ("reasons", "evidence")]
    return ("<h2>Steady state and stability (TTFT)</h2><p>Warm-up and ramp-down by MSER-5; then, over windows "
            "of at least 10 requests, the Theil–Sen drift of the windowed median over the phase (a trend when "
            "its 95% interval excludes 0 and it exceeds 10%) and the variation of windowed p50 and p99 "
            "(limits 0.15 and 0.30).</p>" + _simple_table(df, cols, pct=("drift",), left=("reasons",)))


def _fidelity_section(cat: Catalog, run_id: str) -> str:
    fid = cat.fidelity(run_id).df()
    cols = [("phase", "phase"), ("requests", "requests"), ("target_rate_rps", "requested /s"),
            ("scheduled_rate_rps", "scheduled /s"), ("achieved_rate_rps", "achieved /s"),
            ("schedule_lag_p50_ms", "lag p50 (ms)"), ("schedule_lag_p99_ms", "lag p99 (ms)"),
            ("ttft_p99_ms", "TTFT p99 (ms)"), ("ttft_from_intended_p99_ms", "from intended"),
            ("e2e_p99_ms", "E2E p99 (ms)"), ("e2e_from_intended_p99_ms", "from intended")]
    return ("<h2>Schedule fidelity</h2><p>Requested is the phase's nominal rate; scheduled, what this realisation "
            "of the arrival process asked for; achieved, what the client sent. Latencies from the intended send "
            "time show what users arriving on schedule saw (coordinated omission).</p>" + _simple_table(fid, cols))


def _class_section(cat: Catalog, run_id: str) -> str:
    slo = cat.slo(run_id).df()
    eps = cat.endpoints(run_id).df()
    out = ""
    if slo["class_name"].nunique() > 1 or slo["slo_attainment"].notna().any():
        cols = [("phase", "phase"), ("class_name", "class"), ("requests", "requests"), ("errors", "errors"),
                ("wrong_answers", "wrong answers"), ("slo_attainment", "SLO met"), ("goodput_rps", "goodput /s"),
                ("ttft_p50_ms", "TTFT p50"), ("ttft_p99_ms", "TTFT p99"), ("tpot_p50_ms", "TPOT p50"),
                ("tpot_p99_ms", "TPOT p99")]
        out += ("<h2>User classes and SLOs</h2><p>SLO met: the share of a class's requests that met every "
                "objective of its SLO (failed requests and wrong answers count as misses).</p>"
                + _simple_table(slo, cols, pct=("slo_attainment",)))
    if eps["endpoint"].nunique() > 1:
        cols = [("phase", "phase"), ("endpoint", "endpoint"), ("requests", "requests"), ("share", "share"),
                ("errors", "errors"), ("ttft_p50_ms", "TTFT p50"), ("ttft_p99_ms", "TTFT p99"),
                ("e2e_p99_ms", "E2E p99")]
        out += "<h2>Endpoints</h2>" + _simple_table(eps, cols, pct=("share",))
    return out


def _telemetry_section(m: dict[str, Any]) -> str:
    """What was recorded beside the requests: sources, devices, what was missing, the samplers' own cost."""
    t = m.get("telemetry")
    if not t:
        return ""
    gpu = t.get("gpu") or {}
    rows: list[tuple[str, Any]] = []
    if gpu.get("source"):
        devs = "; ".join(f"{d.get('index')}: {d.get('name')}" for d in gpu.get("devices") or [])
        label = "SIMULATED by perfkit's simulator (not a GPU)" if gpu.get("simulated") else "NVML"
        rows.append(("GPU counters", f"{label}, every {gpu.get('interval_s')} s; {devs}"))
        if gpu.get("driver"):
            rows.append(("NVIDIA driver", gpu["driver"]))
        for d in gpu.get("devices") or []:
            if d.get("unsupported"):
                rows.append((f"GPU {d['index']} unsupported", "; ".join(f"{k}: {v}" for k, v in
                                                                       sorted(d["unsupported"].items()))))
            if d.get("lost_ns"):
                rows.append((f"GPU {d['index']} lost", f"at {d['lost_ns']} ns: {d.get('lost_reason')}"))
    else:
        rows.append(("GPU counters", f"off: {gpu.get('off_reason')}"))
    sm = t.get("server_metrics") or {}
    for src in sm.get("sources") or []:
        rows.append(("server metrics", f"{src['url']} every {sm.get('interval_s')} s; engine {src.get('engine')}; "
                                       f"{src['ok_scrapes']} scrapes, {src['failed_scrapes']} failed, "
                                       f"{src['counter_resets']} counter resets"))
    for problem in sm.get("problems") or []:
        rows.append(("server metrics", problem))
    if not sm.get("enabled"):
        rows.append(("server metrics", "off"))
    for name, st in sorted((t.get("samplers") or {}).items()):
        cpu, wall = st.get("cpu_us_p50"), st.get("cost_us_p50")
        rows.append((f"sampler {name}", f"{st['readings']} readings, {st['failures']} failures; per reading p50: "
                                        f"{'–' if cpu is None else f'{cpu:.0f}'} µs CPU, "
                                        f"{'–' if wall is None else f'{wall:.0f}'} µs wall"))
    return ("<h2>Telemetry</h2><p>Side channels recorded on the requests' monotonic clock; see the figure "
            "'Telemetry' below.</p>" + f"<table class='meta'>{_meta_rows(rows)}</table>")


def _meta_rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th class='l'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in pairs)


def _load_text(p: dict[str, Any]) -> str:
    if p.get("concurrency"):
        return f"closed loop, {p['concurrency']} users"
    if p.get("mode") == "trace" or p.get("trace_requests"):
        return f"trace replay, {p.get('trace_requests')} requests"
    rate = p.get("requested_rate_rps") or p.get("rate")
    shape = " (time-varying)" if p.get("profile") and len(p["profile"]) > 1 else ""
    burst = f", burstiness {p['burstiness']:g}" if p.get("arrival") == "gamma" else ""
    return f"open loop, {p.get('arrival')} {rate:.3g} req/s{shape}{burst}" if rate else "open loop"


def _methods(m: dict[str, Any]) -> str:
    env = m.get("environment") or {}
    host = env.get("host") or {}
    ep = m.get("endpoint") or {}
    versions = ", ".join(f"{k} {v}" for k, v in sorted((env.get("versions") or {}).items()) if v)
    phases = "".join(
        f"<tr><td class='l'>{html.escape(p['name'])}</td><td class='l'>"
        + html.escape(_load_text(p))
        + f"</td><td>{p.get('duration_s') or '–'}</td><td>{p.get('requests') or '–'}</td>"
        f"<td>{html.escape(str(p['prompt_tokens']))}</td><td>{html.escape(str(p['output_tokens']))}</td>"
        f"<td>{'yes' if p.get('warmup') else ''}</td></tr>" for p in m.get("phases") or [])
    meta = _meta_rows([
        ("endpoint", ep.get("base_url")), ("model", ep.get("model")), ("API", ep.get("api")),
        ("started (UTC)", m.get("started_utc")), ("finished (UTC)", m.get("finished_utc")),
        ("status", m.get("status")), ("seed", m.get("seed")), ("git commit", env.get("git_commit") or "–"),
        ("host", f"{host.get('platform')}, {host.get('cpu_count')} CPUs, "
                 f"{(host.get('memory_bytes') or 0) / 2**30:.1f} GiB"),
        ("python", env.get("python")), ("versions", versions), ("command", " ".join(m.get("command") or [])),
    ])
    return (f"<table class='meta'>{meta}</table><h3>Phases</h3><table><tr><th class='l'>phase</th>"
            "<th class='l'>load</th><th>duration (s)</th><th>requests</th><th>prompt tokens</th>"
            f"<th>output tokens</th><th>warm-up</th></tr>{phases}</table>")


def _warnings(m: dict[str, Any], summary: pd.DataFrame, fidelity: pd.DataFrame) -> list[str]:
    out = []
    if m.get("simulator"):
        out.append("The endpoint is perfkit's <b>simulated</b> LLM server: latencies come from its engine "
                   "model, not from a GPU.")
    gpu = (m.get("telemetry") or {}).get("gpu") or {}
    if gpu.get("simulated"):
        out.append("GPU counters in this report are <b>SIMULATED</b>: they follow the simulator's engine model, "
                   "not a GPU.")
    if any(d.get("lost_ns") for d in gpu.get("devices") or []):
        out.append("A GPU was <b>lost</b> during the run (see Telemetry): its counters stop there.")
    if m.get("status") not in ("complete", None):
        out.append(f"The run's status is <b>{html.escape(str(m.get('status')))}</b>: it did not finish; "
                   "the data hold what was recorded up to the end.")
    for rec in summary.to_dict("records"):
        if rec["requests"] < 300:
            out.append(f"Phase <b>{html.escape(rec['phase'])}</b> has {rec['requests']} requests: its p99 rests on "
                       "fewer than 300 samples and is not a reliable estimate (the interval table marks it "
                       "not estimable).")
    for rec in fidelity.to_dict("records"):
        if rec["client_behind"]:
            out.append(f"In phase <b>{html.escape(rec['phase'])}</b> the client fell behind its schedule (lag p99 "
                       f"{rec['schedule_lag_p99_ms']:.1f} ms): its latencies measure the client as well as the server.")
    if any(p.get("concurrency") and not p.get("warmup") for p in m.get("phases") or []):
        out.append("Closed-loop phases send the next request only when one ends: under overload their tails "
                   "understate what open arrivals would see (coordinated omission).")
    return out


def build_report(cat: Catalog, run_id: str, out_dir: str | Path = "reports") -> Path:
    """Write ``OUT_DIR/RUN_ID.html`` and return its path."""
    run_id = cat.require_run(run_id)
    m = cat.manifest(run_id)
    by_phase = cat.summary(run_id).df()
    overall = cat.summary(run_id, by_phase=False).df()
    figures = [
        ("latency", latency_over_time_chart(cat, run_id),
         "TTFT of every successful request (a sample of at most 4,000 points) with 2-s windowed p50 and p99; "
         "shaded bands are phases."),
        ("cdf", cdf_chart(cat, run_id), "Empirical CDFs over all non-warm-up requests; ITL is the gap between "
         "consecutive streamed chunks."),
        ("throughput", throughput_chart(cat, run_id), "Output tokens per second (from chunk arrivals) and "
         "requests completed or failed per second, in 1-s bins."),
    ]
    tele = telemetry_chart(cat, run_id)
    if tele is not None:
        figures.append(("telemetry", tele, "Telemetry on the requests' clock, in bins of at least 0.5 s: GPU "
                        "counters, the server's own metrics (KV-cache use, running and waiting requests) and the "
                        "client's CPU and event-loop lag; shaded bands are phases."))
    figs_html = "".join(f'<figure id="fig-{name}">{chart_svg(chart)}<figcaption>{html.escape(cap)}</figcaption>'
                        f"</figure>" for name, chart, cap in figures)
    warns = "".join(f"<li>{w}</li>" for w in _warnings(m, by_phase, cat.fidelity(run_id).df()))
    title = f"perfkit run {run_id}"
    label = f"<p>{html.escape(m['label'])}</p>" if m.get("label") else ""
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    version = ((m.get("environment") or {}).get("versions") or {}).get("perfkit", "")
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>{label}
<h2>Summary</h2>
<p>Latency statistics over successful requests, warm-up excluded; percentiles interpolate linearly between
order statistics. ITL is the gap between streamed chunks; TPOT is (last − first token) / (tokens − 1).</p>
{_table(overall)}{_table(by_phase)}
{_interval_section(cat, run_id)}
{_change_section(cat, run_id)}
{_stability_section(cat, run_id)}
{_fidelity_section(cat, run_id)}{_class_section(cat, run_id)}{_telemetry_section(m)}
<h2>Statistical warnings</h2><ul class="warn">{warns or "<li>None.</li>"}</ul>
<h2>Figures</h2>{figs_html}
<h2>Methods and reproducibility</h2>{_methods(m)}
<details><summary>Manifest (JSON)</summary><pre>{html.escape(json.dumps(_stable(m), indent=2, sort_keys=True))}</pre></details>
<p class="generated">Generated {generated} by perfkit {html.escape(str(version))}.</p>
</body></html>
"""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{run_id}.html"
    path.write_text(doc, encoding="utf-8")
    return path


def _stable(m: dict[str, Any]) -> dict[str, Any]:
    """The manifest without the machine-local process id."""
    return {k: v for k, v in m.items() if k != "pid"}
