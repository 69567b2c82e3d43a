"""Focal-point coverage and the registry sheet, from a warehouse that a sandbox and the real sync filled.

The scenario (`registry.py`): 8 focal points imported, 2 registered by province consultations, 1 of the
10 deleted. Valid consultations picked Nguyễn Văn An (twice) and Jane Smith, and registered Đỗ Thị Hoa;
a quarantined one registered Bùi Văn Khoa and another picked Ngô Quốc Hùng; a deleted one picked Lê Thị
Bình; a valid one picked Phạm Thị Dung, whose entity was deleted. Trần Văn Cường has an open conflict.
The ministry consultation predates the registry (no `focal_point` column).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import make_url, text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from consult.central import CentralSession
from consult.cli import app
from consult.findings import compute_findings, write_html, write_workbook
from consult.findings.model import Findings, Section, Table
from consult.findings.registry import focal_point_coverage, registry_sheet
from consult.findings.source import ENTITY_TABLE_PREFIX, Source
from consult.findings.words import Words
from consult.forms import FormSchema
from consult.sandbox import SandboxServer
from consult.warehouse.database import create_engine_for
from consult.warehouse.entities import ensure_list_table, list_table_name
from consult.warehouse.records import table_name

from ..entities.conftest import PASSWORD, settings_for
from ..warehouse.helpers import rows_of
from .conftest import Fieldwork, load_fieldwork
from .registry import Scenario, make_registry
from .test_figures import assert_rows

PROVINCE, MINISTRY, DONOR = "province_consultation", "ministry_consultation", "donor_consultation"


@dataclass(frozen=True)
class Warehouses:
    scenario: Scenario
    isg_url: str
    """ISG's real forms (their consultations without the `focal_point` question yet) with the same registry."""
    postgres_url: str
    """The scenario again, in PostgreSQL."""


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory, field_data: Fieldwork, postgres_url: str,
               _postgres_admin: Engine) -> Iterator[Warehouses]:
    with _postgres_admin.connect() as conn:
        conn.execute(text('CREATE DATABASE "reporting_registry"'))
    try:
        yield from _warehouses(tmp_path_factory, field_data,
                               make_url(postgres_url).set(database="reporting_registry").render_as_string(False))
    finally:
        with _postgres_admin.connect() as conn:
            conn.execute(text('DROP DATABASE "reporting_registry" WITH (FORCE)'))


def _warehouses(tmp_path_factory: pytest.TempPathFactory, field_data: Fieldwork,
                postgres: str) -> Iterator[Warehouses]:
    root = tmp_path_factory.mktemp("registry")
    isg_url = f"sqlite:///{root / 'isg.db'}"
    engine = create_engine_for(isg_url)
    try:
        load_fieldwork(engine, field_data)
    finally:
        engine.dispose()
    with SandboxServer(data_dir=root / "sandbox", admin_password=PASSWORD, worker_interval=0) as server, \
            CentralSession(settings_for(server, "focal-point coverage")) as central:
        scenario = make_registry(central, server, root / "build", f"sqlite:///{root / 'reporting.db'}",
                                 root / "contacts.csv", (postgres,), (isg_url,))
    yield Warehouses(scenario, isg_url, postgres)


@pytest.fixture(scope="module")
def scenario(warehouses: Warehouses) -> Scenario:
    return warehouses.scenario


def as_isg(schemas: dict[str, FormSchema]) -> dict[str, FormSchema]:
    return {f: s.model_copy(update={"profile": "isg"}) for f, s in schemas.items()}


def coverage(scenario: Scenario, lang: str, db_url: str | None = None) -> tuple[Section | None, Table | None]:
    engine = create_engine_for(db_url or scenario.db_url)
    try:
        with engine.connect() as conn:
            src = Source(conn, as_isg(scenario.schemas), lang)  # type: ignore[arg-type]
            return focal_point_coverage(src, Words(lang)), registry_sheet(src, Words(lang))  # type: ignore[arg-type]
    finally:
        engine.dispose()


