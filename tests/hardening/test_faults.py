"""Network faults between the sync and Central, injected by a loopback proxy.

For each fault the sync either gets through on its retries or stops with one clear
CentralError (no secret in it) and the watermark where it was; once the fault clears,
one more sync leaves the database equal, row by row, to a sync that never saw a fault.
Each case runs on a SQLite file and on a fresh PostgreSQL database (`db_url`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import select

from consult.central import CentralError, CentralSession, CentralSettings
from consult.sync import FormSync, SyncOptions
from consult.warehouse.database import create_engine_for
from consult.warehouse.load import snapshot
from consult.warehouse.tables import submissions, watermarks

from ..fieldwork_central import PROJECT, Field
from .proxy import Fault, FaultProxy

FORM = "province_consultation"
PAGE = 15


def _data(engine) -> dict:
    return {name: rows for name, rows in snapshot(engine).items() if name != "watermarks"}


@pytest.fixture(scope="module")
def proxy(field: Field) -> Iterator[FaultProxy]:
    with FaultProxy(field.server.url) as p:
        yield p


@pytest.fixture(scope="module")
def reference(field: Field, tmp_path_factory: pytest.TempPathFactory) -> dict:
    engine = create_engine_for(f"sqlite:///{tmp_path_factory.mktemp('ref') / 'ref.db'}")
    with CentralSession(field.settings) as central:
        summary = FormSync(central, engine, field.project_id, field.built.schema(FORM),
                           SyncOptions(page_size=PAGE)).run()
    assert summary.pages > 2, "the faults must be able to land mid-pull"
    data = _data(engine)
    engine.dispose()
    return data


def _settings(field: Field, proxy: FaultProxy) -> CentralSettings:
    return CentralSettings(url=proxy.url, username=field.server.admin_email, password=field.server.admin_password,
                           project=PROJECT, backoff=0.01, retries=3, timeout=1.0)


def _sync(field: Field, proxy: FaultProxy, engine):
    with CentralSession(_settings(field, proxy)) as central:
        return FormSync(central, engine, field.project_id, field.built.schema(FORM),
                        SyncOptions(page_size=PAGE)).run()


def _watermark(engine):
    with engine.connect() as conn:
        return conn.execute(select(watermarks.c.last_change, watermarks.c.etag)
                            .where(watermarks.c.form_id == FORM)).first()


# (id, fault, the sync gets through on retries alone)
CASES = [
    ("delay-past-timeout-once", Fault("delay", seconds=1.5, skip=1), True),
    ("drop-once", Fault("drop", skip=1), True),
    ("drop-always", Fault("drop", times=None, skip=1), False),
    ("500-once", Fault("status", status=500, skip=1), True),
    ("502-once", Fault("status", status=502, skip=2), True),
    ("503-twice", Fault("status", status=503, times=2, skip=1), True),
    ("429-once", Fault("status", status=429, skip=1), True),
    ("503-always", Fault("status", status=503, times=None, skip=1), False),
    ("truncated-json-page-2", Fault("truncate", skip=1), None),
    ("cut-mid-body-page-2", Fault("cut", skip=1), None),
    ("page-2-sent-twice", Fault("duplicate", skip=1), True),
]


@pytest.mark.parametrize(("fault", "gets_through"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_fault_is_retried_or_stops_cleanly_and_a_rerun_equals_a_clean_sync(
        field: Field, proxy: FaultProxy, reference: dict, db_url: str, fault: Fault, gets_through: bool | None,
        hardening_tally) -> None:
    fault = replace(fault)  # a fresh count for each database
    engine = create_engine_for(db_url)
    password = field.server.admin_password
    before = None
    proxy.set(fault)
    try:
        try:
            summary = _sync(field, proxy, engine)
            failed = None
        except CentralError as exc:
            failed = exc
        finally:
            proxy.set(None)
        assert fault.applied >= 1, "the fault was never injected"
        if gets_through is True:
            assert failed is None, f"{fault} should be retried through, got {failed}"
        elif gets_through is False:
            assert failed is not None, f"{fault} cannot be retried through"
        if failed is not None:
            text = str(failed)
            assert password not in text and "Bearer" not in text and "Traceback" not in text
            assert "\n" not in text and len(text) < 500, text
            assert _watermark(engine) == before or _watermark(engine) is None, "the watermark moved"
        else:
            assert summary.pulled > 0
        if failed is not None or fault.kind == "duplicate":
            _sync(field, proxy, engine)
        got = _data(engine)
        lost = len(set(reference["submissions"]) - set(got["submissions"]))
        with engine.connect() as conn:
            ids = conn.execute(select(submissions.c.instance_id)).scalars().all()
        duplicated = len(ids) - len(set(ids))
        hardening_tally("fault: " + fault.kind + (f" {fault.status}" if fault.kind == "status" else ""),
                        lost=lost, duplicated=duplicated, leaked=0)
        assert got == reference
        assert _watermark(engine).last_change is not None
    finally:
        engine.dispose()
