"""``perfkit tradeoff``: model variants side by side at their SLO-feasible load."""

from __future__ import annotations

import argparse
from typing import Any

from perfkit.cli.common import add_data_dir, add_out
from perfkit.errors import ConfigError

NAME = "tradeoff"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    tr = sub.add_parser(
        NAME,
        help="model variants side by side: cost at the SLO-feasible load, quality, Pareto",
        description="For runs tagged with a model variant (--tag variant=NAME, or perfkit sim "
        "--variant): the maximum sustainable rate under the SLOs, cost per 1M output "
        "tokens at it, energy per token, quality and its recovery against the "
        "baseline, and the Pareto frontier with bootstrap probabilities; writes an "
        "HTML/PDF report with the trade-off figure.",
    )
    tr.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="default: every run with a variant")
    add_data_dir(tr)
    add_out(tr)
    tr.add_argument(
        "--quality",
        action="append",
        metavar="[VARIANT=]FILE",
        help="evaluation results: lm-evaluation-harness JSON (as VARIANT=FILE) or a CSV/JSON of "
        "variant, value[, stderr]; repeatable (default: the simulator's stated quality)",
    )
    tr.add_argument("--slo", default="ttft_p90<=200ms,itl_p99<=50ms", help="SLOs deciding the feasible load")
    tr.add_argument("--gpu-hour-usd", type=float, default=2.5, help="price of one GPU for one hour, $")
    tr.add_argument("--gpus", type=int, default=1, help="GPUs the deployment occupies")
    tr.add_argument("--baseline", default="fp16", help="variant quality recovery is measured against")
    tr.add_argument("--objectives", default="cost,quality", help="Pareto objectives: cost, quality, latency, energy")
    tr.add_argument("--no-pdf", action="store_true", help="HTML only")
    return tr


def run(a: argparse.Namespace) -> int:
    import pandas as pd

    from perfkit.analysis.tradeoff import read_quality
    from perfkit.cli.tables import print_tradeoffs
    from perfkit.query.catalog import Catalog
    from perfkit.report.tradeoff_report import write_tradeoff_report

    frames = []
    for item in a.quality or []:
        variant, sep, path = item.partition("=")
        frames.append(read_quality(path, variant=variant) if sep else read_quality(item))
    quality = pd.concat(frames, ignore_index=True) if frames else None
    objectives = tuple(o.strip() for o in a.objectives.split(","))
    from perfkit.cli.steps import Steps

    with Catalog(a.data_dir) as cat, Steps("perfkit tradeoff", 6 if not a.no_pdf else 5) as steps:
        try:
            files, tab = write_tradeoff_report(
                cat,
                a.out,
                run_ids=a.run_ids or None,
                quality=quality,
                slos=a.slo,
                gpu_hour_usd=a.gpu_hour_usd,
                gpus=a.gpus,
                baseline=a.baseline,
                objectives=objectives,
                pdf=not a.no_pdf,
                progress=steps,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    print_tradeoffs(tab)
    print(f"\nreport: {files.html.resolve()}")
    return 0
