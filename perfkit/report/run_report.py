"""What a report of one run says: its sections, built from the catalog as a :class:`Document`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from perfkit.query.catalog import Catalog
from perfkit.query.frames import chunk_sizes
from perfkit.query.metrics import chunk_warning, client_evidence, client_note
from perfkit.report.document import Bullets, Details, Document, Figure, Meta, Para, Section, Table
from perfkit.report.figures import cdf_figure, latency_figure, telemetry_figure, throughput_figure

__all__ = ["fmt", "generated_line", "methods_section", "run_document", "run_warnings"]


def fmt(v: Any, col: str = "") -> str:
    """A cell: counts with separators, rates in %, other numbers to 1 or 2 decimals, missing as –."""
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
        return "–"
    if col in ("requests", "errors", "warmup_requests", "rampdown_requests", "windows", "wrong_answers"):
        return f"{int(v):,}"
    if col == "error_rate":
        return f"{100 * v:.2f}%"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:,.2f}"
    return str(v)


def generated_line(version: str) -> str:
    """The one line that differs between two renderings of the same data."""
    return f"Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')} by perfkit {version}."


def _frame_table(
    df: pd.DataFrame, cols: list[tuple[str, str]], pct: tuple[str, ...] = (), left: int = 2, size: str = "normal"
) -> Table:
    rows = [
        [
            (
                "–"
                if rec.get(c) is None or (isinstance(rec.get(c), float) and pd.isna(rec.get(c)))
                else f"{100 * rec[c]:.1f}%"
                if c in pct
                else fmt(rec[c], c)
            )
            for c, _ in cols
        ]
        for rec in df.to_dict("records")
    ]
    return Table([h for _, h in cols], rows, left=left, size=size)  # type: ignore[arg-type]


_LEFT = [
    ("phase", "phase"),
    ("requests", "requests"),
    ("errors", "errors"),
    ("error_rate", "error rate"),
    ("duration_s", "span (s)"),
    ("request_throughput_rps", "req/s"),
    ("output_token_throughput_tps", "out tok/s"),
]
_GROUPS = [
    ("TTFT (ms)", "ttft", ("mean", "p50", "p90", "p99")),
    ("ITL (ms)", "itl", ("mean", "p50", "p90", "p99")),
    ("TPOT (ms)", "tpot", ("mean",)),
    ("E2E (ms)", "e2e", ("mean", "p50", "p90", "p99")),
]


def summary_table(df: pd.DataFrame) -> Table:
    """Counts, throughput and latency statistics, one row per phase (or one for the run)."""
    cols = [c for c, _ in _LEFT] + [f"{k}_{st}_ms" for _, k, stats in _GROUPS for st in stats]
    header = [h for _, h in _LEFT] + [st for _, _, stats in _GROUPS for st in stats]
    rows = [[fmt(rec.get(c), c) for c in cols] for rec in df.to_dict("records")]
    groups = [("", len(_LEFT))] + [(g, len(stats)) for g, _, stats in _GROUPS]
    return Table(header, rows, left=1, groups=groups, size="small")


def _interval_section(cat: Catalog, run_id: str) -> Section:
    from perfkit.analysis.intervals import percentile_table

    df = percentile_table(cat, run_id)
    qs = sorted(df["q"].unique())
    rows = []
    for (phase, metric), g in df.groupby(["phase", "metric"], sort=False):
        cells = []
        for q in qs:
            r = g[g.q == q].iloc[0]
            cells.append(
                "not estimable" if not r["estimable"] else f"{r['estimate']:,.1f} [{r['lo']:,.1f}, {r['hi']:,.1f}]"
            )
        rows.append(
            [
                str(phase),
                str(metric).removesuffix("_ms").upper(),
                *cells,
                f"{int(g['n'].iloc[0]):,}",
                f"{g['n_eff'].min():,.0f}",
            ]
        )
    return Section(
        "Percentiles with 95% intervals",
        [
            Para(
                "Milliseconds. Intervals are distribution-free (order statistics) on the *effective* sample size, "
                "which accounts for the autocorrelation of consecutive requests; a percentile is reported only when "
                "the phase holds at least 3/(1 − q) effectively independent samples (p99: 300), otherwise it is "
                "marked not estimable. n_eff is the smallest effective sample size of the row."
            ),
            Table(["phase", "metric", *[f"p{100 * q:g}" for q in qs], "n", "n_eff"], rows, left=2),
        ],
    )


def _change_section(cat: Catalog, run_id: str) -> Section:
    from perfkit.analysis.series import change_table

    df = change_table(cat, run_id)
    sec = Section(
        "Changes detected",
        [
            Para(
                "Robust changepoint detection (log scale, spikes clipped, BIC-type penalty on the long-run variance, "
                "each change tested by block permutation or the CUSUM's Kolmogorov limit with Holm's adjustment, at "
                "least 5%) on 1-s windows of each series; times in seconds since the first send, intervals at 95%."
            )
        ],
    )
    if df.empty:
        return sec.add(Para("No change detected."))
    rows = [
        [
            r["series"],
            f"{r['t']:.0f}",
            f"[{r['t_lo']:.0f}, {r['t_hi']:.0f}]",
            fmt(r["before"]),
            fmt(r["after"]),
            fmt(r["ratio"]),
            "–" if pd.isna(r["ratio_lo"]) else f"[{r['ratio_lo']:.2f}, {r['ratio_hi']:.2f}]",
        ]
        for r in df.to_dict("records")
    ]
    return sec.add(
        Table(["series", "at (s)", "interval (s)", "before", "after", "ratio", "ratio interval"], rows, left=1)
    )


def _stability_section(cat: Catalog, run_id: str) -> Section:
    from perfkit.analysis.stability import stability_table

    df = stability_table(cat, run_id)
    cols = [
        ("phase", "phase"),
        ("verdict", "verdict"),
        ("reasons", "evidence"),
        ("requests", "requests"),
        ("warmup_requests", "warm-up"),
        ("rampdown_requests", "ramp-down"),
        ("windows", "windows"),
        ("drift", "drift"),
        ("cv_p50", "CV p50"),
        ("cv_p99", "CV p99"),
    ]
    t = _frame_table(df, cols, pct=("drift",), left=3)
    return Section(
        "Steady state and stability (TTFT)",
        [
            Para(
                "Warm-up and ramp-down by MSER-5; then, over windows of at least 10 requests, the Theil–Sen drift "
                "of the windowed median over the phase (a trend when its 95% interval excludes 0 and it exceeds "
                "10%) and the variation of windowed p50 and p99 (limits 0.15 and 0.30)."
            ),
            t,
        ],
    )


def _server_view_section(cat: Catalog, run_id: str) -> Section | None:
    from perfkit.analysis.serverview import server_view_table

    df = server_view_table(cat, run_id)
    if df.empty:
        return None
    cols = [
        ("phase", "phase"),
        ("metric", "metric"),
        ("client_p50_ms", "client p50"),
        ("server_p50_ms", "server p50"),
        ("bucket_lo_ms", "bucket from"),
        ("bucket_hi_ms", "to"),
        ("outside_p50_ms", "outside (p50)"),
        ("client_mean_ms", "client mean"),
        ("server_mean_ms", "server mean"),
        ("outside_mean_ms", "outside (mean)"),
    ]
    return Section(
        "The server's view beside the client's",
        [
            Para(
                "The engine's own latency histograms (ms), read over each phase as the change of their bucket counts, "
                "and their means from the histograms' sums, which are exact. The engine counts from the request's "
                "arrival in it; the client from its send; the difference is the time outside the engine: network, "
                "HTTP server and client. The server's median lies in the bucket shown (its resolution); inside it, "
                "it is placed by the client's samples moved by the difference of the means where they fit the "
                "bucket counts, else linearly."
            ),
            _frame_table(df, cols, left=2, size="small"),
        ],
    )


def _bottleneck_section(cat: Catalog, run_id: str) -> Section:
    from perfkit.analysis.attribution import attribution_table

    df = attribution_table(cat, run_id, n_boot=200)
    cols = [
        ("phase", "phase"),
        ("verdict", "bottleneck"),
        ("confidence", "confidence"),
        ("why", "evidence"),
        ("schedule_lag_ms", "lag"),
        ("connect_ms", "connect"),
        ("queue_ms", "queue"),
        ("prefill_ms", "prefill"),
        ("decode_ms", "decode"),
        ("outside_server_ms", "outside"),
        ("e2e_ms", "E2E"),
        ("little_ratio", "L / λW"),
    ]
    df = df.assign(**{c: None for c, _ in cols if c not in df})
    return Section(
        "Bottleneck per phase",
        [
            Para(
                "Where the mean request's time went (ms). Where the server exposes its own per-request time "
                "histograms (vLLM, SGLang, TGI), queue, prefill and decode are the engine's, and the time the client "
                "saw beyond the engine's is its own part (outside: client, network, API server or proxy); else they "
                "come from the stream: connection, queue (the server's waiting gauge over the arrival rate, by "
                "Little's law), prefill (the rest of the wait for the first token), decode. The bottleneck is the "
                "first rule that holds, in order: client-bound, front-end-bound, error-bound, "
                "power/thermal-throttled, KV-capacity-bound, queue-bound, prefill-compute-bound, "
                "decode-bound; its confidence is the share of block-bootstrap replicates of the phase's seconds that "
                "reach it. L / λW compares the server's count of requests inside with arrival rate × time inside."
            ),
            _frame_table(df, cols, pct=("confidence",), left=4, size="small"),
        ],
    )


def _fidelity_section(cat: Catalog, run_id: str) -> Section:
    fid = cat.fidelity(run_id).df()
    cols = [
        ("phase", "phase"),
        ("requests", "requests"),
        ("target_rate_rps", "requested /s"),
        ("scheduled_rate_rps", "scheduled /s"),
        ("achieved_rate_rps", "achieved /s"),
        ("schedule_lag_p50_ms", "lag p50 (ms)"),
        ("schedule_lag_p99_ms", "lag p99 (ms)"),
        ("ttft_p99_ms", "TTFT p99 (ms)"),
        ("ttft_from_intended_p99_ms", "from intended"),
        ("e2e_p99_ms", "E2E p99 (ms)"),
        ("e2e_from_intended_p99_ms", "from intended"),
    ]
    return Section(
        "Schedule fidelity",
        [
            Para(
                "Requested is the phase's nominal rate; scheduled, what this realisation of the arrival process "
                "asked for; achieved, what the client sent. Latencies from the intended send time show what users "
                "arriving on schedule saw (coordinated omission)."
            ),
            _frame_table(fid, cols, left=1),
        ],
    )


def _class_sections(cat: Catalog, run_id: str) -> list[Section]:
    slo = cat.slo(run_id).df()
    eps = cat.endpoints(run_id).df()
    out = []
    if slo["class_name"].nunique() > 1 or slo["slo_attainment"].notna().any():
        cols = [
            ("phase", "phase"),
            ("class_name", "class"),
            ("requests", "requests"),
            ("errors", "errors"),
            ("wrong_answers", "wrong answers"),
            ("slo_attainment", "SLO met"),
            ("goodput_rps", "goodput /s"),
            ("ttft_p50_ms", "TTFT p50"),
            ("ttft_p99_ms", "TTFT p99"),
            ("tpot_p50_ms", "TPOT p50"),
            ("tpot_p99_ms", "TPOT p99"),
        ]
        out.append(
            Section(
                "User classes and SLOs",
                [
                    Para(
                        "SLO met: the share of a class's requests that met every objective of its SLO (failed requests "
                        "and wrong answers count as misses)."
                    ),
                    _frame_table(slo, cols, pct=("slo_attainment",)),
                ],
            )
        )
    if eps["endpoint"].nunique() > 1:
        cols = [
            ("phase", "phase"),
            ("endpoint", "endpoint"),
            ("requests", "requests"),
            ("share", "share"),
            ("errors", "errors"),
            ("ttft_p50_ms", "TTFT p50"),
            ("ttft_p99_ms", "TTFT p99"),
            ("e2e_p99_ms", "E2E p99"),
        ]
        out.append(Section("Endpoints", [_frame_table(eps, cols, pct=("share",))]))
    return out


def _telemetry_section(m: dict[str, Any]) -> Section | None:
    t = m.get("telemetry")
    if not t:
        return None
    gpu = t.get("gpu") or {}
    rows: list[tuple[str, str]] = []
    if gpu.get("source"):
        devs = "; ".join(f"{d.get('index')}: {d.get('name')}" for d in gpu.get("devices") or [])
        label = "SIMULATED by perfkit's simulator (not a GPU)" if gpu.get("simulated") else "NVML"
        rows.append(("GPU counters", f"{label}, every {gpu.get('interval_s')} s; {devs}"))
        if gpu.get("driver"):
            rows.append(("NVIDIA driver", str(gpu["driver"])))
        for d in gpu.get("devices") or []:
            if d.get("unsupported"):
                rows.append(
                    (
                        f"GPU {d['index']} unsupported",
                        "; ".join(f"{k}: {v}" for k, v in sorted(d["unsupported"].items())),
                    )
                )
            if d.get("lost_ns"):
                rows.append((f"GPU {d['index']} lost", f"at {d['lost_ns']} ns: {d.get('lost_reason')}"))
    else:
        rows.append(("GPU counters", f"off: {gpu.get('off_reason')}"))
    sm = t.get("server_metrics") or {}
    for src in sm.get("sources") or []:
        rows.append(
            (
                "server metrics",
                f"{src['url']} every {sm.get('interval_s')} s; engine {src.get('engine')}; "
                f"{src['ok_scrapes']} scrapes, {src['failed_scrapes']} failed, "
                f"{src['counter_resets']} counter resets",
            )
        )
    rows.extend(("server metrics", str(p)) for p in sm.get("problems") or [])
    if not sm.get("enabled"):
        rows.append(("server metrics", "off"))
    for name, st in sorted((t.get("samplers") or {}).items()):
        cpu, wall = st.get("cpu_us_p50"), st.get("cost_us_p50")
        rows.append(
            (
                f"sampler {name}",
                f"{st['readings']} readings, {st['failures']} failures; per reading p50: "
                f"{'–' if cpu is None else f'{cpu:.0f}'} µs CPU, "
                f"{'–' if wall is None else f'{wall:.0f}'} µs wall",
            )
        )
    return Section(
        "Telemetry",
        [
            Para("Side channels recorded on the requests' monotonic clock; see the figure 'Telemetry' below."),
            Meta(rows),
        ],
    )


def _load_text(p: dict[str, Any]) -> str:
    if p.get("concurrency"):
        return f"closed loop, {p['concurrency']} users"
    if p.get("mode") == "trace" or p.get("trace_requests"):
        return f"trace replay, {p.get('trace_requests')} requests"
    rate = p.get("requested_rate_rps") or p.get("rate")
    shape = " (time-varying)" if p.get("profile") and len(p["profile"]) > 1 else ""
    burst = f", burstiness {p['burstiness']:g}" if p.get("arrival") == "gamma" else ""
    return f"open loop, {p.get('arrival')} {rate:.3g} req/s{shape}{burst}" if rate else "open loop"


def _gpu_text(m: dict[str, Any]) -> str:
    gpu = (m.get("telemetry") or {}).get("gpu") or {}
    if not gpu.get("source"):
        return "not recorded" + (f" ({gpu['off_reason']})" if gpu.get("off_reason") else "")
    names = sorted({str(d.get("name")) for d in gpu.get("devices") or []})
    if gpu.get("simulated"):
        return f"{len(gpu.get('devices') or [])} × {', '.join(names)}: SIMULATED, not a GPU"
    kind = "NVML"
    driver = f", driver {gpu['driver']}" if gpu.get("driver") else ""
    return f"{len(gpu.get('devices') or [])} × {', '.join(names) or '?'} ({kind}{driver})"


def methods_section(m: dict[str, Any], title: str = "Methods and reproducibility") -> Section:
    """Scenario, seeds, versions, commit, hardware, GPU and command of one run."""
    env = m.get("environment") or {}
    host = env.get("host") or {}
    ep = m.get("endpoint") or {}
    versions = ", ".join(f"{k} {v}" for k, v in sorted((env.get("versions") or {}).items()) if v)
    sim = m.get("simulator") or {}
    pairs = [
        ("run", str(m.get("run_id"))),
        ("endpoint", str(ep.get("base_url"))),
        ("model", str(ep.get("model"))),
        ("API", str(ep.get("api"))),
        ("started (UTC)", str(m.get("started_utc"))),
        ("finished (UTC)", str(m.get("finished_utc"))),
        ("status", str(m.get("status"))),
        ("scenario", str(m.get("scenario") or m.get("label") or "command line")),
        ("seed", str(m.get("seed"))),
        (
            "simulator",
            f"seed {sim.get('config', {}).get('seed', sim.get('seed', '–'))}; "
            f"{len(sim.get('events') or [])} injected events"
            if sim
            else "no",
        ),
        ("git commit", str(env.get("git_commit") or "–")),
        (
            "host",
            f"{host.get('platform')}, {host.get('cpu_count')} CPUs, {(host.get('memory_bytes') or 0) / 2**30:.1f} GiB",
        ),
        ("GPU", _gpu_text(m)),
        ("python", str(env.get("python"))),
        ("versions", versions),
        ("command", " ".join(m.get("command") or [])),
    ]
    rows = [
        [
            p["name"],
            _load_text(p),
            fmt(p.get("duration_s")),
            fmt(p.get("requests")),
            str(p["prompt_tokens"]),
            str(p["output_tokens"]),
            "yes" if p.get("warmup") else "",
        ]
        for p in m.get("phases") or []
    ]
    return Section(
        title,
        [
            Meta(pairs),
            Section(
                "Phases",
                [
                    Table(
                        ["phase", "load", "duration (s)", "requests", "prompt tokens", "output tokens", "warm-up"],
                        rows,
                        left=2,
                    )
                ],
                level=3,
            ),
        ],
    )


def run_warnings(
    m: dict[str, Any],
    summary: pd.DataFrame,
    fidelity: pd.DataFrame,
    *,
    prefix: str = "",
    chunks: pd.DataFrame | None = None,
) -> list[str]:
    """Statistical warnings for one run: simulated data, lost GPUs, small samples, client-bound phases, closed
    loops, chunks that carry several tokens."""
    out = []
    for rec in (chunks if chunks is not None else pd.DataFrame()).to_dict("records"):
        if chunk_warning(rec):
            out.append(f"{prefix}{chunk_warning(rec)[0].upper()}{chunk_warning(rec)[1:]}.")
    if m.get("simulator"):
        out.append(
            f"{prefix}The endpoint is perfkit's **simulated** LLM server: latencies come from its engine "
            "model, not from a GPU."
        )
    gpu = (m.get("telemetry") or {}).get("gpu") or {}
    if gpu.get("simulated"):
        out.append(
            f"{prefix}GPU counters in this report are **SIMULATED**: they follow the simulator's engine "
            "model, not a GPU."
        )
    if any(d.get("lost_ns") for d in gpu.get("devices") or []):
        out.append(f"{prefix}A GPU was **lost** during the run (see Telemetry): its counters stop there.")
    if m.get("status") not in ("complete", None):
        out.append(
            f"{prefix}The run's status is **{m.get('status')}**: it did not finish; the data hold what was "
            "recorded up to the end."
        )
    for rec in summary.to_dict("records"):
        if rec["requests"] < 300:
            out.append(
                f"{prefix}Phase **{rec['phase']}** has {rec['requests']} requests: its p99 rests on fewer "
                "than 300 samples and is not a reliable estimate (the interval table marks it not estimable)."
            )
    for rec in fidelity.to_dict("records"):
        if rec["client_bound"]:
            out.append(
                f"{prefix}Phase **{rec['phase']}** is **client-bound** ({client_evidence(rec)}): its latencies "
                "measure the client as well as the server."
            )
        elif client_note(rec):
            out.append(f"{prefix}Phase **{rec['phase']}**: {client_note(rec)}.")
    if any(p.get("concurrency") and not p.get("warmup") for p in m.get("phases") or []):
        out.append(
            f"{prefix}Closed-loop phases send the next request only when one ends: under overload their "
            "tails understate what open arrivals would see (coordinated omission)."
        )
    return out


def run_figures(cat: Catalog, run_id: str) -> list[Figure]:
    """The run's figures, each with the caption that says what it shows."""
    figs = [
        Figure(
            "latency",
            latency_figure(cat, run_id),
            "TTFT of every successful request (a sample of at most 4,000 points) with 2-s windowed p50 and "
            "p99; the grey band is each window's p50 95% interval (order statistics, requests within a window "
            "taken as independent; windows of 10 requests or more), and p99 is drawn for windows of 100 "
            "requests or more; shaded bands are phases.",
        ),
        Figure(
            "cdf",
            cdf_figure(cat, run_id),
            "Empirical CDFs over all non-warm-up requests; ITL is the gap between consecutive streamed chunks.",
        ),
        Figure(
            "throughput",
            throughput_figure(cat, run_id),
            "Output tokens per second (from chunk arrivals) and requests completed or failed per second, in 1-s bins.",
        ),
    ]
    tele = telemetry_figure(cat, run_id)
    if tele is not None:
        figs.append(
            Figure(
                "telemetry",
                tele,
                "Telemetry on the requests' clock, in bins of at least 0.5 s: GPU "
                "counters, the server's own metrics (KV-cache use, running and waiting requests) and "
                "the client's CPU and event-loop lag; shaded bands are phases.",
            )
        )
    return figs


