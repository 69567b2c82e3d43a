"""A first sync on PostgreSQL plans on statistics of the rows it is loading: its page lookups probe
`submissions`' key, and neither its recheck's reading of the pending submissions nor its anti-join
over the keys it has just written is a nested loop that reads a whole table once per submission."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Column, MetaData, Table, Text, create_engine, insert, text
from sqlalchemy.engine import Connection

from consult.sync import LoadTransaction
from consult.warehouse.database import refresh_stale_statistics, refresh_statistics
from consult.warehouse.load import _key_the_unkeyed, _RuleScope, interviews_query, refresh_pending_statistics
from consult.warehouse.tables import (
    SUBMISSION_SELECTORS,
    duplicate_keys,
    duplicate_pending,
    ensure_schema,
    submissions,
    suite_pending,
    validation_failures,
)

PENDING = 20_000
FORM = "province_consultation"
SUBMISSION_KEY = submissions.primary_key.columns.keys()


def _fill(conn: Connection) -> _RuleScope:
    """A first sync's state just before the anti-join: every submission pending, all keyed but one."""
    scope = _RuleScope(1, FORM, "duplicate_interview")
    ids = [f"uuid:{n:08d}" for n in range(PENDING)]
    conn.execute(insert(duplicate_pending), [{"project_id": 1, "form_id": scope.form_id, "instance_id": i}
                                             for i in ids])
    conn.execute(insert(duplicate_keys), [{"project_id": 1, "form_id": scope.form_id, "rule": scope.rule,
                                           "instance_id": i, "key_hash": "h", "key": "[]"} for i in ids[1:]])
    return scope


def _plan(conn: Connection, scope: _RuleScope) -> dict:
    statement = _key_the_unkeyed(scope).compile(conn, compile_kwargs={"literal_binds": True})
    return json.loads(json.dumps(conn.execute(text(f"EXPLAIN (FORMAT JSON) {statement}")).scalar_one()))[0]["Plan"]


def _loops_over_the_keys(node: dict) -> bool:
    """A nested loop that matches instance ids in a join filter: its inner side reads every key of the
    rule once per pending submission (the plan on stale statistics, whatever index it walks)."""
    if node.get("Node Type") == "Nested Loop" and "instance_id" in node.get("Join Filter", ""):
        return True
    return any(_loops_over_the_keys(child) for child in node.get("Plans", []))


def test_the_recheck_plans_its_anti_join_on_statistics_of_the_rows_it_just_wrote(postgres_db_url: str) -> None:
    engine = create_engine(postgres_db_url)
    ensure_schema(engine, [])
    try:
        with engine.begin() as conn:
            scope = _fill(conn)
            stale = _plan(conn, scope)
            refresh_statistics(conn, duplicate_keys, duplicate_pending, validation_failures)
            fresh = _plan(conn, scope)
            conn.execute(_key_the_unkeyed(scope))
            keyed = conn.execute(text("SELECT count(*) FROM duplicate_keys")).scalar_one()
            conn.rollback()
        assert _loops_over_the_keys(stale), stale  # what the planner does without: the reason for the call
        assert not _loops_over_the_keys(fresh), fresh
        assert keyed == PENDING
    finally:
        engine.dispose()


def test_refreshing_statistics_is_nothing_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'reporting.db'}")
    ensure_schema(engine, [])
    with engine.begin() as conn:
        refresh_statistics(conn, duplicate_keys)
        assert conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").scalar() == 0
    engine.dispose()


def _submission_rows(count: int) -> list[dict]:
    """Submissions as a load writes them: a submission's JSON is a few kB, so the table is pages,
    not a few rows."""
    now = datetime.now(UTC)
    return [{"project_id": 1, "form_id": FORM, "instance_id": f"uuid:{n:08d}", "edits": 0,
             "validation_status": "valid", "raw_json": "{" + " " * 1500 + "}", "loaded_at": now}
            for n in range(count)]


def _lookup_plan(conn: Connection) -> str:
    ids = ", ".join(f"'uuid:{n:08d}'" for n in range(0, 1000, 2))
    return "\n".join(conn.execute(text(
        "EXPLAIN SELECT instance_id, raw_json FROM submissions WHERE project_id = 1 AND "
        f"form_id = '{FORM}' AND instance_id IN ({ids})")).scalars())


