"""The incremental duplicate recheck gives the verdicts of a form-wide pass, whatever happens
between two rechecks: pages loaded in any order, edits that change a key, failures of other
rules coming and going, deletions, purges, and a warehouse whose stored keys are missing."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine

from consult.forms.schema import FormSchema
from consult.validate.duplicates import duplicate_rules
from consult.warehouse.load import (
    KEY_BATCH,
    failing_instances,
    interviews,
    load_page,
    mark_deleted,
    mark_purged,
    recheck_duplicates,
)
from consult.warehouse.records import FormLayout, RecordBuilder
from consult.warehouse.tables import (
    duplicate_keys,
    duplicate_pending,
    ensure_schema,
    submissions,
    validation_failures,
)

from .helpers import PROJECT, failure
from .odata_rows import instance_id, odata_row

KEYS = [{"province": "an_giang", "agency": "dard", "consultation_date": "2004-08-11"},
        {"province": "an_giang", "agency": "dard", "consultation_date": "2004-08-12"},
        {"province": "tra_vinh", "agency": "dpi", "consultation_date": "2004-08-11"}]


def _form_wide(conn: Connection, schema: FormSchema) -> set[tuple]:
    """What the form-wide pass (`DuplicateRule.across_form` over every live submission) says."""
    layout = FormLayout.of(schema)
    found = set()
    for rule in duplicate_rules(schema):
        judged = rule.across_form(
            schema, interviews(conn, PROJECT, schema.form_id, layout.table(rule.table_key).name, rule.columns),
            failing_instances(conn, PROJECT, schema.form_id, except_rule=rule.name))
        found |= {(f.instance_id, f.rule, f.column, f.value, f.message_vi, f.message_en) for f in judged}
    return found


def _stored(conn: Connection, schema: FormSchema) -> set[tuple]:
    f = validation_failures.c
    rules = [r.name for r in duplicate_rules(schema)]
    return set(conn.execute(select(f.instance_id, f.rule, f.column, f.value, f.message_vi, f.message_en)
                            .where(f.project_id == PROJECT, f.rule.in_(rules))).all())


def _statuses_follow(conn: Connection) -> None:
    s, f = submissions.c, validation_failures.c
    failing = set(conn.execute(select(f.instance_id).where(f.project_id == PROJECT)).scalars())
    for instance, status in conn.execute(select(s.instance_id, s.validation_status).where(s.project_id == PROJECT)):
        assert status == ("quarantined" if instance in failing else "valid"), instance


@pytest.mark.parametrize("key_batch", [KEY_BATCH, 2], ids=["batch", "stored-while-read"])
def test_incremental_verdicts_equal_the_form_wide_pass(engine: Engine, province: FormSchema, key_batch: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`stored-while-read`: a recheck of the whole form stores keys every 2 submissions while it still
    reads the form (a cursor open, a server-side one on PostgreSQL), as it does every 5000 at scale."""
    monkeypatch.setattr("consult.warehouse.load.KEY_BATCH", key_batch)
    ensure_schema(engine, [FormLayout.of(province)])
    builder = RecordBuilder(province)
    rng = random.Random(17)
    deleted: set[int] = set()
    for step in range(30):
        indices = rng.sample(range(1, 21), rng.randint(1, 6))
        rows = [odata_row(province, i, overrides=rng.choice(KEYS) | {"staff_days": rng.randint(1, 9)})
                for i in indices]
        broken = [failure(province, instance_id(i)) for i in indices if rng.random() < 0.3]
        with engine.begin() as conn:
            load_page(conn, PROJECT, builder.build(rows), {}, broken)
            if step % 4 == 3:
                gone = set(rng.sample(indices, 1))
                deleted |= gone
                mark_deleted(conn, PROJECT, province.form_id,
                             [(instance_id(i), datetime(2026, 11, 28, tzinfo=UTC)) for i in gone])
            if step % 5 == 4:
                live = {i for i in conn.execute(select(submissions.c.instance_id)).scalars()}
                mark_purged(conn, PROJECT, province.form_id, live - {instance_id(indices[0])},
                            deleted_ids={instance_id(i) for i in deleted})
            if step == 9:  # a warehouse loaded before the stored keys existed
                conn.execute(delete(duplicate_keys))
                conn.execute(delete(duplicate_pending))
            recheck_duplicates(conn, PROJECT, province, FormLayout.of(province))
        with engine.connect() as conn:
            assert _stored(conn, province) == _form_wide(conn, province), f"step {step}"
            _statuses_follow(conn)
            assert conn.execute(select(duplicate_pending.c.instance_id)).all() == []
    with engine.connect() as conn:
        assert _stored(conn, province), "the data never held a duplicate: the test proves nothing"
    with engine.begin() as conn:
        assert recheck_duplicates(conn, PROJECT, province, FormLayout.of(province)) == set()
