"""Notebook to report: execute a notebook with papermill, then render it to HTML and PDF.

``perfkit report --notebook notebooks/01_explore_a_run.ipynb -p run_id=latest`` runs the notebook
top to bottom in a fresh kernel, in the notebook's own folder (so relative paths mean what they
mean in JupyterLab), with the parameters injected after its ``parameters`` cell.  The executed
notebook is kept beside the report (``STEM.ipynb``); its prose, code and outputs become a
:class:`~perfkit.report.document.Document` rendered like any report, offline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from perfkit.errors import PerfkitError
from perfkit.report.document import Block, Code, Document, Image, Markdown, Para, RichOutput, Section
from perfkit.report.render import ReportFiles, write_document
from perfkit.report.run_report import generated_line

__all__ = ["execute_notebook", "notebook_document", "report_notebook"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _text(v: str | list[str]) -> str:
    return "".join(v) if isinstance(v, list) else v


class _TableCells(HTMLParser):
    """The cells of the HTML tables in a fragment, row by row (a data frame's ``_repr_html_``)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables = 0
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables += 1
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_cells(fragment: str) -> list[list[str]] | None:
    """The rows of the one table in ``fragment``, or None when it holds none, several, or ragged rows."""
    p = _TableCells()
    p.feed(fragment)
    rows = [r for r in p.rows if r]
    if p.tables != 1 or not rows or len({len(r) for r in rows}) != 1:
        return None
    return rows


def execute_notebook(
    path: str | Path, out_path: str | Path, params: dict[str, Any], *, timeout_s: float = 600
) -> tuple[dict[str, Any], str | None]:
    """Run ``path`` with papermill into ``out_path``; returns the executed notebook and the error, if any.

    A cell that raises stops the run; the notebook up to it is still written and returned, with the
    error as the second value, so what was computed can be rendered.
    """
    import papermill as pm
    from jupyter_client.kernelspec import NoSuchKernel

    src = Path(path)
    if src.suffix != ".ipynb" or not src.is_file():
        raise PerfkitError(
            f"{src} is not a notebook file (.ipynb); the notebooks are in notebooks/, "
            "e.g. notebooks/01_explore_a_run.ipynb"
        )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    error = None
    try:
        pm.execute_notebook(
            str(src),
            str(out),
            parameters=params,
            cwd=str(src.resolve().parent),
            kernel_name="python3",
            execution_timeout=timeout_s,
            progress_bar=False,
            log_output=False,
            report_mode=False,
        )
    except NoSuchKernel:
        raise PerfkitError(
            "no Jupyter kernel named python3: install one with "
            "`python3 -m pip install ipykernel && python3 -m ipykernel install --user`"
        ) from None
    except pm.PapermillExecutionError as exc:
        error = f"cell {exc.exec_count} raised {exc.ename}: {exc.evalue}"
    return json.loads(out.read_text(encoding="utf-8")), error


def _outputs(cell: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = []
    for o in cell.get("outputs") or []:
        kind = o.get("output_type")
        if kind == "stream":
            text = _text(o.get("text", "")).rstrip()
            if text:
                blocks.append(Code(text, "error" if o.get("name") == "stderr" else "output"))
        elif kind in ("display_data", "execute_result"):
            data = o.get("data") or {}
            if "image/svg+xml" in data:
                blocks.append(Image(svg=_text(data["image/svg+xml"])))
            elif "image/png" in data:
                blocks.append(Image(png_b64=_text(data["image/png"]).replace("\n", "")))
            elif "text/html" in data:
                frag = _text(data["text/html"])
                blocks.append(RichOutput(frag, _text(data.get("text/plain", "")), table_cells(frag)))
            elif "text/markdown" in data:
                blocks.append(Markdown(_text(data["text/markdown"])))
            elif "text/plain" in data:
                blocks.append(Code(_text(data["text/plain"]), "output"))
        elif kind == "error":
            tb = _ANSI.sub("", "\n".join(o.get("traceback") or [f"{o.get('ename')}: {o.get('evalue')}"]))
            blocks.append(Code(tb, "error"))
    return blocks


def notebook_document(nb: dict[str, Any], name: str, params: dict[str, Any], error: str | None = None) -> Document:
    """An executed notebook as a report: markdown as prose, code cells with their outputs."""
    blocks: list[Block] = []
    title = name
    for cell in nb.get("cells") or []:
        src = _text(cell.get("source", ""))
        if cell.get("cell_type") == "markdown":
            m = re.match(r"\s*#\s+(.+)", src)
            if m and title == name:  # the first top-level heading is the report's title
                title = m.group(1).strip()
                src = src[m.end() :]
            if src.strip():
                blocks.append(Markdown(src))
        elif cell.get("cell_type") == "code":
            if src.strip():
                blocks.append(Code(src, "source"))
            blocks += _outputs(cell)
    if error:
        blocks.insert(
            0, Para(f"**This notebook stopped with an error**: {error}. What follows is what ran.", style="warn")
        )
    shown = ", ".join(f"{k}={v!r}" for k, v in sorted(params.items()))
    from importlib import metadata

    subtitle = [f"Notebook `{name}` executed with papermill; parameters: {shown or 'none'}."]
    return Document(
        title, subtitle, [Section("", blocks)], generated_line(metadata.version("perfkit")), meta={"notebook": name}
    )


def report_notebook(
    path: str | Path,
    out_dir: str | Path,
    params: dict[str, Any],
    *,
    pdf: bool = True,
    timeout_s: float = 600,
    progress: Callable[[str], None] | None = None,
) -> ReportFiles:
    """Execute a notebook and write ``OUT_DIR/STEM.html``, ``.pdf`` and the executed ``STEM.ipynb``.

    Raises :class:`~perfkit.errors.PerfkitError` after writing the report when a cell failed, so a
    script or CI sees the failure and a person sees how far it got.  ``progress`` is told each step.
    """
    src = Path(path)
    out = Path(out_dir)
    if progress:
        progress(f"executing {src.name}")
    nb, error = execute_notebook(src, out / f"{src.stem}.ipynb", params, timeout_s=timeout_s)
    doc = notebook_document(nb, src.name, params, error)
    files = write_document(doc, out, src.stem, pdf=pdf, figures=False, progress=progress)
    if error:
        raise PerfkitError(f"notebook {src} failed ({error}); the report up to that cell is {files.html}")
    return files
