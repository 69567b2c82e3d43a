"""consult.central against a real sandbox process over HTTP: deploy, teams, OpenRosa, pull, review."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from pydantic import SecretStr
from typer.testing import CliRunner

from consult.central import (
    BuiltForm,
    CentralConfigError,
    CentralError,
    CentralSession,
    CentralSettings,
    DeployAction,
    DeployError,
    ReviewState,
    SubmissionQuery,
    collect_session,
    count_submissions,
    deploy_forms,
    download_attachments,
    ensure_teams,
    pull_submissions,
    read_teams,
    redact,
    resolve_project,
    submission_ids,
    submit,
    write_qr_codes,
    write_review,
)
from consult.central.pull import safe_filename
from consult.central.review import comments
from consult.central.teams import decode_settings
from consult.cli import app
from consult.sandbox import SandboxServer

from ..conftest import FORM_IDS, REPO, BuiltForms
from ..enumerator.engine import answer

PROJECT = "ISG Consultations"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    """One sandbox for the module; its advertised domain differs from the address we call,
    as behind a proxy, so every absolute link Central builds must be re-based by the client."""
    with SandboxServer(domain="https://central.isg.example.org") as sandbox:
        yield sandbox


def settings_for(server: SandboxServer, **changes: object) -> CentralSettings:
    values = {"url": server.url, "username": server.admin_email, "password": server.admin_password,
              "project": PROJECT, "backoff": 0.05}
    values.update(changes)
    return CentralSettings.model_validate(values)


@pytest.fixture(scope="module")
def central(server: SandboxServer) -> Iterator[CentralSession]:
    with CentralSession(settings_for(server)) as session:
        yield session


@pytest.fixture(scope="module")
def deployed(central: CentralSession, built_forms: BuiltForms) -> tuple[int, list[BuiltForm]]:
    project_id = resolve_project(central, PROJECT)
    forms = [BuiltForm.load(built_forms.out_dir, form_id) for form_id in FORM_IDS]
    first = deploy_forms(central, project_id, forms)
    assert [d.action for d in first] == [DeployAction.CREATED] * len(FORM_IDS)
    return project_id, forms


@pytest.fixture(scope="module")
def team_access(central: CentralSession, deployed):
    project_id, _ = deployed
    return ensure_teams(central, project_id, read_teams(REPO / "forms" / "teams.toml"))


def engine_submission(enumerator, built_forms: BuiltForms, form_id: str, steps: list,
                      media_dir: Path | None = None) -> bytes:
    result = enumerator.fill(built_forms.xform(form_id), steps, media_dir=media_dir or built_forms.media_dir)
    assert result.payload_ok, result.violations
    return result.payload_xml.encode("utf-8")


# --- configuration ------------------------------------------------------------------------------

def test_settings_from_pyodk_toml_then_environment(tmp_path: Path) -> None:
    toml = tmp_path / "pyodk_config.toml"
    toml.write_text('[central]\nbase_url = "https://odk.example.org"\nusername = "analyst@isg.vn"\n'
                    'password = "s3cret-from-file"\ndefault_project_id = 4\n', encoding="utf-8")
    settings = CentralSettings.load(toml, environ={})
    assert (settings.url, settings.username, settings.project) == ("https://odk.example.org", "analyst@isg.vn", "4")
    assert "s3cret-from-file" not in repr(settings) and "s3cret-from-file" not in str(settings.model_dump())
    override = CentralSettings.load(toml, environ={"CONSULT_CENTRAL_PASSWORD": "from-env",
                                                   "CONSULT_CENTRAL_PROJECT": "ISG 2005"})
    assert override.password.get_secret_value() == "from-env" and override.project == "ISG 2005"


def test_missing_settings_name_the_variables(tmp_path: Path) -> None:
    with pytest.raises(CentralConfigError, match="CONSULT_CENTRAL_URL.*CONSULT_CENTRAL_PASSWORD"):
        CentralSettings.load(None, environ={"CONSULT_CENTRAL_USER": "a@b.vn", "HOME": str(tmp_path)})


def test_wrong_password_is_a_clear_error_without_the_password(server: SandboxServer) -> None:
    with CentralSession(settings_for(server, password="not-the-password")) as session:
        with pytest.raises(CentralError) as caught:
            session.json("GET", "projects")
    assert "not-the-password" not in str(caught.value)
    assert "401" in str(caught.value) and "Could not authenticate" in str(caught.value)


def test_unreachable_server_fails_after_bounded_retries() -> None:
    settings = CentralSettings(url="http://127.0.0.1:9", username="a@b.vn", password=SecretStr("pw-xyz"),
                               retries=2, backoff=0.01, timeout=2)
    with CentralSession(settings) as session, pytest.raises(CentralError) as caught:
        session.json("GET", "projects")
    assert "no response" in str(caught.value) and "pw-xyz" not in str(caught.value)


# --- deploy -------------------------------------------------------------------------------------

def test_deploy_publishes_all_forms_with_their_media(central: CentralSession, deployed) -> None:
    project_id, forms = deployed
    for form in forms:
        remote = central.json("GET", f"projects/{project_id}/forms/{form.schema.form_id}")
        assert remote["version"] == form.schema.version and remote["publishedAt"]
        assert remote["hash"] == form.md5
        attachments = central.json("GET", f"projects/{project_id}/forms/{form.schema.form_id}/attachments")
        assert sorted(a["name"] for a in attachments) == sorted(form.schema.media)
        assert all(a["exists"] for a in attachments)


def test_redeploy_changes_nothing(central: CentralSession, deployed) -> None:
    project_id, forms = deployed
    again = deploy_forms(central, project_id, forms)
    assert {d.action for d in again} == {DeployAction.UNCHANGED}


def test_a_changed_form_under_a_published_version_is_refused(central: CentralSession, deployed,
                                                             tmp_path: Path) -> None:
    project_id, forms = deployed
    form = forms[FORM_IDS.index("ministry_consultation")]
    changed = tmp_path / "ministry_consultation.xml"
    changed.write_bytes(form.xml.replace(b"Other comments", b"Any other comments"))
    with pytest.raises(DeployError, match="already published with a different definition"):
        deploy_forms(central, project_id, [BuiltForm(form.schema, changed, form.media_dir)])


def test_a_new_version_goes_through_draft_and_publish(central: CentralSession, server: SandboxServer,
                                                      built_forms: BuiltForms, tmp_path: Path) -> None:
    project_id = resolve_project(central, "Version test")
    form = BuiltForm.load(built_forms.out_dir, "workshop_evaluation")
    registration = BuiltForm.load(built_forms.out_dir, "focal_point_registration")  # makes the list it reads
    assert [d.action for d in deploy_forms(central, project_id, [form, registration])] == [DeployAction.CREATED] * 2
    version = str(int(form.schema.version) + 1)
    newer_xml = tmp_path / "workshop_evaluation.xml"
    newer_xml.write_bytes(form.xml.replace(f'version="{form.schema.version}"'.encode(),
                                           f'version="{version}"'.encode()))
    newer = BuiltForm(form.schema.model_copy(update={"version": version}), newer_xml, form.media_dir)
    result = deploy_forms(central, project_id, [newer])[0]
    assert (result.action, result.attachments) == (DeployAction.UPDATED, ("focal_points.csv", "provinces.csv"))
    versions = central.json("GET", f"projects/{project_id}/forms/workshop_evaluation/versions")
    assert [v["version"] for v in versions] == [version, form.schema.version]


def test_missing_media_stops_the_deploy_before_publishing(central: CentralSession, built_forms: BuiltForms,
                                                          tmp_path: Path) -> None:
    project_id = resolve_project(central, "Missing media test")
    form = BuiltForm.load(built_forms.out_dir, "focal_point_registration")
    empty_media = tmp_path / "media"
    empty_media.mkdir()
    with pytest.raises(DeployError, match="provinces.csv"):
        deploy_forms(central, project_id, [BuiltForm(form.schema, form.xform_path, empty_media)])
    with pytest.raises(CentralError) as caught:
        central.json("GET", f"projects/{project_id}/forms/focal_point_registration")
    assert caught.value.status == 404, "refused before any draft: no form, published or not, on Central"


# --- field teams --------------------------------------------------------------------------------

def test_teams_get_app_users_assignments_and_qr_codes(central: CentralSession, deployed, team_access,
                                                      tmp_path: Path) -> None:
    project_id, _ = deployed
    assert [a.team.name for a in team_access][:2] == ["Đội Thái Nguyên", "Đội Thanh Hoá"]
    assert all(a.created for a in team_access)
    assignments = central.json("GET", f"projects/{project_id}/assignments/forms/app-user")
    pairs = {(a["actorId"], a["xmlFormId"]) for a in assignments}
    for item in team_access:
        assert {(item.app_user_id, f) for f in item.team.forms} <= pairs

    sheet = write_qr_codes(central.settings.base_url, project_id, PROJECT, team_access, tmp_path / "teams")
    assert len(sheet.pngs) == len(team_access)
    assert sheet.pngs[0].name == "doi-thai-nguyen.png" and sheet.pngs[0].read_bytes()[:4] == b"\x89PNG"
    assert stat.S_IMODE(os.stat(sheet.sheet).st_mode) == 0o600, "the sheet holds app-user keys"
    html = sheet.sheet.read_text(encoding="utf-8")
    assert "Đội Thái Nguyên" in html and html.count("data:image/png;base64,") == len(team_access)

    settings = decode_qr(sheet.pngs[0])
    token = team_access[0].token.get_secret_value()
    assert settings["general"]["server_url"] == f"{central.settings.base_url}/v1/key/{token}/projects/{project_id}"
    assert settings["general"]["form_update_mode"] == "match_exactly"
    assert settings["project"]["name"] == f"{PROJECT} – Đội Thái Nguyên"
    formlist = requests.get(f"{central.settings.base_url}/v1/key/{token}/projects/{project_id}/formList",
                            headers={"X-OpenRosa-Version": "1.0"}, timeout=10)
    assert formlist.status_code == 200
    for form_id in team_access[0].team.forms:
        assert f"<formID>{form_id}</formID>" in formlist.text


def decode_qr(png: Path) -> dict:
    """Read the QR code back from the PNG, as ODK Collect's scanner would."""
    import zxingcpp
    from PIL import Image

    (code,) = zxingcpp.read_barcodes(Image.open(png))
    return decode_settings(code.text)


