"""What docs/sync.md promises about a sync run, each checked against the sandbox and a real SQLite database:
a `sync_runs` row per run, write-back after a 304, purge marking as Central purges, honest counts,
one login per run, the QR payload's project name, and a `consult sync` that starts without Prefect."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from consult.central import CentralSession
from consult.central.review import comments
from consult.central.teams import decode_settings
from consult.cli import app
from consult.sync import LocalSteps, ProgressCallback, SyncRequest, SyncSummary, failure_comment, run_sync
from consult.warehouse.database import create_engine_for
from consult.warehouse.failures import failures_of
from consult.warehouse.snapshot import snapshot
from consult.warehouse.tables import submissions, sync_runs

from .conftest import FORM_IDS, REPO, BuiltForms
from .fieldwork_central import PROJECT, Field, field_sandbox

HEAVY = ("great_expectations", "pandas", "prefect")


@pytest.fixture
def field(built_forms: BuiltForms, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Field]:
    """A sandbox full of fieldwork, reached through the environment as `consult sync` reaches Central;
    no Prefect API configured (an empty profiles file), as on an analyst's laptop."""
    with field_sandbox(built_forms) as sandbox:
        for key, value in sandbox.env("sqlite:///unused.db").items():
            if key.startswith("CONSULT_CENTRAL_"):
                monkeypatch.setenv(key, value)
        monkeypatch.delenv("PREFECT_API_URL", raising=False)
        monkeypatch.setenv("PREFECT_PROFILES_PATH", str(tmp_path / "no-profiles.toml"))
        yield sandbox


def _sync(field: Field, db: str, progress: ProgressCallback | None = None, **parameters) -> list[SyncSummary]:
    request = SyncRequest.of(build_dir=field.built.out_dir, database=db, reports_dir=None, page_size=40, **parameters)
    return run_sync(request, LocalSteps(), progress)


def _total(summaries: list[SyncSummary], key: str) -> int:
    return sum(getattr(s, key) for s in summaries)


def _sandbox_db(field: Field) -> sqlite3.Connection:
    assert field.server.data_dir is not None
    return closing(sqlite3.connect(field.server.data_dir / "sandbox.sqlite3", timeout=10))  # type: ignore[return-value]


def _logins(field: Field) -> int:
    """`POST /v1/sessions` the sandbox answered: one session row each (nothing here logs out)."""
    with _sandbox_db(field) as db:
        return int(db.execute("SELECT count(*) FROM sessions").fetchone()[0])


def _expire_sessions(field: Field) -> None:
    """What 24 hours do to Central's sessions."""
    with _sandbox_db(field) as db:
        db.execute("UPDATE sessions SET expires_at = '2000-01-01T00:00:00.000Z'")
        db.commit()


def _review(central: CentralSession, field: Field, form_id: str, instance_id: str) -> str | None:
    return central.json("GET", f"projects/{field.project_id}/forms/{form_id}/submissions/{instance_id}")["reviewState"]


def test_every_run_leaves_a_sync_runs_row_a_failed_one_too(field: Field, tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'reporting.db'}"
    chosen = ("workshop_evaluation", "focal_point_registration")
    base = ["sync", "--build-dir", str(field.built.out_dir), "--db", db, "--reports", str(tmp_path / "r"),
            "--no-attachments", *(arg for form_id in chosen for arg in ("--form", form_id))]
    ok = CliRunner().invoke(app, base)
    assert ok.exit_code == 0, ok.output
    typo = CliRunner().invoke(app, [*base, "--project", "ISG Consultation"])
    assert typo.exit_code == 1

    engine = create_engine_for(db)
    with engine.connect() as conn:
        runs = conn.execute(select(sync_runs).order_by(sync_runs.c.id)).all()
    engine.dispose()
    assert [r.status for r in runs] == ["succeeded", "failed"]
    done, failed = runs
    assert done.started_at <= done.finished_at and done.error is None
    summary = json.loads(done.summary)
    assert summary["pulled"] == 48 + sum(1 for i in field.interviews if i.form_id == "focal_point_registration")
    assert summary["quarantined"] == sum(1 for i in field.interviews if i.mistake and i.form_id in chosen)
    assert {row["form_id"] for row in summary["forms"]} == set(chosen)
    assert failed.finished_at is not None and "no project named 'ISG Consultation'" in failed.error
    assert json.loads(failed.summary)["pulled"] == 0


