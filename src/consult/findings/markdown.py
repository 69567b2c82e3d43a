"""The Markdown summary a Prefect artifact shows: key figures, contents, and the top of each table.

Cells are escaped for Markdown and HTML alike (the UI renders both), so an answer can neither
break a table (`|`) nor become a link or a tag.
"""

from __future__ import annotations

import re
from html import escape

from .display import display
from .model import ChartKind, Findings, Kind, Table

ROWS = 10
"""Rows shown per table; the HTML report and the workbook have them all."""
_MARKDOWN = re.compile(r"([\\`*_\[\]|#])")


def md(text: str) -> str:
    """One line of text, inert in Markdown and HTML."""
    return _MARKDOWN.sub(r"\\\1", escape(" ".join(text.split()), quote=False))


def markdown_summary(findings: Findings) -> str:
    lang = findings.lang
    lines = [f"# {md(findings.title)}", "", md(findings.subtitle), "",
             f"## {md(findings.labels['key_figures'])}", "", "| | |", "|---|---:|"]
    lines += [f"| {md(h.label)} | {md(display(h.value, h.kind, lang))} |" for h in findings.headlines]
    lines += ["", f"## {md(findings.labels['contents'])}", ""]
    for number, section, tables in findings.contents():
        lines.append(f"{number}. {md(section.title)}")
        lines += [f"   - {n} {md(t.title)}" for n, t in tables] if section.summary is None else []
    for number, section, tables in findings.contents():
        lines += ["", f"## {number}. {md(section.title)}"]
        if section.summary is not None:
            lines += ["", md(section.summary)]
            continue
        for table_number, table in tables:
            lines += ["", f"### {table_number} {md(table.title)}", "", *_table(table, findings)]
    return "\n".join(lines) + "\n"


def _table(table: Table, findings: Findings) -> list[str]:
    rows = table.rows()
    if not rows:
        return [f"_{md(findings.labels['no_rows'])}_"]
    if table.chart and table.chart.kind is ChartKind.HEAT_MAP:
        return _matrix(table, findings)
    columns = table.columns
    lines = ["| " + " | ".join(md(c.label) for c in columns) + " |",
             "|" + "|".join("---" if c.kind in (Kind.TEXT, Kind.DATE, Kind.FILE) else "---:" for c in columns) + "|"]
    for row in rows[:ROWS]:
        cells = (md(display(v, c.kind, findings.lang)) for c, v in zip(columns, row, strict=True))
        lines.append("| " + " | ".join(cells) + " |")
    return lines + _more(len(rows), findings)


def _matrix(table: Table, findings: Findings) -> list[str]:
    """A wide matrix reads better as each row's non-empty columns: `Province (2), Province`."""
    first, *others = table.columns
    lines = [f"| {md(first.label)} | |", "|---|---|"]
    for row in table.rows()[:ROWS]:
        cells = [f"{c.label} ({v})" if v != 1 else c.label for c, v in zip(others, row[1:], strict=True) if v]
        lines.append(f"| {md(str(row[0]))} | {md(', '.join(cells))} |")
    return lines + _more(len(table.frame), findings)


def _more(count: int, findings: Findings) -> list[str]:
    return ["", f"_… {count - ROWS} {md(findings.labels['more_rows'])}_"] if count > ROWS else []