def test_teams_again_change_nothing(central: CentralSession, deployed, team_access) -> None:
    project_id, _ = deployed
    again = ensure_teams(central, project_id, read_teams(REPO / "forms" / "teams.toml"))
    assert [a.app_user_id for a in again] == [a.app_user_id for a in team_access]
    assert not any(a.created or a.assigned for a in again)


# --- OpenRosa and pull --------------------------------------------------------------------------

def province_interview(n_members: int, name: str) -> list:
    steps = [
        answer("/data/interview/consultation_date", "2004-06-15"),
        answer("/data/interview/interview_mode", "in_person"),
        answer("/data/interview/location", "9.6025 105.9739 12.5 4.0"),
        answer("/data/respondent/province", "soc_trang"),
        answer("/data/respondent/agency", "dard"),
        answer("/data/respondent/focal_point_listed", "no"),
        answer("/data/respondent/respondent_name", name),
        answer("/data/planning/cprgs_awareness", "well"),
        answer("/data/planning/mpi_2215_received", "yes"),
        answer("/data/planning/mpi_2215_used", "partly"),
        answer("/data/engagement/interest_level", "5"),
        answer("/data/engagement/willing_to_join", "yes"),
        answer("/data/member_count", str(n_members)),
    ]
    for i in range(1, n_members + 1):
        steps += [answer(f"/data/members[{i}]/member_name", f"Trần Văn Hùng {i}"),
                  answer(f"/data/members[{i}]/member_agency", "dard"),
                  answer(f"/data/members[{i}]/member_gender", "male"),
                  answer(f"/data/members[{i}]/member_role", "lead" if i == 1 else "member")]
    steps += [
        answer("/data/priorities/priority_topics", ["cprgs_ard", "results_based_planning"]),
        answer("/data/priorities/preferred_activities", ["dialogue_meetings"]),
        answer("/data/commitment/staff_days", "120"),
        answer("/data/commitment/budget_mvnd", "250.5"),
        answer("/data/commitment/support_needed", ["training"]),
    ]
    return steps


