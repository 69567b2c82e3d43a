"""The HTML report: one self-contained file (inline CSS, inline SVG charts) to e-mail or print to PDF.

Respondents type anything, `<script>` included, so every text that reaches the page goes
through `html.escape`; nothing is marked safe, and there is no script on the page.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote
from pathlib import Path

import pandas as pd

from .display import display, local_time
from .model import ChartKind, Findings, Kind, Lang, Table, missing
from .svg import bar_chart, heat_map

STYLE = """
:root { --ink: #1d2b26; --green: #1f6f5c; --pale: #eef5f1; --line: #d5e0db; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans", "DejaVu Sans", "Segoe UI", Arial, sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1100px; padding: 24px; line-height: 1.45; }
header { border-bottom: 4px solid var(--green); margin-bottom: 16px; }
h1 { color: var(--green); margin: 0 0 4px; font-size: 26px; }
h2 { color: var(--green); border-bottom: 1px solid var(--line); padding-bottom: 4px; margin-top: 36px; }
h3 { margin: 24px 0 8px; font-size: 17px; }
.subtitle, .generated, .office, .round { margin: 2px 0; color: #4a5a54; }
nav ol { list-style: none; padding-left: 18px; } nav li { margin: 2px 0; } a { color: var(--green); }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 10px; }
.figure { background: var(--pale); border-left: 4px solid var(--green); padding: 8px 12px; }
.figure .value { font-size: 22px; font-weight: 700; } .figure .label { font-size: 13px; }
figure { margin: 8px 0; }
figure svg { display: block; max-width: 100%; height: auto; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th { background: var(--green); color: #fff; text-align: left; padding: 5px 8px; vertical-align: bottom; }
td { border-bottom: 1px solid var(--line); padding: 4px 8px; vertical-align: top; }
tr:nth-child(even) td { background: #f7faf8; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.note, .empty { font-size: 12px; color: #4a5a54; font-style: italic; }
@page { size: A4; margin: 22mm 16mm 20mm 16mm;
  @top-left { content: string(report-title); font-size: 8pt; color: #4a5a54; }
  @top-right { content: string(section-title); font-size: 8pt; color: #4a5a54; }
  @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; color: #4a5a54; } }
@page :first { @top-left { content: none; } @top-right { content: none; } @bottom-center { content: none; } }
@media print {
  body { max-width: none; padding: 0; font-size: 9.5pt; line-height: 1.35; }
  header.cover { border: 0; min-height: 230mm; display: flex; flex-direction: column; justify-content: center;
                 break-after: page; }
  header.cover h1 { font-size: 26pt; string-set: report-title content(); }
  header.cover .subtitle { font-size: 13pt; } header.cover .office { font-size: 12pt; margin-top: 18mm; }
  nav { break-after: page; } nav ol ol { font-size: 9pt; }
  nav a { text-decoration: none; color: var(--ink); }
  nav a::after { content: leader(".") target-counter(attr(href), page); }
  h2 { string-set: section-title content(); break-after: avoid; margin-top: 14pt; }
  h3 { break-after: avoid; margin-top: 12pt; }
  section { break-before: auto; }
  figure svg { break-inside: avoid; margin-bottom: 4pt; }
  figure.bars { break-inside: avoid; }
  .figures { display: block; } .figure { display: inline-block; width: 48%; margin: 0 1% 6pt 0;
                                          vertical-align: top; break-inside: avoid; }
  .scroll { overflow: visible; }
  table { width: 100%; font-size: 8.5pt; } thead { display: table-header-group; }
  tr, td, th { break-inside: avoid; }
  th { padding: 3pt 5pt; } td { padding: 2pt 5pt; }
  .note, .empty { break-before: avoid; }
}
"""


def write_html(findings: Findings, path: Path) -> Path:
    """Write the report to `path` (UTF-8) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(findings), encoding="utf-8")
    return path


def render_html(findings: Findings) -> str:
    words = findings.labels
    parts = [
        f'<!DOCTYPE html><html lang="{findings.lang}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(findings.title)}</title><style>{STYLE}</style></head><body>",
        f'<header class="cover"><h1>{escape(findings.title)}</h1>',
        f'<p class="subtitle">{escape(findings.subtitle)}</p>',
        f'<p class="round">{escape(findings.labels["round"])}</p>' if findings.labels.get("round") else "",
        f'<p class="office">{escape(words.get("office", ""))}</p>' if words.get("office") else "",
        (f"<p class=\"generated\">{escape(words['generated'])}: "
         f"{escape(local_time(findings.generated_at, findings.timezone, findings.lang))}</p></header>"),
        _contents(findings), _figures(findings)]
    for number, section, tables in findings.contents():
        parts.append(f'<section id="{section.key}"><h2>{number}. {escape(section.title)}</h2>')
        parts += [_table(table_number, table, findings) for table_number, table in tables]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _contents(findings: Findings) -> str:
    items = []
    for number, section, tables in findings.contents():
        inner = "".join(f'<li><a href="#{t.key}">{n} {escape(t.title)}</a></li>' for n, t in tables)
        heading = f'<a href="#{section.key}">{number}. {escape(section.title)}</a>'
        items.append(f"<li>{heading}<ol>{inner}</ol></li>")
    return f'<nav><h2>{escape(findings.labels["contents"])}</h2><ol>{"".join(items)}</ol></nav>'


def _figures(findings: Findings) -> str:
    cards = "".join(f'<div class="figure"><div class="value">'
                    f'{escape(display(h.value, h.kind, findings.lang))}</div>'
                    f'<div class="label">{escape(h.label)}</div></div>' for h in findings.headlines)
    return (f'<section id="key-figures"><h2>{escape(findings.labels["key_figures"])}</h2>'
            f'<div class="figures">{cards}</div></section>')


def _table(number: str, table: Table, findings: Findings) -> str:
    lang = findings.lang
    rows = table.rows()
    head = "".join(f"<th>{escape(c.label)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(_cell(v, c.kind, lang) for c, v in zip(table.columns, row, strict=True))
                   + "</tr>" for row in rows)
    chart = chart_svg(table, lang) if rows else None
    parts = [f'<article id="{table.key}"><h3>{number} {escape(table.title)}</h3>',
             f'<figure class="{table.chart.kind if table.chart else ""}">{chart}</figure>' if chart else "",
             f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
             if rows else f'<p class="empty">{escape(findings.labels["no_rows"])}</p>',
             f'<p class="note">{escape(table.note)}</p>' if table.note else "", "</article>"]
    return "".join(parts)


def _cell(value: object, kind: Kind, lang: Lang) -> str:
    if kind is Kind.FILE and not missing(value):
        return f'<td><a href="{escape(quote(str(value)))}">{escape(display(value, kind, lang))}</a></td>'
    align = "" if kind in (Kind.TEXT, Kind.DATE, Kind.FILE) else ' class="num"'
    return f"<td{align}>{escape(display(value, kind, lang))}</td>"


def chart_svg(table: Table, lang: Lang) -> str | None:
    """The table's chart: categories from the chart's label columns, one series per value column."""
    chart = table.chart
    if chart is None or not chart.values:
        return None
    categories = [" – ".join(str(v) for v in values)
                  for values in zip(*(table.frame[k] for k in chart.category), strict=True)]
    kind = table.column(chart.values[0]).kind

    def fmt(value: float | None) -> str:
        return display(value, kind, lang)

    if chart.kind is ChartKind.HEAT_MAP:
        grid = [list(row) for row in zip(*(_numbers(table.frame[k]) for k in chart.values), strict=True)]
        return heat_map(table.title, categories, [table.column(k).label for k in chart.values], grid, fmt)
    return bar_chart(table.title, categories, [(table.column(k).label, _numbers(table.frame[k]))
                                               for k in chart.values], fmt)


def _numbers(values: pd.Series) -> list[float | None]:
    return [None if missing(v) else float(v) for v in values]
