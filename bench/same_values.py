"""consult's reporting database against the baseline's: the same value in every column both store.

Issue 17: speed must not be bought with values. The baseline (`variants.baseline`: pyodk
`get_table`, `pandas.json_normalize`, `to_sql`) keeps Central's OData as it came, one untyped
column per JSON path (`group.field`, `__system.submissionDate`, a geopoint's `.coordinates` as JSON);
consult keeps typed columns. Each value both hold is compared as what it means: numbers as
numbers, dates as dates, timestamps as instants, text as text (an empty answer is empty in both),
a geopoint's parts against the baseline's coordinates, and each select_multiple's choice rows
against the baseline's space-separated text. Rows are matched by Central's `__id`.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consult.forms.schema import DataType, FormSchema
from consult.warehouse.records import GEOPOINT_PARTS, INSTANCE, ROW, VALUE, FormLayout, TableKind

SYSTEM = {"submission_date": ("__system.submissionDate", DataType.DATETIME),
          "updated_at": ("__system.updatedAt", DataType.DATETIME),
          "submitter_id": ("__system.submitterId", DataType.STRING),
          "submitter_name": ("__system.submitterName", DataType.STRING),
          "device_id": ("__system.deviceId", DataType.STRING),
          "review_state": ("__system.reviewState", DataType.STRING),
          "form_version": ("__system.formVersion", DataType.STRING),
          "instance_name": ("meta.instanceName", DataType.STRING)}
GEO_PARTS = ("coordinates", "coordinates", "coordinates", "properties.accuracy")
SHOWN = 5


@dataclass
class ValuesCheck:
    rows: dict[str, int] = field(default_factory=dict)
    """consult table → rows found in both databases."""
    columns: int = 0
    values: int = 0
    unmatched_rows: dict[str, int] = field(default_factory=dict)
    differences: int = 0
    examples: list[str] = field(default_factory=list)
    not_in_baseline: list[str] = field(default_factory=list)
    """consult columns the baseline has no column for (a shape's WKT, an answer no row gave)."""

    @property
    def same(self) -> bool:
        return not self.differences and not any(self.unmatched_rows.values())

    def differ(self, where: str, consult: Any, baseline: Any) -> None:
        self.differences += 1
        if len(self.examples) < SHOWN:
            self.examples.append(f"{where}: consult {consult!r}, baseline {baseline!r}")

    def line(self) -> str:
        tables = ", ".join(f"{table} {n:,}" for table, n in self.rows.items())
        verdict = "the same" if self.same else f"{self.differences:,} differences, rows in one only {self.unmatched_rows}"
        return (f"consult's values against the baseline's: {self.values:,} values in {self.columns} columns "
                f"({tables} rows): {verdict}; not in the baseline: {', '.join(self.not_in_baseline) or 'none'}")


def _meaning(value: Any, data_type: DataType) -> Any:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    if data_type in (DataType.INTEGER, DataType.DECIMAL):
        return float(value)
    if data_type is DataType.DATE:
        return str(value)[:10]
    if data_type is DataType.DATETIME:
        moment = datetime.fromisoformat(str(value))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return str(value)


def _geo_part(value: Any, part: int) -> float | None:
    if value is None:
        return None
    if part == 3:
        return float(value)
    coordinates = json.loads(value)
    return float(coordinates[part]) if part < len(coordinates) else None


def _rows(conn: sqlite3.Connection, table: str, key: str) -> dict[str, dict[str, Any]]:
    cursor = conn.execute(f'SELECT * FROM "{table}"')
    names = [d[0] for d in cursor.description]
    return {row[names.index(key)]: dict(zip(names, row, strict=True)) for row in cursor}


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def compare(consult_db: Path, baseline_db: Path, schema: FormSchema) -> ValuesCheck:
    """Every column of the form table, the submissions' system columns, the repeat tables the
    baseline pulled, and the select_multiple choice rows."""
    check = ValuesCheck()
    layout = FormLayout.of(schema)
    paths = {f.key: ".".join(f.odata_path) for f in schema.fields}
    repeats = {r.key: "Submissions_" + "_".join(r.odata_path) for r in schema.repeats}
    with sqlite3.connect(consult_db) as ours, sqlite3.connect(baseline_db) as theirs:
        held = _tables(theirs)
        parent_rows = _rows(theirs, "Submissions", "__id")
        for table in layout.tables:
            source = "Submissions" if table.kind is TableKind.FORM else repeats.get(table.key)
            if table.kind is TableKind.CHOICES and table.parent == "":
                _compare_choices(check, ours, table, parent_rows, paths)
                continue
            if table.kind is TableKind.CHOICES or source not in held:
                continue
            mine = _rows(ours, table.name, INSTANCE if table.kind is TableKind.FORM else ROW)
            rows = parent_rows if source == "Submissions" else _rows(theirs, source, "__id")
            pairs = {c.name: _pair(c, paths[c.field]) for c in table.columns if c.part in (None, *GEOPOINT_PARTS)}
            check.not_in_baseline += [f"{table.name}.{c.name}" for c in table.columns if c.name not in pairs]
            _compare_rows(check, table.name, mine, rows, pairs)
        stored = {r[0]: dict(zip(SYSTEM, r[1:], strict=True)) for r in ours.execute(
            f"SELECT instance_id, {', '.join(SYSTEM)} FROM submissions WHERE form_id = ?", (schema.form_id,))}
        _compare_rows(check, "submissions", stored, parent_rows,
                      {name: (path, data_type, None) for name, (path, data_type) in SYSTEM.items()})
    return check


def _pair(column: Any, path: str) -> tuple[str, DataType, int | None]:
    """Where the baseline holds a column's value: a geopoint's parts in its GeoJSON (a shape's WKT
    and point count have no baseline column to compare with)."""
    if column.part is None:
        return path, column.data_type, None
    part = GEOPOINT_PARTS.index(column.part)
    return f"{path}.{GEO_PARTS[part]}", DataType.DECIMAL, part


def _compare_rows(check: ValuesCheck, name: str, mine: dict[str, dict], theirs: dict[str, dict],
                  pairs: dict[str, tuple[str, DataType, int | None]]) -> None:
    both = mine.keys() & theirs.keys()
    check.rows[name] = len(both)
    check.unmatched_rows[name] = len(mine.keys() ^ theirs.keys())
    present = {column: spec for column, spec in pairs.items() if spec[0] in next(iter(theirs.values()), {})}
    check.not_in_baseline += [f"{name}.{column}" for column in pairs if column not in present]
    check.columns += len(present)
    for key in sorted(both):
        for column, (path, data_type, part) in present.items():
            baseline = theirs[key][path]
            expected = _geo_part(baseline, part) if part is not None else _meaning(baseline, data_type)
            actual = _meaning(mine[key][column], data_type)
            check.values += 1
            if actual != expected:
                check.differ(f"{name}.{column} of {key}", actual, expected)


def _compare_choices(check: ValuesCheck, conn: sqlite3.Connection, table: Any,
                     parent_rows: dict[str, dict], paths: dict[str, str]) -> None:
    """A select_multiple's rows against the baseline's text of that answer (form-level ones only:
    the baseline's repeat rows are compared as text in their own table)."""
    path = paths[table.fields[0]]
    if not parent_rows or path not in next(iter(parent_rows.values())):
        return
    chosen: dict[str, list[str]] = defaultdict(list)
    for instance_id, value in conn.execute(f'SELECT "{INSTANCE}", "{VALUE}" FROM "{table.name}"'):
        chosen[instance_id].append(value)
    check.columns += 1
    check.rows[table.name] = sum(len(v) for v in chosen.values())
    for instance_id, row in parent_rows.items():
        expected = sorted(dict.fromkeys(str(row[path] or "").split()))
        check.values += 1
        if sorted(chosen.get(instance_id, [])) != expected:
            check.differ(f"{table.name} of {instance_id}", sorted(chosen.get(instance_id, [])), expected)
