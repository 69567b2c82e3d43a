"""The whole reporting database as plain sorted rows, to compare two databases row by row.

The kill-and-re-run tests compare a database a killed sync was re-run on with one an
uninterrupted sync built: they must be equal except for when things happened, so clock
columns are left out (`purged_at` only counts as set or not) and `sync_runs` is skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import MetaData, select
from sqlalchemy.engine import Engine

IGNORED_TABLES = frozenset({"sync_runs"})
CLOCK_COLUMNS = {"submissions": {"loaded_at"}, "watermarks": {"updated_at"}, "write_backs": {"written_at"},
                 "entity_submissions": {"checked_at"}}
ENTITY_LIST_CLOCK = {"synced_at"}
"""When a sync copied an entity list's row (`entities__<list>`), not what the row holds."""
SET_OR_NOT_COLUMNS = {"submissions": {"purged_at"}}

Snapshot = dict[str, list[tuple[Any, ...]]]


def plain(value: Any) -> Any:
    """A value as both databases give it back: timestamps aware and in UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _sort_key(row: tuple[Any, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((v is None, "" if v is None else f"{type(v).__name__}:{v}") for v in row)


def snapshot(engine: Engine) -> Snapshot:
    """Table name → its rows sorted, columns in name order (so a column added later compares equal)."""
    metadata = MetaData()
    metadata.reflect(engine)
    result: Snapshot = {}
    with engine.connect() as conn:
        for name, table in sorted(metadata.tables.items()):
            if name in IGNORED_TABLES:
                continue
            clock = CLOCK_COLUMNS.get(name, ENTITY_LIST_CLOCK if name.startswith("entities__") else ())
            columns = sorted(c.name for c in table.columns if c.name not in clock)
            set_or_not = [c in SET_OR_NOT_COLUMNS.get(name, ()) for c in columns]
            rows = conn.execute(select(*(table.c[c] for c in columns)))
            result[name] = sorted(
                (tuple(v is not None if flag else plain(v) for v, flag in zip(row, set_or_not, strict=True))
                 for row in rows), key=_sort_key)
    return result
