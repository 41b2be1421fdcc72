"""The ``perfkit`` command line: sim, chaos, run, demo, query, report, compare, slo, tradeoff, bottleneck, check,
schema."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from perfkit.errors import PerfkitError

__all__ = ["build_parser", "main"]


def _run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine; Ctrl-C and SIGTERM cancel it, so the run is closed cleanly (and its data kept).

    The signals are handled by the event loop itself: a ``KeyboardInterrupt`` raised by Python's own
    handler inside a loop callback can be swallowed by the loop (uvloop logs it and goes on). The first
    signal cancels the command; a second is ignored while what was recorded is written; a third exits at
    once. After Ctrl-C the command ends with ``KeyboardInterrupt`` (exit 130), after SIGTERM with
    ``CancelledError`` (exit 143).
    """
    got: list[int] = []

    def on_signal(sig: int, task: asyncio.Task[Any]) -> None:
        got.append(sig)
        if len(got) == 1:
            task.cancel()
        elif len(got) == 2:
            print("perfkit: stopping; writing what was recorded (signal again to quit at once)", file=sys.stderr,
                  flush=True)
        else:
            os._exit(130 if sig == signal.SIGINT else 143)

    async def wrapper() -> Any:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, on_signal, sig, task)
        return await coro

    try:
        try:
            import uvloop  # type: ignore[import-not-found]
        except ImportError:
            return asyncio.run(wrapper())
        return uvloop.run(wrapper())
    except asyncio.CancelledError:
        if got and got[0] == signal.SIGINT:
            raise KeyboardInterrupt from None
        raise


# -- commands -----------------------------------------------------------------
def cmd_sim(a: argparse.Namespace) -> int:
    from perfkit.sim.config import SimConfig, load_sim_config
    from perfkit.sim.process import serve

    cfg = load_sim_config(a.config) if a.config else SimConfig()
    if a.variant:
        from perfkit.sim.variants import variant_config

        cfg = variant_config(a.variant, cfg)
    if a.seed is not None:
        import dataclasses

        cfg = dataclasses.replace(cfg, seed=a.seed)
    from perfkit.chaos import faults_from_args

    serve(cfg, a.host, a.port, a.log, faults_from_args(a.fault), _fault_options(a))
    return 0


def _fault_options(a: argparse.Namespace):  # type: ignore[no-untyped-def]
    from perfkit.chaos import FaultOptions

    return FaultOptions(after_events=a.after_events, stall_s=a.stall_s, drip_ms=a.drip_ms, giant_mb=a.giant_mb,
                        seed=a.fault_seed)


def cmd_chaos(a: argparse.Namespace) -> int:
    from perfkit.chaos import ChaosProxy, _print_summary, faults_from_args, serve_chaos

    proxy = ChaosProxy(a.upstream, faults_from_args(a.fault), _fault_options(a), host=a.host, port=a.listen,
                       log_path=a.log, from_first_request=a.from_first_request)
    try:
        info = _run_async(serve_chaos(proxy))
    except OSError as exc:
        raise PerfkitError(f"cannot listen on {a.host}:{a.listen}: {exc}; pick another --listen port") from None
    _print_summary(info)
    return 0


def _cli_phases(a: argparse.Namespace) -> list:  # type: ignore[type-arg]
    from perfkit.client.runner import PhaseSpec

    if a.concurrency is None and a.rate is None:
        a.concurrency = 1
    if a.rate is not None:
        load = {"rate": a.rate, "arrival": a.arrival, "burstiness": a.burstiness, "max_in_flight": a.max_in_flight}
    else:
        load = {"concurrency": a.concurrency}
    if a.duration is None and a.requests is None:
        a.duration = 30.0
    phases = []
    if a.warmup:
        phases.append(PhaseSpec("warmup", duration_s=a.warmup, prompt_tokens=a.prompt_tokens,
                                output_tokens=a.output_tokens, warmup=True, **load))
    phases.append(PhaseSpec("main", duration_s=a.duration, requests=a.requests, prompt_tokens=a.prompt_tokens,
                            output_tokens=a.output_tokens, **load))
    return phases


def _notice(msg: str) -> None:
    from perfkit.secrets import redact

    print(f"perfkit: {redact(msg)}", file=sys.stderr, flush=True)


