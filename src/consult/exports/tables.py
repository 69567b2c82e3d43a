"""The reporting database as analysts' tables: one per form and one per repeat, labelled from the FormSchema.

A select_multiple keeps its codes as text and gains one 0/1 indicator per choice (missing
when the question was not answered), so an analyst tabulates choices without splitting text.
Repeat rows carry `_instance_id`, `_row_id` and `_parent_row_id`: a repeat table merges onto
its parent table by `_parent_row_id` = `_row_id`, or onto the form table by `_instance_id`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Date, DateTime, Float, Integer, MetaData, Table, Text, and_, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeEngine

from consult.forms.schema import Choice, DataType, Field, FormSchema, odata_name
from consult.warehouse.records import (
    INSTANCE,
    PARENT,
    POSITION,
    ROW,
    VALUE,
    FormLayout,
    TableKind,
    TableLayout,
)
from consult.warehouse.tables import VALID, UtcDateTime, form_tables, submissions

VALIDATION_STATUS = "validation_status"
FORM_VERSION = "_form_version"
SUBMITTED_AT = "_submitted_at"
FILE_SUFFIX = "_file"


class Kind(StrEnum):
    """What an export column holds, which decides its type in each format."""

    KEY = "key"
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"
    SELECT_ONE = "select_one"
    SELECT_MULTIPLE = "select_multiple"
    """The chosen codes as text, space-separated, as Central holds them."""
    INDICATOR = "indicator"
    """1 when its choice was chosen, 0 when the question was answered without it, missing otherwise."""
    FILE = "file"
    """Where the attachment is stored, relative to the attachments folder (`consult attachments`)."""


NUMERIC = (Kind.INTEGER, Kind.DECIMAL, Kind.INDICATOR)

SYSTEM_LABELS: dict[str, dict[str, str]] = {
    INSTANCE: {"vi": "Mã phiếu (instanceID)", "en": "Submission id (instanceID)"},
    ROW: {"vi": "Mã dòng lặp", "en": "Repeat entry id"},
    PARENT: {"vi": "Mã dòng cha (trống: chính phiếu)", "en": "Parent entry id (empty: the submission)"},
    POSITION: {"vi": "Thứ tự trong nhóm lặp", "en": "Position in the repeat"},
    VALIDATION_STATUS: {"vi": "Kết quả kiểm tra (valid/quarantined)", "en": "Validation (valid/quarantined)"},
    FORM_VERSION: {"vi": "Phiên bản biểu mẫu", "en": "Form version"},
    SUBMITTED_AT: {"vi": "Thời điểm gửi (UTC)", "en": "Submitted at (UTC)"},
}
METADATA_LABELS: dict[str, dict[str, str]] = {
    "start": {"vi": "Thời điểm bắt đầu phỏng vấn", "en": "Interview started"},
    "end": {"vi": "Thời điểm kết thúc phỏng vấn", "en": "Interview ended"},
    "today": {"vi": "Ngày phỏng vấn (theo máy)", "en": "Interview day (device)"},
    "deviceid": {"vi": "Mã thiết bị", "en": "Device id"},
    "username": {"vi": "Tên người dùng trên thiết bị", "en": "Device user name"},
    "phonenumber": {"vi": "Số điện thoại của máy", "en": "Device phone number"},
    "email": {"vi": "Email người dùng", "en": "User email"},
    "audit": {"vi": "Nhật ký phỏng vấn", "en": "Interview audit log"},
}
"""Labels of the values the device fills, which the XLSForm does not label."""
PART_LABELS = {"lat": "latitude", "lon": "longitude", "alt": "altitude", "accuracy": "accuracy",
               "wkt": "WKT", "points": "points"}
INDICATOR_LABELS = {"vi": ("không chọn", "có chọn"), "en": ("not selected", "selected")}


def text_in(labels: dict[str, str], lang: str, fallback: str) -> str:
    """The text in `lang`, else in any language the form has, else `fallback` (the name)."""
    return labels.get(lang) or next((t for t in labels.values() if t), "") or fallback


@dataclass(frozen=True)
class ExportColumn:
    name: str
    """Its name in the reporting database, or `<select_multiple>_<choice>` for an indicator."""
    kind: Kind
    labels: dict[str, str]
    field: Field | None = None
    part: str | None = None
    """A geopoint's `lat`/`lon`/`alt`/`accuracy`, a geotrace's or geoshape's `wkt`/`points`."""
    choice: Choice | None = None
    """An indicator's choice."""
    choices: tuple[Choice, ...] = ()
    """A select_one's or select_multiple's choice list, in the form's order."""

    def label(self, lang: str) -> str:
        return text_in(self.labels, lang, self.name)

    def choice_label(self, code: str, lang: str) -> str:
        choice = next((c for c in self.choices if c.name == code), None)
        return text_in(choice.labels, lang, code) if choice else code


