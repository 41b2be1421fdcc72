"""What a trade-off report says: model variants side by side, cost against quality, the Pareto frontier."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from perfkit.query.catalog import Catalog
from perfkit.report.charts import tradeoff_chart
from perfkit.report.document import Bullets, Document, Figure, Para, Section, Table
from perfkit.report.render import ReportFiles, write_document
from perfkit.report.run_report import fmt, generated_line

__all__ = ["tradeoff_document", "write_tradeoff_report"]


def _num(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or pd.isna(v) else ("∞" if math.isinf(v) else f"{v:.{digits}g}")


def tradeoff_document(cat: Catalog, tab: pd.DataFrame, levels: pd.DataFrame) -> Document:
    """A report of :func:`perfkit.analysis.tradeoffs` (``tab``) and :func:`perfkit.analysis.tradeoff_levels`."""
    a = tab.attrs
    simulated = any("SIMULATED" in str(m) for m in [a.get("quality_metric")])
    rows = []
    for r in tab.to_dict("records"):
        rows.append(
            [
                r["variant"],
                r["workload"],
                _num(r["load"]),
                f"[{_num(r['load_lo'])}, {_num(r['load_hi'])}]",
                _num(r["output_tokens_per_s"], 4),
                f"{_num(r['cost_per_mtok_usd'])}",
                f"[{_num(r['cost_per_mtok_usd_lo'])}, {_num(r['cost_per_mtok_usd_hi'])}]",
                _num(r["energy_j_per_token"]),
                f"{r['quality']:.3f} ± {1.96 * r['quality_stderr']:.3f}",
                _num(r["quality_recovery_pct"], 4),
                "yes" if r["on_front"] else "no",
                f"{r['p_front']:.2f}",
            ]
        )
    table = Table(
        [
            "variant",
            "workload",
            "max rate (req/s)",
            "bracket",
            "tokens/s",
            "$ / 1M tok",
            "interval",
            "J / tok",
            "quality (95%)",
            "recovery %",
            "frontier",
            "P(front)",
        ],
        rows,
        left=2,
    )
    lv_rows = [
        [
            r["variant"],
            r["phase"],
            fmt(r["output_tokens_per_s"]),
            fmt(r["ttft_p50_ms"]),
            fmt(r["ttft_p90_ms"]),
            _num(r["energy_j_per_token"]),
            r["slo_verdict"],
        ]
        for r in levels.to_dict("records")
    ]
    lv_table = Table(
        ["variant", "level", "tokens/s", "TTFT p50 (ms)", "TTFT p90 (ms)", "J / tok", "SLOs"], lv_rows, left=2
    )
    front = ", ".join(tab.loc[tab["on_front"], "variant"]) or "none"
    method = Para(
        f"SLOs: {', '.join(a.get('slos') or [])}. A level is feasible when every SLO is met with confidence (the "
        "whole interval of the percentile within its bound) and no request failed. The maximum sustainable rate is "
        "interpolated between the sweep's levels; its bracket runs from the highest level confidently meeting the "
        "SLOs to the lowest confidently missing one, and the cost interval is the cost at the bracket's ends. Cost "
        f"per million output tokens is ${a.get('gpu_hour_usd')}/GPU-hour × {a.get('gpus')} GPU(s) over the output "
        "tokens served per hour at that rate. Energy per token is the GPU energy counter's increase over the highest "
        "feasible level divided by the tokens streamed in it. P(front) is the share of bootstrap replicates "
        "(levels' samples resampled in blocks, quality drawn from its standard error) in which the variant is on "
        "the Pareto frontier of " + " and ".join(a.get("objectives") or []) + "; it reflects sampling spread, not "
        "the interpolation between levels, which the bracket covers."
    )
    sections = [
        Section(
            "Verdict",
            [
                Bullets(
                    [f"On the frontier of {' and '.join(a.get('objectives') or [])}: **{front}**."]
                    + (
                        [
                            f"Quality figures are **SIMULATED** ({a.get('quality_task')}): stated by "
                            "the simulator, not measured on a model."
                        ]
                        if simulated
                        else []
                    )
                )
            ],
        ),
        Section("Variants at their SLO-feasible load", [table]),
        Section(
            "Figures",
            [
                Figure(
                    "tradeoff",
                    tradeoff_chart(tab),
                    "Quality against cost per million output tokens at each variant's maximum "
                    "sustainable rate under the SLOs; bars: cost bracket and 95% quality interval; "
                    "dashed line: the Pareto frontier.",
                )
            ],
        ),
        Section("Load levels", [lv_table]),
        Section("Methods", [method]),
    ]
    runs = list(dict.fromkeys(levels["run_id"]))
    version = str(((cat.manifest(runs[0]).get("environment") or {}).get("versions") or {}).get("perfkit", ""))
    return Document(
        "perfkit compression trade-offs",
        [f"runs: {', '.join(runs)}"],
        sections,
        generated_line(version),
        meta={"run_ids": runs},
    )


def write_tradeoff_report(
    cat: Catalog,
    out_dir: str | Path = "reports",
    *,
    run_ids: list[str] | None = None,
    quality: pd.DataFrame | None = None,
    slos: str = "ttft_p90<=200ms,itl_p99<=50ms",
    gpu_hour_usd: float = 2.5,
    gpus: int = 1,
    baseline: str = "fp16",
    objectives: tuple[str, ...] = ("cost", "quality"),
    pdf: bool = True,
    stem: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[ReportFiles, pd.DataFrame]:
    """Compute the trade-offs of the variant-tagged runs and write ``OUT/STEM.html`` (+ PDF, figures).

    Returns the files and the trade-off table.  ``stem`` defaults to ``tradeoffs-<newest run id>``.
    ``progress`` is told each of about 6 steps as it starts.
    """
    from perfkit.analysis.tradeoff import tradeoff_levels, tradeoffs

    say = progress or (lambda step: None)
    say("each variant's SLO-feasible load, cost and frontier (bootstrap)")
    tab = tradeoffs(
        cat,
        run_ids,
        quality=quality,
        slos=slos,
        gpu_hour_usd=gpu_hour_usd,
        gpus=gpus,
        baseline=baseline,
        objectives=objectives,
    )
    say("load levels")
    levels = tradeoff_levels(cat, run_ids, slos=slos)
    say("figures")
    doc = tradeoff_document(cat, tab, levels)
    files = write_document(doc, out_dir, stem or f"tradeoffs-{max(levels['run_id'])}", pdf=pdf, progress=progress)
    return files, tab