def _telemetry_spec(a: argparse.Namespace, **override: Any):  # type: ignore[no-untyped-def]
    from perfkit.collect.telemetry import TelemetrySpec

    kw = {"gpu": a.gpu, "gpu_interval_s": a.gpu_interval, "server_metrics": not a.no_server_metrics,
          "metrics_interval_s": a.metrics_interval, "metrics_url": a.metrics_url, "server_pid": a.server_pid}
    kw.update(override)
    return TelemetrySpec(**kw)


def _add_telemetry_flags(p: argparse.ArgumentParser, gpu_default: str) -> None:
    g = p.add_argument_group("telemetry (recorded on the requests' clock)")
    g.add_argument("--gpu", choices=("auto", "nvml", "sim", "off"), default=gpu_default,
                   help=f"GPU counters: auto = NVML when a driver answers, else off (never simulated); nvml; "
                        f"sim = the simulator's SIMULATED counters; off (default {gpu_default})")
    g.add_argument("--gpu-interval", type=float, default=0.1, help="GPU fast-tier interval, s (default 0.1)")
    g.add_argument("--metrics-interval", type=float, default=1.0,
                   help="interval of server /metrics scrapes, s (default 1)")
    g.add_argument("--metrics-url", help="scrape this URL instead of ENDPOINT_ROOT/metrics")
    g.add_argument("--no-server-metrics", action="store_true", help="do not scrape the server's /metrics")
    g.add_argument("--server-pid", type=int, help="a local server's pid: its process tree's CPU and memory are sampled")


def _add_fault_flags(p: argparse.ArgumentParser, target: str) -> None:
    from perfkit.chaos.faults import FAULTS, FaultOptions

    d = FaultOptions()
    g = p.add_argument_group("faults", f"injected into {target}")
    g.add_argument("--fault", action="append", metavar="KIND[:P][@START[+DUR]]",
                   help="repeatable; e.g. reset:0.1, http_503:1@10+5, restart@20+3. Kinds: " + ", ".join(FAULTS))
    g.add_argument("--after-events", type=int, default=d.after_events,
                   help=f"events passed through before a mid-stream fault (default {d.after_events})")
    g.add_argument("--stall-s", type=float, default=d.stall_s, help=f"silence of a stall, s (default {d.stall_s:g})")
    g.add_argument("--drip-ms", type=float, default=d.drip_ms,
                   help=f"pause between the {d.drip_bytes}-byte writes of a drip, ms (default {d.drip_ms:g})")
    g.add_argument("--giant-mb", type=float, default=d.giant_mb,
                   help=f"size of a giant chunk, MiB (default {d.giant_mb:g})")
    g.add_argument("--fault-seed", type=int, default=0, help="seed of the per-request fault draws (default 0)")


def _tags(items: list[str] | None) -> dict[str, str]:
    tags = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not key.strip().replace("_", "").replace("-", "").isalnum():
            raise PerfkitError(f"--tag {item!r} must read KEY=VALUE with a name of letters, digits, '_' or '-', "
                               "e.g. --tag variant=int8")
        tags[key.strip()] = value.strip()
    return tags


