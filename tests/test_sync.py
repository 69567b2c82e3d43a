"""The sync end to end: a sandbox Central full of fieldwork → the reporting database, on SQLite and PostgreSQL.

Real parts throughout: the sandbox over HTTP, engine-free but Collect-shaped submissions
from the fieldwork generator (some deliberately wrong), an edit and a deletion made in
Central, and a real database. The kill test runs `python -m consult.sync` as a separate
process and SIGKILLs it at random moments.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from consult.central import CentralSession, submission_ids
from consult.central.review import comments
from consult.fieldwork import EXPECTED_RULE
from consult.sync import failure_comment
from consult.warehouse.database import create_engine_for
from consult.warehouse.failures import failures_of
from consult.warehouse.load import snapshot
from consult.warehouse.tables import submissions, validation_failures, watermarks

from .conftest import FORM_IDS, REPO, BuiltForms
from .fieldwork_central import Field, edit_in_central, field_sandbox


@pytest.fixture
def field(built_forms: BuiltForms) -> Iterator[Field]:
    with field_sandbox(built_forms) as sandbox:
        yield sandbox


def test_sync_loads_the_live_submissions_catches_every_mistake_and_writes_back_once(field: Field, db_url: str):
    engine = create_engine_for(db_url)
    first = {form_id: field.sync(engine, form_id, write_back=True) for form_id in FORM_IDS}

    with CentralSession(field.settings) as central, engine.connect() as conn:
        for form_id in FORM_IDS:
            live = submission_ids(central, field.project_id, form_id)
            s = submissions.c
            loaded = set(conn.execute(select(s.instance_id).where(s.form_id == form_id, s.deleted_at.is_(None)))
                         .scalars())
            assert loaded == live, form_id

        mistakes = {i.instance_id: i for i in field.interviews if i.mistake}
        assert len(mistakes) >= 5
        quarantined = set(conn.execute(select(submissions.c.instance_id).where(
            submissions.c.validation_status == "quarantined", submissions.c.deleted_at.is_(None))).scalars())
        assert quarantined == set(mistakes), "every mistake caught, no valid interview faulted"
        for instance_id, interview in mistakes.items():
            rules = {f.rule for f in failures_of(conn, field.project_id, interview.form_id, instance_id)}
            assert EXPECTED_RULE[interview.mistake] in rules, (interview.mistake, rules)
            review = central.json("GET", f"projects/{field.project_id}/forms/{interview.form_id}/submissions/"
                                         f"{instance_id}")["reviewState"]
            assert review == "hasIssues"
            said = comments(central, field.project_id, interview.form_id, instance_id)
            assert said == [failure_comment(failures_of(conn, field.project_id, interview.form_id, instance_id))]

        members = conn.execute(text("SELECT count(*) FROM province_consultation__members m JOIN submissions s "
                                    "ON s.instance_id = m._instance_id WHERE s.deleted_at IS NULL")).scalar_one()
        expected = sum(i.xml.count(b"<members>") for i in field.interviews if i.form_id == "province_consultation")
        assert members == expected
        edited = conn.execute(text("SELECT respondent_name FROM province_consultation WHERE _instance_id = :i"),
                              {"i": field.edited}).scalar_one()
        assert edited.startswith("ĐÃ SỬA "), "the edit made in Central is what the DB holds, under the first id"

    assert sum(s.quarantined for s in first.values()) == len(quarantined)
    assert sum(s.written_back for s in first.values()) == len(quarantined)

    started = time.perf_counter()
    second = [field.sync(engine, form_id, write_back=True) for form_id in FORM_IDS]
    assert time.perf_counter() - started < 1.0, "a sync with nothing new costs one conditional GET per form"
    assert all(s.not_modified and s.pulled == 0 for s in second)

    interview = next(i for i in field.interviews if i.form_id == "province_consultation" and not i.mistake
                     and i.instance_id not in (field.deleted, field.edited))
    with CentralSession(field.settings) as central:
        edit_in_central(central, field.project_id, interview)
        central.request("DELETE", f"projects/{field.project_id}/forms/province_consultation/submissions/"
                                  f"{field.deleted}")
    third = field.sync(engine, "province_consultation", write_back=True)
    assert third.pulled >= 1 and third.updated >= 1 and third.deleted == 1
    with engine.connect() as conn:
        name = conn.execute(text("SELECT respondent_name FROM province_consultation WHERE _instance_id = :i"),
                            {"i": interview.instance_id}).scalar_one()
        deleted_at = conn.execute(select(submissions.c.deleted_at).where(
            submissions.c.instance_id == field.deleted)).scalar_one()
    assert name.startswith("ĐÃ SỬA ") and deleted_at is not None
    engine.dispose()


def _run_sync(field: Field, db_url: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "consult.sync", "--build-dir", str(field.built.out_dir),
                             "--write-back", "--page-size", "10"],
                            env=field.env(db_url), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _data(tables: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """Everything but the watermarks: where a run's next pull starts depends on its timing (the
    clock Central answered at), not on the data, and any watermark at or before the data is right."""
    return {name: rows for name, rows in tables.items() if name != "watermarks"}


def test_a_sync_killed_anywhere_then_rerun_equals_an_uninterrupted_one(field: Field, db_url: str,
                                                                       tmp_path: Path) -> None:
    """Killed first, so the kills also land in the middle of writing back; then an uninterrupted
    sync into a fresh database of the same Central is the reference."""
    rng = random.Random(20041008)
    kills = 0
    for _ in range(12 if db_url.startswith("sqlite") else 8):
        process = _run_sync(field, db_url)
        time.sleep(rng.uniform(0.5, 3.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=60)
    for url in (db_url, f"sqlite:///{tmp_path / 'reference.db'}"):
        run = _run_sync(field, url)
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err.decode()
    assert kills >= 5, "runs must be cut short for the test to mean something"

    got, expected = create_engine_for(db_url), create_engine_for(f"sqlite:///{tmp_path / 'reference.db'}")
    assert _data(snapshot(got)) == _data(snapshot(expected))
    with got.connect() as conn:
        assert conn.execute(select(func.count()).select_from(validation_failures)).scalar_one() > 0
        s = submissions.c
        latest = dict(conn.execute(select(s.form_id, func.max(func.coalesce(s.updated_at, s.submission_date)))
                                   .group_by(s.form_id)).all())
        marks = dict(conn.execute(select(watermarks.c.form_id, watermarks.c.last_change)).all())
    assert set(marks) == set(FORM_IDS)
    assert all(marks[form] is not None and marks[form] <= latest[form] for form in FORM_IDS), (marks, latest)
    with CentralSession(field.settings) as central:
        for interview in field.interviews:
            if interview.mistake:
                said = comments(central, field.project_id, interview.form_id, interview.instance_id)
                assert len(said) == 1, "a comment is never written back twice"
    got.dispose()
    expected.dispose()