@pytest.fixture(scope="module")
def submitted(central, deployed, team_access, enumerator, built_forms, tmp_path_factory) -> list[str]:
    """Three engine-made province interviews posted as ODK Collect posts them, the form's
    focal_points.csv as Central serves it."""
    project_id, _ = deployed
    token = team_access[0].token
    media = tmp_path_factory.mktemp("phone-media")
    shutil.copy(built_forms.media_dir / "provinces.csv", media)
    (media / "focal_points.csv").write_bytes(central.request(
        "GET", f"projects/{project_id}/forms/province_consultation/attachments/focal_points.csv").content)
    ids = []
    with collect_session(backoff=0.05) as session:
        for n, name in enumerate(["Nguyễn Thị Hoà", "Lê Văn Đức", "Thạch Thị Sa Ra"], start=1):
            xml = engine_submission(enumerator, built_forms, "province_consultation", province_interview(n, name),
                                    media)
            receipt = submit(session, central.settings.base_url, project_id, token, xml)
            assert receipt.status == 201 and "successful" in receipt.message
            ids.append(xml.split(b"<instanceID>")[1].split(b"</instanceID>")[0].decode())
    return ids


def test_engine_submissions_come_back_through_odata_intact(central, deployed, submitted) -> None:
    project_id, _ = deployed
    query = SubmissionQuery(project_id, "province_consultation", page_size=2)
    pages = list(pull_submissions(central, query))
    assert [len(p.rows) for p in pages] == [2, 1], "nextLink followed to the end"
    assert {p.count for p in pages} == {3}, "Central puts the total count on every page"
    rows = {row["__id"]: row for page in pages for row in page.rows}
    assert set(rows) == set(submitted)
    hoa = rows[submitted[0]]
    assert hoa["respondent"]["respondent_name"] == "Nguyễn Thị Hoà"
    assert hoa["respondent"]["province"] == "soc_trang"
    assert hoa["interview"]["location"]["coordinates"] == [105.9739, 9.6025, 12.5]
    assert hoa["interview"]["location"]["properties"] == {"accuracy": 4.0}
    assert hoa["commitment"]["staff_days"] == 120 and hoa["commitment"]["budget_mvnd"] == 250.5
    assert hoa["priorities"]["priority_topics"] == "cprgs_ard results_based_planning"
    sa_ra = rows[submitted[2]]
    assert [m["member_name"] for m in sa_ra["members"]] == ["Trần Văn Hùng 1", "Trần Văn Hùng 2",
                                                            "Trần Văn Hùng 3"]
    assert [m["member_role"] for m in sa_ra["members"]] == ["lead", "member", "member"]
    assert all(len(m["__id"]) == 40 for m in sa_ra["members"])
    assert hoa["__system"]["formVersion"] == deployed[1][0].schema.version


