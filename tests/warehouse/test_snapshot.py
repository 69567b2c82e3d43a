"""Comparing whole databases, as the kill-and-re-run tests do."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from consult.forms.schema import FormSchema
from consult.warehouse.database import create_engine_for
from consult.warehouse.load import mark_purged, read_watermark, record_run_start, snapshot

from .helpers import PROJECT, failure, load_rows, load_three_pages
from .odata_rows import instance_id, odata_row

FORM = "province_consultation"
REPO = Path(__file__).resolve().parents[2]


def test_snapshots_ignore_when_things_happened(engine: Engine, province: FormSchema) -> None:
    load_rows(engine, province, [odata_row(province, i) for i in (1, 2)])
    with engine.begin() as conn:
        mark_purged(conn, PROJECT, FORM, {instance_id(1)}, at=datetime(2026, 1, 1, tzinfo=UTC))
    before = snapshot(engine)
    load_rows(engine, province, [odata_row(province, 1)])  # a later loaded_at
    with engine.begin() as conn:
        record_run_start(conn)
        mark_purged(conn, PROJECT, FORM, set(), at=datetime(2026, 2, 2, tzinfo=UTC))
        mark_purged(conn, PROJECT, FORM, {instance_id(1)}, at=datetime(2026, 3, 3, tzinfo=UTC))
    assert snapshot(engine) == before
    assert "sync_runs" not in before


def test_sqlite_and_postgresql_hold_the_same_rows(tmp_path: Path, postgres_db_url: str,
                                                  province: FormSchema) -> None:
    engines = [create_engine_for(f"sqlite:///{tmp_path / 'r.db'}"), create_engine_for(postgres_db_url)]
    try:
        for engine in engines:
            load_rows(engine, province, [odata_row(province, i, entries=i % 3) for i in range(1, 5)],
                      failures=[failure(province, instance_id(2), value=750.5)])
        lite, pg = (snapshot(e) for e in engines)
        assert lite == pg
    finally:
        for engine in engines:
            engine.dispose()


KILLED_LOAD = """
import sys
from pathlib import Path
from consult.forms.schema import FormSchema
from tests.warehouse.helpers import load_three_pages
load_three_pages(sys.argv[1], FormSchema.read(Path(sys.argv[2])), kill_at_page=1)
"""


def test_a_load_killed_mid_page_and_rerun_equals_an_uninterrupted_one(
        db_url: str, tmp_path_factory: pytest.TempPathFactory, province: FormSchema) -> None:
    schema_path = tmp_path_factory.mktemp("schema") / "province.schema.json"
    province.write(schema_path)
    killed = subprocess.run([sys.executable, "-c", KILLED_LOAD, db_url, str(schema_path)], cwd=REPO,
                            capture_output=True, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    engine = create_engine_for(db_url)
    reference_url = f"sqlite:///{tmp_path_factory.mktemp('reference') / 'r.db'}"
    reference = create_engine_for(reference_url)
    try:
        assert len(snapshot(engine)["submissions"]) == 50  # page 0 committed, page 1 died with the process
        with engine.connect() as conn:
            assert read_watermark(conn, PROJECT, FORM).last_change == datetime(  # type: ignore[union-attr]
                2004, 8, 10, 1, 30, 50, tzinfo=UTC)
        load_three_pages(db_url, province)
        load_three_pages(reference_url, province)
        rerun = snapshot(engine)
        assert rerun == snapshot(reference)
        assert len(rerun["submissions"]) == 150
    finally:
        engine.dispose()
        reference.dispose()
