"""The codebook: every exported column with its question in each of the form's languages, how it was
asked, its codes and their labels, how often each was answered in the current data, and its name
in Stata and SPSS when those formats had to change it.

The form versions a column exists in are read from the data: the `form_version` of the
submissions in which the column has a value (the build holds only the current FormSchema, so a
column no submission answered lists none, and a version nobody submitted is not listed).
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from consult.forms.schema import FormSchema

from .names import Format, Renamed, variable_names
from .tables import (
    INDICATOR_LABELS,
    ExportColumn,
    ExportTable,
    Kind,
    column_versions,
    languages_of,
    value_numbers,
)

HEADINGS = {
    "vi": {"title": "Sổ tay biến", "table": "Bảng", "rows": "dòng", "column": "Biến", "type": "Kiểu",
           "group": "Nhóm", "relevant": "Điều kiện hỏi", "constraint": "Ràng buộc", "required": "Bắt buộc",
           "answered": "Có trả lời", "missing": "Trống", "versions": "Phiên bản có biến", "code": "Mã",
           "number": "Số (Stata/SPSS)", "count": "Số lần", "names": "Tên trong Stata/SPSS", "yes": "có",
           "no": "không", "list": "Danh sách lựa chọn", "question": "Câu hỏi"},
    "en": {"title": "Codebook", "table": "Table", "rows": "rows", "column": "Column", "type": "Type",
           "group": "Group", "relevant": "Asked when", "constraint": "Constraint", "required": "Required",
           "answered": "Answered", "missing": "Missing", "versions": "Versions with the column",
           "code": "Code",
           "number": "Number (Stata/SPSS)", "count": "Count", "names": "Names in Stata/SPSS", "yes": "yes",
           "no": "no", "list": "Choice list", "question": "Question"},
}
VERSIONS_NOTE = {
    "vi": "Phiên bản có biến: các giá trị form_version của những phiếu có giá trị ở biến này "
          "(đọc từ dữ liệu).",
    "en": "Versions with the column: the form_version of the submissions that have a value in it (read from "
          "the data, not from older builds).",
}


@dataclass(frozen=True)
class CodeCount:
    code: str
    number: int | None
    """Its value in Stata and SPSS (select_one), or None."""
    labels: dict[str, str]
    count: int


@dataclass(frozen=True)
class Entry:
    table: str
    column: ExportColumn
    kind: str
    group_path: str
    relevant: str
    constraint: str
    constraint_messages: dict[str, str]
    required: bool
    choice_list: str
    codes: list[CodeCount]
    answered: int
    missing: int
    versions: list[str]
    names: dict[Format, Renamed]


@dataclass
class Codebook:
    schema: FormSchema
    languages: list[str]
    tables: list[tuple[ExportTable, list[Entry]]] = field(default_factory=list)
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _codes(c: ExportColumn, values: list, languages: list[str]) -> list[CodeCount]:
    if c.kind is Kind.INDICATOR:
        counts = Counter(v for v in values if v is not None)
        return [CodeCount(str(n), n, {lang: INDICATOR_LABELS.get(lang, INDICATOR_LABELS["en"])[n]
                                      for lang in languages}, counts[n]) for n in (0, 1)]
    if c.kind not in (Kind.SELECT_ONE, Kind.SELECT_MULTIPLE):
        return []
    tokens = [t for v in values if v is not None for t in (str(v).split() if c.kind is Kind.SELECT_MULTIPLE
                                                           else [str(v)])]
    counts = Counter(tokens)
    numbers = value_numbers(c, values) if c.kind is Kind.SELECT_ONE else {}
    known = [ch.name for ch in c.choices]
    return [CodeCount(code, numbers.get(code), {lang: c.choice_label(code, lang) for lang in languages},
                      counts[code]) for code in known + sorted(set(counts) - set(known))]


def _entry(table: ExportTable, c: ExportColumn, versions: list[str], names: dict[Format, Renamed],
           languages: list[str]) -> Entry:
    values = table.data[c.name]
    answered = sum(v is not None for v in values)
    common = {"table": table.name, "column": c, "codes": _codes(c, values, languages), "answered": answered,
              "missing": len(values) - answered, "versions": versions, "names": names}
    f = c.field
    if f is None:
        return Entry(kind=str(c.kind), group_path="", relevant="", constraint="", constraint_messages={},
                     required=False, choice_list="", **common)
    conditions = [*f.inherited_relevant, *([f.relevant] if f.relevant else [])]
    return Entry(kind=f"{f.kind} → {c.kind}", group_path="/".join(f.group_path),
                 relevant=" and ".join(f"({r})" for r in conditions), constraint=f.constraint or "",
                 constraint_messages=dict(f.constraint_messages), required=f.required,
                 choice_list=f.choice_list or "", **common)


def build_codebook(schema: FormSchema, tables: list[ExportTable]) -> Codebook:
    languages = languages_of(schema)
    book = Codebook(schema, languages)
    for table in tables:
        versions = column_versions(table)
        columns = [c.name for c in table.columns]
        names = {fmt: variable_names(columns, fmt) for fmt in (Format.STATA, Format.SPSS)}
        book.tables.append((table, [
            _entry(table, c, versions[c.name], {fmt: names[fmt][c.name] for fmt in names}, languages)
            for c in table.columns]))
    return book


def _h(lang: str) -> dict[str, str]:
    return HEADINGS.get(lang, HEADINGS["en"])


def _facts(e: Entry, h: dict[str, str], languages: list[str]) -> list[tuple[str, str, bool]]:
    """(heading, text, is code) for every line the Markdown and HTML codebooks give a column."""
    c = e.column
    facts = [(f"{h['question']} ({x})", c.label(x), False) for x in languages]
    facts.append((h["type"], e.kind, False))
    if e.group_path:
        facts.append((h["group"], e.group_path, True))
    if e.relevant:
        facts.append((h["relevant"], e.relevant, True))
    if e.constraint:
        facts.append((h["constraint"], e.constraint, True))
        facts += [(f"{h['constraint']} ({x})", text, False) for x, text in e.constraint_messages.items()]
    facts += [(h["required"], h["yes"] if e.required else h["no"], False),
              (h["answered"], str(e.answered), False), (h["missing"], str(e.missing), False),
              (h["versions"], ", ".join(e.versions) or "-", False)]
    facts += [(str(fmt), f"{r.name} ({r.why})", False) for fmt, r in e.names.items() if r.name != c.name]
    return facts


def _code_rows(e: Entry, languages: list[str]) -> list[list[str]]:
    return [[k.code, "" if k.number is None else str(k.number), *(k.labels.get(x, "") for x in languages),
             str(k.count)] for k in e.codes]


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_markdown(book: Codebook, path: Path, lang: str) -> Path:
    h, s = _h(lang), book.schema
    lines = [f"# {h['title']}: {s.title} (`{s.form_id}`, version {s.version})", "",
             f"_{VERSIONS_NOTE.get(lang, VERSIONS_NOTE['en'])}_", ""]
    for table, entries in book.tables:
        lines += [f"## {h['table']} `{table.name}` ({table.row_count} {h['rows']})", ""]
        for e in entries:
            lines.append(f"### `{e.column.name}`")
            lines += [f"- {head}: " + (f"`{_md(text)}`" if code else _md(text))
                      for head, text, code in _facts(e, h, book.languages)]
            if e.codes:
                head = [h["code"], h["number"], *book.languages, h["count"]]
                lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                lines += ["| " + " | ".join(_md(v) for v in row) + " |"
                          for row in _code_rows(e, book.languages)]
            lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


_CSS = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem;color:#1d2b27}
h1{color:#1f6f5c}table{border-collapse:collapse;margin:.3rem 0 1rem}td,th{border:1px solid #cfd8d4;
padding:.25rem .5rem;vertical-align:top;text-align:left}th{background:#1f6f5c;color:#fff}code{font-size:.9em}
.entry{border-top:1px solid #cfd8d4;padding:.4rem 0}.meta{color:#4a5a54}"""