def test_identical_resend_is_accepted_and_counted_once(central, deployed, team_access, submitted, enumerator,
                                                       built_forms) -> None:
    project_id, _ = deployed
    query = SubmissionQuery(project_id, "province_consultation")
    xml = central.request("GET", f"projects/{project_id}/forms/province_consultation/submissions/"
                                 f"{submitted[0]}.xml").content
    with collect_session() as session:
        assert submit(session, central.settings.base_url, project_id, team_access[0].token, xml).status == 201
        changed = xml.replace("Nguyễn Thị Hoà".encode(), "Nguyễn Thị Hòa".encode())
        with pytest.raises(CentralError) as conflict:
            submit(session, central.settings.base_url, project_id, team_access[0].token, changed)
    assert conflict.value.status == 409
    assert team_access[0].token.get_secret_value() not in str(conflict.value), "the key is masked"
    assert "/v1/key/***/" in str(conflict.value)
    assert count_submissions(central, query) == 3


def test_incremental_pull_and_conditional_get(central, deployed, submitted) -> None:
    project_id, _ = deployed
    everything = list(pull_submissions(central, SubmissionQuery(project_id, "province_consultation")))
    watermark = max(p.last_change for p in everything)
    etag = everything[0].etag
    assert etag and etag.startswith('W/"')
    later = SubmissionQuery(project_id, "province_consultation", since=watermark, overlap=timedelta(0))
    assert [row for page in pull_submissions(central, later) for row in page.rows] == []
    with_overlap = SubmissionQuery(project_id, "province_consultation", since=watermark)
    assert len([row for page in pull_submissions(central, with_overlap) for row in page.rows]) == 3
    unchanged = list(pull_submissions(central, SubmissionQuery(project_id, "province_consultation"), etag=etag))
    assert len(unchanged) == 1 and unchanged[0].not_modified and unchanged[0].rows == []
    assert SubmissionQuery(project_id, "x", since=datetime(2026, 11, 28, 18, 41, 28, 36000, tzinfo=UTC),
                           overlap=timedelta(0)).odata_filter() == (
        "__system/submissionDate gt 2026-11-28T18:41:28.036Z or __system/updatedAt gt 2026-11-28T18:41:28.036Z")


