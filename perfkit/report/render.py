"""Write a report: one self-contained HTML file, a PDF typeset by Typst, and each figure on its own.

The content is built once as a :class:`~perfkit.report.document.Document` (one run, or a comparison
of runs) and rendered to both formats.  Figures are Altair charts in perfkit's theme, rendered by
vl-convert: inline SVG in the HTML, vector SVG in the PDF, and exported as SVG and PDF files for a
paper.  Everything is a function of the data except the "Generated" line, so two reports of the same
runs differ in that line only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import vl_convert as vlc

from perfkit.query.catalog import Catalog
from perfkit.report.document import Document
from perfkit.report.html_render import chart_svg, render_html
from perfkit.report.typst_render import compile_pdf

__all__ = ["ReportFiles", "build_report", "chart_svg", "export_figures", "write_document"]


@dataclass(frozen=True)
class ReportFiles:
    """Where a report went: the HTML file, the PDF (None when not asked for), the figures' folder."""

    html: Path
    pdf: Path | None
    figures: Path | None


def export_figures(doc: Document, folder: Path) -> list[Path]:
    """Write every figure of ``doc`` as ``NAME.svg`` and ``NAME.pdf`` in ``folder``; returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for fig in doc.figures():
        svg, pdf = folder / f"{fig.name}.svg", folder / f"{fig.name}.pdf"
        svg.write_text(fig.svg, encoding="utf-8")
        pdf.write_bytes(vlc.vegalite_to_pdf(fig.spec))
        out += [svg, pdf]
    return out


def write_document(
    doc: Document,
    out_dir: str | Path,
    stem: str,
    *,
    pdf: bool = True,
    figures: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ReportFiles:
    """Render ``doc`` to ``OUT_DIR/STEM.html`` (and ``.pdf``, and ``STEM-figures/``); ``progress`` is told
    each step (up to 3) as it starts."""
    say = progress or (lambda step: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path = out / f"{stem}.html"
    say("HTML")
    html_path.write_text(render_html(doc), encoding="utf-8")
    if pdf:
        say("PDF")
    pdf_path = compile_pdf(doc, out / f"{stem}.pdf") if pdf else None
    fig_dir = None
    if figures and doc.figures():
        say("figure files")
        fig_dir = out / f"{stem}-figures"
        export_figures(doc, fig_dir)
    return ReportFiles(html_path, pdf_path, fig_dir)


def build_report(
    cat: Catalog,
    run_ids: str | list[str],
    out_dir: str | Path = "reports",
    *,
    pdf: bool = True,
    figures: bool = True,
    phase: str | None = None,
    allow: tuple[str, ...] = (),
    progress: Callable[[str], None] | None = None,
) -> ReportFiles:
    """Write the report of one run (a run id, or ``latest``) or the comparison of several (a list).

    Parameters
    ----------
    cat : Catalog
    run_ids : str or list of str
        One run: ``OUT_DIR/RUN_ID.html``.  Several: the first is the baseline, and the report is
        ``OUT_DIR/compare-A-vs-B[-vs-C...].html``.
    out_dir : path
    pdf : bool
        Also typeset the PDF (Typst; a few seconds at most).
    figures : bool
        Also export each figure as SVG and PDF into ``STEM-figures/``.
    phase : str, optional
        For a comparison: compare this phase only.
    allow : tuple of str
        For a comparison: kinds of workload difference to accept (see :func:`perfkit.analysis.compare_runs`).
    progress : callable, optional
        Told each step (a few words) as it starts: about 11 for one run, 4 for a comparison.
    """
    from perfkit.report.compare_report import comparison_document
    from perfkit.report.run_report import run_document

    ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    if len(ids) == 1:
        rid = cat.require_run(ids[0])
        doc = run_document(cat, rid, progress)
        return write_document(doc, out_dir, rid, pdf=pdf, figures=figures, progress=progress)
    if progress:
        progress("comparison")
    doc = comparison_document(cat, ids, phase=phase, allow=allow)
    stem = "compare-" + "-vs-".join(doc.meta["run_ids"])
    return write_document(doc, out_dir, stem, pdf=pdf, figures=figures, progress=progress)
