"""The Excel workbook analysts work in: a contents sheet, then one formatted sheet per table.

Numbers stay numbers (Excel formats them, so they sum and sort); text stays text. A text
cell that Excel would read as a formula (`=`, `+`, `-`, `@` first) is stored as a string with
the quote prefix, so a respondent's `=HYPERLINK(...)` is shown, never run, even after editing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from numbers import Real
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.formatting.rule import ColorScaleRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet

from .model import ChartKind, Findings, Kind, Table, missing

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER_FORMATS = {Kind.COUNT: "#,##0", Kind.NUMBER: "#,##0.0", Kind.SHARE: "0.0%", Kind.DATE: "yyyy-mm-dd"}
HEADER_FILL = PatternFill("solid", fgColor="1F6F5C")
HEADER_FONT = Font(bold=True, color="FFFFFF")
TITLE_FONT = Font(bold=True, size=14, color="1F6F5C")
HEADER_ROW = 3
"""Row 1 is the table's title, row 2 its note; the header sits on row 3, frozen with the first column."""
MAX_SHEET_NAME = 31
WIDTHS = (8, 60)


def write_workbook(findings: Findings, path: Path) -> Path:
    """Write the workbook to `path` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    book = Workbook()
    contents = book.active
    contents.title = _sheet_name(findings.labels["contents"], set())
    names = {contents.title}
    links = []
    for number, section, tables in findings.contents():
        if section.sheet is not None:
            sheet = book.create_sheet(_sheet_name(f"{number} {section.sheet}", names))
            names.add(sheet.title)
            _fill_stacked(sheet, section.title, tables)
            links.append((number, section.title, sheet.title))
            continue
        for table_number, table in tables:
            sheet = book.create_sheet(_sheet_name(f"{table_number} {table.sheet}", names))
            names.add(sheet.title)
            _fill_table(sheet, table)
            links.append((table_number, table.title, sheet.title))
    for table in findings.appendix:
        sheet = book.create_sheet(_sheet_name(table.sheet, names))
        names.add(sheet.title)
        _fill_table(sheet, table)
        links.append(("", table.title, sheet.title))
    _fill_contents(contents, findings, links)
    book.save(path)
    return path


def _sheet_name(wanted: str, taken: set[str]) -> str:
    """Excel's rules: at most 31 characters, none of `[]:*?/\\`, unique regardless of case."""
    name = re.sub(r"[\[\]:*?/\\]", " ", wanted).strip()[:MAX_SHEET_NAME] or "Sheet"
    candidate, n = name, 2
    while candidate.lower() in {t.lower() for t in taken}:
        suffix = f" ({n})"
        candidate, n = name[:MAX_SHEET_NAME - len(suffix)] + suffix, n + 1
    return candidate


def put(cell: Cell, value: object, kind: Kind = Kind.TEXT) -> None:
    """Write one value: numbers and dates with the column's format, anything else as inert text."""
    if missing(value):
        return
    if kind is Kind.FILE:
        _put_text(cell, str(value).rsplit("/", 1)[-1])
        cell.hyperlink = str(value)
        return
    if kind is not Kind.TEXT and isinstance(value, (date, datetime)):
        cell.value = value
    elif kind is not Kind.TEXT and isinstance(value, Real) and not isinstance(value, bool):
        cell.value = int(float(value)) if kind is Kind.COUNT else float(value)
    else:
        _put_text(cell, str(value))
        return
    cell.number_format = NUMBER_FORMATS[kind]


def _put_text(cell: Cell, text: str) -> None:
    """A string cell, never a formula: Excel would evaluate `=…` (and `+`, `-`, `@`) typed into it."""
    text = ILLEGAL_CHARACTERS_RE.sub("", text)
    cell.value = text
    if text.startswith(FORMULA_START):
        cell.data_type = "s"
        cell.quotePrefix = True