def test_review_write_back_and_deleted_submissions(central, deployed, submitted) -> None:
    project_id, _ = deployed
    write_review(central, project_id, "province_consultation", submitted[1], ReviewState.HAS_ISSUES,
                 "staff_days vượt quá giới hạn / staff_days out of range")
    assert comments(central, project_id, "province_consultation", submitted[1]) == [
        "staff_days vượt quá giới hạn / staff_days out of range"]
    query = SubmissionQuery(project_id, "province_consultation")
    states = {row["__id"]: row["__system"]["reviewState"]
              for page in pull_submissions(central, query) for row in page.rows}
    assert states[submitted[1]] == "hasIssues"

    central.request("DELETE", f"projects/{project_id}/forms/province_consultation/submissions/{submitted[2]}")
    assert submission_ids(central, project_id, "province_consultation") == set(submitted[:2])
    deleted = SubmissionQuery(project_id, "province_consultation", deleted=True)
    rows = [row for page in pull_submissions(central, deleted) for row in page.rows]
    assert [r["__id"] for r in rows] == [submitted[2]] and rows[0]["__system"]["deletedAt"]
    central.request("POST", f"projects/{project_id}/forms/province_consultation/submissions/{submitted[2]}/restore")
    assert submission_ids(central, project_id, "province_consultation") == set(submitted)


