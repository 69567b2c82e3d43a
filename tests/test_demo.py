"""`make demo` end to end: every deliberate mistake caught, the outputs written, no secret in them.

The demo runs once for the module (a whole round, 20–25 s), as `consult demo`; each test reads what it did.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import socket
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import select
from sqlalchemy import text as sql

from consult.demo import DemoResult
from consult.sandbox.server import DEFAULT_ADMIN_PASSWORD
from consult.warehouse.database import create_engine_for
from consult.warehouse.tables import submissions

from .conftest import FORM_IDS, FORMS


@dataclass
class Demo:
    """One `consult demo`: its workdir and printed output, what `run_demo` returned, said and logged."""

    workdir: Path
    output: str
    result: DemoResult
    said: list[str]
    records: list[logging.LogRecord]
    consult_environ: tuple[dict[str, str], dict[str, str]]
    """The CONSULT_ variables before and after the demo."""


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _consult_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("CONSULT_")}


@pytest.fixture(scope="module")
def demo(prefect_api, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """`consult demo` with `run_demo` wrapped to keep its result and each line it says; every log record
    (from DEBUG) on the root logger while it runs, as `caplog` would hold them."""
    from typer.testing import CliRunner

    import consult.demo
    from consult.cli import app

    workdir = tmp_path_factory.mktemp("demo") / "demo"
    said: list[str] = []
    results: list[DemoResult] = []
    run_demo = consult.demo.run_demo

    def recorded(*args, say: Callable[[str], None], **kwargs) -> DemoResult:
        def both(line: str) -> None:
            said.append(line)
            say(line)

        results.append(run_demo(*args, say=both, **kwargs))
        return results[-1]

    root, records = logging.getLogger(), _Records()
    level = root.level
    before = _consult_environ()
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(consult.demo, "run_demo", recorded)
            shown = CliRunner().invoke(app, ["demo", "--workdir", str(workdir), "--forms-dir", str(FORMS.forms_dir)])
    finally:
        root.removeHandler(records)
        root.setLevel(level)
    assert shown.exit_code == 0, shown.output
    (result,) = results
    return Demo(workdir, shown.output, result, said, records.records, (before, _consult_environ()))


def test_the_demo_runs_the_whole_round_and_says_where_everything_is(demo: Demo) -> None:
    result, said = demo.result, demo.said
    before, after = demo.consult_environ
    assert after == before, "the caller's environment is restored"

    assert result.interviews == 175 and result.mistakes == 9  # 169 interviews and 6 focal-point updates
    assert sum(s.quarantined for s in result.summaries) == result.mistakes
    assert sum(s.written_back for s in result.summaries) == result.mistakes
    engine = create_engine_for(result.database_url)
    with engine.connect() as conn:
        statuses = conn.execute(select(submissions.c.validation_status)).scalars().all()
        registry = conn.execute(sql("SELECT count(*), sum(version = 2), sum(conflict IS NOT NULL) "
                                     "FROM entities__focal_points")).one()
        errors = conn.execute(sql("SELECT count(*) FROM entity_submissions WHERE outcome = 'error'")).scalar()
    engine.dispose()
    assert tuple(registry) == (122, 6, 0) and errors == 0, "members and typed-in respondents registered, 6 updated"
    assert statuses.count("quarantined") == result.mistakes and len(statuses) == result.interviews
    for path in (result.qr_sheet, *result.reports.values()):
        assert path.exists(), path
    assert "Hội thảo" in result.reports["report"].read_text(encoding="utf-8")
    assert any("175 interviews" in line for line in said)
    for lang in ("vi", "en"):
        assert result.reports[f"PDF ({lang})"].read_bytes().startswith(b"%PDF-")
    stata, spss = result.reports["Stata (vi)"], result.reports["SPSS (en)"]
    assert len(list(stata.glob("*.dta"))) >= 5 and len(list(spss.glob("*.sav"))) >= 5
    assert (result.reports["codebook"] / "province_consultation-codebook.html").is_file()
    photos = list((demo.workdir / "attachments" / "focal_point_registration").rglob("*.jpg"))
    assert photos and any(f"{len(photos)} files of the submissions" in line for line in said)

    _no_secret_anywhere(demo.workdir, said, demo.records)


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


def _no_secret_anywhere(workdir: Path, said: list[str], records: list[logging.LogRecord]) -> None:
    """The console, the log records, Prefect's logs and artifacts and every file the demo wrote
    (reporting database, reports, Data Docs, workbooks) hold neither the password nor a token.
    Only Central's own store and the QR codes (app-user tokens, by design) may."""
    secrets, app_user_tokens = _secrets(workdir / "sandbox")
    texts = [("console", line.encode()) for line in said]
    texts += [("log", record.getMessage().encode()) for record in records]
    texts += [("prefect", text.encode()) for text in _prefect_records()]
    files = [p for p in workdir.rglob("*") if p.is_file() and "sandbox" not in p.relative_to(workdir).parts]
    assert any(p.suffix == ".xlsx" for p in files) and any(p.suffix == ".db" for p in files)
    texts += [(str(path.relative_to(workdir)), part) for path in files for part in _texts(path)]
    assert len(texts) > 50
    for where, text in texts:
        allowed = app_user_tokens if where.startswith("teams") else set()
        found = [s[:4] + "…" for s in (secrets | app_user_tokens) - allowed if s.encode() in text]
        assert not found, f"{where}: {found}"


def test_the_demo_ends_with_sync_and_report_lines_that_work_on_its_database(demo: Demo, tmp_path: Path) -> None:
    """The lines `make demo` prints last, run as printed (only the sandbox's port moved to a free one)."""
    from prefect.settings import PREFECT_API_URL

    workdir = demo.workdir
    lines = [line.strip() for line in demo.output.splitlines()]
    serve = shlex.split(next(line for line in lines if line.startswith("consult sandbox ")))
    sync = shlex.split(next(line for line in lines if " consult sync " in line))
    report = shlex.split(next(line for line in lines if line.startswith("consult report ")))
    database = f"sqlite:///{workdir.resolve()}/reporting.db"
    assert sync[sync.index("--db") + 1] == report[report.index("--db") + 1] == database

    port = _free_port()
    serve[serve.index("--port") + 1] = str(port)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    environ["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    environ["PYTHONPATH"] = os.pathsep.join(sys.path)
    at = sync.index("consult")
    settings = dict(word.split("=", 1) for word in sync[:at])
    settings["CONSULT_CENTRAL_URL"] = settings["CONSULT_CENTRAL_URL"].replace(":8383", f":{port}")
    server = subprocess.Popen([sys.executable, "-m", "consult.cli", *serve[1:]], env=environ, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(f"http://127.0.0.1:{port}/v1/projects")
        synced = subprocess.run([sys.executable, "-m", "consult.cli", *sync[at + 1:]], env=environ | settings,
                                cwd=tmp_path, capture_output=True, text=True, timeout=300)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert all(form_id in synced.stdout for form_id in FORM_IDS), synced.stdout
    reported = subprocess.run([sys.executable, "-m", "consult.cli", *report[1:]], env=environ, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
    assert reported.returncode == 0, reported.stdout + reported.stderr
    assert str((workdir / "reports" / "findings-en.html").resolve()) in reported.stdout
    assert (workdir / "reports" / "findings-en.html").is_file()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"nothing answered at {url} within {seconds:.0f} s")