def cmd_run(a: argparse.Namespace) -> int:
    from perfkit.client.openai import Endpoint
    from perfkit.progress import ProgressDisplay
    from perfkit.recorder import record_run

    scenario = None
    if a.scenario:
        from perfkit.workload.scenario import load_scenario

        given = [f"--{n.replace('_', '-')}" for n in ("concurrency", "rate", "duration", "requests")
                 if getattr(a, n) is not None]
        if given:
            raise PerfkitError(f"the scenario {a.scenario} defines its own load; drop {', '.join(given)}")
        scenario = load_scenario(a.scenario)
        if a.scale != 1.0:
            scenario = scenario.scaled(a.scale)
        phases = list(scenario.phases)
    else:
        phases = _cli_phases(a)
    api = a.api or (scenario.api if scenario and scenario.api else "completions")
    from perfkit.client.routing import Router

    endpoints = [Endpoint(u, model=a.model or "", api=api, ignore_eos=not a.no_ignore_eos,
                          continuous_usage=not a.no_continuous_usage) for u in a.endpoint]
    weights = None
    if a.weights:
        try:
            weights = [float(w) for w in a.weights.split(",")]
        except ValueError:
            raise PerfkitError(f"--weights {a.weights!r} must be numbers separated by commas, one per --endpoint") \
                from None
    router = Router(len(endpoints), a.routing, weights)
    seed = a.seed if a.seed is not None else (scenario.seed if scenario else 0)
    display = ProgressDisplay() if not a.quiet else None
    telemetry = _telemetry_spec(a)
    tags = _tags(a.tag)
    scen = {"name": scenario.name, "source": scenario.source, "scale": a.scale, "spec": scenario.raw} \
        if scenario else None

    async def go():  # type: ignore[no-untyped-def]
        try:
            return await record_run(endpoints, phases, a.data_dir, seed=seed, run_id=a.run_id, label=a.label,
                                    tags=tags,
                                    read_timeout_s=a.read_timeout, flush_interval_s=a.flush_interval,
                                    on_start=display.attach if display else None, scenario=scen, router=router,
                                    telemetry=telemetry, notify=_notice, workers=a.workers, http=a.http)
        finally:
            if display:
                display.close()

    result = _run_async(go())
    from perfkit.query.catalog import Catalog
    from perfkit.tables import print_run

    with Catalog(a.data_dir) as cat:
        print_run(cat, result.run_id)
    print(f"run {result.run_id}: {result.progress.done} requests, {result.progress.errors} errors; "
          f"data in {Path(a.data_dir).resolve()}")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from perfkit.demo import DemoPlan, default_sim_config, run_demo
    from perfkit.progress import ProgressDisplay
    from perfkit.query.catalog import Catalog
    from perfkit.report.render import build_report
    from perfkit.sim.process import SimProcess
    from perfkit.tables import print_run

    plan = DemoPlan().scaled(a.scale)
    data_dir = Path(a.data_dir)
    tradeoff_lines: list[str] = []
    if not a.no_variants:
        # first, so that the main run below is the newest one ('latest')
        tradeoff_lines = _demo_variants(a, plan, data_dir)
    print("starting the simulated LLM endpoint (no GPU, no model) ...", file=sys.stderr)
    with SimProcess(default_sim_config(a.seed)) as sim:
        print(f"simulator at {sim.url}; running about {plan.warmup_s + plan.light_s + plan.heavy_s + plan.throttle_s:.0f} s "
              "of traffic: warm-up, light, heavy, and an injected GPU clock throttle (3x slower steps)", file=sys.stderr)
        display = ProgressDisplay()

        telemetry = _telemetry_spec(a, server_pid=a.server_pid or sim.pid)

        async def go():  # type: ignore[no-untyped-def]
            try:
                return await run_demo(data_dir, plan, sim, seed=a.seed, on_start=display.attach,
                                      telemetry=telemetry, notify=_notice)
            finally:
                display.close()

        result = _run_async(go())
    with Catalog(data_dir) as cat:
        print_run(cat, result.run_id)
        n = cat.scalar(f"SELECT count(*) FROM requests WHERE run_id = '{result.run_id}'")
        report = build_report(cat, result.run_id, a.reports_dir)
    print(f"\nrun id:   {result.run_id}")
    print(f"requests: {n} recorded in {(data_dir / 'requests').resolve()}/run_id={result.run_id}/")
    print(f"report:   {report.html.resolve()}")
    print(f"          {report.pdf.resolve() if report.pdf else ''} (PDF); figures in {report.figures}/")
    for line in tradeoff_lines:
        print(line)
    print(f"query:    perfkit query {data_dir} \"SELECT phase, count(*), median(ttft_ms) FROM requests GROUP BY ALL\"")
    return 0


def _demo_variants(a: argparse.Namespace, plan, data_dir: Path) -> list[str]:  # type: ignore[no-untyped-def]
    """Measure the simulated variants and write their trade-off report; the lines to print at the end."""
    import pandas as pd

    from perfkit.demo import DEMO_VARIANTS, run_variants
    from perfkit.query.catalog import Catalog
    from perfkit.report.tradeoff_report import write_tradeoff_report

    print(f"measuring {len(DEMO_VARIANTS)} simulated model variants ({', '.join(DEMO_VARIANTS)}), each with a "
          f"rate sweep of {len(plan.variant_rates)} x {plan.variant_step_s:.0f} s (about "
          f"{len(DEMO_VARIANTS) * (len(plan.variant_rates) * plan.variant_step_s + 6):.0f} s) ...", file=sys.stderr)
    ids = run_variants(data_dir, plan, seed=a.seed, notify=_notice)
    with Catalog(data_dir) as cat:
        files, tab = write_tradeoff_report(cat, a.reports_dir, run_ids=ids)
    lines = ["", "compression trade-off (simulated variants; SLOs TTFT p90 <= 200 ms, ITL p99 <= 50 ms):"]
    for r in tab.to_dict("records"):
        if pd.isna(r["cost_per_mtok_usd"]):
            lines.append(f"  {r['variant']:>5}: no load level met the SLOs with confidence; no cost")
            continue
        lines.append(f"  {r['variant']:>5}: max {r['load']:.1f} req/s under the SLOs, ${r['cost_per_mtok_usd']:.3f} per 1M "
                     f"output tokens, quality {r['quality']:.3f} ({r['quality_recovery_pct']:.1f}% of fp16), "
                     f"P(Pareto frontier) {r['p_front']:.2f}")
    lines.append(f"trade-offs: {files.html.resolve()}")
    lines.append(f"            figure {files.figures.resolve() if files.figures else ''}/tradeoff.svg")
    return lines