@dataclass
class ExportTable:
    form_id: str
    name: str
    """The reporting table's name: the file name of its export."""
    key: str
    kind: TableKind
    parent: str | None
    """The name of the table its rows belong to."""
    columns: list[ExportColumn]
    data: dict[str, list[Any]]
    """Column name → values in row order: None where missing."""
    versions: list[str | None] = field(default_factory=list)
    """Each row's submission's form version."""

    @property
    def row_count(self) -> int:
        return len(self.versions)

    def column(self, name: str) -> ExportColumn:
        return next(c for c in self.columns if c.name == name)


def value_numbers(column: ExportColumn, values: list[Any]) -> dict[str, int]:
    """The numbers a select_one's codes get in Stata and SPSS, whose value labels need numbers: the codes
    themselves when every code is a whole number, else their position in the list (1, 2, …), then any
    code the data has outside the list, in sorted order."""
    codes = list(dict.fromkeys(c.name for c in column.choices))  # allow_choice_duplicates: a code twice
    extra = sorted({str(v) for v in values if v is not None} - set(codes))
    if all(c.lstrip("-").isdigit() for c in codes + extra) and len({int(c) for c in codes + extra}) == len(
            codes + extra):
        return {c: int(c) for c in codes + extra}
    return {code: n for n, code in enumerate(codes + extra, start=1)}


_KINDS: dict[type, Kind] = {Integer: Kind.INTEGER, Float: Kind.DECIMAL, Date: Kind.DATE,
                            UtcDateTime: Kind.DATETIME}


def _storage_type(reflected: TypeEngine[Any]) -> TypeEngine[Any]:
    """A reflected column type as the loader stores values: timestamps in UTC, numbers, dates, text."""
    if isinstance(reflected, DateTime):
        return UtcDateTime()
    if isinstance(reflected, Date):
        return Date()
    if isinstance(reflected, Integer):
        return Integer()
    if isinstance(reflected, Float) or type(reflected).__name__ in ("REAL", "DOUBLE_PRECISION", "NUMERIC"):
        return Float()
    return Text()


def _field_columns(schema: FormSchema, layout: TableLayout) -> list[tuple[ExportColumn, str | None]]:
    """Each data column of a layout table, with the choices table feeding a select_multiple's indicators."""
    fields = {f.key: f for f in schema.fields}
    out: list[tuple[ExportColumn, str | None]] = []
    for column in layout.columns:
        f = fields[column.field] if column.field else None
        labels = (dict(f.labels) or METADATA_LABELS.get(f.kind, {})) if f else {}
        if f is None:
            out.append((ExportColumn(column.name, Kind.TEXT, labels), None))
            continue
        if column.part:
            part = PART_LABELS[column.part]
            labels = {lang: f"{text_in(f.labels, lang, f.name)} ({part})" for lang in schema.languages} or {
                "": f"{f.name} ({part})"}
            kind = {"wkt": Kind.TEXT, "points": Kind.INTEGER}.get(column.part, Kind.DECIMAL)
            out.append((ExportColumn(column.name, kind, labels, f, column.part), None))
            continue
        choice_list = schema.choices_for(f)
        choices = tuple(choice_list.choices) if choice_list else ()
        kind = {DataType.INTEGER: Kind.INTEGER, DataType.DECIMAL: Kind.DECIMAL, DataType.DATE: Kind.DATE,
                DataType.DATETIME: Kind.DATETIME, DataType.SELECT_ONE: Kind.SELECT_ONE,
                DataType.SELECT_MULTIPLE: Kind.SELECT_MULTIPLE}.get(f.data_type, Kind.TEXT)
        if kind is Kind.SELECT_ONE and not choices:
            kind = Kind.TEXT
        out.append((ExportColumn(column.name, kind, labels, f, choices=choices),
                    f.choice_table if kind is Kind.SELECT_MULTIPLE else None))
        if f.data_type is DataType.BINARY:
            out.append((ExportColumn(column.name + FILE_SUFFIX, Kind.FILE, {
                lang: f"{text_in(f.labels, lang, f.name)} ({'tệp đã tải' if lang == 'vi' else 'stored file'})"
                for lang in schema.languages}, f), None))
    return out


