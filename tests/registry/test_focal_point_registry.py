"""The focal-point registry end to end (issue 18), on a sandbox with ISG's own forms.

ISG's contact sheet (20 people) is imported, twice; ODK's engine registers two provincial teams
(10 more) through focal_point_registration; a province and a ministry consultation pick their
respondent from the focal_points.csv the sandbox serves; focal_point_update changes a phone (version
2), and a second phone that fills the update from the same old list makes a stale update (version 3,
a hard conflict). `consult sync` brings the 30 entities with their versions into the reporting
database and says there is a conflict; the report's coverage table counts them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import openpyxl
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from consult.central import CentralSession, CentralSettings, deploy_forms, resolve_project
from consult.central import built_forms as read_build
from consult.central.entities import EntityListSettings
from consult.cli import app
from consult.sandbox import SandboxServer

from ..conftest import BuiltForms
from ..enumerator.engine import EnumeratorEngine
from ..enumerator.test_forms import (
    Forms,
    Say,
    focal_points,
    ministry_consultation,
    province_consultation,
    registration,
    replaced,
    say,
    without,
)
from ..warehouse.helpers import rows_of

HERE = Path(__file__).resolve().parent
CONTACTS = HERE / "focal_points_contacts.xlsx"
PASSWORD = "registry-end-to-end"

TEAMS = {
    "soc_trang": [("Trần Quốc Toản", "ppc", "Phó Chủ tịch", "0913000001"),
                  ("Lý Thị Kim Chi", "dard", "Trưởng phòng Kế hoạch", "0913000002"),
                  ("Sơn Thị Hồng", "dpi", "Chuyên viên", "0913000003"),
                  ("Đinh Văn Tư", "dof", "", "0913000004"),
                  ("Kim Sóc Kha", "other", "Cán bộ", "")],
    "tra_vinh": [("Thạch Văn Ơn", "ppc", "Chánh Văn phòng", "0914000001"),
                 ("Nguyễn Thị Út", "dard", "Phó Giám đốc", "0914000002"),
                 ("Huỳnh Văn Bé", "dpi", "", "0914000003"),
                 ("Trương Thị Mỹ", "dolisa", "Chuyên viên", "0914000004"),
                 ("Lê Hữu Nghĩa", "extension_centre", "Giám đốc", "0914000005")],
}
"""Two pilot provinces' focal-point teams as the engine registers them: (name, agency, position, phone)."""


def picking(says: list[Say], uuid: str) -> list[Say]:
    """An interview whose respondent is picked from the list: name, position and phone come from it."""
    for name in ("respondent_name", "position", "phone"):
        says = without(says, name)
    return [*replaced(says, "focal_point_listed", "yes"), say("focal_point", uuid)]


class Phone:
    """An enumerator's phone: the forms and the media it downloaded last, filled offline."""

    def __init__(self, built: BuiltForms, engine: EnumeratorEngine, media: Path) -> None:
        self.forms = Forms(built, engine, media)
        self.media = media

    def fill(self, form_id: str, says: list[Say]) -> str:
        result = self.forms.fill(form_id, says)
        assert result.payload_ok, (form_id, result.violations)
        return result.payload_xml

    def options(self, form_id: str, says: list[Say], field: str) -> list[str]:
        return self.forms.fill(form_id, says).options(self.forms.ref(form_id, field))


class Project:
    """The sandbox project, reached as Collect and the Central UI would."""

    def __init__(self, server: SandboxServer, central: CentralSession, project_id: int) -> None:
        self.server, self.central, self.project_id = server, central, project_id

    def submit(self, form_id: str, xml: str) -> None:
        self.central.json("POST", f"projects/{self.project_id}/forms/{form_id}/submissions",
                          data=xml.encode("utf-8"), headers={"Content-Type": "application/xml"})

    def download_media(self, built: BuiltForms, into: Path) -> Path:
        """provinces.csv from the build and focal_points.csv as Central serves it now."""
        into.mkdir()
        shutil.copy(built.media_dir / "provinces.csv", into)
        served = self.central.request("GET", f"projects/{self.project_id}/forms/province_consultation/attachments/"
                                             "focal_points.csv")
        (into / "focal_points.csv").write_bytes(served.content)
        return into

    def entity(self, uuid: str) -> dict:
        return self.central.json("GET", f"projects/{self.project_id}/datasets/focal_points/entities/{uuid}")


