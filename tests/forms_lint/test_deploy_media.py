"""`consult deploy` checks every form's media in the build before any draft exists on Central:
a form that lacks a file is refused with no draft left behind, the others are published."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consult.central import (
    CentralError,
    CentralSession,
    CentralSettings,
    MissingMediaError,
    built_forms,
    deploy_forms,
    resolve_project,
)
from consult.cli import app
from consult.forms import build_forms
from consult.sandbox import SandboxServer

from .forms import write_form

PICTURE: dict = {"survey": [["type", "name", "label", "image"], ["text", "seen", "Seen?", "bird.png"]],
                 "settings": [["form_id", "version"], ["birds", "1"]]}
LIST: dict = {"survey": [["type", "name", "label"], ["select_one_from_file trees.csv", "tree", "Tree"]],
              "settings": [["form_id", "version"], ["trees", "1"]]}
PULL: dict = {"survey": [["type", "name", "label", "calculation"], ["text", "code", "Code", ""],
                         ["calculate", "price", "", "pulldata('prices', 'price', 'code', ${code})"]],
              "settings": [["form_id", "version"], ["prices", "1"]]}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer() as sandbox:
        yield sandbox


@pytest.fixture
def build(tmp_path: Path) -> Path:
    forms = tmp_path / "forms"
    (forms / "media").mkdir(parents=True)
    (forms / "media" / "bird.png").write_bytes(b"\x89PNG not really")
    (forms / "media" / "trees.csv").write_text("name,label\noak,Oak\n", encoding="utf-8")
    (forms / "media" / "prices.csv").write_text("code,price\na,1\n", encoding="utf-8")
    paths = [write_form(forms / "birds.xlsx", PICTURE), write_form(forms / "trees.md", LIST),
             write_form(forms / "prices.xlsx", PULL)]
    out = tmp_path / "build"
    reports = build_forms(paths, forms / "media", out)
    assert all(r.ok for r in reports), [str(i) for r in reports for i in r.issues]
    return out


def _session(server: SandboxServer) -> CentralSession:
    return CentralSession(CentralSettings.model_validate({
        "url": server.url, "username": server.admin_email, "password": server.admin_password,
        "project": "media", "backoff": 0.05}))


def _form(central: CentralSession, project_id: int, form_id: str) -> dict | None:
    try:
        return central.json("GET", f"projects/{project_id}/forms/{form_id}")
    except CentralError as exc:
        assert exc.status == 404, exc
        return None


def test_a_form_missing_media_gets_no_draft_and_the_others_publish(server: SandboxServer, build: Path) -> None:
    (build / "media" / "bird.png").unlink()
    (build / "media" / "prices.csv").unlink()
    with _session(server) as central:
        project_id = resolve_project(central, "Media refusal")
        with pytest.raises(MissingMediaError) as caught:
            deploy_forms(central, project_id, built_forms(build))
        assert caught.value.missing == {"birds": ["bird.png"], "prices": ["prices.csv"]}
        assert [d.form_id for d in caught.value.deployed] == ["trees"]
        assert _form(central, project_id, "birds") is None, "no draft of a refused form"
        assert _form(central, project_id, "prices") is None
        trees = _form(central, project_id, "trees")
        assert trees is not None and trees["publishedAt"]
        attachments = central.json("GET", f"projects/{project_id}/forms/trees/attachments")
        assert [(a["name"], a["exists"]) for a in attachments] == [("trees.csv", True)]


def test_consult_deploy_names_each_refused_form_on_one_line_and_exits_1(server: SandboxServer,
                                                                        build: Path) -> None:
    (build / "media" / "bird.png").unlink()
    env = {"CONSULT_CENTRAL_URL": server.url, "CONSULT_CENTRAL_USER": server.admin_email,
           "CONSULT_CENTRAL_PASSWORD": server.admin_password, "CONSULT_CENTRAL_PROJECT": "Media CLI"}
    result = CliRunner(env=env).invoke(app, ["deploy", "--build-dir", str(build)])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if "not deployed" in line]
    assert len(lines) == 1 and "birds not deployed: bird.png missing" in lines[0]
    assert result.output.count("created") == 2 and "Traceback" not in result.output
    with _session(server) as central:
        project_id = resolve_project(central, "Media CLI", create=False)
        assert _form(central, project_id, "birds") is None
        assert {f["xmlFormId"] for f in central.json("GET", f"projects/{project_id}/forms")} == {"trees", "prices"}