def test_the_warehouse_holds_what_the_contract_describes(scenario: Scenario) -> None:
    """The fixture itself: the sync stored the registering submission's instance id as version 1's source,
    the validation quarantined the consultations without a respondent, the deletions are recorded."""
    hoa, khoa = scenario.uuids["Đỗ Thị Hoa"], scenario.uuids["Bùi Văn Khoa"]
    assert rows_of(scenario.db_url, "SELECT uuid, source_form_id, source_instance_id FROM entity_versions "
                                  f"WHERE version = 1 AND uuid IN ('{hoa}', '{khoa}') ORDER BY source_instance_id") \
        == sorted([(hoa, PROVINCE, scenario.instances["hoa"]), (khoa, PROVINCE, scenario.instances["khoa"])],
                  key=lambda r: r[2])
    statuses = dict(rows_of(scenario.db_url, "SELECT instance_id, validation_status FROM submissions"))
    assert {tag for tag, i in scenario.instances.items() if statuses[i] == "quarantined"} == {"khoa", "hung"}
    assert rows_of(scenario.db_url, "SELECT instance_id FROM submissions WHERE deleted_at IS NOT NULL") == [
        (scenario.instances["binh"],)]
    assert rows_of(scenario.db_url, "SELECT full_name, version, conflict FROM entities__focal_points "
                                  "WHERE deleted_at IS NOT NULL OR conflict IS NOT NULL ORDER BY version") == [
        ("Phạm Thị Dung", 1, None), ("Trần Văn Cường", 3, "hard")]
    assert "focal_point" not in {c for (_, c, *_) in rows_of(scenario.db_url, f"PRAGMA table_info({MINISTRY})")}
    assert table_name(ENTITY_TABLE_PREFIX, "focal_points") == list_table_name("focal_points")


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_coverage_by_stakeholder_type(scenario: Scenario, lang: str) -> None:
    section, _ = coverage(scenario, lang)
    assert section is not None
    w = Words(lang)  # type: ignore[arg-type]
    assert section.title == {"vi": "Mức độ tiếp cận đầu mối", "en": "Focal-point coverage"}[lang]
    table = section.tables[0]
    assert [c.label for c in table.columns][1:] == {
        "vi": ["Đầu mối đã đăng ký", "Đã tham vấn", "Chưa từng tham vấn", "Xung đột chưa giải quyết"],
        "en": ["Registered focal points", "Consulted", "Never consulted", "Open conflicts"]}[lang]
    # province: An, Bình, Cường, Hoa, Khoa (Dung deleted): An and Hoa consulted, Cường in conflict
    assert table.rows() == [(w.group(PROVINCE), 5, 2, 3, 1), (w.group(MINISTRY), 2, 0, 2, 0),
                            (w.group(DONOR), 2, 1, 1, 0), (w("total"), 9, 3, 6, 1)]


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_coverage_by_province(scenario: Scenario, lang: str) -> None:
    section, _ = coverage(scenario, lang)
    assert section is not None
    table = section.tables[1]
    names = {"vi": ("Thái Nguyên", "Trà Vinh", "An Giang", "Cấp trung ương (không thuộc tỉnh)", "Tổng"),
             "en": ("Thai Nguyen", "Tra Vinh", "An Giang", "National (no province)", "Total")}[lang]
    # the province list's order; Sóc Trăng's only focal point is deleted, so it has no row
    assert table.rows() == [(names[0], 2, 1, 1, 0), (names[1], 1, 0, 1, 1), (names[2], 2, 1, 1, 0),
                            (names[3], 4, 1, 3, 0), (names[4], 9, 3, 6, 1)]


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_the_note_says_what_counts_and_names_the_form_without_the_question(scenario: Scenario, lang: str) -> None:
    section, _ = coverage(scenario, lang)
    assert section is not None
    w = Words(lang)  # type: ignore[arg-type]
    note = section.tables[0].note or ""
    assert note.startswith(w("focal_point_coverage.note"))
    assert w("focal_point_coverage.unlinked").format(forms=w.group(MINISTRY)) in note
    assert w.group(PROVINCE) not in note.removeprefix(w("focal_point_coverage.note"))
    assert {"vi": "cách ly", "en": "Quarantined"}[lang] in note
    assert {"vi": "hội thảo", "en": "workshop"}[lang] in note
    assert section.tables[1].note is None  # said once, under the first table


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_registry_sheet_lists_every_live_focal_point(scenario: Scenario, lang: str) -> None:
    _, sheet = coverage(scenario, lang)
    assert sheet is not None
    w = Words(lang)  # type: ignore[arg-type]
    labels = [c.label for c in sheet.columns]
    assert labels == [w("focal.label"), w("focal.full_name"), w("focal.province"), w("focal.stakeholder_type"),
                      w("focal.agency"), w("focal.position"), w("focal.phone"), w("focal.version"),
                      w("focal.conflict"), w("focal.created_at"), w("focal.updated_at"), w("focal.consultations"),
                      w("focal.uuid")]
    assert [row[0] for row in sheet.rows()] == sorted(row[0] for row in sheet.rows())
    by_name = {row[1]: row for row in sheet.rows()}
    assert len(sheet.rows()) == len(by_name) == 9 and "Phạm Thị Dung" not in by_name
    thai_nguyen = {"vi": "Thái Nguyên", "en": "Thai Nguyen"}[lang]
    an, cuong, hoa, jane = (by_name[n] for n in ("Nguyễn Văn An", "Trần Văn Cường", "Đỗ Thị Hoa", "Jane Smith"))
    assert an[:9] == ("Nguyễn Văn An – Sở NN&PTNT – Thái Nguyên", "Nguyễn Văn An", thai_nguyen, w.group(PROVINCE),
                      "dard", "Phó Giám đốc", "+84 208 999 0001", 2, None)
    assert an[11:] == (2, scenario.uuids["Nguyễn Văn An"])
    assert an[9] is not None and an[10] is not None and an[10] >= an[9]
    assert (cuong[6], cuong[7], cuong[8], cuong[11]) == ("+84 294 111 0003", 3, "hard", 0)
    assert hoa[:7] == ("Đỗ Thị Hoa – Sở Tài chính An Giang", "Đỗ Thị Hoa", "An Giang", w.group(PROVINCE),
                       "Sở Tài chính An Giang", "Kế toán trưởng", None)
    assert (hoa[7], hoa[11]) == (1, 1)
    assert (jane[2], jane[3], jane[11]) == (None, w.group(DONOR), 1)
    assert {n: r[11] for n, r in by_name.items() if r[11]} == {"Nguyễn Văn An": 2, "Đỗ Thị Hoa": 1, "Jane Smith": 1}


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_postgres_gives_the_same_coverage_and_registry(warehouses: Warehouses, lang: str) -> None:
    """Reflection, NULL tests and times read alike on PostgreSQL (aware times) and SQLite (naive UTC)."""
    got, want = (coverage(warehouses.scenario, lang, url) for url in (warehouses.postgres_url,
                                                                     warehouses.scenario.db_url))
    assert got[0] is not None and want[0] is not None and got[1] is not None and want[1] is not None
    for table, reference in zip((*got[0].tables, got[1]), (*want[0].tables, want[1]), strict=True):
        assert [c.label for c in table.columns] == [c.label for c in reference.columns]
        assert_rows(table.rows(), reference.rows(), table.key)
    assert len(got[1].rows()) == 9