def write_html(book: Codebook, path: Path, lang: str) -> Path:
    h, s, esc = _h(lang), book.schema, html.escape
    parts = [f'<!doctype html><html lang="{esc(lang)}"><head><meta charset="utf-8">',
             f"<title>{esc(h['title'])}: {esc(s.form_id)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{esc(h['title'])}: {esc(s.title)}</h1>",
             f"<p class=meta><code>{esc(s.form_id)}</code>, version {esc(s.version)}</p>",
             f"<p class=meta>{esc(VERSIONS_NOTE.get(lang, VERSIONS_NOTE['en']))}</p>"]
    for table, entries in book.tables:
        parts.append(f"<h2>{esc(h['table'])} <code>{esc(table.name)}</code> "
                     f"({table.row_count} {esc(h['rows'])})</h2>")
        for e in entries:
            name = esc(e.column.name)
            parts.append(f'<div class=entry id="{esc(table.name)}.{name}"><h3><code>{name}</code></h3><ul>')
            parts += [f"<li>{esc(head)}: " + (f"<code>{esc(text)}</code>" if code else esc(text)) + "</li>"
                      for head, text, code in _facts(e, h, book.languages)]
            parts.append("</ul>")
            if e.codes:
                head = [h["code"], h["number"], *book.languages, h["count"]]
                parts.append("<table><tr>" + "".join(f"<th>{esc(x)}</th>" for x in head) + "</tr>")
                parts += ["<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>"
                          for row in _code_rows(e, book.languages)]
                parts.append("</table>")
            parts.append("</div>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_workbook(book: Codebook, path: Path, lang: str) -> Path:
    """Sheet `columns` (a row per column), `codes` (a row per code of each column) and `about`."""
    from openpyxl import Workbook

    from consult.findings.workbook import put

    h, languages = _h(lang), book.languages
    workbook = Workbook()
    columns = workbook.active
    columns.title = "columns"
    rows: list[list[object]] = [[
        "table", "column", *(f"{h['question']} ({x})" for x in languages), h["type"], h["group"],
        h["relevant"], h["constraint"], *(f"{h['constraint']} ({x})" for x in languages), h["required"],
        h["list"],
        h["answered"], h["missing"], h["versions"], "stata", "spss", "stata/spss: why"]]
    for _, entries in book.tables:
        for e in entries:
            c = e.column
            rows.append([
                e.table, c.name, *(c.label(x) for x in languages), e.kind, e.group_path, e.relevant,
                e.constraint, *(e.constraint_messages.get(x, "") for x in languages),
                h["yes"] if e.required else h["no"],
                e.choice_list, e.answered, e.missing, ", ".join(e.versions), e.names[Format.STATA].name,
                e.names[Format.SPSS].name, "; ".join(filter(None, (r.why for r in e.names.values())))])
    codes = workbook.create_sheet("codes")
    code_rows: list[list[object]] = [["table", "column", h["code"], h["number"], *languages, h["count"]]]
    code_rows += [[e.table, e.column.name, k.code, k.number, *(k.labels.get(x, "") for x in languages),
                   k.count] for _, entries in book.tables for e in entries for k in e.codes]
    for sheet, data in ((columns, rows), (codes, code_rows)):
        for i, row in enumerate(data, start=1):
            for j, value in enumerate(row, start=1):
                cell = sheet.cell(i, j)
                if isinstance(value, int):
                    cell.value = value
                elif value is not None:
                    put(cell, value)
        sheet.freeze_panes = "C2"
    note = workbook.create_sheet("about")
    schema = book.schema
    put(note.cell(1, 1), f"{h['title']}: {schema.title} ({schema.form_id}, version {schema.version})")
    put(note.cell(2, 1), VERSIONS_NOTE.get(lang, VERSIONS_NOTE["en"]))
    workbook.save(path)
    return path
