"""The Prefect flows and `consult sync` as an analyst runs them, on Prefect's test harness."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from consult.cli import app
from consult.warehouse.database import create_engine_for
from consult.warehouse.tables import sync_runs

from .conftest import FORM_IDS, REPO, BuiltForms
from .fieldwork_central import PROJECT, Field, field_sandbox


@pytest.fixture
def field(built_forms: BuiltForms) -> Iterator[Field]:
    with field_sandbox(built_forms) as sandbox:
        yield sandbox


@pytest.fixture
def central_env(field: Field, monkeypatch: pytest.MonkeyPatch) -> Field:
    for key, value in field.env("sqlite:///unused.db").items():
        if key.startswith("CONSULT_CENTRAL_"):
            monkeypatch.setenv(key, value)
    return field


def _artifact_rows(key: str) -> list[dict]:
    """The latest artifact of that key: the Prefect API is shared by the whole session's flow runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    async def read() -> list:
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                               sort=ArtifactSort.CREATED_DESC, limit=1)

    (artifact, *_) = asyncio.run(read())
    data = artifact.data
    return json.loads(data) if isinstance(data, str) else data


def test_sync_flow_loads_validates_writes_back_and_reports(prefect_api, central_env: Field, tmp_path: Path):
    from flows.sync_submissions import sync_submissions

    db = f"sqlite:///{tmp_path / 'reporting.db'}"
    summaries = sync_submissions(build_dir=str(central_env.built.out_dir), database=db, write_back=True,
                                 reports_dir=str(tmp_path / "reports"), page_size=50,
                                 attachments_dir=str(tmp_path / "files"))
    assert sorted(s.form_id for s in summaries) == sorted(FORM_IDS)
    photos = list((tmp_path / "files" / "focal_point_registration").rglob("*.jpg"))
    assert photos and sum(int(r["downloaded"]) for r in _artifact_rows("attachments")) == len(photos)
    by_form = {s.form_id: s for s in summaries}
    assert by_form["workshop_evaluation"].pulled == 48, "29 + 19 delegates"
    mistakes = sum(1 for i in central_env.interviews if i.mistake)
    assert sum(s.quarantined for s in summaries) == mistakes
    assert sum(s.written_back for s in summaries) == mistakes
    rows = _artifact_rows("sync-summary")
    assert {r["form_id"] for r in rows} == set(FORM_IDS)
    assert sum(int(r["quarantined"]) for r in rows) == mistakes
    docs = tmp_path / "reports" / "validation" / "index.html"
    assert docs.is_file() and "province_consultation" in docs.read_text(encoding="utf-8")

    again = sync_submissions(build_dir=str(central_env.built.out_dir), database=db, write_back=True,
                             reports_dir=str(tmp_path / "reports"), page_size=50)
    assert [s.form_id for s in again if not s.not_modified or s.pulled] == [], [s.as_row() for s in again]
    engine = create_engine_for(db)
    with engine.connect() as conn:
        runs = conn.execute(select(sync_runs.c.status, sync_runs.c.summary).order_by(sync_runs.c.id)).all()
    engine.dispose()
    assert [status for status, _ in runs] == ["succeeded", "succeeded"], "the flow's runs are in sync_runs too"
    assert json.loads(runs[0].summary)["written_back"] == mistakes


def test_consult_sync_command_runs_the_flow_with_a_progress_table(prefect_api, central_env: Field, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch):
    """With a Prefect API configured, `consult sync` is a flow run there: its summary is an artifact."""
    # in a CLI process the real ones; inside CliRunner they would be the first invocation's, closed after it
    from prefect.settings import PREFECT_API_URL

    import flows.sync_submissions  # noqa: F401 - Prefect sets up its log handlers on the streams of its first import:

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    db = f"sqlite:///{tmp_path / 'reporting.db'}"
    args = ["sync", "--build-dir", str(central_env.built.out_dir), "--db", db, "--reports", str(tmp_path / "r"),
            "--form", "focal_point_registration", "--form", "workshop_evaluation", "--page-size", "7",
            "--attachments-dir", str(tmp_path / "files")]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert list((tmp_path / "files" / "focal_point_registration").rglob("*.jpg")), "the decision photos landed"
    output = " ".join(first.output.split())
    assert "focal_point_registration" in output and "workshop_evaluation" in output
    assert central_env.server.admin_password not in first.output
    assert {r["form_id"] for r in _artifact_rows("sync-summary")} == {"focal_point_registration",
                                                                       "workshop_evaluation"}
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0 and second.output.count("(not modified)") == 2
    unknown = CliRunner().invoke(app, ["sync", "--build-dir", str(central_env.built.out_dir), "--db", db,
                                       "--form", "no_such_form"])
    assert unknown.exit_code == 1 and "no_such_form" in unknown.output and "Traceback" not in unknown.output
    no_pages = CliRunner().invoke(app, [*args, "--page-size", "0"])
    assert no_pages.exit_code == 2 and "--page-size" in no_pages.output


def test_deploy_flow_builds_publishes_and_makes_qr_codes(prefect_api, tmp_path: Path, monkeypatch):
    from consult.sandbox import SandboxServer
    from flows.deploy_forms import deploy_forms_flow

    with SandboxServer() as server:
        for key, value in {"CONSULT_CENTRAL_URL": server.url, "CONSULT_CENTRAL_USER": server.admin_email,
                           "CONSULT_CENTRAL_PASSWORD": server.admin_password,
                           "CONSULT_CENTRAL_PROJECT": PROJECT}.items():
            monkeypatch.setenv(key, value)
        args = dict(forms_dir=str(REPO / "forms"), build_dir=str(tmp_path / "build"),
                    teams_file=str(REPO / "forms" / "teams.toml"), qr_dir=str(tmp_path / "teams"))
        first = deploy_forms_flow(**args)
        assert sorted(d.form_id for d in first) == sorted(FORM_IDS)
        assert {str(d.action) for d in first} == {"created"}
        assert (tmp_path / "teams" / "index.html").is_file()
        assert {str(d.action) for d in deploy_forms_flow(**args)} == {"unchanged"}


def test_a_form_that_fails_fails_the_flow_run_after_the_others_and_sync_runs_says_why(
        prefect_api, central_env: Field, tmp_path: Path):
    """A form built here but never published on Central: its task fails (404, not retried), the other
    form is loaded, the artifact and `sync_runs` keep both, then the run fails."""
    import shutil

    from flows.sync_submissions import sync_submissions

    build = tmp_path / "build"
    shutil.copytree(central_env.built.out_dir, build)
    schema = json.loads((build / "workshop_evaluation.schema.json").read_text(encoding="utf-8"))
    schema["form_id"] = "never_published"
    (build / "never_published.schema.json").write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'reporting.db'}"
    with pytest.raises(Exception, match="never_published"):
        sync_submissions(build_dir=str(build), database=db, forms=["never_published", "focal_point_registration"],
                         reports_dir=str(tmp_path / "reports"))
    rows = {r["form_id"]: r for r in _artifact_rows("sync-summary")}
    assert set(rows) == {"never_published", "focal_point_registration"}
    assert "404" in rows["never_published"]["error"] and rows["focal_point_registration"]["error"] is None
    engine = create_engine_for(db)
    with engine.connect() as conn:
        (run,) = conn.execute(select(sync_runs)).all()
    engine.dispose()
    assert run.status == "failed" and "never_published" in run.error
    assert json.loads(run.summary)["pulled"] == sum(1 for i in central_env.interviews
                                                    if i.form_id == "focal_point_registration")