def test_no_registry_no_section(tmp_path: Path, field_data: Fieldwork) -> None:
    """A warehouse no entity list was synced into: the section and the sheet are left out, nothing fails."""
    url = f"sqlite:///{tmp_path / 'reporting.db'}"
    engine = create_engine_for(url)
    try:
        load_fieldwork(engine, field_data)
        findings = compute_findings(engine, as_isg(field_data.schemas), "vi")
    finally:
        engine.dispose()
    assert "focal_point_coverage" not in [s.key for s in findings.sections] and findings.appendix == ()


@pytest.fixture(scope="module", params=["vi", "en"])
def isg_findings(request: pytest.FixtureRequest, warehouses: Warehouses, field_data: Fieldwork) -> Findings:
    engine = create_engine_for(warehouses.isg_url)
    try:
        return compute_findings(engine, as_isg(field_data.schemas), request.param)
    finally:
        engine.dispose()


def test_isg_report_has_the_section_after_coverage(isg_findings: Findings) -> None:
    w = Words(isg_findings.lang)
    assert [s.key for s in isg_findings.sections][:3] == ["coverage", "focal_point_coverage", "commitment"]
    by_type = isg_findings.table("focal_point_coverage_by_type")
    # ISG's fieldwork picks from its own registry, not from these 9: every one reads as never consulted,
    # and every consultation form has the question, so the note names none as lacking it
    assert by_type.rows()[-1] == (w("total"), 9, 0, 9, 1)
    for form_id in (PROVINCE, MINISTRY, DONOR):
        assert w.group(form_id) not in (by_type.note or "").removeprefix(w("focal_point_coverage.note"))
    figures = {h.label: h.value for h in isg_findings.headlines}
    assert (figures[w("headline.focal_consulted")], figures[w("headline.focal_never_consulted")]) == (0, 9)
    assert [h.label for h in isg_findings.headlines].index(w("headline.focal_consulted")) == 3


