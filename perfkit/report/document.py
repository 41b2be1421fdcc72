"""A report as data: sections of paragraphs, tables, figures and lists, rendered to HTML or Typst.

The content of a report is built once (:mod:`perfkit.report.run_report`,
:mod:`perfkit.report.compare_report`) and rendered twice, so the HTML file and
the PDF say the same thing.  Text carries a small inline markup, the only one
either renderer understands: ``**bold**``, ``*italic*`` and ```code```;
everything else is literal and escaped by the renderer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Union

import altair as alt

from perfkit.report.theme import themed_spec

__all__ = [
    "Block",
    "Bullets",
    "Code",
    "Details",
    "Document",
    "Figure",
    "Image",
    "Markdown",
    "Meta",
    "Para",
    "RichOutput",
    "Section",
    "Table",
    "inline_spans",
]


@dataclass
class Para:
    """A paragraph; ``style='warn'`` sets it apart as a caution, ``'small'`` in smaller grey text."""

    text: str
    style: Literal["plain", "warn", "small"] = "plain"


@dataclass
class Bullets:
    """A bulleted list; ``warn=True`` for statistical warnings."""

    items: list[str]
    warn: bool = False


@dataclass
class Table:
    """A table of text cells.

    Parameters
    ----------
    header : list of str
        One heading per column.
    rows : list of list of str
        Cells, already formatted (units belong in the headings).
    left : int
        How many leading columns are text, aligned left (the rest are numbers, aligned right).
    groups : list of (str, int), optional
        A heading row above ``header``: (label, columns spanned); an empty label spans columns
        whose own heading stands alone.
    size : {"normal", "small"}
        ``small`` for wide tables (the PDF sets them in a smaller font).
    """

    header: list[str]
    rows: list[list[str]]
    left: int = 1
    groups: list[tuple[str, int]] | None = None
    size: Literal["normal", "small"] = "normal"


@dataclass
class Meta:
    """A two-column table of key and value, for methods and provenance."""

    pairs: list[tuple[str, str]]


@dataclass
class Figure:
    """An Altair chart with its caption; ``name`` is its anchor and the stem of its exported files."""

    name: str
    chart: alt.TopLevelMixin
    caption: str

    @cached_property
    def spec(self) -> dict[str, Any]:
        """The chart's Vega-Lite spec in perfkit's theme (made once: the HTML, the PDF and the exported files
        all draw the same one)."""
        return themed_spec(self.chart)

    @cached_property
    def svg(self) -> str:
        """The chart as SVG, rendered once by vl-convert."""
        import vl_convert as vlc

        return str(vlc.vegalite_to_svg(self.spec))


@dataclass
class Details:
    """Long literal text (the manifest), folded away in HTML and set small in the PDF."""

    summary: str
    text: str


@dataclass
class Markdown:
    """Markdown text (a notebook's prose), rendered by markdown-it: CommonMark with tables."""

    text: str


@dataclass
class Code:
    """Literal text in a monospaced block: a code cell's source (``kind='source'``) or its output."""

    text: str
    kind: Literal["source", "output", "error"] = "source"


@dataclass
class Image:
    """A figure already rendered: SVG text, or PNG bytes (base64 text, as notebooks store them)."""

    svg: str | None = None
    png_b64: str | None = None


@dataclass
class RichOutput:
    """An HTML fragment (a data frame's table) with what stands for it in the PDF.

    ``rows`` are the cells of the fragment's table when it is one simple table (a data frame's);
    the PDF sets them as a table, or the plain ``text`` when there are none.
    """

    html: str
    text: str
    rows: list[list[str]] | None = None


Block = Union[Para, Bullets, Table, Meta, Figure, Details, Markdown, Code, Image, RichOutput, "Section"]


@dataclass
class Section:
    """A titled section; ``level`` 2 under the document's title, 3 below that."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    level: int = 2

    def add(self, *blocks: Block) -> Section:
        self.blocks.extend(blocks)
        return self


@dataclass
class Document:
    """A whole report: title, subtitle lines, sections, and the one line that may change between renderings.

    ``generated`` is the generation-time line: everything else is a function of the data, so two
    renderings of the same runs differ in that line only.
    """

    title: str
    subtitle: list[str]
    sections: list[Section]
    generated: str
    meta: dict[str, Any] = field(default_factory=dict)

    def blocks(self, kind: type) -> list:
        """Every block of type ``kind``, sections searched depth first, in order of appearance."""
        out = []

        def walk(blocks: list[Block]) -> None:
            for b in blocks:
                if isinstance(b, kind):
                    out.append(b)
                elif isinstance(b, Section):
                    walk(b.blocks)

        walk(list(self.sections))
        return out

    def figures(self) -> list[Figure]:
        """Every figure, in order of appearance."""
        return self.blocks(Figure)

    def images(self) -> list[Image]:
        """Every pre-rendered image (a notebook's outputs), in order of appearance."""
        return self.blocks(Image)


_INLINE = re.compile(r"\*\*(.+?)\*\*|\*(.+?)\*|`(.+?)`")


def inline_spans(text: str) -> list[tuple[str, str]]:
    """Split text with inline markup into (kind, text) spans; kind is plain, bold, italic or code."""
    spans: list[tuple[str, str]] = []
    pos = 0
    for m in _INLINE.finditer(text):
        if m.start() > pos:
            spans.append(("plain", text[pos : m.start()]))
        kind = "bold" if m.group(1) is not None else "italic" if m.group(2) is not None else "code"
        spans.append((kind, m.group(1) or m.group(2) or m.group(3)))
        pos = m.end()
    if pos < len(text):
        spans.append(("plain", text[pos:]))
    return spans