def stable_manifest(m: dict[str, Any]) -> dict[str, Any]:
    """The manifest without the machine-local process id."""
    return {k: v for k, v in m.items() if k != "pid"}


def run_document(cat: Catalog, run_id: str, progress: Callable[[str], None] | None = None) -> Document:
    """Every section of a one-run report; ``progress`` is told each of its 8 steps as it starts."""
    say = progress or (lambda step: None)
    run_id = cat.require_run(run_id)
    m = cat.manifest(run_id)
    say("summary")
    by_phase = cat.summary(run_id).df()
    overall = cat.summary(run_id, by_phase=False).df()
    sections = [
        Section(
            "Summary",
            [
                Para(
                    "Latency statistics over successful requests, warm-up excluded; percentiles interpolate linearly "
                    "between order statistics. ITL is the gap between streamed chunks; TPOT is (last − first token) "
                    "/ (tokens − 1). The first table is the whole run, the second each phase."
                ),
                summary_table(overall),
                summary_table(by_phase),
            ],
        )
    ]
    say("percentile intervals")
    sections.append(_interval_section(cat, run_id))
    say("changepoints")
    sections.append(_change_section(cat, run_id))
    say("stability")
    sections.append(_stability_section(cat, run_id))
    say("client check")
    sections.append(_fidelity_section(cat, run_id))
    say("bottleneck attribution")
    sections.append(_bottleneck_section(cat, run_id))
    say("the server's view")
    sections += [s for s in (_server_view_section(cat, run_id),) if s is not None]
    sections += _class_sections(cat, run_id)
    tele = _telemetry_section(m)
    if tele is not None:
        sections.append(tele)
    sections += [
        Section(
            "Statistical warnings",
            [Bullets(run_warnings(m, by_phase, cat.fidelity(run_id).df(), chunks=chunk_sizes(cat, run_id)), warn=True)],
        ),
    ]
    say("figures")
    sections += [
        Section("Figures", list(run_figures(cat, run_id))),
        methods_section(m),
        Section("Manifest", [Details("Manifest (JSON)", json.dumps(stable_manifest(m), indent=2, sort_keys=True))]),
    ]
    version = str(((m.get("environment") or {}).get("versions") or {}).get("perfkit", ""))
    return Document(
        f"perfkit run {run_id}",
        [m["label"]] if m.get("label") else [],
        sections,
        generated_line(version),
        meta={"run_ids": [run_id]},
    )
