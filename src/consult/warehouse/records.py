"""Central's OData rows → rows of the reporting tables, typed from the FormSchema.

The layout is derived from FormSchema alone: a table per form (one row per submission),
a table per repeat (one row per repeat entry, keyed by Central's positional `__id`) and a
table per select_multiple (one row per chosen option), so analysts count choices with a
GROUP BY instead of string splitting. Table keys and column names come from the FormSchema,
which keeps them unique and clear of the key columns whatever names the form uses.

Values that do not fit their type (Central accepts anything) become NULL here and are
reported as `ValueProblem`s, which validation turns into quarantine reasons: the raw JSON
of every submission is kept, so nothing is lost.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import orjson

from consult.forms.schema import ROOT_TABLE, DataType, Field, FormSchema

MAX_IDENTIFIER = 63
INSTANCE = "_instance_id"
ROW = "_row_id"
PARENT = "_parent_row_id"
POSITION = "_position"
VALUE = "value"
GEOPOINT_PARTS = ("lon", "lat", "alt", "accuracy")
WKT = "wkt"
POINTS = "points"


class TableKind(StrEnum):
    FORM = "form"
    REPEAT = "repeat"
    CHOICES = "choices"


@dataclass(frozen=True)
class Column:
    name: str
    data_type: DataType
    """INTEGER, DECIMAL, DATE, DATETIME or STRING: geopoints are split, selects stored as text."""
    field: str | None = None
    """The key of the field it stores."""
    part: str | None = None
    """For a geopoint, which of lon/lat/alt/accuracy; for a geotrace or geoshape, `wkt` or `points`."""


def table_name(*parts: str) -> str:
    """`province_consultation__members`; names past PostgreSQL's 63 characters keep a hash suffix."""
    name = "__".join(parts)
    if len(name) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[:MAX_IDENTIFIER - 9]}_{digest}"


@dataclass(frozen=True)
class TableLayout:
    key: str
    """`""` for the form table, else the repeat's or the select_multiple field's name."""
    name: str
    kind: TableKind
    columns: tuple[Column, ...]
    parent: str | None = None
    """Key of the table whose rows own these rows (None for the form table)."""
    fields: tuple[str, ...] = ()

    @property
    def key_columns(self) -> tuple[str, ...]:
        if self.kind is TableKind.FORM:
            return (INSTANCE,)
        if self.kind is TableKind.REPEAT:
            return (ROW, INSTANCE, PARENT, POSITION)
        return (INSTANCE, ROW, VALUE)


def _columns(fields: list[Field]) -> tuple[Column, ...]:
    columns = []
    for f in fields:
        if f.data_type is DataType.GEOPOINT:
            columns += [Column(f"{f.column}_{part}", DataType.DECIMAL, f.key, part) for part in GEOPOINT_PARTS]
        elif f.data_type in (DataType.GEOTRACE, DataType.GEOSHAPE):
            columns += [Column(f.column, DataType.STRING, f.key, WKT),
                        Column(f"{f.column}_points", DataType.INTEGER, f.key, POINTS)]
        elif f.xpath.endswith("/meta/instanceID"):
            continue
        else:
            storage = f.data_type if f.data_type in (DataType.INTEGER, DataType.DECIMAL, DataType.DATE,
                                                       DataType.DATETIME) else DataType.STRING
            columns.append(Column(f.column, storage, f.key))
    return tuple(columns)


