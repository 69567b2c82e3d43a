"""Which reporting database, and an engine set up the way the loader relies on.

SQLite is the default (one file, nothing to run); PostgreSQL is production. On SQLite every
transaction starts with `BEGIN IMMEDIATE`: a sync reads (duplicate keys, existing rows)
before it writes, and a deferred transaction that another writer overtook in between fails
at once with SQLITE_BUSY instead of waiting, so parallel form syncs would fail at random.
"""

from __future__ import annotations

import operator
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, create_engine, event
from sqlalchemy.dialects.postgresql import Insert as PostgresqlInsert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.sql.expression import TableClause

ENV_VAR = "CONSULT_DATABASE_URL"
DEFAULT_URL = "sqlite:///reporting.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
WAL_CHECKPOINT_BYTES = 400 * 2**20
"""What the WAL takes before SQLite copies it into the file (`wal_autocheckpoint`, set in pages of
the file's size). SQLite's default, 1000 pages, checkpoints after nearly every page a sync
commits: a first sync of 100k submissions (page 1000) spent 10 of its 43 s committing; with
~400 MB between checkpoints, 4 s (bench/README)."""
PAGE_SIZE = 16384
"""The page size of a new SQLite warehouse (SQLite's default is 4096, which an existing file
keeps). A submission's row holds its raw OData JSON, ~2.5 kB: one fits a 4 KB page, six a 16 KB
one, so `submissions` takes a quarter less room (38 → 29 MB at 10k), and a first sync of 100k
commits in half the time (bench/README)."""
WAL_SIZE_LIMIT_BYTES = 64 * 2**20
"""What the WAL file shrinks back to once a checkpoint has emptied it."""


def database_url(explicit: str | None = None) -> str:
    """The URL given, else `$CONSULT_DATABASE_URL`, else `reporting.db` in the working directory."""
    return explicit or os.environ.get(ENV_VAR) or DEFAULT_URL


def safe_url(url: str | URL) -> str:
    """The URL as it may appear in logs and messages: the password masked."""
    return make_url(url).render_as_string(hide_password=True)


def _normalised(url: URL) -> URL:
    """`postgresql://` and `postgres://` mean psycopg 3, the driver the project installs."""
    if url.drivername in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    return url


def create_engine_for(url: str | URL, **engine_options: Any) -> Engine:
    """An engine for the reporting database: SQLite in WAL mode with foreign keys and a busy
    timeout, or PostgreSQL through psycopg 3."""
    parsed = _normalised(make_url(url))
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, **engine_options)
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise ValueError(f"{safe_url(parsed)}: the loader needs psycopg 3, use postgresql+psycopg://")
        # No server-side prepared statements: their generic plans test `instance_id IN (...500 ids)`
        # row by row on a table PostgreSQL has no statistics for yet, 10× slower on a first load.
        connect_args = {"prepare_threshold": None} | engine_options.pop("connect_args", {})
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args, **engine_options)
    raise ValueError(f"unsupported reporting database {safe_url(parsed)}: use sqlite:/// or postgresql://")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, see below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # a new file only: it is fixed by its first write
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        page_size = cursor.execute("PRAGMA page_size").fetchone()[0]
        cursor.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_BYTES // page_size}")
        cursor.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL. Two connections opening a new file at once both try to, and SQLite
    answers the loser "database is locked" at once instead of waiting out `busy_timeout`: retry it."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def upsert_into(conn: Connection, table: Table) -> PostgresqlInsert | SqliteInsert:
    """The dialect's INSERT: both have `on_conflict_do_update` and `on_conflict_do_nothing`."""
    if conn.dialect.name == "postgresql":
        return postgresql_insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite_insert(table)
    raise ValueError(f"unsupported reporting database dialect {conn.dialect.name!r}")