def indicator(column: ExportColumn, choice: Choice, languages: list[str], taken: set[str]) -> ExportColumn:
    """`question: choice` in each language, under `<column>_<choice>`, or `<column>__<choice>` when the form
    has a field of that name (`contributions_other` beside the choice `other` of `contributions`)."""
    labels = {lang: f"{column.label(lang)}: {text_in(choice.labels, lang, choice.name)}"
              for lang in languages}
    code = odata_name(choice.name).lower()
    name, n = f"{column.name}_{code}", 2
    if name in taken:
        name = f"{column.name}__{code}"
    while name in taken:
        name, n = f"{column.name}__{code}_{n}", n + 1
    taken.add(name)
    return ExportColumn(name, Kind.INDICATOR, labels, column.field, choice=choice, choices=column.choices)


class _Reader:
    def __init__(self, engine: Engine, schema: FormSchema, include_quarantined: bool):
        self.engine, self.schema, self.include_quarantined = engine, schema, include_quarantined
        self.layout = FormLayout.of(schema)
        self.tables = form_tables(self.layout)
        inspector = inspect(engine)
        self.existing = {name: {c["name"]: c["type"] for c in inspector.get_columns(name)}
                         for name in inspector.get_table_names()}
        self.files = self._files() if "attachments" in self.existing else {}

    def _filter(self, instance_column: Any) -> Any:
        s = submissions.c
        condition = and_(s.instance_id == instance_column, s.form_id == self.schema.form_id,
                         s.deleted_at.is_(None), s.purged_at.is_(None))
        return condition if self.include_quarantined else and_(condition, s.validation_status == VALID)

    def _files(self) -> dict[tuple[str, str], str]:
        from consult.attachments import PRESENT, attachments

        a = attachments.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(a.instance_id, a.file_name, a.stored_path).where(
                a.form_id == self.schema.form_id, a.on_central == PRESENT)).all()
        return {(r.instance_id, r.file_name): r.stored_path for r in rows}

    def _chosen(self, layout: TableLayout) -> set[tuple[str, str, str]]:
        if layout.name not in self.existing:
            return set()
        t = self.tables[layout.key]
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c[INSTANCE], t.c[ROW], t.c[VALUE]).join(
                submissions, self._filter(t.c[INSTANCE]))).all()
        return {(r[0], r[1] or "", r[2]) for r in rows}

    def _table(self, layout: TableLayout) -> tuple[Table, list[ExportColumn]]:
        """The table as the database has it: the layout's columns typed as the loader wrote them, and the
        columns an earlier form version added that this build no longer has (exported, not dropped)."""
        known = self.tables[layout.key]
        present = self.existing.get(layout.name, {})
        columns = [Column(name, known.c[name].type if name in known.c else _storage_type(sql_type))
                   for name, sql_type in present.items()]
        retired = [ExportColumn(name, _KINDS.get(type(_storage_type(sql_type)), Kind.TEXT), {
            "vi": f"{name} (không còn trong phiên bản biểu mẫu hiện tại)",
            "en": f"{name} (not in the current form version)"})
            for name, sql_type in present.items() if name not in known.c]
        return Table(layout.name, MetaData(), *columns), retired

    def read(self, layout: TableLayout) -> ExportTable:
        languages = list(self.schema.languages) or [""]
        t, retired = self._table(layout)
        present = set(self.existing.get(layout.name, {}))
        keys = [c for c in layout.key_columns if c in self.tables[layout.key].c]
        system = [ExportColumn(k, Kind.INTEGER if k == POSITION else Kind.KEY, SYSTEM_LABELS[k])
                  for k in keys]
        field_columns = _field_columns(self.schema, layout)
        taken = {c.name for c in system} | {c.name for c, _ in field_columns} | {c.name for c in retired}
        status = VALIDATION_STATUS if VALIDATION_STATUS not in taken else "_" + VALIDATION_STATUS
        if layout.kind is TableKind.FORM:
            if self.include_quarantined:
                system.append(ExportColumn(status, Kind.TEXT, SYSTEM_LABELS[VALIDATION_STATUS]))
            system += [ExportColumn(FORM_VERSION, Kind.TEXT, SYSTEM_LABELS[FORM_VERSION]),
                       ExportColumn(SUBMITTED_AT, Kind.DATETIME, SYSTEM_LABELS[SUBMITTED_AT])]
            taken |= {status, FORM_VERSION, SUBMITTED_AT}
        columns: list[ExportColumn] = list(system)
        # (indicator, its question's column, its choice, every (instance, row, choice) chosen)
        indicators: list[tuple[str, str, str, set[tuple[str, str, str]]]] = []
        for column, choice_table in field_columns:
            columns.append(column)
            if choice_table is not None:
                chosen = self._chosen(self.layout.table(choice_table))
                for choice in column.choices:
                    columns.append(made := indicator(column, choice, languages, taken))
                    indicators.append((made.name, column.name, choice.name, chosen))
        columns += retired
        data: dict[str, list[Any]] = {c.name: [] for c in columns}
        versions: list[str | None] = []
        stored = [c.name for c in columns if c.kind not in (Kind.INDICATOR, Kind.FILE) and c.name in present]
        if layout.name in self.existing:
            s = submissions.c
            order = ([s.submission_date, t.c[INSTANCE]] if layout.kind is TableKind.FORM
                     else [t.c[INSTANCE], t.c[PARENT], t.c[POSITION]])
            query = (select(*(t.c[n] for n in stored), s.validation_status, s.form_version, s.submission_date)
                     .join(submissions, self._filter(t.c[INSTANCE]))
                     .order_by(*order))
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            n = len(stored)
            for row in rows:
                values = dict(zip(stored, row[:n], strict=True))
                values |= {status: row[n], FORM_VERSION: row[n + 1], SUBMITTED_AT: row[n + 2]}
                versions.append(row[n + 1])
                owner = (values[INSTANCE], values.get(ROW) or "")
                for c in columns:
                    if c.kind is Kind.INDICATOR:
                        continue
                    if c.kind is Kind.FILE:
                        name = values.get(c.name.removesuffix(FILE_SUFFIX))
                        data[c.name].append(self.files.get((owner[0], name)) if name else None)
                    else:
                        data[c.name].append(values.get(c.name))
                for name, question, choice, chosen in indicators:
                    answered = values.get(question) is not None
                    data[name].append(int((*owner, choice) in chosen) if answered else None)
        parent = None
        if layout.parent is not None:
            parent = self.layout.table(layout.parent).name
        return ExportTable(self.schema.form_id, layout.name, layout.key, layout.kind, parent, columns, data,
                           versions)


def read_form(engine: Engine, schema: FormSchema, include_quarantined: bool = False) -> list[ExportTable]:
    """The form's table and its repeats' tables, submissions deleted or purged in Central left out, and
    quarantined ones too unless asked for (then with their `validation_status`)."""
    reader = _Reader(engine, schema, include_quarantined)
    return [reader.read(t) for t in reader.layout.tables if t.kind is not TableKind.CHOICES]


def languages_of(schema: FormSchema) -> list[str]:
    return list(schema.languages) or [schema.default_language or ""]


def column_versions(table: ExportTable) -> dict[str, list[str]]:
    """Column → the form versions of the submissions that gave it a value (sorted)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for c in table.columns:
        for value, version in zip(table.data[c.name], table.versions, strict=True):
            if value is not None and version is not None:
                seen[c.name].add(version)
    return {c.name: sorted(seen[c.name]) for c in table.columns}
