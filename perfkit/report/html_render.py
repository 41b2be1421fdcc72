"""A :class:`~perfkit.report.document.Document` as one self-contained HTML file.

No script, style, font or image comes from outside the file (a Content-Security-Policy says so to
the browser too); figures are inline SVG from vl-convert, vector and viewable without JavaScript.
"""

from __future__ import annotations

import html

import altair as alt
import vl_convert as vlc
from markdown_it import MarkdownIt

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
from perfkit.report.theme import themed_spec

__all__ = ["chart_svg", "render_html"]

CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1.05em;margin-top:1.2em}
table{border-collapse:collapse;font-size:.8em;margin:.6em 0}th,td{padding:.2em .4em;border-bottom:1px solid #e3e3e3;text-align:right}
th{background:#f4f4f4}th.grp{border-bottom:1px solid #bbb;text-align:center}td.l,th.l{text-align:left}
table.small{font-size:.75em}.meta th{text-align:left;vertical-align:top}.meta td{text-align:left}
.warn{background:#fff6e0;border-left:4px solid #E69F00;padding:.5em 1em}p.small{color:#555;font-size:.85em}
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}.generated{color:#777;font-size:.8em}code{font-size:.9em}
.wide{overflow-x:auto}.subtitle{color:#444;margin:.2em 0}
pre.source{background:#f5f5f5;border-left:3px solid #0072B2;padding:.5em .8em;overflow-x:auto;font-size:.85em}
pre.output{padding:.2em .8em;overflow-x:auto;font-size:.8em;color:#333}pre.error{background:#fdecea;padding:.5em .8em;font-size:.8em}
.output table{font-size:.75em}img{max-width:100%}
"""

# CommonMark with tables; raw HTML in a notebook's markdown is shown as text, never injected
_MD = MarkdownIt("commonmark", {"html": False}).enable("table")

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def chart_svg(chart: alt.TopLevelMixin) -> str:
    """A chart as an SVG string, in perfkit's theme."""
    return vlc.vegalite_to_svg(themed_spec(chart))


def _inline(text: str) -> str:
    tags = {"bold": "b", "italic": "i", "code": "code"}
    return "".join(
        html.escape(t) if k == "plain" else f"<{tags[k]}>{html.escape(t)}</{tags[k]}>" for k, t in inline_spans(text)
    )


def _table(t: Table) -> str:
    def cls(i: int) -> str:
        return ' class="l"' if i < t.left else ""

    head = ""
    if t.groups:
        cells, col = [], 0
        for label, span in t.groups:
            if label:
                cells.append(f'<th colspan="{span}" class="grp">{html.escape(label)}</th>')
            else:  # these columns' own headings span both heading rows
                cells.extend(
                    f'<th rowspan="2"{cls(col + k)}>{html.escape(t.header[col + k])}</th>' for k in range(span)
                )
            col += span
        sub: list[str] = []
        col = 0
        for label, span in t.groups:
            if label:
                sub.extend(f"<th>{html.escape(t.header[col + k])}</th>" for k in range(span))
            col += span
        head = f"<tr>{''.join(cells)}</tr><tr>{''.join(sub)}</tr>"
    else:
        head = "<tr>" + "".join(f"<th{cls(i)}>{html.escape(h)}</th>" for i, h in enumerate(t.header)) + "</tr>"
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{html.escape(c)}</td>" for i, c in enumerate(r)) + "</tr>" for r in t.rows
    )
    size = ' class="small"' if t.size == "small" else ""
    return f'<div class="wide"><table{size}>{head}{body}</table></div>'


def _block(b: Block) -> str:
    if isinstance(b, Section):
        inner = "".join(_block(x) for x in b.blocks)
        head = f"<h{b.level}>{html.escape(b.title)}</h{b.level}>" if b.title else ""
        return f"<section>{head}{inner}</section>"
    if isinstance(b, Para):
        cls = {"plain": "", "warn": ' class="warn"', "small": ' class="small"'}[b.style]
        return f"<p{cls}>{_inline(b.text)}</p>"
    if isinstance(b, Bullets):
        items = "".join(f"<li>{_inline(i)}</li>" for i in b.items) or "<li>None.</li>"
        return f"<ul{' class=warn' if b.warn else ''}>{items}</ul>"
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Meta):
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in b.pairs)
        return f'<table class="meta">{rows}</table>'
    if isinstance(b, Figure):
        return f'<figure id="fig-{html.escape(b.name)}">{b.svg}<figcaption>{_inline(b.caption)}</figcaption></figure>'
    if isinstance(b, Markdown):
        return _MD.render(b.text)
    if isinstance(b, Code):
        return f'<pre class="{b.kind}">{html.escape(b.text)}</pre>'
    if isinstance(b, Image):
        if b.svg is not None:
            return f'<div class="output">{b.svg}</div>'
        return f'<div class="output"><img alt="figure" src="data:image/png;base64,{b.png_b64}"></div>'
    if isinstance(b, RichOutput):
        return f'<div class="output wide">{b.html}</div>'
    if isinstance(b, Details):
        return f"<details><summary>{html.escape(b.summary)}</summary><pre>{html.escape(b.text)}</pre></details>"
    raise TypeError(f"not a report block: {type(b).__name__}")


def render_html(doc: Document) -> str:
    """The document as an HTML page that needs nothing outside itself."""
    subtitle = "".join(f'<p class="subtitle">{_inline(s)}</p>' for s in doc.subtitle)
    body = "\n".join(_block(s) for s in doc.sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body>
<h1>{html.escape(doc.title)}</h1>{subtitle}
{body}
<p class="generated">{html.escape(doc.generated)}</p>
</body></html>
"""
