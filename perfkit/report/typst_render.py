"""A :class:`~perfkit.report.document.Document` as Typst source, and as a PDF through Typst's PyPI wheel.

No LaTeX: the ``typst`` wheel carries the whole typesetter.  Every piece of text goes into the
source as a Typst *string* (``#"..."``), never as markup, so nothing a run or a notebook contains
can change the layout.  Figures are the same vl-convert SVG as in the HTML report, set by Typst
as vector graphics; the body text is Libertinus Serif (built into Typst), the figures keep the
theme's sans-serif.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

import typst
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from perfkit.report.document import (
    Block,
    Bullets,
    Code,
    Details,
    Document,
    Figure,
    Image,
    Markdown,
    Meta,
    Para,
    RichOutput,
    Section,
    Table,
    inline_spans,
)

__all__ = ["compile_pdf", "render_typst", "typst_string"]

_PREAMBLE = """#set document(title: {title}, date: none)
#set page(paper: "a4", margin: (x: 1.6cm, y: 1.8cm), numbering: "1 / 1",
          footer: context [#set text(size: 7.5pt, fill: luma(110)); {footer} #h(1fr) #counter(page).display("1 / 1", both: true)])
#set text(font: ("Libertinus Serif", "New Computer Modern"), size: 10pt, lang: "en")
#set par(justify: true, leading: 0.55em)
#set heading(numbering: "1.1")
#show heading.where(level: 1): it => block(above: 1.4em, below: 0.7em, text(size: 12.5pt, it))
#show heading.where(level: 2): set text(size: 11pt)
#show raw: set text(font: "DejaVu Sans Mono", size: 8pt)
#show figure.caption: set text(size: 8.5pt)
#set table(stroke: (x, y) => if y == 0 {{ (bottom: 0.6pt) }} else {{ (bottom: 0.25pt + luma(210)) }}, inset: (x: 3pt, y: 2.4pt))
#let warnbox(body) = block(fill: rgb("#fff6e0"), stroke: (left: 2.5pt + rgb("#E69F00")), inset: 7pt, width: 100%, body)
"""


def typst_string(text: str) -> str:
    """A Typst string literal holding ``text`` exactly."""
    return json.dumps(text, ensure_ascii=False)  # JSON's escapes (\\ \" \n \uXXXX) are Typst's too


def _inline(text: str) -> str:
    out = []
    for kind, t in inline_spans(text):
        s = typst_string(t)
        out.append({"plain": f"#{s}", "bold": f"#strong({s})", "italic": f"#emph({s})", "code": f"#raw({s})"}[kind])
    return "".join(out) or '#""'


def _table(t: Table) -> str:
    n = len(t.header)
    align = ", ".join("left" if i < t.left else "right" for i in range(n))
    cells: list[str] = []
    if t.groups:
        top: list[str] = []
        sub: list[str] = []
        col = 0
        for label, span in t.groups:
            if label:
                top.append(f"table.cell(colspan: {span}, align: center)[{_inline(label)}]")
                sub.extend(f"[{_inline(t.header[col + k])}]" for k in range(span))
            else:
                top.extend(f"table.cell(rowspan: 2)[{_inline(t.header[col + k])}]" for k in range(span))
            col += span
        header = f"table.header({', '.join(top + sub)})"
    else:
        header = f"table.header({', '.join(f'[{_inline(h)}]' for h in t.header)})"
    for r in t.rows:
        cells.extend(f"[{_inline(c)}]" for c in r)
    size = "6.2pt" if t.size == "small" else "8pt"
    body = ",\n  ".join([header, *cells])
    return (
        f"#block(width: 100%)[#set text(size: {size}); #set par(justify: false)\n"
        f"#table(columns: {n}, align: ({align},),\n  {body})]\n"
    )


def _block(b: Block, fig_dir: Path, names: dict[int, str]) -> str:
    if isinstance(b, Section):
        inner = "".join(_block(x, fig_dir, names) for x in b.blocks)
        head = f"#heading(level: {b.level - 1}, {typst_string(b.title)})\n" if b.title else ""
        return f"{head}{inner}\n"
    if isinstance(b, Para):
        if b.style == "warn":
            return f"#warnbox[{_inline(b.text)}]\n\n"
        if b.style == "small":
            return f"#text(size: 8.5pt, fill: luma(80))[{_inline(b.text)}]\n\n"
        return f"{_inline(b.text)}\n\n"
    if isinstance(b, Bullets):
        items = "".join(f"- {_inline(i)}\n" for i in b.items) or "- None.\n"
        return f"#warnbox[\n{items}]\n\n" if b.warn else items + "\n"
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Meta):
        cells = ",\n  ".join(f"[#strong({typst_string(k)})], [{_inline_literal(v)}]" for k, v in b.pairs)
        return (
            f"#block(width: 100%)[#set text(size: 8pt); #set par(justify: false)\n"
            f"#table(columns: (auto, 1fr), align: (left, left), stroke: none,\n  {cells})]\n"
        )
    if isinstance(b, Figure):
        name = names[id(b)]
        return f"#figure(image({typst_string(name)}, width: 100%), caption: [{_inline(b.caption)}]) <fig-{b.name}>\n\n"
    if isinstance(b, Markdown):
        return markdown_to_typst(b.text) + "\n"
    if isinstance(b, Code):
        if b.kind == "source":
            return (
                f'#block(fill: luma(245), stroke: (left: 1.5pt + rgb("#0072B2")), inset: 5pt, width: 100%,'
                f' raw({typst_string(b.text)}, block: true, lang: "python"))\n\n'
            )
        fill = ', fill: rgb("#fdecea")' if b.kind == "error" else ""
        return (
            f"#block(inset: (x: 5pt, y: 2pt), width: 100%{fill})[#set text(size: 7pt); "
            f"#raw({typst_string(b.text)}, block: true)]\n\n"
        )
    if isinstance(b, Image):
        return f"#align(center, image({typst_string(names[id(b)])}, width: 95%))\n\n"
    if isinstance(b, RichOutput) and b.rows and len(b.rows[0]) <= 16:
        return _table(Table(b.rows[0], b.rows[1:], left=1, size="small"))
    if isinstance(b, RichOutput):
        return (
            f"#block(inset: (x: 5pt, y: 2pt), width: 100%)[#set text(size: 6.5pt); "
            f"#raw({typst_string(b.text)}, block: true)]\n\n"
        )
    if isinstance(b, Details):
        # pages of JSON do not belong in a PDF for print: say where the full text is
        return (
            f"#text(size: 8.5pt, fill: luma(80))[{_inline(b.summary)}: "
            f"{len(b.text.splitlines()):,} lines, in the HTML report and beside the run's data.]\n\n"
        )
    raise TypeError(f"not a report block: {type(b).__name__}")


_MD = MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown_to_typst(text: str) -> str:
    """Markdown (CommonMark with tables) as Typst, every piece of text as a string literal."""
    return _md_node(SyntaxTreeNode(_MD.parse(text)))


def _md_children(node: SyntaxTreeNode) -> str:
    return "".join(_md_node(c) for c in node.children)


def _md_node(node: SyntaxTreeNode) -> str:
    t = node.type
    if t == "root":
        return _md_children(node)
    if t == "heading":
        level = min(int(node.tag[1]), 3)
        return f"#heading(level: {level}, numbering: none)[{_md_children(node)}]\n"
    if t == "paragraph":
        return f"{_md_children(node)}\n\n" if not node.hidden else _md_children(node)
    if t == "inline":
        return _md_children(node)
    if t == "text":
        return f"#{typst_string(node.content)}" if node.content else ""
    if t in ("softbreak",):
        return " "
    if t == "hardbreak":
        return " \\\n"
    if t == "strong":
        return f"#strong[{_md_children(node)}]"
    if t == "em":
        return f"#emph[{_md_children(node)}]"
    if t == "code_inline":
        return f"#raw({typst_string(node.content)})"
    if t == "link":
        return f"#link({typst_string(str(node.attrs.get('href', '')))})[{_md_children(node)}]"
    if t == "image":
        return f"#emph({typst_string('[image: ' + str(node.attrs.get('src', '')) + ']')})"
    if t in ("bullet_list", "ordered_list"):
        fn = "list" if t == "bullet_list" else "enum"
        items = ", ".join(f"[{_md_children(c)}]" for c in node.children)
        return f"#{fn}({items})\n\n"
    if t == "list_item":
        return _md_children(node)
    if t in ("fence", "code_block"):
        lang = f", lang: {typst_string(node.info.split()[0])}" if node.info.strip() else ""
        return f"#raw({typst_string(node.content.rstrip())}, block: true{lang})\n\n"
    if t == "blockquote":
        return f"#quote(block: true)[{_md_children(node)}]\n\n"
    if t == "hr":
        return "#line(length: 100%, stroke: 0.4pt + luma(180))\n"
    if t == "table":
        rows = [r for part in node.children for r in part.children]
        n = max((len(r.children) for r in rows), default=1)
        cells = ", ".join(f"[{_md_children(c)}]" for r in rows for c in r.children)
        return f"#block[#set text(size: 8pt); #table(columns: {n}, {cells})]\n\n"
    if t in ("html_block", "html_inline"):
        return f"#{typst_string(node.content)}"
    return _md_children(node)  # unknown containers: their text


def _inline_literal(text: str) -> str:
    return f"#{typst_string(text)}"


def render_typst(doc: Document, fig_dir: Path) -> str:
    """The Typst source of ``doc``; its figures are written to ``fig_dir`` as SVG (named as referenced)."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    names: dict[int, str] = {}
    for fig in doc.figures():
        path = fig_dir / f"{fig.name}.svg"
        path.write_text(fig.svg, encoding="utf-8")
        names[id(fig)] = path.name
    for k, img in enumerate(doc.images()):
        if img.svg is not None:
            path = fig_dir / f"output-{k}.svg"
            path.write_text(img.svg, encoding="utf-8")
        else:
            path = fig_dir / f"output-{k}.png"
            path.write_bytes(base64.b64decode(img.png_b64 or ""))
        names[id(img)] = path.name
    head = _PREAMBLE.format(title=typst_string(doc.title), footer=_inline(doc.title))
    sub = "".join(f"#text(size: 9.5pt, fill: luma(60))[{_inline(s)}] \\\n" for s in doc.subtitle)
    body = "".join(_block(s, fig_dir, names) for s in doc.sections)
    gen = f"#v(1em)\n#text(size: 8pt, fill: luma(110))[{_inline(doc.generated)}]\n"
    title = f'#text(size: 17pt, weight: "bold")[{_inline(doc.title)}] \\\n'
    return f"{head}\n#block[#set par(justify: false)\n{title}{sub}]\n{body}{gen}"


def compile_pdf(doc: Document, path: Path) -> Path:
    """Typeset ``doc`` as a PDF at ``path`` (the Typst source and figures in a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="perfkit-typst-") as tmp:
        src = Path(tmp) / "report.typ"
        src.write_text(render_typst(doc, Path(tmp)), encoding="utf-8")
        try:
            pdf = typst.compile(str(src), root=tmp)
        except RuntimeError as exc:  # a bug in perfkit's source, never the user's input: say where
            raise RuntimeError(f"Typst could not typeset the report: {exc}") from None
    path.write_bytes(pdf)
    return path
