"""The sync end to end: a sandbox Central full of fieldwork → the reporting database, on SQLite and PostgreSQL.

Real parts throughout: the sandbox over HTTP, engine-free but Collect-shaped submissions
from the fieldwork generator (some deliberately wrong), an edit and a deletion made in
Central, and a real database. The kill test runs `python -m consult.sync --write-back`'s main as a
separate process (forked from one that imported it once: `forked_sync.py`) through the fault proxy, which
SIGKILLs it at chosen points of its work.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Engine

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
from .forked_sync import ForkedSync, start_server
from .hardening.proxy import Fault, FaultProxy


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


@pytest.fixture(scope="module")
def forkserver() -> None:
    """The sync's imports done once for the module's ~24 runs (a cold `python -m consult.sync` spends 3–4 s)."""
    start_server()


def _sync_run(field: Field, db_url: str, central_url: str, log: Path) -> ForkedSync:
    """`python -m consult.sync --write-back --page-size 10` with Central's settings in the environment."""
    env = field.env(db_url) | {"CONSULT_CENTRAL_URL": central_url}
    return ForkedSync(["--build-dir", str(field.built.out_dir), "--write-back", "--page-size", "10"], env, REPO, log)


def _data(tables: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """Everything but the watermarks: where a run's next pull starts depends on its timing (the
    clock Central answered at), not on the data, and any watermark at or before the data is right."""
    return {name: rows for name, rows in tables.items() if name != "watermarks"}


def _unique_indexes(engine: Engine) -> dict[str, list[tuple[str, list[str]]]]:
    found = inspect(engine)
    return {table: sorted((i["name"], i["column_names"]) for i in found.get_indexes(table) if i["unique"])
            for table in found.get_table_names()}


def _kill_points(rng: random.Random) -> list[tuple[str, Fault]]:
    """One kill in each phase of a sync. Each is sure to be reached by a run started after the kills before
    it: every run pulls at least the two forms with most mistakes again, and every write-back kill leaves
    at most one more of the 11 quarantined submissions done."""
    pages = ".svc/Submissions"
    return [
        ("pull: waiting for a page", Fault("drop", match=pages, skip=rng.randint(1, 6))),
        ("validate/load: a page just answered", Fault("pass", match=pages, skip=rng.randint(0, 6),
                                                      seconds=rng.uniform(0.0, 0.1))),
        ("write-back: review state sent, no answer", Fault("drop", method="PATCH", match="/submissions/")),
        ("write-back: comment stored, answer lost", Fault("lose", method="POST", match="/comments",
                                                          skip=rng.randint(0, 1))),
    ]


def test_a_sync_killed_anywhere_then_rerun_equals_an_uninterrupted_one(field: Field, db_url: str, tmp_path: Path,
                                                                       forkserver: None) -> None:
    """Killed ten times per database: three times in the pull, three in validate/load, twice in
    write-back before the review is set and twice after a comment is stored; then run to the end; an uninterrupted sync into a fresh database of the same
    Central is the reference, and no quarantined submission has its comment twice."""
    rng = random.Random(20041008)
    with FaultProxy(field.server.url) as proxy:
        for number, (phase, fault) in enumerate(_kill_points(rng) + _kill_points(rng) + _kill_points(rng)[:2]):
            killed = _sync_run(field, db_url, proxy.url, tmp_path / f"killed-{number}.log")
            fault.then = killed.kill  # the proxy SIGKILLs the sync whose request it is holding or has just answered
            proxy.set(fault)
            code, output = killed.start().wait(timeout=120)
            proxy.wait_idle()
            proxy.set(None)
            assert fault.applied == 1 and code == -signal.SIGKILL, (phase, output[-2000:])
        for name, url in (("rerun", db_url), ("reference", f"sqlite:///{tmp_path / 'reference.db'}")):
            code, output = _sync_run(field, url, proxy.url, tmp_path / f"{name}.log").start().wait(timeout=300)
            assert code == 0, output

    got, expected = create_engine_for(db_url), create_engine_for(f"sqlite:///{tmp_path / 'reference.db'}")
    assert _data(snapshot(got)) == _data(snapshot(expected))
    # the child tables' keys a killed first load left unbuilt are built again
    assert _unique_indexes(got) == _unique_indexes(expected)
    assert _unique_indexes(expected)["province_consultation__members"] == [
        ("province_consultation__members__key", ["_instance_id", "_row_id"])]
    with got.connect() as conn:
        assert conn.execute(select(func.count()).select_from(validation_failures)).scalar_one() > 0
        s = submissions.c
        latest = dict(conn.execute(select(s.form_id, func.max(func.coalesce(s.updated_at, s.submission_date)))
                                   .group_by(s.form_id)).all())
        marks = dict(conn.execute(select(watermarks.c.form_id, watermarks.c.last_change)).all())
        mistakes = [i for i in field.interviews if i.mistake]
        wanted = {i.instance_id: [failure_comment(failures_of(conn, field.project_id, i.form_id, i.instance_id))]
                  for i in mistakes}
    assert set(marks) == {*FORM_IDS, "entity-list:focal_points"}  # the forms register focal points
    assert all(marks[form] is not None and marks[form] <= latest[form] for form in FORM_IDS), (marks, latest)
    assert len(mistakes) >= 8, "the write-back kills must not run out of quarantined submissions"
    with CentralSession(field.settings) as central:
        said = {i.instance_id: comments(central, field.project_id, i.form_id, i.instance_id) for i in mistakes}
        states = {central.json("GET", f"projects/{field.project_id}/forms/{i.form_id}/submissions/"
                                      f"{i.instance_id}")["reviewState"] for i in mistakes}
    assert said == wanted, "each quarantined submission has its comment exactly once"
    assert states == {"hasIssues"}
    got.dispose()
    expected.dispose()
