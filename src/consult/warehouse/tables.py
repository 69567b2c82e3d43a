"""The reporting database's tables: the system tables and one table per FormLayout table.

Forms only ever grow a column when a new version adds a field: `ensure_schema` creates
what is missing and adds columns, never drops or retypes anything, so old submissions keep
their rows (NULL in the new columns) and an analyst's query written last month still runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    inspect,
    text,
)
from sqlalchemy import (
    Column as SqlColumn,
)
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.schema import CreateColumn
from sqlalchemy.types import TypeDecorator, TypeEngine

from consult.forms.schema import DataType
from consult.warehouse.records import (
    INSTANCE,
    PARENT,
    POSITION,
    ROW,
    VALUE,
    FormLayout,
    TableKind,
    TableLayout,
    table_name,
)

VALID = "valid"
QUARANTINED = "quarantined"
SCHEMA_LOCK_KEY = 7_303_116_101_114  # any constant: serialises ensure_schema across PostgreSQL sessions


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and read back timezone-aware on both databases.

    SQLite's DATETIME drops the offset, so `09:12+07:00` would come back as `09:12`: values
    are converted to UTC on the way in (a naive value is taken as UTC already)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


SQL_TYPES: dict[DataType, type[TypeEngine[Any]]] = {
    DataType.INTEGER: BigInteger,
    DataType.DECIMAL: Float,
    DataType.DATE: Date,
    DataType.DATETIME: UtcDateTime,
    DataType.STRING: Text,
}

system = MetaData()

submissions = Table(
    "submissions", system,
    SqlColumn("project_id", Integer, nullable=False),
    SqlColumn("form_id", Text, nullable=False),
    SqlColumn("instance_id", Text, nullable=False),
    SqlColumn("form_version", Text),
    SqlColumn("current_version_id", Text),
    SqlColumn("instance_name", Text),
    SqlColumn("submitter_id", Text),
    SqlColumn("submitter_name", Text),
    SqlColumn("device_id", Text),
    SqlColumn("submission_date", UtcDateTime),
    SqlColumn("updated_at", UtcDateTime),
    SqlColumn("deleted_at", UtcDateTime),
    SqlColumn("purged_at", UtcDateTime),
    SqlColumn("review_state", Text),
    SqlColumn("edits", Integer, nullable=False, default=0),
    SqlColumn("attachments_present", Integer),
    SqlColumn("attachments_expected", Integer),
    SqlColumn("validation_status", Text, nullable=False),
    SqlColumn("raw_json", Text, nullable=False),
    SqlColumn("loaded_at", UtcDateTime, nullable=False),
    # instance_id leads the key: pages look submissions up by id lists (on PostgreSQL, on
    # statistics the load keeps current: `database.refresh_stale_statistics`) and reports join
    # form tables on it.
    PrimaryKeyConstraint("instance_id", "project_id", "form_id"),
    # loaded_at is in load order, so this index grows at its end; it counts a form's submissions
    # on the index alone and finds what one sync loaded (`verdicts.verdicts_of`).
    Index("ix_submissions_loaded", "project_id", "form_id", "loaded_at"),
    CheckConstraint(f"validation_status IN ('{VALID}', '{QUARANTINED}')",
                    name="ck_submissions_validation_status"),
)
SUBMISSION_SELECTORS = ("instance_id", "project_id", "form_id", "deleted_at", "purged_at", "loaded_at",
                        "validation_status")
"""The columns a sync's queries pick `submissions` rows by: the ones whose statistics a load keeps
current on PostgreSQL (`consult.sync.LoadTransaction`). Without them the planner guesses a filter
(`deleted_at IS NULL`) at 0.5 % of the rows: two of them made 100k live submissions 3, and the
duplicate recheck read `submissions` whole once per pending submission (268 s at 100k)."""

validation_failures = Table(
    "validation_failures", system,
    SqlColumn("project_id", Integer, nullable=False),
    SqlColumn("form_id", Text, nullable=False),
    SqlColumn("instance_id", Text, nullable=False),
    SqlColumn("rule", Text, nullable=False),
    SqlColumn("column", Text),
    SqlColumn("row_id", Text),
    SqlColumn("value", Text),
    SqlColumn("message_vi", Text, nullable=False),
    SqlColumn("message_en", Text, nullable=False),
    Index("ix_validation_failures_submission", "instance_id", "project_id", "form_id"),
)

watermarks = Table(
    "watermarks", system,
    SqlColumn("project_id", Integer, primary_key=True),
    SqlColumn("form_id", Text, primary_key=True),
    SqlColumn("last_change", UtcDateTime),
    SqlColumn("etag", Text),
    SqlColumn("etag_since", UtcDateTime),
    SqlColumn("updated_at", UtcDateTime, nullable=False),
)

sync_runs = Table(
    "sync_runs", system,
    SqlColumn("id", Integer, primary_key=True, autoincrement=True),
    SqlColumn("started_at", UtcDateTime, nullable=False),
    SqlColumn("finished_at", UtcDateTime),
    SqlColumn("status", Text, nullable=False),
    SqlColumn("summary", Text),
    SqlColumn("error", Text),
)

write_backs = Table(
    "write_backs", system,
    SqlColumn("project_id", Integer, primary_key=True),
    SqlColumn("form_id", Text, primary_key=True),
    SqlColumn("instance_id", Text, primary_key=True),
    SqlColumn("failures_hash", Text, primary_key=True),
    SqlColumn("review_state", Text, nullable=False),
    SqlColumn("written_at", UtcDateTime, nullable=False),
)

sync_locks = Table(
    "sync_locks", system,
    SqlColumn("project_id", Integer, primary_key=True),
    SqlColumn("form_id", Text, primary_key=True),
    SqlColumn("host", Text, nullable=False),
    SqlColumn("pid", Integer, nullable=False),
    SqlColumn("acquired_at", UtcDateTime, nullable=False),
)

duplicate_keys = Table(
    "duplicate_keys", system,
    SqlColumn("project_id", Integer, primary_key=True),
    SqlColumn("form_id", Text, primary_key=True),
    SqlColumn("rule", Text, primary_key=True),
    SqlColumn("instance_id", Text, primary_key=True),
    SqlColumn("key_hash", Text),
    SqlColumn("key", Text),
    SqlColumn("submission_date", UtcDateTime),
    Index("ix_duplicate_keys_hash", "project_id", "form_id", "rule", "key_hash"),
)
"""The normalised duplicate key each submission was last judged with (`load.recheck_duplicates`;
NULL when it has none or is deleted or purged): a recheck re-reads only the submissions sharing
a key with those that changed."""

duplicate_pending = Table(
    "duplicate_pending", system,
    SqlColumn("project_id", Integer, primary_key=True),
    SqlColumn("form_id", Text, primary_key=True),
    SqlColumn("instance_id", Text, primary_key=True),
)
"""Submissions loaded, deleted or purged since the last duplicate recheck, committed with them."""

suite_pending = Table(
    "suite_pending", system,
    SqlColumn("project_id", Integer, primary_key=True),
    SqlColumn("form_id", Text, primary_key=True),
    SqlColumn("instance_id", Text, primary_key=True),
)
"""Submissions loaded since the expectation suites last judged them (`load.record_judgement`):
loaded with their page, their status is the page rules' verdict until then."""

