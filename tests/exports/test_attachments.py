"""The registrations' decision photos, from a sandbox Central over HTTP to `attachments/`, once.

One registration reaches Central without its photo (the phone sent the XML only): it is
reported missing, never an error, and fetched once the phone sends it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from consult.attachments import MISSING, PRESENT, MissingFile, attachments, sync_attachments
from consult.central import (
    BuiltForm,
    CentralSession,
    CentralSettings,
    collect_session,
    deploy_forms,
    ensure_teams,
    resolve_project,
    submit,
)
from consult.central.teams import FieldTeam
from consult.cli import app
from consult.exports import Format, export_forms
from consult.fieldwork import Interview, fieldwork
from consult.sandbox import SandboxServer
from consult.sync import FormSync, SyncOptions
from consult.warehouse.database import create_engine_for

from ..conftest import BuiltForms

FORM = "focal_point_registration"
PROJECT = "Ảnh quyết định"


@dataclass
class Registrations:
    server: SandboxServer
    settings: CentralSettings
    project_id: int
    token: object
    engine: Engine
    database: str
    interviews: list[Interview]
    """Each with a photo; the first one was sent without it."""

    def resend_first_with_photo(self) -> None:
        first = self.interviews[0]
        with collect_session() as session:
            submit(session, self.settings.base_url, self.project_id, self.token, first.xml, first.attachments)


@pytest.fixture
def registrations(built_forms: BuiltForms, tmp_path: Path) -> Iterator[Registrations]:
    schema = built_forms.schema(FORM)
    interviews = fieldwork({FORM: schema}, seed=1, mistake_rate=0)
    assert len(interviews) == 5 and all(i.attachments for i in interviews)
    database = f"sqlite:///{tmp_path / 'reporting.db'}"
    engine = create_engine_for(database)
    with SandboxServer() as server:
        settings = CentralSettings(url=server.url, username=server.admin_email,
                                   password=server.admin_password, project=PROJECT, backoff=0.05)
        with CentralSession(settings) as central:
            project_id = resolve_project(central, PROJECT)
            deploy_forms(central, project_id, [BuiltForm.load(built_forms.out_dir, FORM)])
            (team,) = ensure_teams(central, project_id, [FieldTeam(name="Đội đăng ký", forms=[FORM])])
            with collect_session() as session:
                for n, interview in enumerate(interviews):
                    submit(session, settings.base_url, project_id, team.token, interview.xml,
                           {} if n == 0 else interview.attachments)
            FormSync(central, engine, project_id, schema, SyncOptions()).run()
        yield Registrations(server, settings, project_id, team.token, engine, database, interviews)
    engine.dispose()


def _run(reg: Registrations, schema, root: Path, calls: list[str] | None = None):
    with CentralSession(reg.settings) as central:
        if calls is not None:
            original = central.request

            def counted(method, path, **kwargs):
                calls.append(path)
                return original(method, path, **kwargs)

            central.request = counted  # type: ignore[method-assign]
        return sync_attachments(central, reg.engine, reg.project_id, schema, root)


def _central_env(reg: Registrations, url: str) -> dict[str, str]:
    return {**os.environ, "CONSULT_CENTRAL_URL": url, "CONSULT_CENTRAL_USER": reg.server.admin_email,
            "CONSULT_CENTRAL_PASSWORD": reg.server.admin_password, "CONSULT_CENTRAL_PROJECT": PROJECT}


def _rows(engine: Engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r.instance_id: dict(r._mapping) for r in conn.execute(select(attachments))}


def test_photos_land_once_a_missing_one_is_reported_and_a_broken_copy_is_fetched_again(
        registrations: Registrations, built_forms: BuiltForms, tmp_path: Path):
    schema = built_forms.schema(FORM)
    root = tmp_path / "attachments"
    first = _run(registrations, schema, root)
    missing, *sent = registrations.interviews
    (photo_name,) = missing.attachments
    assert first.missing == [MissingFile(missing.instance_id, "decision_photo", photo_name)]
    assert (first.submissions, first.downloaded, first.unchanged) == (5, 4, 0)
    rows = _rows(registrations.engine)
    assert rows[missing.instance_id]["on_central"] == MISSING
    assert rows[missing.instance_id]["stored_path"] is None
    for interview in sent:
        (name, content), = interview.attachments.items()
        row = rows[interview.instance_id]
        assert (row["on_central"], row["question"], row["file_name"]) == (PRESENT, "decision_photo", name)
        stored = root / row["stored_path"]
        assert stored.read_bytes() == content and row["size"] == len(content)
        assert stored.parent == root / FORM / interview.instance_id.replace(":", "_"), "a safe folder name"
    times = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}

    calls: list[str] = []
    second = _run(registrations, schema, root, calls)
    assert (second.downloaded, second.unchanged, len(second.missing)) == (0, 4, 1)
    assert calls and all(missing.instance_id in unquote(call) for call in calls), \
        "only the submission with a missing file is asked"
    assert times == {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}

    broken, deleted = (root / rows[i.instance_id]["stored_path"] for i in sent[:2])
    broken.write_bytes(b"x" * broken.stat().st_size)
    deleted.unlink()
    (deleted.parent / ".part-killed").write_bytes(b"half a photo")
    registrations.resend_first_with_photo()
    third = _run(registrations, schema, root)
    assert (third.downloaded, third.unchanged, third.missing) == (3, 2, [])
    assert broken.read_bytes() == sent[0].attachments[broken.name]
    assert deleted.read_bytes() == sent[1].attachments[deleted.name]
    assert not list(root.rglob(".part-*")), "a killed download's leftovers are cleared"
    assert {r["on_central"] for r in _rows(registrations.engine).values()} == {PRESENT}

    (export,) = export_forms(registrations.database, built_forms.out_dir, Format.PARQUET, "vi",
                             tmp_path / "exports", forms=[FORM])
    folder = export.files[0]
    exported = {r["_instance_id"]: r for r in pq.read_table(folder).to_pylist()}
    rows = _rows(registrations.engine)
    stored_paths = {i: r["stored_path"] for i, r in rows.items()}
    assert {i: r["decision_photo_file"] for i, r in exported.items()} == stored_paths


def test_the_cli_downloads_and_names_the_missing_photos_even_of_a_submission_deleted_since_the_sync(
        registrations: Registrations, built_forms: BuiltForms, tmp_path: Path):
    deleted = registrations.interviews[1]
    with CentralSession(registrations.settings) as central:
        central.request("DELETE", f"projects/{registrations.project_id}/forms/{FORM}/submissions/"
                                  f"{deleted.instance_id}")
    out = tmp_path / "files"
    args = ["attachments", "--db", registrations.database, "--build-dir", str(built_forms.out_dir),
            "--out", str(out)]
    result = CliRunner().invoke(app, args, env=_central_env(registrations, registrations.server.url))
    assert result.exit_code == 0, result.output
    assert FORM in result.output and registrations.interviews[0].instance_id in result.output
    assert deleted.instance_id in result.output, "reported, not failed"
    assert len([p for p in out.rglob("*") if p.is_file()]) == 3


def test_the_prefect_flow_downloads_the_photos_and_warns_of_the_missing_one(
        prefect_api, registrations: Registrations, built_forms: BuiltForms, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch):
    from flows.attachments import download_attachments

    for key, value in {"CONSULT_CENTRAL_URL": registrations.server.url,
                       "CONSULT_CENTRAL_USER": registrations.server.admin_email,
                       "CONSULT_CENTRAL_PASSWORD": registrations.server.admin_password,
                       "CONSULT_CENTRAL_PROJECT": PROJECT}.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "attachments"
    (summary,) = download_attachments(build_dir=str(built_forms.out_dir), database=registrations.database,
                                      out_dir=str(out))
    assert summary.form_id == FORM and summary.downloaded == 4 and len(summary.missing) == 1
    (again,) = download_attachments(build_dir=str(built_forms.out_dir), database=registrations.database,
                                    out_dir=str(out))
    assert (again.downloaded, again.unchanged) == (0, 4)


def test_a_run_killed_or_cut_off_mid_download_then_rerun_lands_every_photo_once(
        registrations: Registrations, built_forms: BuiltForms, tmp_path: Path):
    import signal
    import subprocess
    import sys

    from ..conftest import REPO
    from ..hardening.proxy import Fault, FaultProxy

    out = tmp_path / "attachments"
    registrations.resend_first_with_photo()
    with FaultProxy(registrations.server.url) as proxy:
        env = _central_env(registrations, proxy.url)
        command = [sys.executable, "-m", "consult.cli", "attachments", "--db", registrations.database,
                   "--build-dir", str(built_forms.out_dir), "--out", str(out)]

        def run() -> subprocess.Popen:
            return subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)

        process: list[subprocess.Popen] = []
        killed = Fault("drop", match="/attachments/", skip=2,
                       then=lambda: process[0].send_signal(signal.SIGKILL))
        proxy.set(killed)
        process.append(run())
        process[0].communicate(timeout=120)
        proxy.wait_idle()
        assert killed.applied == 1 and process[0].returncode == -signal.SIGKILL
        assert len([p for p in out.rglob("*.jpg")]) == 2, "two photos landed before the kill"

        cut = Fault("cut", match="/attachments/", skip=0)
        proxy.set(cut)
        cut_off = run()
        _, err = cut_off.communicate(timeout=120)
        proxy.wait_idle()
        assert cut.applied == 1 and cut_off.returncode == 1, err.decode()
        assert "Traceback" not in err.decode() and len(err.decode().strip().splitlines()) == 1
        assert not list(out.rglob(".part-*")), "no half photo is left"

        proxy.set(None)
        final = run()
        _, err = final.communicate(timeout=120)
        assert final.returncode == 0, err.decode()
    photos = {p.name: p.read_bytes() for p in out.rglob("*.jpg")}
    assert photos == {name: content for i in registrations.interviews
                      for name, content in i.attachments.items()}
    rows = _rows(registrations.engine)
    assert {r["on_central"] for r in rows.values()} == {PRESENT} and len(rows) == 5