def test_write_back_after_a_sync_without_it_reaches_every_quarantined_submission_despite_the_304(
        field: Field, tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'reporting.db'}"
    mistakes = [i for i in field.interviews if i.mistake]
    first = _sync(field, db)
    assert _total(first, "quarantined") == len(mistakes) and _total(first, "written_back") == 0
    assert all(s.not_modified for s in _sync(field, db)), "Central answers 304 to every form"

    third = _sync(field, db, write_back=True)
    assert _total(third, "written_back") == len(mistakes)
    assert _total(third, "updated") == 0, "the reviews this run wrote are not changes made in Central"
    engine = create_engine_for(db)
    with CentralSession(field.settings) as central, engine.connect() as conn:
        for interview in mistakes:
            assert _review(central, field, interview.form_id, interview.instance_id) == "hasIssues"
            wanted = failure_comment(failures_of(conn, field.project_id, interview.form_id, interview.instance_id))
            assert comments(central, field.project_id, interview.form_id, interview.instance_id) == [wanted]
    engine.dispose()
    fourth = _sync(field, db, write_back=True)
    assert all(s.not_modified and s.pulled == 0 and s.written_back == 0 for s in fourth)


def test_full_marks_purged_what_central_purged_after_the_trash_and_counts_only_what_changed(
        field: Field, tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'reporting.db'}"
    province = "province_consultation"
    clean = [i.instance_id for i in field.interviews if i.form_id == province and not i.mistake
             and i.instance_id not in (field.deleted, field.edited)]
    never_stored, purged = clean[0], field.deleted
    url = f"projects/{field.project_id}/forms/{province}/submissions"
    with CentralSession(field.settings) as central:
        central.request("DELETE", f"{url}/{never_stored}")
    first = _sync(field, db, write_back=True)
    assert _total(first, "written_back") == sum(1 for i in field.interviews if i.mistake)
    assert _total(first, "updated") == 0, "a first sync's own reviews are not updates"
    assert _total(first, "deleted") == 0, "a submission deleted before it was stored is not news"

    with CentralSession(field.settings) as central:
        central.request("DELETE", f"{url}/{purged}")
    (second,) = _sync(field, db, forms=[province])
    assert second.deleted == 1
    for _ in range(2):
        (full,) = _sync(field, db, forms=[province], full=True)
        assert (full.deleted, full.purged) == (0, 0), "the trash read again by --full is not new deletions"

    with CentralSession(field.settings) as central:
        live = central.json("GET", f"{url}?limit=1000")
        purge = f"{field.server.url}/sandbox/purge"
        assert central.http.post(purge).json() == {"submissions": 0}, "30 days in the trash first, unless forced"
        gone = central.http.post(purge, params={"force": "true"}).json()
        assert gone == {"submissions": 2}, "Central purges what is in the trash, and only that"
        assert central.json("GET", f"{url}?limit=1000") == live
        assert central.json("GET", f"{url}?deleted=true") == []

    (full,) = _sync(field, db, forms=[province], full=True)
    assert (full.purged, full.deleted) == (1, 0)
    engine = create_engine_for(db)
    with engine.connect() as conn:
        s = submissions.c
        rows = {r.instance_id: r for r in conn.execute(select(s.instance_id, s.deleted_at, s.purged_at).where(
            s.form_id == province))}
    engine.dispose()
    assert rows[purged].deleted_at is not None and rows[purged].purged_at is not None
    assert never_stored not in rows
    assert sum(1 for r in rows.values() if r.purged_at is not None) == 1
    (again,) = _sync(field, db, forms=[province], full=True)
    assert (again.purged, again.deleted) == (0, 0)