def test_html_shows_the_coverage_tables(isg_findings: Findings, tmp_path: Path) -> None:
    html = write_html(isg_findings, tmp_path / "findings.html").read_text(encoding="utf-8")
    w = Words(isg_findings.lang)
    assert f'<section id="focal_point_coverage"><h2>2. {w("section.focal_point_coverage")}</h2>' in html
    by_province = isg_findings.table("focal_point_coverage_by_province")
    for name, *_ in by_province.rows():
        assert f"<td>{name}</td>" in html
    assert "Nguyễn Văn An" not in html  # the registry itself is the workbook's, not the report's


def test_workbook_has_the_registry_sheet(isg_findings: Findings, tmp_path: Path) -> None:
    book = load_workbook(write_workbook(isg_findings, tmp_path / "findings.xlsx"))
    w = Words(isg_findings.lang)
    name = {"vi": "Đầu mối", "en": "Focal points"}[isg_findings.lang]
    assert book.sheetnames[-1] == name
    sheet = book[name]
    assert sheet["A1"].value == isg_findings.appendix[0].title
    assert [c.value for c in sheet[3]][:3] == [w("focal.label"), w("focal.full_name"), w("focal.province")]
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=4)]
    assert len(rows) == 9
    assert {r[1]: (r[7], r[8]) for r in rows}["Trần Văn Cường"] == (3, "hard")
    assert "Đỗ Thị Hoa – Sở Tài chính An Giang" in [r[0] for r in rows]
    contents = book[book.sheetnames[0]]
    linked = [c.hyperlink.location for c in contents["A"] if c.hyperlink is not None]
    assert f"'{name}'!A1" in linked or f"{name}!A1" in linked


def test_consult_report_pdf_prints_the_section(warehouses: Warehouses, isg_build_dir: Path, tmp_path: Path) -> None:
    """`consult report --pdf` on a warehouse with the registry: the section is in the PDF (contents and
    tables, Vietnamese intact), the registry sheet in the workbook."""
    result = CliRunner().invoke(app, ["report", "--db", warehouses.isg_url, "--build-dir", str(isg_build_dir),
                                      "--lang", "vi", "--out", str(tmp_path), "--pdf"])
    assert result.exit_code == 0, result.output
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "poppler-utils is needed: `make test` installs it"
    pdf = subprocess.run([pdftotext, "-layout", str(tmp_path / "findings-vi.pdf"), "-"], capture_output=True,
                         check=True, timeout=120).stdout.decode("utf-8")
    assert pdf.count("Mức độ tiếp cận đầu mối") >= 2  # the contents and the heading
    assert "Đầu mối đã tham vấn theo loại bên liên quan" in pdf and "Cấp trung ương (không thuộc tỉnh)" in pdf
    assert "Đầu mối" in load_workbook(tmp_path / "findings-vi.xlsx").sheetnames


def test_an_empty_list_and_one_without_the_contracts_properties(scenario: Scenario, tmp_path: Path) -> None:
    """The list as the sync creates it before any entity, then with an entity that has neither a province
    nor a stakeholder type (a list made by other forms), and no consultation tables at all."""
    engine = create_engine_for(f"sqlite:///{tmp_path / 'reporting.db'}")
    try:
        with engine.begin() as conn:
            table = ensure_list_table(conn, "focal_points", ["full_name"])
        empty, empty_sheet = coverage(scenario, "en", str(engine.url))
        assert empty is not None and empty_sheet is not None
        assert [t.rows() for t in empty.tables] == [
            [("Provincial agencies", 0, 0, 0, 0), ("Line ministries", 0, 0, 0, 0),
             ("Donors, international organisations, projects", 0, 0, 0, 0), ("Total", 0, 0, 0, 0)],
            [("Total", 0, 0, 0, 0)]]
        assert empty_sheet.rows() == []
        with engine.begin() as conn:
            conn.execute(table.insert().values(uuid="0d6f3a9e-4a44-4c8e-9d49-2f1f6b1c0a11", project_id=1,
                                               label="Lý Thị Mai", version=1, conflict="soft",
                                               synced_at=datetime(2026, 1, 1), full_name="Lý Thị Mai"))
        section, sheet = coverage(scenario, "en", str(engine.url))
    finally:
        engine.dispose()
    assert section is not None and sheet is not None
    assert section.tables[0].rows()[-2:] == [("Type not given", 1, 0, 1, 1), ("Total", 1, 0, 1, 1)]
    assert section.tables[1].rows() == [("National (no province)", 1, 0, 1, 1), ("Total", 1, 0, 1, 1)]
    assert [c.label for c in sheet.columns][:2] == ["Label", "Full name"]
    assert sheet.rows()[0][:4] == ("Lý Thị Mai", "Lý Thị Mai", 1, "soft")
