"""Loading pages: idempotent upserts, edits, failures, deletions and all-or-nothing pages.

The form-wide duplicate recheck and what it reads and writes: test_duplicates.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.engine import Engine, Row

from consult.forms.schema import FormSchema
from consult.warehouse.load import (
    advance_watermark,
    awaiting_suites,
    load_page,
    mark_deleted,
    mark_purged,
    read_watermark,
    record_judgement,
    snapshot,
)
from consult.warehouse.records import FormLayout, RecordBuilder
from consult.warehouse.tables import form_tables, submissions, validation_failures
from consult.warehouse.verdicts import Verdicts, loaded_count, verdicts_of

from .helpers import PROJECT, failure, load_rows
from .odata_rows import instance_id, odata_row

FORM = "province_consultation"


def _count(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _submission(engine: Engine, index: int) -> Row[Any]:
    with engine.connect() as conn:
        return conn.execute(select(submissions).where(submissions.c.instance_id == instance_id(index))).one()


def test_loading_a_page_twice_leaves_the_same_rows_counted_as_updated(engine: Engine,
                                                                      province: FormSchema) -> None:
    page = [odata_row(province, i, entries=i % 3) for i in range(1, 7)]
    first = load_rows(engine, province, page, failures=[failure(province, instance_id(2))])
    once = snapshot(engine)
    again = load_rows(engine, province, page, failures=[failure(province, instance_id(2))])
    assert (first.new, first.updated, first.unchanged) == (6, 0, 0)
    assert (again.new, again.updated, again.unchanged) == (0, 6, 6)
    assert snapshot(engine) == once
    tables = form_tables(FormLayout.of(province))
    assert len(once["province_consultation__members"]) == sum(i % 3 for i in range(1, 7))
    assert len(once["province_consultation__priority_topics"]) == 12
    assert _count(engine, tables[""]) == 6
    assert _submission(engine, 2).validation_status == "quarantined"
    assert _submission(engine, 3).validation_status == "valid"


def test_a_row_stored_as_an_earlier_sync_wrote_its_json_is_not_an_update(engine: Engine,
                                                                         province: FormSchema) -> None:
    """The raw JSON was written by the standard library (spaces after separators) before orjson: the
    same row read again is unchanged, and only a different value is a change."""
    page = [odata_row(province, i) for i in range(1, 4)]
    load_rows(engine, province, page)
    with engine.begin() as conn:
        for row in page:
            conn.execute(submissions.update().where(submissions.c.instance_id == row["__id"]).values(
                raw_json=json.dumps(row, ensure_ascii=False, sort_keys=True)))
    edited = [*page[:2], {**page[2], "staff_days": 999}]
    again = load_rows(engine, province, edited)
    assert (again.updated, again.unchanged, again.changed) == (3, 2, frozenset({instance_id(3)}))


def test_an_edit_replaces_the_repeat_rows(engine: Engine, province: FormSchema) -> None:
    load_rows(engine, province, [odata_row(province, 1, entries=3)])
    edited = odata_row(province, 1, entries=2, overrides={"phone": "+84 989063347"})
    edited["meta"]["instanceID"] = "uuid:edited-version"
    edited["__system"] |= {"edits": 1, "reviewState": "edited", "updatedAt": "2026-11-28T18:45:00.000Z"}
    counts = load_rows(engine, province, [edited])
    assert (counts.new, counts.updated, counts.unchanged) == (0, 1, 0)
    members = form_tables(FormLayout.of(province))["members"]
    with engine.connect() as conn:
        positions = conn.execute(select(members.c._position).order_by(members.c._position)).scalars().all()
    assert positions == [1, 2]
    stored = _submission(engine, 1)
    assert stored.edits == 1 and stored.review_state == "edited"
    assert stored.current_version_id == "uuid:edited-version"
    assert stored.updated_at == datetime(2026, 11, 28, 18, 45, tzinfo=UTC)


def test_failures_are_replaced_with_each_load(engine: Engine, province: FormSchema) -> None:
    row = odata_row(province, 1)
    failures = [failure(province, instance_id(1), value={"odd": [1]}),
                failure(province, instance_id(1), rule="required", value=None)]
    load_rows(engine, province, [row], failures=failures)
    with engine.connect() as conn:
        values = conn.execute(select(validation_failures.c.value)).scalars().all()
    assert set(values) == {'{"odd": [1]}', None}
    load_rows(engine, province, [row])
    assert _count(engine, validation_failures) == 0
    assert _submission(engine, 1).validation_status == "valid"


def test_failures_and_statuses_must_belong_to_the_page(engine: Engine, province: FormSchema) -> None:
    with pytest.raises(ValueError, match="outside this page"):
        load_rows(engine, province, [odata_row(province, 1)], failures=[failure(province, instance_id(2))])
    with pytest.raises(ValueError, match="not 'valid'"):
        load_rows(engine, province, [odata_row(province, 1)], statuses={instance_id(1): "ok"})
    assert _count(engine, submissions) == 0


def test_a_transaction_rolled_back_midway_leaves_nothing_half_loaded(engine: Engine,
                                                                     province: FormSchema) -> None:
    builder = RecordBuilder(province)
    load_rows(engine, province, [odata_row(province, 1, entries=3)])
    before = snapshot(engine)
    edited = odata_row(province, 1, entries=1, seed=99)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        load_page(conn, PROJECT, builder.build([edited, odata_row(province, 2)]), {},
                  [failure(province, instance_id(2))])
        advance_watermark(conn, PROJECT, FORM, datetime(2026, 11, 28, tzinfo=UTC), 'W/"x"')
        raise RuntimeError("killed between the page and the commit")
    assert snapshot(engine) == before
    with engine.connect() as conn:
        assert read_watermark(conn, PROJECT, FORM) is None


def test_deleted_submissions_are_marked_and_a_restore_clears_the_mark(engine: Engine,
                                                                      province: FormSchema) -> None:
    load_rows(engine, province, [odata_row(province, i) for i in (1, 2)])
    with engine.begin() as conn:
        rows = [(instance_id(1), "2026-11-28T18:50:00.123Z"), ("uuid:never-loaded", "2026-11-28T18:50:00Z")]
        assert mark_deleted(conn, PROJECT, FORM, rows) == 1
        assert mark_deleted(conn, PROJECT, FORM, rows) == 0
    assert _submission(engine, 1).deleted_at == datetime(2026, 11, 28, 18, 50, 0, 123000, tzinfo=UTC)
    assert _submission(engine, 2).deleted_at is None
    load_rows(engine, province, [odata_row(province, 1)])  # restored: Central lists it again
    assert _submission(engine, 1).deleted_at is None


def test_submissions_central_no_longer_has_are_marked_purged(engine: Engine, province: FormSchema) -> None:
    load_rows(engine, province, [odata_row(province, i) for i in (1, 2, 3)])
    with engine.begin() as conn:
        mark_deleted(conn, PROJECT, FORM, [(instance_id(3), datetime(2026, 11, 28, tzinfo=UTC))])
        assert mark_purged(conn, PROJECT, FORM, {instance_id(2)}) == 1
        assert mark_purged(conn, PROJECT, FORM, {instance_id(2)}) == 0
    assert _submission(engine, 1).purged_at is not None
    assert _submission(engine, 3).purged_at is None  # deleted, not purged
    with engine.begin() as conn:
        assert mark_purged(conn, PROJECT, FORM, {instance_id(1), instance_id(2)}) == 0
    assert _submission(engine, 1).purged_at is None


def test_big_pages_go_in_chunks(engine: Engine, province: FormSchema) -> None:
    page = [odata_row(province, i, entries=1) for i in range(1, 1203)]
    assert load_rows(engine, province, page).new == 1202
    assert load_rows(engine, province, page).updated == 1202
    assert _count(engine, form_tables(FormLayout.of(province))["members"]) == 1202


@pytest.mark.parametrize("share", [1, 2, 20])
def test_verdicts_count_what_was_loaded_since_a_moment(engine: Engine, province: FormSchema, share: int) -> None:
    """A sync's summary counts the submissions it loaded (all of them when it is the first, a few
    when it re-reads some), deleted ones left out of the statuses, and not the others."""
    page = [odata_row(province, i) for i in range(1, 41)]
    failures = [failure(province, instance_id(i)) for i in (2, 3, 5, 30)] + [
        failure(province, instance_id(3), rule="required", column="respondent_name", value=None)]
    load_rows(engine, province, page, failures=failures)
    since = datetime.now(UTC)
    asked = {instance_id(i) for i in range(1, 41, share)}
    load_rows(engine, province, [r for r in page if r["__id"] in asked],
              failures=[f for f in failures if f.instance_id in asked])
    with engine.begin() as conn:
        mark_deleted(conn, PROJECT, FORM, [(instance_id(5), "2004-10-01T00:00:00.000Z")])
        found = verdicts_of(conn, PROJECT, FORM, since)
        assert loaded_count(conn, PROJECT, FORM, since) == len(asked)
        assert verdicts_of(conn, PROJECT, FORM, datetime.now(UTC)) == Verdicts()
    quarantined = {instance_id(i) for i in (2, 3, 30)} & asked
    assert (found.valid, found.quarantined) == (len(asked - {instance_id(5)}) - len(quarantined), len(quarantined))
    failing = [i for i in (2, 3, 5, 30) if instance_id(i) in asked]
    expected = ({"range": len(failing)} if failing else {}) | ({"required": 1} if instance_id(3) in asked else {})
    assert found.failures_by_rule == expected


def test_the_suites_judgement_is_refused_for_a_submission_not_awaiting_it(engine: Engine,
                                                                          province: FormSchema) -> None:
    """A judgement names only submissions loaded since the last one; one naming another is a bug in
    the caller, and nothing of it is written."""
    load_rows(engine, province, [odata_row(province, i) for i in range(1, 4)])
    with engine.begin() as conn:
        record_judgement(conn, PROJECT, FORM, [failure(province, instance_id(2))])
    load_rows(engine, province, [odata_row(province, 4)])
    with pytest.raises(ValueError, match="not awaiting"), engine.begin() as conn:
        record_judgement(conn, PROJECT, FORM, [failure(province, instance_id(4)), failure(province, instance_id(1))])
    with engine.connect() as conn:
        assert awaiting_suites(conn, PROJECT, FORM)
        assert conn.execute(select(validation_failures.c.instance_id)).scalars().all() == [instance_id(2)]
    with engine.begin() as conn:
        record_judgement(conn, PROJECT, FORM, [failure(province, instance_id(4))])
    assert _submission(engine, 4).validation_status == "quarantined"
    assert _submission(engine, 1).validation_status == "valid"
    with engine.connect() as conn:
        assert not awaiting_suites(conn, PROJECT, FORM)
