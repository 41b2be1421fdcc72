"""``perfkit run``: drive traffic at an endpoint and record it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from perfkit.cli.common import (
    add_client_flags,
    add_data_dir,
    add_json,
    add_telemetry_flags,
    make_transport,
    notice,
    parse_tags,
    run_async,
    telemetry_spec,
)
from perfkit.errors import ConfigError, RunFailedError

NAME = "run"

EXAMPLES = """examples:
  perfkit run --endpoint http://127.0.0.1:8000 --rate 10 --duration 30       Poisson arrivals, 10 req/s
  perfkit run --endpoint http://127.0.0.1:8000/v1 --concurrency 16 --requests 500 --api chat
  perfkit run scenarios/baseline_ramp_peak_burst_recovery.yaml --endpoint http://127.0.0.1:8000
  perfkit run --endpoint http://127.0.0.1:8000 --rate 20 --arrival gamma --burstiness 0.25 --duration 60
  perfkit run --endpoint https://api.example.com --model m --rate 2 --requests 50 --tag variant=int8

The API key, if the server needs one, comes from $PERFKIT_API_KEY or $OPENAI_API_KEY and is never written.
Exit status: 0 ok, 2 a bad flag or scenario, 3 the endpoint could not be used or every request failed."""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    r = sub.add_parser(
        NAME,
        help="drive traffic at an endpoint and record it",
        description="Drive traffic at an OpenAI-compatible endpoint: a SCENARIO file of phases, "
        "or one phase described by the flags, and record every request, chunk and "
        "side channel under --data-dir.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("scenario", nargs="?", help="scenario file (YAML/JSON); see scenarios/ for examples")
    e = r.add_argument_group("endpoint")
    e.add_argument(
        "--endpoint",
        "--base-url",
        "--url",
        dest="endpoint",
        required=True,
        action="append",
        metavar="URL",
        help="server base URL, with or without /v1; repeat for replicas sharing the traffic",
    )
    e.add_argument("--model", help="model name (default: the first one /v1/models lists)")
    e.add_argument("--api", choices=("completions", "chat"), help="default: the scenario's, else completions")
    e.add_argument(
        "--routing",
        choices=("round_robin", "least_outstanding", "weighted"),
        default="round_robin",
        help="how requests are spread over several --endpoint (default round_robin)",
    )
    e.add_argument("--weights", metavar="W,W,...", help="weighted routing: one weight per --endpoint, e.g. 3,1")
    load = r.add_argument_group("load shape (without a scenario)")
    g = load.add_mutually_exclusive_group()
    g.add_argument("--concurrency", type=int, metavar="N", help="closed loop: this many users (default 1)")
    g.add_argument(
        "--rate", "--request-rate", dest="rate", type=float, metavar="R", help="open loop: requests per second"
    )
    load.add_argument(
        "--arrival",
        choices=("constant", "poisson", "gamma"),
        default="poisson",
        help="open-loop arrivals (default poisson)",
    )
    load.add_argument(
        "--burstiness",
        type=float,
        default=1.0,
        metavar="B",
        help="gamma shape: 1 = Poisson, < 1 burstier (inter-arrival CV = 1/sqrt(B))",
    )
    load.add_argument("--max-in-flight", type=int, metavar="N", help="open loop: cap on requests in flight")
    load.add_argument(
        "--max-concurrency",
        type=int,
        metavar="N",
        help="as in vLLM's bench serve and AIPerf: with --rate, a cap on requests in flight (--max-in-flight); "
        "alone, N requests always in flight (--concurrency N)",
    )
    load.add_argument("--duration", type=float, metavar="S", help="seconds of traffic (default 30 unless --requests)")
    load.add_argument(
        "--requests",
        "--num-prompts",
        "--request-count",
        dest="requests",
        type=int,
        metavar="N",
        help="stop after this many requests",
    )
    load.add_argument(
        "--warmup", type=float, default=0.0, metavar="S", help="seconds of warm-up before, left out of summaries"
    )
    load.add_argument("--scale", type=float, default=1.0, metavar="K", help="multiply a scenario's durations by this")
    q = r.add_argument_group("requests")
    q.add_argument(
        "--prompt-tokens",
        default="256",
        metavar="N|DIST",
        help="prompt length: N or uniform:A,B, normal:M,SD, lognormal:MED,SIGMA (default 256)",
    )
    q.add_argument(
        "--output-tokens",
        default="128",
        metavar="N|DIST",
        help="max_tokens: N or a distribution as for --prompt-tokens (default 128)",
    )
    q.add_argument(
        "--dataset",
        choices=("sharegpt", "jsonl", "csv"),
        help="prompts (and answer lengths, where it has them) from a dataset file instead of --prompt-tokens",
    )
    q.add_argument("--dataset-path", metavar="FILE", help="the --dataset file (ShareGPT JSON/JSONL, JSONL or CSV)")
    q.add_argument(
        "--extra-body",
        metavar="JSON",
        help='fields merged into every request body, e.g. \'{"temperature": 0, "top_p": 0.9}\'',
    )
    q.add_argument("--temperature", type=float, help="sampling temperature sent with every request")
    q.add_argument("--top-p", type=float, help="nucleus sampling top_p sent with every request")
    q.add_argument("--seed", type=int, help="default: the scenario's seed, else 0")
    q.add_argument("--no-ignore-eos", action="store_true", help="do not send ignore_eos/min_tokens")
    q.add_argument("--no-continuous-usage", action="store_true", help="do not ask for usage in every chunk")
    q.add_argument(
        "--same-prompts",
        action="store_true",
        help="send the seed's prompt words in every run (by default they are salted by the run id, so that no "
        "prefix cache carries over from an earlier run); lengths and timing are the seed's either way",
    )
    q.add_argument(
        "--no-preflight",
        action="store_true",
        help="send no first request to find out which of perfkit's non-standard fields the server refuses "
        "(by default those it answers with HTTP 400 are dropped for the run, and the manifest says so)",
    )
    q.add_argument(
        "--no-request-id",
        action="store_true",
        help="send no X-Request-Id header (by default each request carries a UUID, which every server accepts)",
    )
    add_client_flags(r)
    x = r.add_argument_group("beyond one machine (docs/scale-out.md)")
    x.add_argument(
        "--cluster",
        metavar="ray[://HOST:PORT]",
        help="run the --workers as Ray actors spread over a Ray cluster's nodes (ray: $RAY_ADDRESS or a local "
        'Ray; needs pip install "perfkit[ray]"); records and clocks come back here, one run',
    )
    x.add_argument(
        "--partition",
        metavar="W/N",
        help="send only share W of N of the schedule (a pod of an Indexed Job, one host of a loop over ssh); "
        "with --start-at; `perfkit merge` joins the shares",
    )
    x.add_argument(
        "--start-at",
        metavar="UTC_TIME",
        help="with --partition: when every share starts: 2026-12-04T15:00:00Z, @UNIX_SECONDS, or +S (the next "
        "whole multiple of S seconds of UTC, so that shares started together agree)",
    )
    o = r.add_argument_group("output")
    add_data_dir(o, "where the run's Parquet and manifest go (default data/)")
    add_json(o)
    o.add_argument("--run-id", help="run id (default: a new sortable id)")
    o.add_argument("--label", help="free text kept in the manifest")
    o.add_argument(
        "--tag",
        action="append",
        metavar="KEY=VALUE",
        help="label the run (repeatable), e.g. --tag variant=int8 --tag workload=chat",
    )
    o.add_argument("--flush-interval", type=float, default=1.0, metavar="S", help="Parquet flush interval, s")
    o.add_argument("--quiet", action="store_true", help="no progress display")
    add_telemetry_flags(r, "auto")
    return r


def _cli_phases(a: argparse.Namespace) -> list[Any]:
    from perfkit.workload.phase import PhaseSpec

    if a.max_concurrency is not None:
        if a.max_concurrency < 1:
            raise ConfigError(f"--max-concurrency must be 1 or more, got {a.max_concurrency}")
        if a.rate is not None:
            a.max_in_flight = a.max_in_flight or a.max_concurrency
        elif a.concurrency is None:
            a.concurrency = a.max_concurrency
    if a.concurrency is None and a.rate is None:
        a.concurrency = 1
    classes = None
    if a.dataset or a.dataset_path:
        if not (a.dataset and a.dataset_path):
            raise ConfigError("--dataset and --dataset-path go together: the format and the file")
        from perfkit.workload.content import UserClass
        from perfkit.workload.loaders import load_dataset

        if not Path(a.dataset_path).is_file():
            raise ConfigError(f"--dataset-path {a.dataset_path!r} is not a file")
        entries = load_dataset(a.dataset_path)
        classes = (UserClass("dataset", 1.0, a.prompt_tokens, a.output_tokens, dataset=entries),)
    load: dict[str, Any]
    if a.rate is not None:
        load = {"rate": a.rate, "arrival": a.arrival, "burstiness": a.burstiness, "max_in_flight": a.max_in_flight}
    else:
        load = {"concurrency": a.concurrency}
    if a.duration is None and a.requests is None:
        a.duration = 30.0
    phases = []
    if a.warmup:
        phases.append(
            PhaseSpec(
                "warmup",
                duration_s=a.warmup,
                prompt_tokens=a.prompt_tokens,
                output_tokens=a.output_tokens,
                warmup=True,
                **load,
            )
        )
    phases.append(
        PhaseSpec(
            "main",
            duration_s=a.duration,
            requests=a.requests,
            prompt_tokens=a.prompt_tokens,
            output_tokens=a.output_tokens,
            classes=classes,
            **load,
        )
    )
    return phases


def _extra_body(a: argparse.Namespace) -> str:
    """``--extra-body`` with the sampling flags merged in, as canonical JSON ("" for none)."""
    import json

    extra: dict[str, Any] = {}
    if a.extra_body:
        try:
            extra = json.loads(a.extra_body)
        except ValueError as exc:
            raise ConfigError(
                f"--extra-body is not JSON ({exc}); give an object, e.g. '{{\"temperature\": 0}}'"
            ) from None
        if not isinstance(extra, dict):
            raise ConfigError("--extra-body must be a JSON object of fields, e.g. '{\"temperature\": 0}'")
    for key, value in (("temperature", a.temperature), ("top_p", a.top_p)):
        if value is not None:
            extra[key] = value
    return json.dumps(extra, sort_keys=True) if extra else ""


def _check_data_dir(path: str) -> None:
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"--data-dir {path!r} is a file, not a directory; give a directory (it is made if missing)")


def run(a: argparse.Namespace) -> int:
    from perfkit.client.endpoint import Endpoint
    from perfkit.client.routing import Router
    from perfkit.client.runner import pool_size_for
    from perfkit.record.run import record_run

    _check_data_dir(a.data_dir)
    partition = start_at = None
    if a.partition or a.start_at:
        from perfkit.record.shares import parse_partition, parse_start_at

        if not (a.partition and a.start_at):
            raise ConfigError("--partition and --start-at go together: every share must start at one instant")
        partition, start_at = parse_partition(a.partition), parse_start_at(a.start_at)
    if a.cluster:
        from perfkit.record.cluster import parse_cluster, require_ray

        parse_cluster(a.cluster)
        require_ray()
    scenario = None
    if a.scenario:
        from perfkit.workload.scenario import load_scenario

        given = [
            f"--{n.replace('_', '-')}"
            for n in ("concurrency", "rate", "duration", "requests")
            if getattr(a, n) is not None
        ]
        if given:
            raise ConfigError(f"the scenario {a.scenario} defines its own load; drop {', '.join(given)}")
        scenario = load_scenario(a.scenario)
        if a.scale != 1.0:
            scenario = scenario.scaled(a.scale)
        phases = list(scenario.phases)
    else:
        phases = _cli_phases(a)
    api = a.api or (scenario.api if scenario and scenario.api else "completions")
    endpoints = [
        Endpoint(
            u,
            model=a.model or "",
            api=api,
            ignore_eos=not a.no_ignore_eos,
            continuous_usage=not a.no_continuous_usage,
            request_id=not a.no_request_id,
            extra_body=_extra_body(a),
        )
        for u in a.endpoint
    ]
    weights = None
    if a.weights:
        try:
            weights = [float(w) for w in a.weights.split(",")]
        except ValueError:
            raise ConfigError(
                f"--weights {a.weights!r} must be numbers separated by commas, one per --endpoint"
            ) from None
    router = Router(len(endpoints), a.routing, weights)
    seed = a.seed if a.seed is not None else (scenario.seed if scenario else 0)
    telemetry = telemetry_spec(a)
    tags = parse_tags(a.tag)
    transport = make_transport(a, pool_size_for(phases), a.endpoint or [])
    scen = (
        {"name": scenario.name, "source": scenario.source, "scale": a.scale, "spec": scenario.raw} if scenario else None
    )
    display = None
    if not a.quiet:
        from perfkit.cli.progress import ProgressDisplay

        display = ProgressDisplay()

    async def go() -> Any:
        try:
            return await record_run(
                endpoints,
                phases,
                a.data_dir,
                seed=seed,
                run_id=a.run_id,
                label=a.label,
                tags=tags,
                flush_interval_s=a.flush_interval,
                on_start=display.attach if display else None,
                scenario=scen,
                router=router,
                telemetry=telemetry,
                notify=notice,
                workers=a.workers,
                transport=transport,
                same_prompts=a.same_prompts,
                cluster=a.cluster,
                preflight=not a.no_preflight,
                partition=partition,
                start_at=start_at,
            )
        finally:
            if display:
                display.close()

    result = run_async(go())
    from perfkit.cli.tables import print_run
    from perfkit.query.catalog import Catalog

    p = result.progress
    with Catalog(a.data_dir) as cat:
        if a.json:
            from perfkit.cli.common import print_json
            from perfkit.report.export import perfkit_result

            print_json({"run_id": result.run_id, "requests": p.done, "errors": p.errors,
                        "percentiles_ms": perfkit_result(cat, result.run_id) if p.done > p.errors else {}})  # fmt: skip
        elif p.done and p.errors < p.done:
            print_run(cat, result.run_id)
    done_line = f"run {result.run_id}: {p.done} requests, {p.errors} errors; data in {Path(a.data_dir).resolve()}"
    print(done_line, file=sys.stderr if a.json else sys.stdout)
    if p.done and p.errors == p.done:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(p.errors_by_kind.items(), key=lambda kv: -kv[1]))
        raise RunFailedError(
            f"every request of run {result.run_id} failed ({kinds}); the first said: "
            f"{_first_error(a.data_dir, result.run_id)}. The requests are recorded; "
            f'`perfkit query {a.data_dir} "SELECT error_kind, error_message FROM requests"` '
            "shows them"
        )
    if not p.done:
        raise RunFailedError(f"run {result.run_id} sent no request; check --duration, --requests and the scenario")
    return 0


def _first_error(data_dir: str, run_id: str) -> str:
    from perfkit.query.catalog import Catalog
    from perfkit.query.frames import first_error

    with Catalog(data_dir) as cat:
        return first_error(cat, run_id) or "(no message)"