def cmd_query(a: argparse.Namespace) -> int:
    from perfkit.query.catalog import Catalog

    with Catalog(a.data_dir) as cat:
        try:
            rel = cat.sql(a.sql)
        except Exception as exc:  # duckdb errors: say what failed, not a traceback
            raise PerfkitError(f"query failed: {exc}. Tables: requests, chunks, runs (see `perfkit schema`).") from None
        if rel is None:
            return 0
        if a.format == "csv":
            rel.df().to_csv(sys.stdout, index=False)
        elif a.format == "json":
            print(rel.df().to_json(orient="records", indent=1))
        else:
            from perfkit.tables import print_frame

            print_frame(rel.df(), a.limit)
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from perfkit.query.catalog import Catalog
    from perfkit.report.render import build_report

    if a.notebook:
        from perfkit.report.notebook import report_notebook

        if a.run_ids:
            raise PerfkitError(f"with --notebook, give the run as a parameter (-p run_id={a.run_ids[0]}), "
                               "not as an argument")
        files = report_notebook(a.notebook, a.out, _notebook_params(a.param, a.data_dir), pdf=not a.no_pdf,
                                timeout_s=a.timeout)
    else:
        if not a.run_ids:
            raise PerfkitError("name a run (or 'latest'), several runs to compare, or --notebook NOTEBOOK")
        with Catalog(a.data_dir) as cat:
            try:
                files = build_report(cat, a.run_ids, a.out, pdf=not a.no_pdf, figures=not a.no_figures,
                                     phase=a.phase)
            except ValueError as exc:
                raise PerfkitError(str(exc)) from None
    print(files.html.resolve())
    if files.pdf:
        print(files.pdf.resolve())
    if files.figures:
        print(f"{files.figures.resolve()}/")
    return 0


def _notebook_params(pairs: list[str], data_dir: str) -> dict[str, object]:
    """``-p key=value`` pairs as papermill parameters; values parsed as JSON where they are JSON."""
    import json

    params: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise PerfkitError(f"-p {pair!r}: write a parameter as NAME=VALUE, e.g. -p run_id=latest")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    params.setdefault("data_dir", data_dir)
    return params


def cmd_compare(a: argparse.Namespace) -> int:
    from perfkit.analysis.compare import compare_runs, compare_to_history
    from perfkit.query.catalog import Catalog
    from perfkit.tables import print_comparison

    metrics = tuple(m.strip() if m.strip().endswith("_ms") else m.strip() + "_ms" for m in a.metrics.split(","))
    try:
        qs = tuple(float(q) / 100 for q in a.percentiles.split(","))
    except ValueError:
        raise PerfkitError(f"--percentiles {a.percentiles!r} must be numbers separated by commas, e.g. 50,90,99") \
            from None
    with Catalog(a.data_dir) as cat:
        try:
            if "," in a.run_a:
                res = compare_to_history(cat, [r.strip() for r in a.run_a.split(",") if r.strip()], a.run_b,
                                         metrics=metrics, qs=qs, phase=a.phase, alpha=a.alpha,
                                         min_effect=a.min_effect)
            else:
                res = compare_runs(cat, a.run_a, a.run_b, metrics=metrics, qs=qs, phase=a.phase, alpha=a.alpha,
                                   min_effect=a.min_effect, seed=a.seed)
        except ValueError as exc:
            raise PerfkitError(str(exc)) from None
    print_comparison(res)
    return 1 if res.regressed else 0


