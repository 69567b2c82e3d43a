"""Network faults while the sync writes reviews back to Central (PATCH the review state, POST the comment).

urllib3 retries neither, so `FormSync` retries them itself, reading the comments again before each
try. For each fault the sync gets through or stops with one clear CentralError (no secret in it);
then one more sync, fault cleared, leaves every quarantined submission `hasIssues` with exactly one
copy of its comment in Central, and the database equal, row by row, to a clean sync of the same
Central. Each case gets its own sandbox: write-back changes Central, and a case must start unwritten.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import select

from consult.central import CentralError, CentralSession, CentralSettings
from consult.central.review import comments
from consult.sync import FormSync, SyncOptions, SyncSummary, failure_comment
from consult.warehouse.database import create_engine_for
from consult.warehouse.failures import failures_of
from consult.warehouse.load import snapshot
from consult.warehouse.tables import submissions
from consult.warehouse.verdicts import quarantined_ids

from ..conftest import BuiltForms
from ..fieldwork_central import PROJECT, Field, field_sandbox
from .proxy import Fault, FaultProxy

FORM = "province_consultation"
PAGE = 15
REVIEW = "/submissions/"
COMMENT = "/comments"


@pytest.fixture
def fresh(built_forms: BuiltForms) -> Iterator[Field]:
    with field_sandbox(built_forms) as sandbox:
        yield sandbox


@pytest.fixture
def proxy(fresh: Field) -> Iterator[FaultProxy]:
    with FaultProxy(fresh.server.url) as p:
        yield p


def _settings(field: Field, url: str) -> CentralSettings:
    return CentralSettings(url=url, username=field.server.admin_email, password=field.server.admin_password,
                           project=PROJECT, backoff=0.01, retries=3, timeout=1.0)


def _sync(field: Field, url: str, engine, bearer: list[str]) -> SyncSummary:
    with CentralSession(_settings(field, url)) as central:
        try:
            return FormSync(central, engine, field.project_id, field.built.schema(FORM),
                            SyncOptions(page_size=PAGE, write_back=True)).run()
        finally:
            bearer.append(central.http.headers.get("Authorization", ""))


def _data(engine) -> dict:
    return {name: rows for name, rows in snapshot(engine).items() if name != "watermarks"}


def _leaks(text: str, secrets: list[str]) -> int:
    return sum(s in text for s in secrets) + ("Bearer" in text) + ("Traceback" in text)


# (id, fault, the sync gets through on its retries)
CASES = [
    ("patch-500-once", Fault("status", status=500, method="PATCH", match=REVIEW, skip=1), True),
    ("patch-503-once", Fault("status", status=503, method="PATCH", match=REVIEW, skip=1), True),
    ("patch-500-always", Fault("status", status=500, method="PATCH", match=REVIEW, skip=1, times=None), False),
    ("patch-503-always", Fault("status", status=503, method="PATCH", match=REVIEW, skip=1, times=None), False),
    ("patch-dropped-before-forwarding", Fault("drop", method="PATCH", match=REVIEW, skip=1), True),
    ("patch-delay-past-timeout", Fault("delay", seconds=1.5, method="PATCH", match=REVIEW, skip=1), True),
    ("comment-applied-reply-lost-once", Fault("lose", method="POST", match=COMMENT, skip=1), True),
    ("comment-applied-reply-lost-always", Fault("lose", method="POST", match=COMMENT, times=None), True),
    ("comment-502-once", Fault("status", status=502, method="POST", match=COMMENT, skip=1), True),
    ("comment-reply-late-past-timeout", Fault("late", seconds=1.5, method="POST", match=COMMENT, skip=1), True),
]


ON_POSTGRES = {"patch-503-always", "comment-applied-reply-lost-once", "comment-reply-late-past-timeout"}
"""Write-back is the same code on both databases; PostgreSQL gets one case of each kind of outcome."""
RUNS = [pytest.param(*case[1:], db, id=f"{case[0]}-{db}")
        for case in CASES for db in ("sqlite", "postgres") if db == "sqlite" or case[0] in ON_POSTGRES]


@pytest.mark.parametrize(("fault", "gets_through", "db_url"), RUNS, indirect=["db_url"])
def test_a_write_back_fault_is_retried_or_stops_cleanly_and_a_rerun_comments_exactly_once(
        fresh: Field, proxy: FaultProxy, db_url: str, tmp_path, fault: Fault, gets_through: bool,
        hardening_tally) -> None:
    fault = replace(fault)  # a fresh count for each database
    engine = create_engine_for(db_url)
    reference = create_engine_for(f"sqlite:///{tmp_path / 'reference.db'}")
    bearer: list[str] = []
    proxy.set(fault)
    try:
        try:
            _sync(fresh, proxy.url, engine, bearer)
            failed = None
        except CentralError as exc:
            failed = exc
        finally:
            proxy.set(None)
            proxy.wait_idle()
        assert fault.applied >= 1, "the fault was never injected"
        assert (failed is None) == gets_through, f"{fault}: {failed}"
        text = str(failed or "")
        leaked = _leaks(text, [fresh.server.admin_password, *(b.removeprefix("Bearer ") for b in bearer if b)])
        assert "\n" not in text and len(text) < 500, text

        _sync(fresh, proxy.url, engine, bearer)
        _sync(fresh, fresh.server.url, reference, bearer)
        got, expected = _data(engine), _data(reference)
        lost = len(set(expected["submissions"]) - set(got["submissions"]))
        with engine.connect() as conn:
            ids = conn.execute(select(submissions.c.instance_id)).scalars().all()
            quarantined = quarantined_ids(conn, fresh.project_id, FORM)
            wanted = {i: failure_comment(failures_of(conn, fresh.project_id, FORM, i)) for i in quarantined}
        mistakes = {i.instance_id for i in fresh.interviews if i.form_id == FORM and i.mistake}
        assert len(mistakes) >= 2 and quarantined == mistakes, "the form must have quarantined submissions"
        with CentralSession(fresh.settings) as central:
            said = {i: comments(central, fresh.project_id, FORM, i) for i in quarantined}
            states = {i: central.json("GET", f"projects/{fresh.project_id}/forms/{FORM}/submissions/{i}")
                      ["reviewState"] for i in quarantined}
        duplicated = len(ids) - len(set(ids)) + sum(max(len(c) - 1, 0) for c in said.values())
        hardening_tally(f"write-back fault: {fault.method} {fault.kind}"
                        + (f" {fault.status}" if fault.kind == "status" else ""),
                        lost=lost, duplicated=duplicated, leaked=leaked)
        assert leaked == 0, text
        assert said == {i: [wanted[i]] for i in quarantined}, "exactly one copy of each comment"
        assert set(states.values()) == {"hasIssues"}
        assert got == expected
    finally:
        engine.dispose()
        reference.dispose()
