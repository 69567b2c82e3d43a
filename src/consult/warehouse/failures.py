"""Why a submission is quarantined: rows of `validation_failures`, replaced with each load.

A failure's value is stored as text whatever its type, so a field supervisor and an
analyst read the value Central held, even one that did not fit its column (a typed column
holds NULL then).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.engine import Connection

from consult.warehouse.database import bulk_insert
from consult.warehouse.tables import validation_failures

if TYPE_CHECKING:
    from consult.validate.report import Failure

CHUNK = 500
"""Instance ids per IN (...): well under every driver's parameter limit."""

T = TypeVar("T")


@dataclass(frozen=True)
class FailureRow:
    """One failed check of one submission (or of one repeat row when `row_id` is set)."""

    project_id: int
    form_id: str
    instance_id: str
    rule: str
    column: str | None
    row_id: str | None
    value: Any
    """Any JSON value; stored as text (JSON for objects and lists)."""
    message_vi: str
    message_en: str

    @classmethod
    def of(cls, project_id: int, form_id: str, failure: Failure) -> FailureRow:
        """A validation failure of a submission of this project's form, as the database keeps it."""
        return cls(project_id, form_id, failure.instance_id, failure.rule, failure.column, failure.row_id,
                   failure.value, failure.message_vi, failure.message_en)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def value_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def failures_hash(failures: Iterable[FailureRow]) -> str:
    """Identifies a set of failures, so the same complaint is written back to Central once."""
    lines = sorted(f"{f.rule}|{f.column}|{f.row_id}|{f.value}" for f in failures)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def _of_submissions(project_id: int, form_id: str, instance_ids: Sequence[str]) -> ColumnElement[bool]:
    t = validation_failures.c
    return and_(t.project_id == project_id, t.form_id == form_id, t.instance_id.in_(instance_ids))


def replace_failures(conn: Connection, project_id: int, form_id: str, instance_ids: Sequence[str],
                     failures: Sequence[FailureRow]) -> None:
    """The failures of these submissions become exactly `failures` (which must be about them)."""
    ids = set(instance_ids)
    stray = {f.instance_id for f in failures if f.instance_id not in ids or f.form_id != form_id
             or f.project_id != project_id}
    if stray:
        raise ValueError(f"failures for submissions outside this page of {project_id}/{form_id}: "
                         f"{sorted(stray)[:5]}")
    for chunk in chunks(instance_ids):
        conn.execute(delete(validation_failures).where(_of_submissions(project_id, form_id, chunk)))
    insert_failures(conn, failures)


def insert_failures(conn: Connection, failures: Sequence[FailureRow]) -> None:
    bulk_insert(conn, validation_failures, [
        {"project_id": f.project_id, "form_id": f.form_id, "instance_id": f.instance_id, "rule": f.rule,
         "column": f.column, "row_id": f.row_id, "value": value_text(f.value),
         "message_vi": f.message_vi, "message_en": f.message_en} for f in failures])


def failures_of(conn: Connection, project_id: int, form_id: str, instance_id: str) -> list[FailureRow]:
    """A submission's stored failures, in a stable order."""
    t = validation_failures.c
    rows = conn.execute(select(validation_failures).where(_of_submissions(project_id, form_id, [instance_id]))
                        .order_by(t.rule, t.column, t.row_id, t.value, t.message_en))
    return [FailureRow(**row._asdict()) for row in rows]


def replace_rule_failures(conn: Connection, project_id: int, form_id: str, rule: str,
                          failures: Sequence[FailureRow], among: set[str] | None = None,
                          scan: bool = True) -> set[str]:
    """The failures of one form-wide rule (duplicate interviews) become exactly `failures`, over
    the whole form: that rule's failures of submissions not in `failures` are removed. Returns
    the submissions whose failures of the rule changed in any way (added, removed, or a
    different value or message), whose status the caller then recomputes (`refresh_statuses`);
    only those are rewritten, so a second call with the same failures returns an empty set.

    With `among` (the incremental recheck), only those submissions' failures of the rule are
    compared and rewritten, read by id lists unless `scan` (cheaper when they are many)."""
    stray = [f for f in failures if (f.project_id, f.form_id, f.rule) != (project_id, form_id, rule)]
    if stray:
        raise ValueError(f"failures not of rule {rule} of {project_id}/{form_id}: "
                         f"{sorted({(f.rule, f.instance_id) for f in stray})[:5]}")
    if among is not None and (outside := {f.instance_id for f in failures} - among):
        raise ValueError(f"{rule}: failures outside the rechecked submissions: {sorted(outside)[:5]}")
    t = validation_failures.c
    of_rule = and_(t.project_id == project_id, t.form_id == form_id, t.rule == rule)
    read = select(t.instance_id, t.column, t.row_id, t.value, t.message_vi, t.message_en).where(of_rule)
    found = (conn.execute(read) if among is None or scan
             else (row for chunk in chunks(sorted(among))
                   for row in conn.execute(read.where(t.instance_id.in_(chunk)))))
    before: dict[str, list[tuple[str | None, ...]]] = {}
    for row in found:
        if among is None or row.instance_id in among:
            before.setdefault(row.instance_id, []).append(tuple(row)[1:])
    after: dict[str, list[tuple[str | None, ...]]] = {}
    for f in failures:
        after.setdefault(f.instance_id, []).append((f.column, f.row_id, value_text(f.value), f.message_vi,
                                                    f.message_en))
    changed = {i for i in before.keys() | after.keys()
               if sorted(before.get(i, []), key=_nulls_first) != sorted(after.get(i, []), key=_nulls_first)}
    for chunk in chunks(sorted(changed)):
        conn.execute(delete(validation_failures).where(of_rule, t.instance_id.in_(chunk)))
    insert_failures(conn, [f for f in failures if f.instance_id in changed])
    return changed


def _nulls_first(row: tuple[str | None, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((v is not None, v or "") for v in row)