def _submissions_data(tables: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """The submissions' tables, statuses, failures and pending sets, not the entity lists', which follow
    Central's entity worker rather than this sync."""
    return {name: rows for name, rows in tables.items() if not name.startswith(("entit", "watermarks"))}


def test_what_a_killed_pass_loaded_awaits_the_suites_and_the_next_sync_judges_it_even_on_a_304(
        field: Field, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Pages commit with the page rules' verdicts and wait in `suite_pending`; a pass that dies before
    the suites judge them leaves them waiting, and the next sync judges them although Central has
    nothing new for it (a `--full` run died; the plain sync after it gets a 304)."""
    db, province = f"sqlite:///{tmp_path / 'reporting.db'}", "province_consultation"
    field.server.exhaust_worker()  # the entity worker done before the first sync, so nothing changes after it
    _sync(field, db)
    engine = create_engine_for(db)
    judged = snapshot(engine)
    assert judged["submissions"] and judged["validation_failures"]
    assert judged["suite_pending"] == []

    def killed(*_args, **_kwargs):
        raise RuntimeError("killed before the suites ran")

    with monkeypatch.context() as patch, pytest.raises(RuntimeError, match="killed before the suites ran"):
        patch.setattr("consult.sync.judge_loaded", killed)
        _sync(field, db, full=True, forms=[province])
    waiting = snapshot(engine)
    with engine.connect() as conn:
        s = submissions.c
        live = set(conn.execute(select(s.instance_id).where(s.form_id == province, s.deleted_at.is_(None))).scalars())
    assert {row for _, row, _ in waiting["suite_pending"]} == live
    assert waiting["validation_failures"] != judged["validation_failures"], \
        "some failures are the suites' own, so they are missing until the suites run"

    after = _sync(field, db)
    assert all(s.not_modified for s in after), "Central answers 304: nothing new since the first sync"
    assert _submissions_data(snapshot(engine)) == _submissions_data(judged)
    engine.dispose()


def test_one_login_per_run_shared_by_every_form_and_renewed_when_it_expires(field: Field, tmp_path: Path):
    before = _logins(field)
    first = _sync(field, f"sqlite:///{tmp_path / 'one.db'}", write_back=True)
    assert len(first) == len(FORM_IDS)
    assert _logins(field) == before + 1, "one POST /v1/sessions for the five forms, their pages and write-backs"

    expired: list[str] = []

    def expire_once(summary: SyncSummary) -> None:
        if not expired and summary.pages:
            _expire_sessions(field)
            expired.append(summary.form_id)

    second = _sync(field, f"sqlite:///{tmp_path / 'two.db'}", progress=expire_once, write_back=True)
    assert expired and _logins(field) == before + 3, "the second run logged in once, then once more on expiry"
    assert [s.pulled for s in second] == [s.pulled for s in first]
    assert _total(second, "quarantined") == _total(first, "quarantined")


def test_the_collect_qr_code_names_centrals_project_when_the_config_gives_its_id(
        field: Field, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import zxingcpp
    from PIL import Image

    monkeypatch.setenv("CONSULT_CENTRAL_PROJECT", str(field.project_id))
    teams = tmp_path / "teams.toml"
    teams.write_text('[[teams]]\nname = "Đội Trà Vinh"\nforms = ["province_consultation"]\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["teams", "--teams", str(teams), "--out", str(tmp_path / "qr")])
    assert result.exit_code == 0, result.output
    (code,) = zxingcpp.read_barcodes(Image.open(tmp_path / "qr" / "doi-tra-vinh.png"))
    settings = decode_settings(code.text)
    assert settings["project"]["name"] == f"{PROJECT} – Đội Trà Vinh"
    assert settings["general"]["server_url"].endswith(f"/projects/{field.project_id}")


def test_importing_the_cli_loads_no_great_expectations_pandas_or_prefect():
    probe = f"import sys, consult.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_no_op_consult_sync_runs_without_prefect_and_without_loading_gx_or_pandas(field: Field, tmp_path: Path):
    """No Prefect API configured: the same run in-process, no temporary Prefect server, and with
    nothing new (five 304s) no validation library either."""
    db = f"sqlite:///{tmp_path / 'reporting.db'}"
    _sync(field, db)
    env = field.env(db) | {"PREFECT_PROFILES_PATH": str(tmp_path / "no-profiles.toml"), "COLUMNS": "200"}
    env.pop("PREFECT_API_URL", None)
    probe = ("import sys\nfrom consult.cli import app\n"
             f"app(['sync', '--build-dir', {str(field.built.out_dir)!r}, '--reports', {str(tmp_path / 'r')!r},"
             " '--page-size', '40'],"
             " standalone_mode=False)\n"
             f"print('loaded:', [m for m in {HEAVY!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("(not modified)") >= len(FORM_IDS), done.stdout
    assert done.stdout.strip().splitlines()[-1] == "loaded: []"
    engine = create_engine_for(db)
    with engine.connect() as conn:
        statuses = conn.execute(select(sync_runs.c.status).order_by(sync_runs.c.id)).scalars().all()
    engine.dispose()
    assert statuses == ["succeeded", "succeeded"]


def test_consult_sync_finds_a_configured_prefect_api_where_prefect_looks(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch):
    """Configured: the flow runs there (history, retries, artifacts); not configured: no temporary server."""
    from consult.sync import prefect_api_url

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    profiles = tmp_path / "profiles.toml"
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(profiles))
    assert prefect_api_url() is None
    profiles.write_text('active = "office"\n[profiles.office]\nPREFECT_API_URL = "http://10.0.0.5:4200/api"\n'
                        '[profiles.ephemeral]\n', encoding="utf-8")
    assert prefect_api_url() == "http://10.0.0.5:4200/api"
    monkeypatch.setenv("PREFECT_PROFILE", "ephemeral")
    assert prefect_api_url() is None
    (tmp_path / "prefect.toml").write_text('[api]\nurl = "http://127.0.0.1:4200/api"\n', encoding="utf-8")
    assert prefect_api_url() == "http://127.0.0.1:4200/api"
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example:4200/api")
    assert prefect_api_url() == "http://prefect.example:4200/api"
