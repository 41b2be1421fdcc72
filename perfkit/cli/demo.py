"""``perfkit demo``: the whole pipeline on the simulated endpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from perfkit.cli.common import add_data_dir, add_out, add_telemetry_flags, notice, run_async, telemetry_spec
from perfkit.errors import ConfigError

NAME = "demo"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    d = sub.add_parser(
        NAME,
        help="run the whole pipeline on the simulated endpoint",
        description="Start the simulator, run a short multi-phase load (about 80 s), print the summary "
        "and write the HTML report; with --variants, first measure three simulated model variants and "
        "their cost-quality trade-off (about 80 s more).",
    )
    add_data_dir(d)
    add_out(d, "--reports-dir")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--scale", type=float, default=1.0, metavar="K", help="multiply every phase duration by this")
    d.add_argument(
        "--variants",
        action="store_true",
        help="also measure three simulated model variants (fp16, int8, int4) and write their trade-off report",
    )
    d.add_argument("--no-variants", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for scripts
    add_telemetry_flags(d, "sim")
    return d


def run(a: argparse.Namespace) -> int:
    from perfkit.cli.progress import ProgressDisplay
    from perfkit.cli.tables import print_run
    from perfkit.demo import DemoPlan, default_sim_config, run_demo
    from perfkit.query.catalog import Catalog
    from perfkit.report.render import build_report
    from perfkit.sim.process import SimProcess

    for flag, path in (("--data-dir", a.data_dir), ("--out", a.out)):
        if Path(path).exists() and not Path(path).is_dir():
            raise ConfigError(f"{flag} {path!r} is a file, not a directory; give a directory (it is made if missing)")
    if not a.scale > 0:
        raise ConfigError(f"--scale must be > 0, got {a.scale:g}")
    plan = DemoPlan().scaled(a.scale)
    data_dir = Path(a.data_dir)
    tradeoff_lines: list[str] = []
    if a.variants and not a.no_variants:
        # first, so that the main run below is the newest one ('latest')
        tradeoff_lines = _demo_variants(a, plan, data_dir)
    print("starting the simulated LLM endpoint (no GPU, no model) ...", file=sys.stderr)
    with SimProcess(default_sim_config(a.seed)) as sim:
        total = plan.warmup_s + plan.light_s + plan.steady_s + plan.throttle_s
        print(
            f"simulator at {sim.url}; running about {total:.0f} s of traffic: warm-up, light, a steady "
            f"{plan.steady_rate:g} req/s (the headline phase), and an injected GPU clock throttle (3x slower steps)",
            file=sys.stderr,
        )
        display = ProgressDisplay()
        telemetry = telemetry_spec(a, server_pid=a.server_pid or sim.pid)

        async def go() -> Any:
            try:
                return await run_demo(
                    data_dir, plan, sim, seed=a.seed, on_start=display.attach, telemetry=telemetry, notify=notice
                )
            finally:
                display.close()

        result = run_async(go())
    from perfkit.cli.steps import Steps

    with Catalog(data_dir) as cat:
        print_run(cat, result.run_id)
        with Steps("perfkit demo: report", 11) as steps:
            report = build_report(cat, result.run_id, a.out, progress=steps)
    print(f"\nrun id:   {result.run_id}")
    print(f"requests: {result.progress.done} recorded in {(data_dir / 'requests').resolve()}/run_id={result.run_id}/")
    print(f"report:   {report.html.resolve()}")
    print(f"          {report.pdf.resolve() if report.pdf else ''} (PDF); figures in {report.figures}/")
    for line in tradeoff_lines:
        print(line)
    print(
        f'query:    perfkit query "SELECT phase, count(*), median(ttft_ms) FROM requests GROUP BY ALL" '
        f"--data-dir {data_dir}"
    )
    print(f"next:     open the report above; perfkit bottleneck latest --data-dir {data_dir}; jupyter lab notebooks/")
    if not tradeoff_lines:
        print("          perfkit demo --variants adds three simulated model variants and their cost-quality trade-off")
    return 0


def _demo_variants(a: argparse.Namespace, plan: Any, data_dir: Path) -> list[str]:
    """Measure the simulated variants and write their trade-off report; the lines to print at the end."""
    import math

    from perfkit.demo import DEMO_VARIANTS, run_variants
    from perfkit.query.catalog import Catalog
    from perfkit.report.tradeoff_report import write_tradeoff_report

    print(
        f"measuring {len(DEMO_VARIANTS)} simulated model variants ({', '.join(DEMO_VARIANTS)}), each with a "
        f"rate sweep of {len(plan.variant_rates)} x {plan.variant_step_s:.0f} s (about "
        f"{len(DEMO_VARIANTS) * (len(plan.variant_rates) * plan.variant_step_s + 6):.0f} s) ...",
        file=sys.stderr,
    )
    ids = run_variants(data_dir, plan, seed=a.seed, notify=notice)
    from perfkit.cli.steps import Steps

    with Catalog(data_dir) as cat, Steps("perfkit demo: trade-off", 6) as steps:
        files, tab = write_tradeoff_report(cat, a.out, run_ids=ids, progress=steps)
    lines = ["", "compression trade-off (simulated variants; SLOs TTFT p90 <= 200 ms, ITL p99 <= 50 ms):"]
    for r in tab.to_dict("records"):
        cost = r["cost_per_mtok_usd"]
        if cost is None or (isinstance(cost, float) and math.isnan(cost)):
            lines.append(f"  {r['variant']:>5}: no load level met the SLOs with confidence; no cost")
            continue
        lines.append(
            f"  {r['variant']:>5}: max {r['load']:.1f} req/s under the SLOs, ${cost:.3f} per 1M "
            f"output tokens, quality {r['quality']:.3f} ({r['quality_recovery_pct']:.1f}% of fp16), "
            f"P(Pareto frontier) {r['p_front']:.2f}"
        )
    lines.append(f"trade-offs: {files.html.resolve()}")
    lines.append(f"            figure {files.figures.resolve() if files.figures else ''}/tradeoff.svg")
    return lines