def refresh_statistics(conn: Connection, *tables: Table) -> None:
    """On PostgreSQL, ANALYZE tables this transaction has just filled, before a query joins them.

    The planner reads a table's size from its statistics, which autovacuum refreshes only after
    commits and a while: a table filled moments ago still counts as nearly empty, and the
    recheck's anti-join against it was planned as a nested loop that read every key of the rule
    once per pending submission (a 10k first sync's recheck took 10 s on it, 100k 255 s). ANALYZE
    samples at most 30,000 rows, and it sees this transaction's own inserts. For tables a sync
    fills and empties as it goes, `refresh_stale_statistics` ANALYZEs only when they are 2x off.
    SQLite's planner needs no statistics for these queries."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        _analyze(conn, table, ())


def refresh_stale_statistics(conn: Connection, table: TableClause, rows: int, columns: Sequence[str],
                             at_least: bool = False) -> bool:
    """On PostgreSQL, ANALYZE `columns` of a table when it holds `rows` (or, `at_least`, that many
    more than when the caller started) and its statistics are more than 2x off, by 1000 rows or
    more; True when it did.

    A sync fills tables and empties them faster than autovacuum refreshes their statistics (it
    does so only after commits, now and then), and the planner trusted statistics that said
    "empty" or "100k" of a table that held the opposite:
    - a page's lookup of its submissions in `submissions`, which the load is filling, read the
      form's whole slice through another index and compared every row with the page's ids, a
      cost that grew with every page (43 ms a page at 100k; `LoadTransaction` calls this as
      the table doubles, a handful of ANALYZEs of the columns queries select submissions by
      for a first load, `tables.SUBMISSION_SELECTORS`);
    - the suites' join of `suite_pending` with the tables took 4.6 s for 100k pending submissions
      (1.9 s on fresh statistics), and 1.9 s instead of 0.3 s for a few once the statistics
      still said 100k (`refresh_pending_statistics`)."""
    if conn.dialect.name != "postgresql":
        return False
    known = max(conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = %(name)s::regclass",
                                     {"name": table.name}).scalar_one(), 0)
    grown = rows >= 2 * known and rows - known >= 1000
    shrunk = not at_least and known >= 2 * rows and known - rows >= 1000
    if not (grown or shrunk):
        return False
    _analyze(conn, table, columns)
    return True


def _analyze(conn: Connection, table: TableClause, columns: Sequence[str]) -> None:
    """ANALYZE the table (only `columns`, when given)."""
    quote = conn.dialect.identifier_preparer
    named = f" ({', '.join(quote.quote(c) for c in columns)})" if columns else ""
    conn.exec_driver_sql(f"ANALYZE {quote.format_table(table)}{named}")


def bulk_insert(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows that all have the same keys, in the caller's transaction, below SQLAlchemy's
    statement layer: COPY on PostgreSQL (several times faster than psycopg's executemany), the
    driver's executemany on SQLite (a quarter faster than going through `conn.execute`).
    Rows go in key order (the primary key, or a child table's unique key): instance ids are
    random UUIDs, and sorted they touch each index page once per batch instead of at random."""
    if not rows:
        return
    columns = list(rows[0])
    key = [c.name for c in table.primary_key.columns] or next(
        ([c.name for c in index.columns] for index in table.indexes if index.unique), [])
    if key and set(key) <= set(columns):
        rows = sorted(rows, key=operator.itemgetter(*key))
    processors = [(i, process) for i, name in enumerate(columns)
                  if (process := table.c[name].type.bind_processor(conn.dialect)) is not None]
    pick = operator.itemgetter(*columns)

    def values(row: Mapping[str, Any]) -> tuple[Any, ...]:
        picked = pick(row) if len(columns) > 1 else (pick(row),)
        if not processors:
            return picked
        out = list(picked)
        for i, process in processors:
            out[i] = process(out[i])
        return tuple(out)

    quote = conn.dialect.identifier_preparer
    target = f"{quote.format_table(table)} ({', '.join(quote.quote(name) for name in columns)})"
    if conn.dialect.name == "postgresql":
        with conn.connection.driver_connection.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(values(row))
        return
    placeholders = ", ".join("?" * len(columns))
    conn.exec_driver_sql(f"INSERT INTO {target} VALUES ({placeholders})", [values(row) for row in rows])
