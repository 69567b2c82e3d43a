"""Queries whose cost must not grow with the sandbox's size: the worker's queue (a turn reads its
batch through an index, whatever the number of audits, so a bulk load is never starved of the
write lock) and OData paging (a page after a skiptoken seeks the index, whatever its depth)."""

from __future__ import annotations

from pathlib import Path

from consult.sandbox import feed, worker
from consult.sandbox.store import Store


def _plan(store: Store, sql: str, args: tuple) -> str:
    return " | ".join(row[3] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))


def test_the_worker_finds_its_pending_events_through_the_partial_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "sandbox.sqlite3")
    try:
        plan = _plan(store, worker.PENDING_EVENTS, (*worker.JOBS, worker.BATCH))
    finally:
        store.close()
    assert "SCAN a USING INDEX audits_unprocessed" in plan, plan


def test_only_unprocessed_events_are_in_the_index_and_the_oldest_come_first(tmp_path: Path) -> None:
    store = Store(tmp_path / "sandbox.sqlite3")
    try:
        store.conn.execute("PRAGMA foreign_keys = OFF")  # a form row alone, without its project
        store.conn.execute("INSERT INTO forms (id, project_id, xml_form_id, actee_id, created_by, created_at) "
                           "VALUES (1, 1, 'f', 'form-actee', 1, '2026-01-01')")
        store.conn.executemany(
            "INSERT INTO audits (id, action, actee_id, details_json, logged_at, processed_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(i, "submission.create", "form-actee", "{}", "2026-01-01", "2026-01-01" if i % 3 else None)
             for i in range(1, 31)])
        pending = [row[0] for row in store.conn.execute(worker.PENDING_EVENTS, (*worker.JOBS, 4))]
        indexed = store.conn.execute("SELECT count(*) FROM audits INDEXED BY audits_unprocessed "
                                     "WHERE processed_at IS NULL").fetchone()[0]
    finally:
        store.close()
    assert pending == [3, 6, 9, 12]
    assert indexed == 10


def test_a_page_after_a_skiptoken_seeks_the_paging_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "sandbox.sqlite3")
    try:
        roots = _plan(store, f"{feed.ROOT_SELECT}WHERE s.form_id = ? {feed.AFTER_ROOT} {feed.DEFAULT_ORDER} LIMIT 10",
                      (1, "2026-01-01", 7))
        repeats = _plan(store, f"SELECT r.row_json FROM {feed.REPEAT_FROM} WHERE s.form_id = ? AND r.table_name = ?"
                               f"{feed.AFTER_REPEAT_ROW} ORDER BY s.created_at DESC, s.id DESC, r.position LIMIT 10",
                        (1, "members", "2026-01-01", "2026-01-01", 7, 7, 2))
    finally:
        store.close()
    assert "submissions_paging (form_id=? AND created_at<?)" in roots, roots
    assert "submissions_paging (form_id=? AND created_at<?)" in repeats, repeats