SYSTEM_TABLES: tuple[Table, ...] = (submissions, validation_failures, watermarks, sync_runs, write_backs, sync_locks,
                                    duplicate_keys, duplicate_pending, suite_pending)

RESERVED_TABLES = frozenset({t.name for t in SYSTEM_TABLES}
                            | {"attachments", "entity_versions", "entity_submissions"})
"""The system tables and those other steps keep in the same database (`consult.attachments`,
`warehouse.entities`): no form table may take their names."""
RESERVED_PREFIXES = ("entities__",)
"""Entity list tables are `entities__<list>`: a form whose id is `entities` would write into them."""


def reserved_for(name: str) -> bool:
    """True when a form table of this name would meet a table another step owns."""
    return name in RESERVED_TABLES or name.startswith(RESERVED_PREFIXES)


def _key_columns(layout: TableLayout) -> list[SqlColumn[Any]]:
    """`_row_id` is Central's repeat `__id`; for choices of a top-level select_multiple it is ''."""
    types: dict[str, TypeEngine[Any]] = {INSTANCE: Text(), ROW: Text(), PARENT: Text(), POSITION: Integer(),
                                         VALUE: Text()}
    return [SqlColumn(name, types[name], nullable=name == PARENT) for name in layout.key_columns]


def _row_key(layout: TableLayout) -> tuple[str, ...]:
    """The columns that tell a table's rows apart: the form table's primary key, a child table's unique index."""
    if layout.kind is TableKind.FORM:
        return (INSTANCE,)
    if layout.kind is TableKind.REPEAT:
        return (INSTANCE, ROW)
    return (INSTANCE, ROW, VALUE)


def key_index_name(table: str) -> str:
    return table_name(table, "key")


def _form_table(metadata: MetaData, layout: TableLayout, form_table: str) -> Table:
    """Every child row belongs to its submission's form row: deleting that row deletes them,
    including rows of a repeat table a later form version no longer has.

    A child table's key is a unique index rather than its primary key, so that a form's first
    load can build it once, from sorted keys, after the rows are in (`defer_child_keys`):
    instance ids are random UUIDs, and an index kept up to date row by row is written at random
    (databases made before this keep their primary key, which serves the same)."""
    key = _row_key(layout)
    constraints = [PrimaryKeyConstraint(*key)] if layout.kind is TableKind.FORM else [
        ForeignKeyConstraint([INSTANCE], [f"{form_table}.{INSTANCE}"], ondelete="CASCADE"),
        Index(key_index_name(layout.name), *key, unique=True)]
    return Table(
        layout.name, metadata,
        *_key_columns(layout),
        *(SqlColumn(c.name, SQL_TYPES.get(c.data_type, Text)()) for c in layout.columns),
        *constraints,
    )