def test_a_load_keeps_submissions_statistics_within_twice_the_rows(postgres_db_url: str) -> None:
    """Statistics from before a first load say `submissions` is empty, and a page's lookup by ids then
    reads the form's whole slice through `ix_submissions_loaded`; once refreshed it probes the key."""
    engine = create_engine(postgres_db_url)
    ensure_schema(engine, [])
    rows = _submission_rows(5000)
    try:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE submissions"))  # empty, as before a first load
        with engine.begin() as conn:
            conn.execute(insert(submissions), rows)
        with engine.begin() as conn:
            stale = _lookup_plan(conn)
            assert not refresh_stale_statistics(conn, submissions, 999, SUBMISSION_SELECTORS, at_least=True)  # too few to matter
            assert refresh_stale_statistics(conn, submissions, 5000, SUBMISSION_SELECTORS, at_least=True)
            fresh = _lookup_plan(conn)
            assert not refresh_stale_statistics(conn, submissions, 9_000, SUBMISSION_SELECTORS, at_least=True)  # within 2x
            assert refresh_stale_statistics(conn, submissions, 10_000, SUBMISSION_SELECTORS, at_least=True)  # twice what it knows
            assert not refresh_stale_statistics(conn, submissions, 10, SUBMISSION_SELECTORS, at_least=True)  # a lower bound
        assert "ix_submissions_loaded" in stale and "Filter" in stale, stale[:300]
        assert "submissions_pkey" in fresh, fresh[:300]
    finally:
        engine.dispose()


def _reltuples(conn: Connection, table: str) -> float:
    return conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}).scalar_one()


def test_the_suites_see_suite_pending_as_it_is_filled_and_as_it_is_emptied(postgres_db_url: str) -> None:
    """A first sync fills `suite_pending` and its judgement empties it: each time, the statistics
    that planned the suites' join follow (the next pass's few rows were joined as if 100k)."""
    engine = create_engine(postgres_db_url)
    ensure_schema(engine, [])
    try:
        with engine.begin() as conn:
            conn.execute(insert(suite_pending), [{"project_id": 1, "form_id": "f", "instance_id": f"uuid:{n}"}
                                                 for n in range(PENDING)])
            refresh_pending_statistics(conn)
            filled = _reltuples(conn, "suite_pending")
            conn.execute(text("DELETE FROM suite_pending WHERE instance_id <> 'uuid:1'"))
            refresh_pending_statistics(conn)
            emptied = _reltuples(conn, "suite_pending")
            refresh_pending_statistics(conn)
            assert _reltuples(conn, "suite_pending") == emptied
        assert filled == PENDING
        assert emptied <= 1
    finally:
        engine.dispose()


def _pending_read_plan(conn: Connection, form: Table) -> dict:
    """The plan of the cursor the recheck reads a first sync's pending submissions through."""
    query = interviews_query(form, 1, FORM, ["answer"], pending=True)
    statement = query.compile(conn, compile_kwargs={"literal_binds": True})
    plan = conn.execute(text(f"EXPLAIN (FORMAT JSON) DECLARE pending_read CURSOR FOR {statement}")).scalar_one()
    return json.loads(json.dumps(plan))[0]["Plan"]


def test_the_recheck_reads_the_pending_submissions_on_statistics_of_the_columns_that_select_them(
        postgres_db_url: str) -> None:
    """With statistics of `submissions`' key alone, `deleted_at IS NULL AND purged_at IS NULL` was
    guessed at 0.0025 % of the rows, 100k live submissions at 3, and the cursor compared each pending
    submission with every one of them (268 s at 100k, when autovacuum had not analyzed the table)."""
    engine = create_engine(postgres_db_url)
    ensure_schema(engine, [])
    form = Table(FORM, MetaData(), Column("_instance_id", Text, primary_key=True), Column("answer", Text))
    form.create(engine)
    try:
        with engine.begin() as conn:
            rows = _submission_rows(PENDING)
            conn.execute(insert(submissions), rows)
            conn.execute(insert(form), [{"_instance_id": r["instance_id"], "answer": "x"} for r in rows])
            conn.execute(insert(duplicate_pending), [{"project_id": 1, "form_id": FORM, "instance_id": r["instance_id"]}
                                                     for r in rows])
            conn.execute(text(f"ANALYZE {FORM}"))
            conn.execute(text("ANALYZE duplicate_pending"))
            conn.execute(text(f"ANALYZE submissions ({', '.join(SUBMISSION_KEY)})"))  # the key alone, as before
            stale = _pending_read_plan(conn, form)
            assert refresh_stale_statistics(conn, submissions, 2 * PENDING, SUBMISSION_SELECTORS)  # as the load does
            fresh = _pending_read_plan(conn, form)
            conn.rollback()
        assert _loops_over_the_keys(stale), stale  # what the planner does without: the reason for the columns
        assert not _loops_over_the_keys(fresh), fresh
    finally:
        engine.dispose()


def test_a_load_keeps_statistics_of_every_column_that_selects_submissions(postgres_db_url: str) -> None:
    engine = create_engine(postgres_db_url)
    ensure_schema(engine, [])
    try:
        with LoadTransaction(engine, pages=1) as transaction:
            transaction.connection().execute(insert(submissions), _submission_rows(5000))
            transaction.loaded(5000)  # commits: the next page's transaction refreshes the statistics
            analyzed = set(transaction.connection().execute(text(
                "SELECT attname FROM pg_stats WHERE tablename = 'submissions'")).scalars())
        assert analyzed == set(SUBMISSION_SELECTORS)
    finally:
        engine.dispose()
