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
           "answered": "Answered", "missing": "Missing", "versions": "Versions with the column", "code": "Code",
           "number": "Number (Stata/SPSS)", "count": "Count", "names": "Names in Stata/SPSS", "yes": "yes",
           "no": "no", "list": "Choice list", "question": "Question"},
}
VERSIONS_NOTE = {
    "vi": "Phiên bản có biến: các giá trị form_version của những phiếu có giá trị ở biến này (đọc từ dữ liệu).",
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


def build_codebook(schema: FormSchema, tables: list[ExportTable]) -> Codebook:
    languages = languages_of(schema)
    book = Codebook(schema, languages)
    for table in tables:
        versions = column_versions(table)
        names = {fmt: variable_names([c.name for c in table.columns], fmt) for fmt in (Format.STATA, Format.SPSS)}
        entries = []
        for c in table.columns:
            f = c.field
            values = table.data[c.name]
            answered = sum(v is not None for v in values)
            relevant = " and ".join(f"({r})" for r in [*f.inherited_relevant, *([f.relevant] if f.relevant else [])]
                                    ) if f else ""
            entries.append(Entry(
                table=table.name, column=c, kind=f"{f.kind} → {c.kind}" if f else str(c.kind),
                group_path="/".join(f.group_path) if f else "", relevant=relevant,
                constraint=(f.constraint or "") if f else "", constraint_messages=dict(f.constraint_messages) if f
                else {}, required=bool(f and f.required), choice_list=(f.choice_list or "") if f else "",
                codes=_codes(c, values, languages), answered=answered, missing=len(values) - answered,
                versions=versions[c.name], names={fmt: names[fmt][c.name] for fmt in names}))
        book.tables.append((table, entries))
    return book


def _h(lang: str) -> dict[str, str]:
    return HEADINGS.get(lang, HEADINGS["en"])


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_markdown(book: Codebook, path: Path, lang: str) -> Path:
    h = _h(lang)
    s = book.schema
    lines = [f"# {h['title']}: {s.title} (`{s.form_id}`, version {s.version})", "",
             f"_{VERSIONS_NOTE.get(lang, VERSIONS_NOTE['en'])}_", ""]
    for table, entries in book.tables:
        lines += [f"## {h['table']} `{table.name}` ({table.row_count} {h['rows']})", ""]
        for e in entries:
            c = e.column
            lines.append(f"### `{c.name}`")
            lines += [f"- {h['question']} ({lang_}): {_md(c.label(lang_))}" for lang_ in book.languages]
            lines.append(f"- {h['type']}: {e.kind}" + (f"; {h['group']}: `{e.group_path}`" if e.group_path else ""))
            if e.relevant:
                lines.append(f"- {h['relevant']}: `{_md(e.relevant)}`")
            if e.constraint:
                messages = "; ".join(f"{k}: {_md(v)}" for k, v in e.constraint_messages.items())
                lines.append(f"- {h['constraint']}: `{_md(e.constraint)}`" + (f" ({messages})" if messages else ""))
            lines.append(f"- {h['required']}: {h['yes'] if e.required else h['no']}; {h['answered']}: {e.answered}; "
                         f"{h['missing']}: {e.missing}; {h['versions']}: {', '.join(e.versions) or '-'}")
            renamed = [f"{fmt}: `{r.name}` ({r.why})" for fmt, r in e.names.items() if r.name != c.name]
            if renamed:
                lines.append(f"- {h['names']}: " + "; ".join(renamed))
            if e.codes:
                lines += ["", f"| {h['code']} | {h['number']} | " + " | ".join(book.languages) + f" | {h['count']} |",
                          "|---|---|" + "---|" * len(book.languages) + "---|"]
                lines += [f"| `{_md(k.code)}` | {'' if k.number is None else k.number} | "
                          + " | ".join(_md(k.labels.get(x, "")) for x in book.languages) + f" | {k.count} |"
                          for k in e.codes]
            lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


_CSS = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem;color:#1d2b27}
h1{color:#1f6f5c}table{border-collapse:collapse;margin:.3rem 0 1rem}td,th{border:1px solid #cfd8d4;
padding:.25rem .5rem;vertical-align:top;text-align:left}th{background:#1f6f5c;color:#fff}code{font-size:.9em}
.entry{border-top:1px solid #cfd8d4;padding:.4rem 0}.meta{color:#4a5a54}"""


def write_html(book: Codebook, path: Path, lang: str) -> Path:
    h, s, e_ = _h(lang), book.schema, html.escape
    parts = [(f'<!doctype html><html lang="{e_(lang)}"><head><meta charset="utf-8"><title>{e_(h["title"])}: '
              f'{e_(s.form_id)}</title><style>{_CSS}</style></head><body>'),
             (f"<h1>{e_(h['title'])}: {e_(s.title)}</h1><p class=meta><code>{e_(s.form_id)}</code>, version "
              f"{e_(s.version)}</p><p class=meta>{e_(VERSIONS_NOTE.get(lang, VERSIONS_NOTE['en']))}</p>")]
    for table, entries in book.tables:
        parts.append(f"<h2>{e_(h['table'])} <code>{e_(table.name)}</code> ({table.row_count} {e_(h['rows'])})</h2>")
        for e in entries:
            c = e.column
            parts.append(f'<div class=entry id="{e_(table.name)}.{e_(c.name)}"><h3><code>{e_(c.name)}</code></h3><ul>')
            parts += [f"<li>{e_(h['question'])} ({e_(x)}): {e_(c.label(x))}</li>" for x in book.languages]
            parts.append(f"<li>{e_(h['type'])}: {e_(e.kind)}"
                         + (f"; {e_(h['group'])}: <code>{e_(e.group_path)}</code>" if e.group_path else "") + "</li>")
            if e.relevant:
                parts.append(f"<li>{e_(h['relevant'])}: <code>{e_(e.relevant)}</code></li>")
            if e.constraint:
                messages = "; ".join(f"{k}: {v}" for k, v in e.constraint_messages.items())
                parts.append(f"<li>{e_(h['constraint'])}: <code>{e_(e.constraint)}</code> {e_(messages)}</li>")
            parts.append(f"<li>{e_(h['required'])}: {e_(h['yes'] if e.required else h['no'])}; {e_(h['answered'])}: "
                         f"{e.answered}; {e_(h['missing'])}: {e.missing}; {e_(h['versions'])}: "
                         f"{e_(', '.join(e.versions) or '-')}</li>")
            for fmt, r in e.names.items():
                if r.name != c.name:
                    parts.append(f"<li>{e_(fmt)}: <code>{e_(r.name)}</code> ({e_(r.why)})</li>")
            parts.append("</ul>")
            if e.codes:
                parts.append(f"<table><tr><th>{e_(h['code'])}</th><th>{e_(h['number'])}</th>"
                             + "".join(f"<th>{e_(x)}</th>" for x in book.languages) + f"<th>{e_(h['count'])}</th></tr>")
                parts += ["<tr><td><code>" + e_(k.code) + "</code></td><td>" + ("" if k.number is None else str(k.number))
                          + "</td>" + "".join(f"<td>{e_(k.labels.get(x, ''))}</td>" for x in book.languages)
                          + f"<td>{k.count}</td></tr>" for k in e.codes]
                parts.append("</table>")
            parts.append("</div>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_workbook(book: Codebook, path: Path, lang: str) -> Path:
    """Sheet `columns` (a row per column), `codes` (a row per code of each column) and the versions note."""
    from openpyxl import Workbook

    from consult.findings.workbook import put

    h = _h(lang)
    workbook = Workbook()
    columns = workbook.active
    columns.title = "columns"
    head = ["table", "column", *(f"{h['question']} ({x})" for x in book.languages), h["type"], h["group"],
            h["relevant"], h["constraint"], *(f"{h['constraint']} ({x})" for x in book.languages), h["required"],
            h["list"], h["answered"], h["missing"], h["versions"], "stata", "spss", "stata/spss: why"]
    rows: list[list[object]] = [head]
    for _, entries in book.tables:
        for e in entries:
            c = e.column
            rows.append([e.table, c.name, *(c.label(x) for x in book.languages), e.kind, e.group_path, e.relevant,
                         e.constraint, *(e.constraint_messages.get(x, "") for x in book.languages),
                         h["yes"] if e.required else h["no"], e.choice_list, e.answered, e.missing,
                         ", ".join(e.versions), e.names[Format.STATA].name, e.names[Format.SPSS].name,
                         "; ".join(filter(None, (r.why for r in e.names.values())))])
    codes = workbook.create_sheet("codes")
    code_rows: list[list[object]] = [["table", "column", h["code"], h["number"], *book.languages, h["count"]]]
    code_rows += [[e.table, e.column.name, k.code, k.number, *(k.labels.get(x, "") for x in book.languages), k.count]
                  for _, entries in book.tables for e in entries for k in e.codes]
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
    put(note.cell(1, 1), f"{h['title']}: {book.schema.title} ({book.schema.form_id}, version {book.schema.version})")
    put(note.cell(2, 1), VERSIONS_NOTE.get(lang, VERSIONS_NOTE["en"]))
    workbook.save(path)
    return path