@dataclass(frozen=True)
class FormLayout:
    form_id: str
    tables: tuple[TableLayout, ...]

    @classmethod
    def of(cls, schema: FormSchema) -> FormLayout:
        key_of_table = {ROOT_TABLE: ""} | {r.table: r.key for r in schema.repeats}
        tables = []
        for table, key in key_of_table.items():
            fields = schema.fields_in(table)
            repeat = next((r for r in schema.repeats if r.table == table), None)
            tables.append(TableLayout(
                key=key,
                name=table_name(schema.form_id, *([key] if key else [])),
                kind=TableKind.REPEAT if repeat else TableKind.FORM,
                columns=_columns(fields),
                parent=key_of_table[repeat.parent_table] if repeat else None,
                fields=tuple(f.key for f in fields),
            ))
            for f in fields:
                if f.data_type is DataType.SELECT_MULTIPLE and f.choice_table is not None:
                    tables.append(TableLayout(key=f.choice_table, name=table_name(schema.form_id, f.choice_table),
                                              kind=TableKind.CHOICES, columns=(), parent=key, fields=(f.key,)))
        return cls(schema.form_id, tuple(tables))

    def table(self, key: str) -> TableLayout:
        return next(t for t in self.tables if t.key == key)


@dataclass(frozen=True)
class ValueProblem:
    """A value Central accepted that does not fit its field's type."""

    instance_id: str
    field: str
    value: Any
    message: str
    row_id: str | None = None


@dataclass(frozen=True)
class SubmissionSystem:
    """What Central knows about a submission beyond its answers: the `submissions` table."""

    instance_id: str
    form_id: str
    form_version: str | None
    current_version_id: str | None
    instance_name: str | None
    submitter_id: str | None
    submitter_name: str | None
    device_id: str | None
    submission_date: datetime | None
    updated_at: datetime | None
    deleted_at: datetime | None
    review_state: str | None
    edits: int
    attachments_present: int | None
    attachments_expected: int | None
    raw_json: str = field(repr=False)