def cmd_slo(a: argparse.Namespace) -> int:
    import pandas as pd

    from perfkit.analysis.slo import max_sustainable_load, parse_slos, slo_table
    from perfkit.query.catalog import Catalog

    try:
        targets = parse_slos(a.slo)
    except ValueError as exc:
        raise PerfkitError(f"--slo: {exc}; presets: chat, rag") from None
    with Catalog(a.data_dir) as cat:
        run_id = cat.require_run(a.run)
        tab = slo_table(cat, run_id, targets, class_name=a.class_name, level=a.level)
        cols = ["phase", "slo", "n", "estimate_ms", "lo_ms", "hi_ms", "verdict"]
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(tab[cols].to_string(index=False, float_format=lambda v: f"{v:.1f}"))
        fid = cat.fidelity(run_id).df()
        if fid["target_rate_rps"].notna().sum() >= 2:
            cap = max_sustainable_load(cat, run_id, targets, level=a.level, class_name=a.class_name)
            print()
            print(cap)
    return 1 if (tab["verdict"] == "missed").any() and a.fail_on_miss else 0


def cmd_tradeoff(a: argparse.Namespace) -> int:
    import pandas as pd

    from perfkit.analysis.tradeoff import read_quality
    from perfkit.errors import DataError
    from perfkit.query.catalog import Catalog
    from perfkit.report.tradeoff_report import write_tradeoff_report

    frames = []
    for item in a.quality or []:
        variant, sep, path = item.partition("=")
        frames.append(read_quality(path, variant=variant) if sep else read_quality(item))
    quality = pd.concat(frames, ignore_index=True) if frames else None
    objectives = tuple(o.strip() for o in a.objectives.split(","))
    with Catalog(a.data_dir) as cat:
        try:
            files, tab = write_tradeoff_report(cat, a.out, run_ids=a.run_ids or None, quality=quality, slos=a.slo,
                                               gpu_hour_usd=a.gpu_hour_usd, gpus=a.gpus, baseline=a.baseline,
                                               objectives=objectives, pdf=not a.no_pdf)
        except ValueError as exc:
            raise DataError(str(exc)) from None
    cols = ["variant", "workload", "load", "load_lo", "load_hi", "cost_per_mtok_usd", "energy_j_per_token", "quality",
            "quality_recovery_pct", "on_front", "p_front"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(tab[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nreport: {files.html.resolve()}")
    return 0


def cmd_bottleneck(a: argparse.Namespace) -> int:
    from perfkit.analysis.attribution import attribute
    from perfkit.query.catalog import Catalog

    with Catalog(a.data_dir) as cat:
        res = attribute(cat, cat.require_run(a.run))
    for p in res:
        b = p.breakdown
        print(f"{p.phase}: {p.verdict} (confidence {100 * p.confidence:.0f}%): {'; '.join(p.reasons)}")
        print(f"  mean request (ms): client lag {b['schedule_lag']:.1f} | connect {b['connect']:.1f} | "
              f"queue {b['queue']:.1f} | prefill {b['prefill']:.1f} | decode {b['decode']:.1f} | "
              f"end to end {b['e2e']:.1f}")
        if "little_ratio" in p.little:
            print(f"  Little's law: server holds {p.little['L_server']:.2f} on average, arrival rate x time inside "
                  f"= {p.little['lambda_W']:.2f} (ratio {p.little['little_ratio']:.2f})")
    return 0


def cmd_check(a: argparse.Namespace) -> int:
    from perfkit.store.check import check_data

    rep = check_data(a.data_dir, repair=a.repair, deep=a.deep)
    for line in rep.lines():
        print(line)
    return 1 if rep.remaining else 0


def cmd_rollup(a: argparse.Namespace) -> int:
    import time

    import perfkit
    from perfkit.store.rollup import build_rollup, fresh_rollup, rollup_info

    with perfkit.open(a.data_dir) as cat:
        runs = cat.run_ids() if a.run == "all" else [cat.require_run(a.run)]
    for run_id in runs:
        if fresh_rollup(a.data_dir, run_id) is not None and not a.force:
            print(f"{run_id}: up to date")
            continue
        t = time.perf_counter()
        path = build_rollup(a.data_dir, run_id)
        if path is None:
            print(f"{run_id}: no requests, no rollup")
            continue
        samples = (rollup_info(path) or {}).get("samples") or {}
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(samples.items()))
        print(f"{run_id}: {path} ({counts}) in {time.perf_counter() - t:.1f} s")
    return 0


def cmd_schema(a: argparse.Namespace) -> int:
    from perfkit.store.schema import schema_markdown

    print(schema_markdown())
    return 0


# -- parser -------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="perfkit", description=__import__("perfkit").__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"perfkit {__import__('perfkit').__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("sim", help="serve the simulated OpenAI-compatible LLM endpoint",
                       description="Serve the simulated LLM endpoint until Ctrl-C.")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    s.add_argument("--config", help="YAML or JSON simulator config (engine parameters, events)")
    s.add_argument("--seed", type=int, help="override the config's seed")
    s.add_argument("--variant", choices=("fp16", "int8", "int4"),
                   help="simulate this precision of the model: faster, more KV cache, a little less quality")
    s.add_argument("--log", help="append one JSON line per finished request to this file")
    _add_fault_flags(s, "the simulated endpoint (served behind the fault proxy of `perfkit chaos`)")
    s.set_defaults(func=cmd_sim)

    ch = sub.add_parser("chaos", help="a proxy that injects faults in front of any endpoint",
                        description="Serve --upstream on --listen with faults injected into completion requests: "
                                    "resets, HTTP 429/500/503, malformed, truncated or stalled streams, a missing "
                                    "[DONE], slow drips, gigantic chunks, a wrong content type, refused "
                                    "connections and restarts. Ctrl-C stops it and prints what it injected.")
    ch.add_argument("--listen", type=int, required=True, help="port to listen on (0 picks a free one)")
    ch.add_argument("--upstream", required=True, help="base URL of the real server, e.g. http://127.0.0.1:8000")
    ch.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ch.add_argument("--log", help="append one JSON line per injected fault to this file")
    ch.add_argument("--from-first-request", action="store_true",
                    help="count fault times from the first completion request, not from the start of the proxy")
    _add_fault_flags(ch, "the upstream")
    ch.set_defaults(func=cmd_chaos)

    r = sub.add_parser("run", help="drive traffic at an endpoint and record it",
                       description="Drive traffic at an OpenAI-compatible endpoint: a SCENARIO file of phases, "
                                   "or one phase described by the flags. The API key, if any, comes from "
                                   "$PERFKIT_API_KEY or $OPENAI_API_KEY.")
    r.add_argument("scenario", nargs="?", help="scenario file (YAML/JSON); see scenarios/ for examples")
    r.add_argument("--endpoint", required=True, action="append",
                   help="server base URL, with or without /v1; repeat for replicas sharing the traffic")
    r.add_argument("--routing", choices=("round_robin", "least_outstanding", "weighted"), default="round_robin",
                   help="how requests are spread over several --endpoint (default round_robin)")
    r.add_argument("--weights", help="weighted routing: one weight per --endpoint, e.g. 3,1")
    r.add_argument("--scale", type=float, default=1.0, help="multiply the scenario's durations by this")
    r.add_argument("--tag", action="append", metavar="KEY=VALUE",
                   help="label the run (repeatable), e.g. --tag variant=int8 --tag workload=chat")
    r.add_argument("--workers", type=int, default=1,
                   help="client processes sharing the load, the schedule split exactly between them (default 1); "
                        "more when a phase is flagged client-bound")
    r.add_argument("--http", choices=("fast", "aiohttp"), default="fast",
                   help="streaming HTTP client: fast (chunks parsed as they arrive, default) or aiohttp")
    r.add_argument("--model", help="model name (default: the first one /v1/models lists)")
    r.add_argument("--api", choices=("completions", "chat"), help="default: the scenario's, else completions")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--concurrency", type=int, help="closed loop: this many users (default 1)")
    g.add_argument("--rate", type=float, help="open loop: requests per second")
    r.add_argument("--arrival", choices=("constant", "poisson", "gamma"), default="poisson", help="open-loop arrivals")
    r.add_argument("--burstiness", type=float, default=1.0,
                   help="gamma shape: 1 = Poisson, < 1 burstier (inter-arrival CV = 1/sqrt(B))")
    r.add_argument("--max-in-flight", type=int, help="open loop: cap on requests in flight")
    r.add_argument("--duration", type=float, help="seconds of traffic (default 30 unless --requests)")
    r.add_argument("--requests", type=int, help="stop after this many requests")
    r.add_argument("--warmup", type=float, default=0.0, help="seconds of warm-up before, left out of summaries")
    r.add_argument("--prompt-tokens", default="256", help="prompt length: N or uniform:A,B, normal:M,SD, lognormal:MED,SIGMA")
    r.add_argument("--output-tokens", default="128", help="max_tokens: N or a distribution as for --prompt-tokens")
    r.add_argument("--seed", type=int, help="default: the scenario's seed, else 0")
    r.add_argument("--data-dir", default="data", help="where Parquet goes (default data/)")
    r.add_argument("--run-id", help="run id (default: a new sortable id)")
    r.add_argument("--label", help="free text kept in the manifest")
    r.add_argument("--read-timeout", type=float, default=60.0, help="longest silence within a response, s")
    r.add_argument("--flush-interval", type=float, default=1.0, help="Parquet flush interval, s")
    r.add_argument("--no-ignore-eos", action="store_true", help="do not send ignore_eos/min_tokens")
    r.add_argument("--no-continuous-usage", action="store_true", help="do not ask for usage in every chunk")
    r.add_argument("--quiet", action="store_true", help="no progress display")
    _add_telemetry_flags(r, "auto")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="run the whole pipeline on the simulated endpoint",
                       description="Start the simulator, run a short multi-phase load, print the summary "
                                   "and write the HTML report.")
    d.add_argument("--data-dir", default="data")
    d.add_argument("--reports-dir", default="reports")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--scale", type=float, default=1.0, help="multiply every phase duration by this")
    d.add_argument("--no-variants", action="store_true",
                   help="skip the three simulated model variants (fp16, int8, int4) and their trade-off report")
    _add_telemetry_flags(d, "sim")
    d.set_defaults(func=cmd_demo)

    q = sub.add_parser("query", help="run SQL over every run in a data directory",
                       description="SQL over the views requests, chunks and runs (DuckDB).")
    q.add_argument("data_dir")
    q.add_argument("sql")
    q.add_argument("--format", choices=("table", "csv", "json"), default="table")
    q.add_argument("--limit", type=int, default=50, help="rows shown in table format")
    q.set_defaults(func=cmd_query)

    rp = sub.add_parser("report", help="write a report (HTML, PDF, figures) of a run, of runs compared, or of a notebook",
                        description="One run: REPORTS/RUN_ID.html and .pdf, and RUN_ID-figures/ with each figure as "
                                    "SVG and PDF (RUN_ID may be 'latest'). Several runs: the first is the baseline, "
                                    "the others are compared with it. --notebook: execute a notebook with papermill "
                                    "(parameters with -p NAME=VALUE) and render it to HTML and PDF.")
    rp.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    rp.add_argument("--data-dir", default="data")
    rp.add_argument("--out", default="reports")
    rp.add_argument("--phase", help="compare this phase only (with several runs)")
    rp.add_argument("--no-pdf", action="store_true", help="HTML only")
    rp.add_argument("--no-figures", action="store_true", help="do not export the figures one by one")
    rp.add_argument("--notebook", help="a notebook to execute and render, e.g. notebooks/01_explore_a_run.ipynb")
    rp.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                    help="a notebook parameter (repeatable); data_dir defaults to --data-dir")
    rp.add_argument("--timeout", type=float, default=600, help="longest a notebook cell may run, s")
    rp.set_defaults(func=cmd_report)

    c = sub.add_parser("compare", help="compare two runs' latency percentiles; exit 1 on a regression",
                       description="Compare run B against baseline run A: percentile differences with bootstrap "
                                   "intervals, rank tests and a verdict with false alarms controlled across the "
                                   "table (Holm). Exits 1 when B regressed, so it can gate CI.")
    c.add_argument("run_a", help="baseline run id ('latest' allowed), or a history: 3 or more ids separated by commas")
    c.add_argument("run_b", help="candidate run id")
    c.add_argument("--data-dir", default="data")
    c.add_argument("--metrics", default="ttft,itl,e2e", help="comma-separated: ttft, itl, tpot, e2e")
    c.add_argument("--percentiles", default="50,90,99", help="comma-separated percentiles (default 50,90,99)")
    c.add_argument("--phase", help="compare one phase present in both runs (default: all non-warm-up requests)")
    c.add_argument("--alpha", type=float, default=0.05, help="family-wise false-alarm rate over the table")
    c.add_argument("--min-effect", type=float, default=0.05,
                   help="smallest relative change that counts (default 0.05 = 5%%)")
    c.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    c.set_defaults(func=cmd_compare)

    so = sub.add_parser("slo", help="check percentile SLOs per phase; from a sweep, the most load that meets them",
                        description="Per phase and SLO: the percentile with its interval and a verdict (met, "
                                    "missed, uncertain, not estimable). When the run steps through two or more "
                                    "open-loop rates (a sweep), also the highest rate meeting every SLO with its "
                                    "confidence bracket.")
    so.add_argument("run", help="run id ('latest' allowed)")
    so.add_argument("--slo", default="chat",
                    help="a preset (chat, rag) or comma-separated bounds such as 'ttft_p99<=200ms,itl_p99<=50ms'")
    so.add_argument("--data-dir", default="data")
    so.add_argument("--class", dest="class_name", help="only this user class's requests")
    so.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
    so.add_argument("--fail-on-miss", action="store_true", help="exit 1 when any phase missed an SLO")
    so.set_defaults(func=cmd_slo)

    tr = sub.add_parser("tradeoff", help="model variants side by side: cost at the SLO-feasible load, quality, Pareto",
                        description="For runs tagged with a model variant (--tag variant=NAME, or perfkit sim "
                                    "--variant): the maximum sustainable rate under the SLOs, cost per 1M output "
                                    "tokens at it, energy per token, quality and its recovery against the "
                                    "baseline, and the Pareto frontier with bootstrap probabilities; writes an "
                                    "HTML/PDF report with the trade-off figure.")
    tr.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="default: every run with a variant")
    tr.add_argument("--data-dir", default="data")
    tr.add_argument("--out", default="reports")
    tr.add_argument("--quality", action="append", metavar="[VARIANT=]FILE",
                    help="evaluation results: lm-evaluation-harness JSON (as VARIANT=FILE) or a CSV/JSON of "
                         "variant, value[, stderr]; repeatable (default: the simulator's stated quality)")
    tr.add_argument("--slo", default="ttft_p90<=200ms,itl_p99<=50ms", help="SLOs deciding the feasible load")
    tr.add_argument("--gpu-hour-usd", type=float, default=2.5, help="price of one GPU for one hour, $")
    tr.add_argument("--gpus", type=int, default=1, help="GPUs the deployment occupies")
    tr.add_argument("--baseline", default="fp16", help="variant quality recovery is measured against")
    tr.add_argument("--objectives", default="cost,quality", help="Pareto objectives: cost, quality, latency, energy")
    tr.add_argument("--no-pdf", action="store_true", help="HTML only")
    tr.set_defaults(func=cmd_tradeoff)

    bn = sub.add_parser("bottleneck", help="where each phase's time went, and what limited it",
                        description="Per phase: the mean request's time split into client lag, connection, server "
                                    "queue, prefill and decode; a Little's-law check; and the bottleneck (client-, "
                                    "queue-, prefill-, decode-, KV-capacity-bound, throttled, error-bound) with "
                                    "its evidence and confidence.")
    bn.add_argument("run", help="run id ('latest' allowed)")
    bn.add_argument("--data-dir", default="data")
    bn.set_defaults(func=cmd_bottleneck)

    ck = sub.add_parser("check", help="find unreadable Parquet parts and manifests; --repair sets them aside",
                        description="Check every run in DATA_DIR: Parquet parts (footer, or every page with --deep), "
                                    "manifests, schema versions, temporary files a killed run left. --repair moves "
                                    "unreadable parts to DATA_DIR/_quarantine/ (nothing is deleted but the "
                                    "temporary files). Exit 1 while a problem remains.")
    ck.add_argument("data_dir", nargs="?", default="data", help="data directory (default data/)")
    ck.add_argument("--repair", action="store_true", help="move unreadable parts aside, remove stale temporary files")
    ck.add_argument("--deep", action="store_true", help="read every part whole, not just its footer")
    ck.set_defaults(func=cmd_check)

    ru = sub.add_parser("rollup", help="write a run's per-second latency histograms (fast summaries of huge runs)",
                        description="Write DATA_DIR/rollups/run_id=RUN/latency.parquet: per metric, phase and second, "
                                    "the samples in each 0.54%%-wide log bucket. Summaries of runs with millions of "
                                    "samples read it instead of every sample. A completed run gets one when it ends; "
                                    "this writes it for an interrupted or older run.")
    ru.add_argument("run", help="run id, 'latest' or 'all'")
    ru.add_argument("--data-dir", default="data")
    ru.add_argument("--force", action="store_true", help="rewrite an up-to-date rollup too")
    ru.set_defaults(func=cmd_rollup)

    sc = sub.add_parser("schema", help="print the data schema (columns, units, definitions)")
    sc.set_defaults(func=cmd_schema)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from perfkit.secrets import redact

    try:
        return int(args.func(args) or 0)
    except PerfkitError as exc:
        print(f"perfkit {args.command}: error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"perfkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except asyncio.CancelledError:  # SIGTERM cancels the command's task (see _run_async)
        print(f"perfkit {args.command}: terminated", file=sys.stderr)
        return 143
    except Exception:  # a bug: show it, but never with a key in it
        import traceback

        print(redact(traceback.format_exc()), file=sys.stderr)
        print(f"perfkit {args.command}: internal error (a bug; please report it with the lines above)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
