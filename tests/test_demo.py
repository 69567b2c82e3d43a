"""`make demo` end to end: every deliberate mistake caught, the outputs written, no secret in them."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select

from consult.demo import run_demo
from consult.sandbox.server import DEFAULT_ADMIN_PASSWORD
from consult.warehouse.database import create_engine_for
from consult.warehouse.tables import submissions

from .conftest import FORMS


def test_the_demo_runs_the_whole_round_and_says_where_everything_is(prefect_api, tmp_path: Path) -> None:
    said: list[str] = []
    before = dict(os.environ)
    result = run_demo(tmp_path / "demo", forms_dir=FORMS.forms_dir, say=said.append)
    assert {k: v for k, v in os.environ.items() if k.startswith("CONSULT_")} == {
        k: v for k, v in before.items() if k.startswith("CONSULT_")}, "the caller's environment is restored"

    assert result.interviews == 169 and result.mistakes == 9
    assert sum(s.quarantined for s in result.summaries) == result.mistakes
    assert sum(s.written_back for s in result.summaries) == result.mistakes
    engine = create_engine_for(result.database_url)
    with engine.connect() as conn:
        statuses = conn.execute(select(submissions.c.validation_status)).scalars().all()
    engine.dispose()
    assert statuses.count("quarantined") == result.mistakes and len(statuses) == result.interviews
    for path in (result.qr_sheet, *result.reports.values()):
        assert path.is_file(), path
    assert "Hội thảo" in result.reports["report"].read_text(encoding="utf-8")
    assert any("169 interviews" in line for line in said)

    for path in (tmp_path / "demo").rglob("*"):
        if path.is_file() and path.suffix in (".html", ".md", ".xlsx", ".json", ".log", ".xml", ".db"):
            assert DEFAULT_ADMIN_PASSWORD.encode() not in path.read_bytes(), path