@dataclass
class FormRecords:
    """One page of one form's submissions, as rows of every reporting table."""

    layout: FormLayout
    submissions: list[SubmissionSystem] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Table key → rows (column name → typed value)."""
    problems: list[ValueProblem] = field(default_factory=list)

    @property
    def instance_ids(self) -> list[str]:
        return [s.instance_id for s in self.submissions]


def parse_datetime(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


_GEO_WKT = re.compile(r"^POINT\s*\(\s*(-?[\d.eE+-]+)\s+(-?[\d.eE+-]+)(?:\s+(-?[\d.eE+-]+))?\s*\)$")


def _geopoint(value: Any) -> tuple[float | None, ...]:
    if isinstance(value, dict) and isinstance(value.get("coordinates"), list):
        coords = [float(c) for c in value["coordinates"]] + [None, None]
        accuracy = (value.get("properties") or {}).get("accuracy")
        return coords[0], coords[1], coords[2], None if accuracy is None else float(accuracy)
    if isinstance(value, str) and (match := _GEO_WKT.match(value.strip())):
        lon, lat, alt = (float(g) if g else None for g in match.groups())
        return lon, lat, alt, None
    if isinstance(value, str) and len(parts := value.split()) in (2, 3, 4):
        lat, lon, *rest = (float(p) for p in parts)
        return lon, lat, rest[0] if rest else None, rest[1] if len(rest) > 1 else None
    raise ValueError("not a geopoint")


def _position(point: Any) -> str:
    if not isinstance(point, list) or not 2 <= len(point) <= 4:
        raise ValueError("not a list of coordinates")
    return " ".join(_coordinate(c) for c in point[:3] if c is not None)


def _coordinate(value: Any) -> str:
    return repr(_number(value)).removesuffix(".0") if not isinstance(value, int) else str(value)


def _odk_points(text: str) -> list[list[float]]:
    """ODK's own `lat lon alt acc;…` string, as Central's CSV and submissions hold it."""
    points = []
    for part in text.strip().rstrip(";").split(";"):
        numbers = [_number(n) for n in part.split()]
        if len(numbers) not in (2, 3, 4):
            raise ValueError("not a list of points")
        points.append([numbers[1], numbers[0], *numbers[2:3]])
    return points


def geo_shape(value: Any) -> tuple[str, int]:
    """A geotrace or geoshape as WKT (`LINESTRING (lon lat alt, …)`, `POLYGON ((…))`), longitude first
    as GIS tools want it, and its number of points: Central serves GeoJSON, `$wkt=true` serves WKT."""
    if isinstance(value, str) and value.lstrip().upper().startswith(("LINESTRING", "POLYGON")):
        body = value[value.index("(") :].strip("() ")
        return value.strip(), len([p for p in body.replace("(", "").replace(")", "").split(",") if p.strip()])
    if isinstance(value, str):
        points = _odk_points(value)
        return f"LINESTRING ({', '.join(_position(p) for p in points)})", len(points)
    if not isinstance(value, dict) or not isinstance(value.get("coordinates"), list):
        raise ValueError("not a line or polygon")
    kind, coordinates = value.get("type"), value["coordinates"]
    if kind == "LineString":
        return f"LINESTRING ({', '.join(_position(p) for p in coordinates)})", len(coordinates)
    if kind == "Polygon":
        rings = [f"({', '.join(_position(p) for p in ring)})" for ring in coordinates]
        return f"POLYGON ({', '.join(rings)})", sum(len(ring) for ring in coordinates)
    raise ValueError("not a line or polygon")


def raw_json(row: dict) -> str:
    """An OData row as the audit record keeps it: keys sorted, UTF-8 text. orjson writes it ~5×
    faster than the standard library, which takes what orjson refuses: integers beyond 64 bits, and
    NaN or ±Infinity (`consult.central.pull.NonFiniteNumber`), which orjson would write as null."""
    try:
        return orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return json.dumps(row, ensure_ascii=False, sort_keys=True)


def coerce(value: Any, data_type: DataType) -> Any:
    """A JSON value in its column's type; raises ValueError when it does not fit."""
    if value is None or value == "":
        return None
    if data_type in (DataType.INTEGER, DataType.DECIMAL):
        number = _number(value)
        if data_type is DataType.DECIMAL:
            return number
        if number != int(number):
            raise ValueError("not an integer")
        if not -2**63 <= number < 2**63:
            raise ValueError("integer out of range")
        return int(number)
    if data_type is DataType.DATE:
        return date.fromisoformat(str(value)[:10]) if re.match(r"^\d{4}-\d{2}-\d{2}$", str(value)) else _fail("date")
    if data_type is DataType.DATETIME:
        return parse_datetime(str(value))
    if isinstance(value, (dict, list)):
        raise ValueError("not a text value")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("not a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _fail(kind: str) -> Any:
    raise ValueError(f"not a {kind}")


def _at(row: dict, path: tuple[str, ...]) -> Any:
    value: Any = row
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


@dataclass(frozen=True)
class _Cell:
    """Where a column's value is in an OData row, resolved once per form instead of once per cell."""

    name: str
    field: str
    path: tuple[str, ...]
    data_type: DataType
    part: int | None
    """For a geopoint column, its index in (lon, lat, alt, accuracy)."""


@dataclass(frozen=True)
class _Child:
    table: TableLayout
    path: tuple[str, ...]
    """The select_multiple's value, or the repeat's entries, relative to the owning row."""


class RecordBuilder:
    """Turns pages of one form's OData rows (`$expand=*`) into FormRecords."""

    def __init__(self, schema: FormSchema):
        self.schema = schema
        self.layout = FormLayout.of(schema)
        fields = {f.key: f for f in schema.fields}
        parts = (*GEOPOINT_PARTS, WKT, POINTS)
        self._cells = {t.key: tuple(
            _Cell(c.name, c.field, tuple(fields[c.field].odata_path), c.data_type,
                  parts.index(c.part) if c.part else None) for c in t.columns) for t in self.layout.tables}
        repeats = {r.key: r for r in schema.repeats}
        self._children = {t.key: tuple(
            _Child(child, tuple(fields[child.fields[0]].odata_path) if child.kind is TableKind.CHOICES
                   else tuple(repeats[child.key].odata_path))
            for child in self.layout.tables if child.parent == t.key) for t in self.layout.tables}

    def build(self, odata_rows: list[dict]) -> FormRecords:
        records = FormRecords(self.layout, rows={t.key: [] for t in self.layout.tables})
        form_table = self.layout.table("")
        for row in odata_rows:
            instance_id = row.get("__id")
            if not isinstance(instance_id, str) or not instance_id:
                raise ValueError("an OData row has no __id")
            records.submissions.append(self._system(instance_id, row))
            self._table_row(records, form_table, row, instance_id, None, None, None)
        return records

    def _system(self, instance_id: str, row: dict) -> SubmissionSystem:
        system = row.get("__system") or {}
        meta = row.get("meta") or {}

        def number(key: str) -> int | None:
            value = system.get(key)
            return value if isinstance(value, int) else None

        return SubmissionSystem(
            instance_id=instance_id, form_id=self.schema.form_id, form_version=system.get("formVersion"),
            current_version_id=meta.get("instanceID"), instance_name=meta.get("instanceName"),
            submitter_id=None if system.get("submitterId") is None else str(system["submitterId"]),
            submitter_name=system.get("submitterName"), device_id=system.get("deviceId"),
            submission_date=parse_datetime(system.get("submissionDate")),
            updated_at=parse_datetime(system.get("updatedAt")), deleted_at=parse_datetime(system.get("deletedAt")),
            review_state=system.get("reviewState"), edits=number("edits") or 0,
            attachments_present=number("attachmentsPresent"), attachments_expected=number("attachmentsExpected"),
            raw_json=raw_json(row),
        )

    def _table_row(self, records: FormRecords, table: TableLayout, row: dict, instance_id: str,
                   row_id: str | None, parent_row_id: str | None, position: int | None) -> None:
        out: dict[str, Any] = {INSTANCE: instance_id}
        if table.kind is TableKind.REPEAT:
            out |= {ROW: row_id, PARENT: parent_row_id, POSITION: position}
        geo: dict[str, tuple] = {}
        for cell in self._cells[table.key]:
            raw: Any = row  # `_at` inlined: a call per cell costs ~15 % of building a page (measured)
            for key in cell.path:
                raw = raw.get(key) if type(raw) is dict else None
            if raw is None or raw == "":
                value = None
            elif cell.part is None and cell.data_type is DataType.STRING and type(raw) is str:
                value = raw
            else:
                try:
                    if cell.part is not None:
                        if cell.field not in geo:
                            geo[cell.field] = _geopoint(raw) if cell.part < 4 else geo_shape(raw)
                        value = geo[cell.field][cell.part % 4]
                    else:
                        value = coerce(raw, cell.data_type)
                except (ValueError, TypeError) as exc:
                    geo.setdefault(cell.field, (None,) * 4)
                    records.problems.append(ValueProblem(instance_id, cell.field, raw, str(exc), row_id))
                    value = None
            out[cell.name] = value
        records.rows[table.key].append(out)
        for child in self._children[table.key]:
            raw = _at(row, child.path)
            if child.table.kind is TableKind.CHOICES:
                tokens = str(raw).split() if isinstance(raw, (str, int, float)) else []
                records.rows[child.table.key] += [{INSTANCE: instance_id, ROW: row_id or "", VALUE: token}
                                                  for token in dict.fromkeys(tokens)]
                continue
            repeat = child.table.key
            entries = raw or []
            if not isinstance(entries, list):
                records.problems.append(ValueProblem(instance_id, repeat, entries, "not a list of entries"))
                continue
            for number, entry in enumerate(entries, start=1):
                entry_id = entry.get("__id") if isinstance(entry, dict) else None
                if not isinstance(entry_id, str):
                    records.problems.append(ValueProblem(instance_id, repeat, entry, "entry without __id"))
                    continue
                self._table_row(records, child.table, entry, instance_id, entry_id, row_id, number)