@lru_cache(maxsize=128)
def form_tables(layout: FormLayout) -> dict[str, Table]:
    """Table key (`""`, repeat or select_multiple name) → its Table, with this layout's columns."""
    metadata = MetaData()
    form_table = layout.table("").name
    return {t.key: _form_table(metadata, t, form_table) for t in layout.tables}


def merge_layouts(layouts: Iterable[FormLayout]) -> list[FormLayout]:
    """One layout per form holding every table and column of every version given, in first-seen order."""
    merged: dict[str, dict[str, TableLayout]] = {}
    for layout in layouts:
        tables = merged.setdefault(layout.form_id, {})
        for table in layout.tables:
            known = tables.get(table.key)
            tables[table.key] = table if known is None else _merge_table(known, table)
    return [FormLayout(form_id, tuple(tables.values())) for form_id, tables in merged.items()]


def _merge_table(known: TableLayout, newer: TableLayout) -> TableLayout:
    columns = {c.name: c for c in known.columns}
    for column in newer.columns:
        if column.name in columns and columns[column.name].data_type is not column.data_type:
            raise SchemaConflict(f"{known.name}.{column.name} is {columns[column.name].data_type} in one "
                                 f"version and {column.data_type} in another: give the new field a new name")
        columns.setdefault(column.name, column)
    return replace(known, columns=tuple(columns.values()))


class SchemaConflict(ValueError):
    """The database cannot hold the layout without dropping or retyping something."""


@dataclass
class SchemaChanges:
    created_tables: list[str] = field(default_factory=list)
    added_columns: list[str] = field(default_factory=list)
    """`table.column` for each column a new form version added."""
    created_indexes: list[str] = field(default_factory=list)
    """Indexes of existing tables that a newer consult declares."""


def ensure_schema(engine: Engine, layouts: Iterable[FormLayout]) -> SchemaChanges:
    """Create missing tables and add missing columns; idempotent, safe to call at every sync."""
    wanted = list(SYSTEM_TABLES)
    for layout in merge_layouts(layouts):
        for table in form_tables(layout).values():
            if reserved_for(table.name):
                raise SchemaConflict(f"form {layout.form_id!r} would reuse the system table {table.name!r}: "
                                     "give the form another form_id in its settings sheet")
            wanted.append(table)
    changes = SchemaChanges()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        inspector = inspect(conn)
        existing = set(inspector.get_table_names())
        for table in wanted:
            if table.name not in existing:
                table.create(conn)
                changes.created_tables.append(table.name)
                continue
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present:
                    _add_column(conn, table, column)
                    changes.added_columns.append(f"{table.name}.{column.name}")
            indexed = {i["name"] for i in inspector.get_indexes(table.name)}
            for index in table.indexes:
                if index.name not in indexed and not _primary_key_serves(inspector, table, index):
                    index.create(conn)
                    changes.created_indexes.append(index.name)
    return changes


def _primary_key_serves(inspector: Any, table: Table, index: Index) -> bool:
    """A child table made before its key became a unique index keeps the primary key on the same columns."""
    if not index.unique:
        return False
    return inspector.get_pk_constraint(table.name)["constrained_columns"] == [c.name for c in index.columns]


def defer_child_keys(engine: Engine, layout: FormLayout) -> list[str]:
    """Before a form's first load (its form table holds no row yet), drop its child tables' key
    indexes, and return their names for `ensure_schema` to build once the rows are in: loading
    and committing take ~0.8x the time at 100k and ~0.7x at 300k, the gain growing with the rows
    (bench/README). A run that dies first leaves them missing, and the next sync (every command
    that calls `ensure_schema`) builds them. Otherwise, and on a database whose child tables kept
    a primary key, nothing is dropped."""
    tables = form_tables(layout)
    form_table = tables[""]
    children = [t for key, t in tables.items() if key]
    if not children:
        return []
    dropped: list[str] = []
    with engine.begin() as conn:
        if conn.execute(form_table.select().with_only_columns(form_table.c[INSTANCE]).limit(1)).first():
            return []
        inspector = inspect(conn)
        for table in children:
            indexed = {i["name"] for i in inspector.get_indexes(table.name)}
            for index in table.indexes:
                if index.unique and index.name in indexed:
                    index.drop(conn)
                    dropped.append(str(index.name))
    return dropped


def _add_column(conn: Connection, table: Table, column: SqlColumn[Any]) -> None:
    if column.primary_key or not column.nullable:
        raise SchemaConflict(f"{table.name} lacks the key column {column.name!r}: "
                             "it was made by another program")
    preparer = conn.dialect.identifier_preparer
    spec = CreateColumn(column).compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {spec}")
