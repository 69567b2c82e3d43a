"""`make demo` end to end: every deliberate mistake caught, the outputs written, no secret in them."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from consult.demo import run_demo
from consult.sandbox.server import DEFAULT_ADMIN_PASSWORD
from consult.warehouse.database import create_engine_for
from consult.warehouse.tables import submissions

from .conftest import FORMS


def test_the_demo_runs_the_whole_round_and_says_where_everything_is(prefect_api, tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    said: list[str] = []
    before = dict(os.environ)
    caplog.set_level(logging.DEBUG)
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

    _no_secret_anywhere(tmp_path / "demo", said, caplog)


def _secrets(sandbox: Path) -> tuple[set[str], set[str]]:
    """The admin password, session tokens and CSRF values; and the app users' tokens, which the QR
    codes carry by design. Read from the sandbox Central's own store, which keeps them all."""
    with sqlite3.connect(sandbox / "sandbox.sqlite3") as conn:
        sessions = {v for row in conn.execute("SELECT token, csrf FROM sessions") for v in row}
        app_users = {t for (t,) in conn.execute("SELECT token FROM field_keys WHERE token IS NOT NULL")}
    assert sessions and app_users, "the demo logged in and made field teams"
    return {DEFAULT_ADMIN_PASSWORD, *sessions}, app_users


def _texts(path: Path) -> list[bytes]:
    """A file's bytes, or for a workbook, the bytes of each part (an .xlsx is a zip)."""
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as book:
            return [book.read(name) for name in book.namelist()]
    return [path.read_bytes()]


def _prefect_records() -> list[str]:
    """Every log line and artifact the session's Prefect API holds (the demo's flow runs among them)."""
    from prefect.client.orchestration import get_client

    async def read() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs()
            artifacts = await client.read_artifacts()
        return [log.message for log in logs] + [str(a.data) + str(a.description) for a in artifacts]

    return asyncio.run(read())


def _no_secret_anywhere(workdir: Path, said: list[str], caplog: pytest.LogCaptureFixture) -> None:
    """The console, the log records, Prefect's logs and artifacts and every file the demo wrote
    (reporting database, reports, Data Docs, workbooks) hold neither the password nor a token.
    Only Central's own store and the QR codes (app-user tokens, by design) may."""
    secrets, app_user_tokens = _secrets(workdir / "sandbox")
    texts = [("console", line.encode()) for line in said]
    texts += [("log", record.getMessage().encode()) for record in caplog.records]
    texts += [("prefect", text.encode()) for text in _prefect_records()]
    files = [p for p in workdir.rglob("*") if p.is_file() and "sandbox" not in p.relative_to(workdir).parts]
    assert any(p.suffix == ".xlsx" for p in files) and any(p.suffix == ".db" for p in files)
    texts += [(str(path.relative_to(workdir)), part) for path in files for part in _texts(path)]
    assert len(texts) > 50
    for where, text in texts:
        allowed = app_user_tokens if where.startswith("teams") else set()
        found = [s[:4] + "…" for s in (secrets | app_user_tokens) - allowed if s.encode() in text]
        assert not found, f"{where}: {found}"