def test_attachments_download_once_and_stay_in_their_folder(central, deployed, team_access, tmp_path) -> None:
    project_id, _ = deployed
    xml = ('<data xmlns:orx="http://openrosa.org/xforms" id="focal_point_registration" version="{v}">'
           '<decision><province>an_giang</province><decision_photo>quyết định.jpg</decision_photo></decision>'
           '<meta><instanceID>uuid:5c1e0d7e-1111-4c5e-9a57-000000000001</instanceID></meta></data>'
           ).format(v=deployed[1][FORM_IDS.index("focal_point_registration")].schema.version).encode()
    with collect_session() as session:
        submit(session, central.settings.base_url, project_id, team_access[0].token, xml,
               {"quyết định.jpg": b"\xff\xd8\xff\xe0 fake jpeg"})
    dest = tmp_path / "media"
    first = download_attachments(central, project_id, "focal_point_registration",
                                 "uuid:5c1e0d7e-1111-4c5e-9a57-000000000001", dest)
    assert [(a.name, a.downloaded) for a in first] == [("quyết định.jpg", True)]
    assert (dest / "quyết định.jpg").read_bytes() == b"\xff\xd8\xff\xe0 fake jpeg"
    second = download_attachments(central, project_id, "focal_point_registration",
                                  "uuid:5c1e0d7e-1111-4c5e-9a57-000000000001", dest)
    assert [a.downloaded for a in second] == [False], "same content: Central answers 304"


@pytest.mark.parametrize("name, expected", [
    ("photo.jpg", "photo.jpg"), ("../../etc/passwd", "passwd"), ("..\\..\\boot.ini", "boot.ini"),
    ("a/b/ảnh.jpg", "ảnh.jpg"), ("x\x00y.png", "x_y.png"),
])
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


@pytest.mark.parametrize("name", ["..", "/", "", " . "])
def test_unusable_attachment_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        safe_filename(name)


# --- the commands -------------------------------------------------------------------------------

def test_consult_deploy_and_teams_commands_are_idempotent(server: SandboxServer, built_forms: BuiltForms,
                                                          tmp_path: Path) -> None:
    env = {"CONSULT_CENTRAL_URL": server.url, "CONSULT_CENTRAL_USER": server.admin_email,
           "CONSULT_CENTRAL_PASSWORD": server.admin_password, "CONSULT_CENTRAL_PROJECT": "CLI project"}
    runner = CliRunner(env=env)
    first = runner.invoke(app, ["deploy", "--build-dir", str(built_forms.out_dir)])
    assert first.exit_code == 0, first.output
    assert first.output.count("created") == len(FORM_IDS)
    second = runner.invoke(app, ["deploy", "--build-dir", str(built_forms.out_dir)])
    assert second.exit_code == 0 and second.output.count("unchanged") == len(FORM_IDS)
    teams = runner.invoke(app, ["teams", "--teams", str(REPO / "forms" / "teams.toml"), "--out",
                                str(tmp_path / "teams")])
    assert teams.exit_code == 0, teams.output
    assert (tmp_path / "teams" / "index.html").is_file()
    again = runner.invoke(app, ["teams", "--teams", str(REPO / "forms" / "teams.toml"), "--out",
                                str(tmp_path / "teams")])
    assert again.exit_code == 0 and "(new)" not in again.output
    for output in (first.output, second.output, teams.output, again.output):
        assert server.admin_password not in output
    bad = CliRunner(env={**env, "CONSULT_CENTRAL_PASSWORD": "wrong-password-123"}).invoke(
        app, ["deploy", "--build-dir", str(built_forms.out_dir)])
    assert bad.exit_code == 1 and "401" in bad.output and "wrong-password-123" not in bad.output
    assert "Traceback" not in bad.output


def test_app_user_keys_are_masked_in_urls_and_in_urllib3_request_logs(server: SandboxServer,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    key = "a" * 60 + "!$zz"
    assert redact(f"http://h/v1/key/{key}/projects/1/submission?x=1") == "http://h/v1/key/***/projects/1/submission?x=1"
    assert redact("http://h/v1/test/abc/projects/1/forms/f/draft") == "http://h/v1/test/***/projects/1/forms/f/draft"
    caplog.set_level(logging.DEBUG, logger="urllib3")
    session = collect_session(retries=0)
    session.head(f"{server.url}/v1/key/{key}/projects/1/formList", timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    assert any("/v1/key/***/projects/1/formList" in line for line in lines), lines
    assert not any(key in line for line in lines)