@pytest.fixture
def project(tmp_path: Path, built_forms: BuiltForms):
    with SandboxServer(data_dir=tmp_path / "sandbox", admin_password=PASSWORD, worker_interval=0) as server:
        settings = CentralSettings(url=server.url, username=server.admin_email, password=SecretStr(PASSWORD),
                                   project="Đầu mối", retries=1, backoff=0.01, timeout=30)
        with CentralSession(settings) as central:
            project_id = resolve_project(central, settings.project)
            deploy_forms(central, project_id, read_build(built_forms.out_dir),
                         {"focal_points": EntityListSettings("focal_points")})
            yield Project(server, central, project_id)


def test_the_registry_from_contact_sheet_to_coverage_table(project: Project, built_forms: BuiltForms,
                                                           enumerator: EnumeratorEngine, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "CONSULT_"))}
    env |= {"CONSULT_CENTRAL_URL": project.server.url, "CONSULT_CENTRAL_USER": project.server.admin_email,
            "CONSULT_CENTRAL_PASSWORD": PASSWORD, "CONSULT_CENTRAL_PROJECT": str(project.project_id)}
    cli = CliRunner(env=env)

    # 20 people from ISG's contact sheet; the rerun finds them all
    for created, there in ((20, 0), (0, 20)):
        result = cli.invoke(app, ["entities", "import", str(CONTACTS), "--list", "focal_points", "--key", "phone"])
        assert result.exit_code == 0, result.output
        assert f"focal_points: 20 rows, {created} created, {there} already there" in result.output

    # 10 more registered on phones by ODK's engine: two provincial teams, one entity per member
    first_phone = Phone(built_forms, enumerator, project.download_media(built_forms, tmp_path / "media-1"))
    for province, members in TEAMS.items():
        project.submit("focal_point_registration", first_phone.fill("focal_point_registration",
                                                                    registration(province, members)))
    project.server.exhaust_worker()

    # the phones download the list again: 30 focal points, the consultation offers its province's only
    phone = Phone(built_forms, enumerator, project.download_media(built_forms, tmp_path / "media-2"))
    uuids = {p.properties["full_name"]: p.uuid for p in focal_points(phone.media)}
    assert len(uuids) == 30 and "Trần Quốc Toản" in uuids and "Karin Müller" in uuids
    soc_trang = [*[m[0] for m in TEAMS["soc_trang"]], "Trần Văn Minh", "Lâm Thị Ngọc Hân"]
    listed = [say("province", "soc_trang"), say("focal_point_listed", "yes")]
    assert sorted(phone.options("province_consultation", listed, "focal_point")) == sorted(
        uuids[name] for name in soc_trang)
    assert len(phone.options("ministry_consultation", [say("focal_point_listed", "yes")], "focal_point")) == 5

    consulted = {"province_consultation": "Trần Quốc Toản", "ministry_consultation": "Bùi Đức Thắng"}
    interviews = {"province_consultation": province_consultation(), "ministry_consultation": ministry_consultation()}
    for form_id, name in consulted.items():
        says = interviews[form_id]
        if form_id == "province_consultation":
            says = replaced(replaced(says, "province", "soc_trang"), "agency", "ppc")
        xml = phone.fill(form_id, picking(says, uuids[name]))
        assert f"<focal_point>{uuids[name]}</focal_point>" in xml and f"<respondent_name>{name}<" in xml
        project.submit(form_id, xml)

    # a new phone for Lý Thị Kim Chi (version 2), then a phone with the old list changes it again
    chi = uuids["Lý Thị Kim Chi"]
    update = [say("consultation_date", "2004-12-01"), say("interview_mode", "phone"), say("focal_point", chi)]
    project.submit("focal_point_update", phone.fill("focal_point_update", [*update, say("phone", "0913999000")]))
    project.server.exhaust_worker()
    assert (project.entity(chi)["currentVersion"]["version"], project.entity(chi)["conflict"]) == (2, None)
    project.submit("focal_point_update", phone.fill("focal_point_update", [*update, say("phone", "0913111222")]))
    project.server.exhaust_worker()
    assert (project.entity(chi)["currentVersion"]["version"], project.entity(chi)["conflict"]) == (3, "hard")

    # `consult sync` stores every entity with its versions and says there is a conflict
    db_url = f"sqlite:///{tmp_path / 'reporting.db'}"
    result = cli.invoke(app, ["sync", "--db", db_url, "--build-dir", str(built_forms.out_dir),
                              "--reports", str(tmp_path / "reports"), "--no-attachments"])
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("│ focal_points")]
    assert [c.strip() for c in row.split("│")[1:-1]] == ["focal_points", "30", "0", "0", "0", "1", "0"]
    assert "focal_points: 1 entity in conflict" in result.stderr

    assert rows_of(db_url, "SELECT stakeholder_type, count(*) FROM entities__focal_points WHERE deleted_at IS NULL "
                         "GROUP BY stakeholder_type ORDER BY stakeholder_type") == [
        ("donor", 5), ("ministry", 5), ("province", 20)]
    assert rows_of(db_url, f"SELECT label, phone, version, conflict FROM entities__focal_points WHERE uuid = '{chi}'") \
        == [("Lý Thị Kim Chi – Sở Nông nghiệp và PTNT – Sóc Trăng", "0913111222", 3, "hard")]
    versions = rows_of(db_url, "SELECT version, source_form_id, data FROM entity_versions "
                             f"WHERE uuid = '{chi}' ORDER BY version")
    assert [(v, form, json.loads(data)["phone"]) for v, form, data in versions] == [
        (1, "focal_point_registration", "0913000002"), (2, "focal_point_update", "0913999000"),
        (3, "focal_point_update", "0913111222")]
    assert rows_of(db_url, "SELECT count(*) FROM entity_versions") == [(32,)]
    assert rows_of(db_url, "SELECT s.validation_status, c.focal_point FROM province_consultation c JOIN submissions s "
                         "ON s.instance_id = c._instance_id") == [("valid", uuids["Trần Quốc Toản"])]

    # `consult report`: the coverage table counts them, and the workbook holds the registry
    result = cli.invoke(app, ["report", "--db", db_url, "--build-dir", str(built_forms.out_dir), "--lang", "en",
                              "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    sheets = openpyxl.load_workbook(tmp_path / "report" / "findings-en.xlsx", read_only=True)
    by_type = _table(sheets["2.1 Focal points by type"], "Stakeholder type")
    assert by_type == [("Provincial agencies", 20, 1, 19, 1), ("Line ministries", 5, 1, 4, 0),
                       ("Donors, international organisations, projects", 5, 0, 5, 0), ("Total", 30, 2, 28, 1)]
    registry = list(sheets["Focal points"].iter_rows(values_only=True))
    header = next(i for i, row in enumerate(registry) if row and row[0] == "Label")
    entries = [row for row in registry[header + 1:] if row and row[0]]
    assert len(entries) == 30 and any(row[0] == "Lý Thị Kim Chi – Sở Nông nghiệp và PTNT – Sóc Trăng"
                                      for row in entries)
    html = (tmp_path / "report" / "findings-en.html").read_text(encoding="utf-8")
    assert "Focal-point coverage" in html and "Registered focal points never consulted" in html


def _table(sheet, first_header: str) -> list[tuple]:
    """The rows under the header row that starts with `first_header`, up to the first empty row."""
    rows = [tuple(r) for r in sheet.iter_rows(values_only=True)]
    header = next(i for i, r in enumerate(rows) if r and r[0] == first_header)
    table = []
    for row in rows[header + 1:]:
        if not row or row[0] is None:
            break
        table.append(tuple(v for v in row if v is not None))
    return table
