"""What a comparison report says: each candidate run against the first (the baseline), with intervals."""

from __future__ import annotations

from typing import Any

import pandas as pd

from perfkit.query.catalog import Catalog
from perfkit.report.document import Bullets, Document, Figure, Para, Section, Table
from perfkit.report.figures import compare_cdf_figure
from perfkit.report.run_report import fmt, generated_line, methods_section, run_warnings, summary_table

__all__ = ["comparison_document"]


def _pct(v: float | None) -> str:
    return "–" if v is None or pd.isna(v) else f"{100 * v:+.1f}%"


def _comparison_table(res) -> Table:
    rows = []
    for r in res.table.to_dict("records"):
        interval = "–" if pd.isna(r.get("rel_lo")) else f"[{_pct(r['rel_lo'])}, {_pct(r['rel_hi'])}]"
        note = r.get("note")
        verdict = note if isinstance(note, str) and r["verdict"] == "not tested" else r["verdict"]
        rows.append(
            [
                r["metric"].removesuffix("_ms").upper(),
                f"p{100 * r['q']:g}",
                verdict,
                f"{r['n_a']:,}",
                f"{r['n_b']:,}",
                fmt(r["a"]),
                fmt(r["b"]),
                _pct(r.get("rel_change")),
                interval,
                "–" if pd.isna(r.get("p_adjusted")) else f"{r['p_adjusted']:.3g}",
            ]
        )
    return Table(
        [
            "metric",
            "pct",
            "verdict",
            "n A",
            "n B",
            "A (ms)",
            "B (ms)",
            "change",
            "95% interval",
            "p (Holm)",
        ],
        rows,
        left=3,
    )


def comparison_document(
    cat: Catalog, run_ids: list[str], *, phase: str | None = None, seed: int = 0, allow: tuple[str, ...] = ()
) -> Document:
    """A report comparing runs: the first is the baseline, every other is compared with it.

    Each comparison is :func:`perfkit.analysis.compare_runs` (request-block bootstrap of the
    percentile ratio, Holm across the table, a 5% minimum effect); the runs' own summaries,
    warnings and methods follow.
    """
    from perfkit.analysis.compare import compare_runs

    if len(run_ids) < 2:
        raise ValueError("a comparison needs at least two runs: a baseline and a candidate")
    runs = [cat.require_run(r) for r in run_ids]
    if len(set(runs)) < len(runs):
        raise ValueError(f"the same run is named twice in {', '.join(run_ids)}; name distinct runs")
    base = runs[0]
    verdicts: list[str] = []
    sections: list[Section] = []
    comp = Section(
        "Comparisons",
        [
            Para(
                f"Each run against the baseline **{base}**{f', phase {phase}' if phase else ''}, lower is better. "
                "Changes "
                "are relative to the baseline with 95% intervals from a bootstrap that resamples blocks of consecutive "
                "requests (the autocorrelation of a run is kept); p-values are Holm-adjusted across each table; a "
                "change counts as a regression or an improvement when its adjusted p is below 0.05 and it exceeds 5%. "
                "A percentile is tested only where both runs can estimate it; elsewhere the row says what sample "
                "would allow the test. The runs' workloads are checked first: a difference of model, API, lengths "
                "or load shape is listed under the table."
            )
        ],
    )
    for cand in runs[1:]:
        res = compare_runs(cat, base, cand, phase=phase, seed=seed, allow=allow)
        verdicts.append(f"**{cand}** against {base}: **{res.verdict}**")
        blocks: list[Any] = [_comparison_table(res)]
        if res.differences:
            blocks.append(Para("The workloads differ (allowed for this report), so read the changes with them:"))
            blocks.append(Bullets([str(d) for d in res.differences]))
        comp.add(Section(f"{cand} against {base}", blocks, level=3))
    sections.append(Section("Verdict", [Bullets(verdicts)]))
    sections.append(comp)
    summ = Section(
        "Run summaries", [Para("Whole runs, warm-up excluded; the per-phase tables are in each run's own report.")]
    )
    warns: list[str] = []
    for r in runs:
        m = cat.manifest(r)
        summ.add(
            Section(
                r + (f" ({m['label']})" if m.get("label") else ""),
                [summary_table(cat.summary(r, by_phase=False).df())],
                level=3,
            )
        )
        warns += run_warnings(m, cat.summary(r).df(), cat.fidelity(r).df(), prefix=f"[{r}] ")
    sections.append(summ)
    sections.append(Section("Statistical warnings", [Bullets(warns, warn=True)]))
    sections.append(
        Section(
            "Figures",
            [
                Figure(
                    "compare-cdf",
                    compare_cdf_figure(cat, runs),
                    "Empirical CDFs of each run, overlaid; log latency axis.",
                )
            ],
        )
    )
    meth = Section("Methods and reproducibility")
    for r in runs:
        meth.add(methods_section(cat.manifest(r), title=f"Run {r}"))
    for sub in meth.blocks:
        if isinstance(sub, Section):
            sub.level = 3
            for inner in sub.blocks:
                if isinstance(inner, Section):
                    inner.level = 4
    sections.append(meth)
    version = str(((cat.manifest(base).get("environment") or {}).get("versions") or {}).get("perfkit", ""))
    return Document(
        f"perfkit comparison: {' vs '.join(runs)}", [], sections, generated_line(version), meta={"run_ids": runs}
    )
