"""Watermarks, sync runs and write-backs: what the syncs remember between runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.engine import Engine

from consult.forms.schema import FormSchema
from consult.warehouse.load import (
    Watermark,
    advance_watermark,
    failures_hash,
    read_watermark,
    record_run_finish,
    record_run_start,
    record_write_back,
    written_back,
)
from consult.warehouse.tables import ensure_schema, sync_runs

from .helpers import PROJECT, failure, load_rows
from .odata_rows import instance_id, odata_row

FORM = "province_consultation"
T0 = datetime(2026, 11, 28, 18, 41, 28, 838000, tzinfo=UTC)


def test_the_watermark_never_moves_backwards(engine: Engine) -> None:
    ensure_schema(engine, [])
    with engine.begin() as conn:
        assert read_watermark(conn, PROJECT, FORM) is None
        advance_watermark(conn, PROJECT, FORM, None, None)
        assert read_watermark(conn, PROJECT, FORM) == Watermark(PROJECT, FORM, None, None)
        advance_watermark(conn, PROJECT, FORM, T0, 'W/"a"')
        advance_watermark(conn, PROJECT, FORM, T0 - timedelta(milliseconds=1), 'W/"stale"')
        assert read_watermark(conn, PROJECT, FORM) == Watermark(PROJECT, FORM, T0, 'W/"a"')
        advance_watermark(conn, PROJECT, FORM, None, 'W/"b"')
        assert read_watermark(conn, PROJECT, FORM) == Watermark(PROJECT, FORM, T0, 'W/"b"')
        advance_watermark(conn, PROJECT, FORM, T0 + timedelta(milliseconds=1), None)
        assert read_watermark(conn, PROJECT, FORM) == Watermark(PROJECT, FORM, T0 + timedelta(milliseconds=1),
                                                                'W/"b"')
        assert read_watermark(conn, PROJECT + 1, FORM) is None


def test_a_watermark_in_another_timezone_compares_by_instant(engine: Engine) -> None:
    ensure_schema(engine, [])
    vietnam = T0.astimezone(timezone(timedelta(hours=7)))
    with engine.begin() as conn:
        advance_watermark(conn, PROJECT, FORM, vietnam, None)
        advance_watermark(conn, PROJECT, FORM, T0 - timedelta(seconds=1), None)
        assert read_watermark(conn, PROJECT, FORM).last_change == T0  # type: ignore[union-attr]


def test_runs_are_recorded_from_start_to_finish(engine: Engine) -> None:
    ensure_schema(engine, [])
    with engine.begin() as conn:
        first, second = record_run_start(conn), record_run_start(conn)
        record_run_finish(conn, first, "completed", {"forms": [FORM], "new": 3, "tỉnh": "An Giang"})
        rows = {r.id: r for r in conn.execute(select(sync_runs))}
    assert second > first
    assert rows[first].status == "completed" and rows[first].finished_at >= rows[first].started_at
    assert json.loads(rows[first].summary)["tỉnh"] == "An Giang"
    assert rows[second].status == "running" and rows[second].finished_at is None


def test_failures_are_written_back_once(engine: Engine, province: FormSchema) -> None:
    iid = instance_id(1)
    failures = [failure(province, iid), failure(province, iid, rule="required", column="phone", value=None)]
    load_rows(engine, province, [odata_row(province, 1), odata_row(province, 2)], failures=failures)
    with engine.begin() as conn:
        assert written_back(conn, PROJECT, FORM, instance_id(2)) is None  # nothing to write back
        pending = written_back(conn, PROJECT, FORM, iid)
        assert pending is not None and {f.rule for f in pending} == {"range", "required"}
        assert [f.value for f in pending if f.rule == "range"] == ["750"]
        record_write_back(conn, PROJECT, FORM, iid, failures_hash(pending), "hasIssues")
        record_write_back(conn, PROJECT, FORM, iid, failures_hash(pending), "hasIssues")
        assert written_back(conn, PROJECT, FORM, iid) is None
    load_rows(engine, province, [odata_row(province, 1)], failures=[failure(province, iid, value=900)])
    with engine.begin() as conn:
        again = written_back(conn, PROJECT, FORM, iid)
    assert again is not None and [f.value for f in again] == ["900"]