def _fill_table(sheet: Worksheet, table: Table) -> None:
    put(sheet.cell(1, 1), table.title)
    sheet.cell(1, 1).font = TITLE_FONT
    if table.note:
        put(sheet.cell(2, 1), table.note)
        sheet.cell(2, 1).font = Font(italic=True, color="4A5A54")
    for j, column in enumerate(table.columns, start=1):
        header = sheet.cell(HEADER_ROW, j)
        put(header, column.label)
        header.fill, header.font = HEADER_FILL, HEADER_FONT
        header.alignment = Alignment(wrap_text=True, vertical="bottom")
    rows = table.rows()
    for i, row in enumerate(rows, start=HEADER_ROW + 1):
        for j, (column, value) in enumerate(zip(table.columns, row, strict=True), start=1):
            put(sheet.cell(i, j), value, column.kind)
    sheet.freeze_panes = sheet.cell(HEADER_ROW + 1, 2)
    last = get_column_letter(len(table.columns))
    if rows:
        sheet.auto_filter.ref = f"A{HEADER_ROW}:{last}{HEADER_ROW + len(rows)}"
    if _is_heat_map(table) and rows and len(table.columns) > 1:
        sheet.conditional_formatting.add(f"B{HEADER_ROW + 1}:{last}{HEADER_ROW + len(rows)}",
                                         ColorScaleRule(start_type="num", start_value=0, start_color="FFFFFF",
                                                        end_type="max", end_color="1F6F5C"))
    _widths(sheet, [c.label for c in table.columns], rows, heat_map=_is_heat_map(table))


def _fill_stacked(sheet: Worksheet, title: str, tables: list[tuple[str, Table]]) -> None:
    """A form's automatic section on one sheet: each table under its numbered title, a blank row between."""
    put(sheet.cell(1, 1), title)
    sheet.cell(1, 1).font = TITLE_FONT
    row, widths = 3, [0]
    for number, table in tables:
        put(sheet.cell(row, 1), f"{number} {table.title}")
        sheet.cell(row, 1).font = Font(bold=True, color="1F6F5C")
        if table.note:
            row += 1
            put(sheet.cell(row, 1), table.note)
            sheet.cell(row, 1).font = Font(italic=True, color="4A5A54")
        row += 1
        for j, column in enumerate(table.columns, start=1):
            header = sheet.cell(row, j)
            put(header, column.label)
            header.fill, header.font = HEADER_FILL, HEADER_FONT
            header.alignment = Alignment(wrap_text=True, vertical="bottom")
        for values in table.rows():
            row += 1
            for j, (column, value) in enumerate(zip(table.columns, values, strict=True), start=1):
                put(sheet.cell(row, j), value, column.kind)
                widths += [0] * (j + 1 - len(widths))
                widths[j] = max(widths[j], len(str(value)) if value is not None else 0)
        row += 2
    for j, longest in enumerate(widths[1:], start=1):
        sheet.column_dimensions[get_column_letter(j)].width = max(WIDTHS[0], min(WIDTHS[1], longest + 2))


def _is_heat_map(table: Table) -> bool:
    return table.chart is not None and table.chart.kind is ChartKind.HEAT_MAP


def _widths(sheet: Worksheet, labels: Sequence[str], rows: Sequence[Sequence[object]],
            heat_map: bool) -> None:
    """Wide enough for the longest value (headers wrap), within sensible bounds."""
    for j, label in enumerate(labels, start=1):
        longest = max([len(str(r[j - 1])) for r in rows if r[j - 1] is not None] + [0])
        header = min(len(label), 18) if j > 1 else len(label) // 2
        width = 6 if heat_map and j > 1 else max(WIDTHS[0], min(WIDTHS[1], max(longest, header) + 2))
        sheet.column_dimensions[get_column_letter(j)].width = width


def _fill_contents(sheet: Worksheet, findings: Findings, links: list[tuple[str, str, str]]) -> None:
    put(sheet.cell(1, 1), findings.title)
    sheet.cell(1, 1).font = TITLE_FONT
    put(sheet.cell(2, 1), findings.subtitle)
    put(sheet.cell(3, 1), f"{findings.labels['generated']}: {findings.generated_at:%Y-%m-%d %H:%M} UTC")
    row = 5
    put(sheet.cell(row, 1), findings.labels["key_figures"])
    sheet.cell(row, 1).font = Font(bold=True)
    for headline in findings.headlines:
        row += 1
        put(sheet.cell(row, 1), headline.label)
        put(sheet.cell(row, 2), headline.value, headline.kind)
    row += 2
    put(sheet.cell(row, 1), findings.labels["contents"])
    sheet.cell(row, 1).font = Font(bold=True)
    for number, title, sheet_name in links:
        row += 1
        put(sheet.cell(row, 1), f"{number} {title}".strip())
        sheet.cell(row, 1).hyperlink = Hyperlink(ref=f"A{row}", location=f"{quote_sheetname(sheet_name)}!A1")
        sheet.cell(row, 1).font = Font(color="1F6F5C", underline="single")
    sheet.column_dimensions["A"].width = 70
    sheet.column_dimensions["B"].width = 16
