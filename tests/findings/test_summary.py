"""A report for any form: ISG's findings for ISG's forms, an automatic section for every other form in
the database, and the forms it cannot summarise named. The expected figures are worked out by hand
from the answers in `foreign.py` (valid submissions only)."""

from __future__ import annotations

import re
import unicodedata
import zipfile
from datetime import date
from html import escape
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.engine import Engine

from consult.findings import (
    Findings,
    Section,
    Table,
    compute_findings,
    markdown_summary,
    write_html,
    write_workbook,
)
from consult.findings.compute import isg_forms
from consult.findings.markdown import md
from consult.findings.summary import QUOTE, _quote
from consult.forms import FormSchema
from consult.warehouse.database import create_engine_for
from consult.warehouse.records import FormLayout

from .foreign import FORMULA, SCRIPT, ForeignForms, load_foreign

LABELS = {
    "vi": {"overview": "Số phiếu", "numbers": "Câu hỏi dạng số", "repeats": "Nhóm lặp: số mục mỗi phiếu",
           "text": "Câu hỏi trả lời tự do", "verbatim": "Một số câu trả lời nguyên văn",
           "locations": "Câu hỏi vị trí", "by_week": "theo tuần", "distribution": "phân bố"},
    "en": {"overview": "Submissions", "numbers": "Number questions",
           "repeats": "Repeats: entries per submission", "text": "Free-text questions",
           "verbatim": "Some verbatim answers", "locations": "Location questions",
           "by_week": "by week", "distribution": "distribution"},
}


@pytest.fixture(scope="module", params=["vi", "en"])
def findings(request: pytest.FixtureRequest, mixed_engine: Engine,
             mixed_schemas: dict[str, FormSchema]) -> Findings:
    return compute_findings(mixed_engine, mixed_schemas, request.param)


def section(findings: Findings, form_id: str) -> Section:
    return next(s for s in findings.sections if s.key == f"form-{form_id}")


def table(findings: Findings, form_id: str, title: str) -> Table:
    tables = [t for t in section(findings, form_id).tables if t.title == title]
    assert len(tables) == 1, (title, [t.title for t in section(findings, form_id).tables])
    return tables[0]


def word(findings: Findings, key: str) -> str:
    return LABELS[findings.lang][key]


def test_isg_findings_come_first_then_a_section_per_foreign_form(findings: Findings) -> None:
    keys = [s.key for s in findings.sections]
    assert keys[:8] == ["coverage", "commitment", "priorities", "constraints", "donors", "planning",
                        "workshops", "quality"], "ISG's findings are all there"
    assert keys[8:] == ["form-focal_point_update", "form-khao_sat_ho", "form-training_feedback", "unsummarised"], \
        "every other form gets an automatic section, ISG's update form among them"
    assert findings.table("workshop_delegates").rows()[0][1] == 29, "ISG's figures are computed, not zero"
    assert findings.title.startswith(("Đầu mối", "Provincial policy-dialogue"))
    named = [(u.form_id, "consult forms build" in u.reason) for u in findings.unsummarised]
    assert named == [("unbuilt_form", True)]
    assert findings.table("unsummarised-forms").rows()[0][:2] == ("unbuilt_form", 2)
    assert findings.headlines[-1].value == 1, "the key figures say a form was left out"


def test_isg_forms_need_the_isg_profile(schemas: dict[str, FormSchema], foreign_forms: ForeignForms) -> None:
    assert set(isg_forms(schemas)) == set(schemas) - {"focal_point_update"}, "ISG's sections read the five"
    plain = {form_id: s.model_copy(update={"profile": "odk"}) for form_id, s in schemas.items()}
    assert isg_forms(plain) == {}, "without the ISG profile, ISG's forms get the automatic section"
    foreign_isg = {f: s.model_copy(update={"profile": "isg"}) for f, s in foreign_forms.schemas.items()}
    assert isg_forms(foreign_isg) == {}, "ISG's findings read ISG's five forms only"


def test_counts_of_the_english_form(findings: Findings) -> None:
    form = "training_feedback"
    assert table(findings, form, word(findings, "overview")).rows() == [(7, 6, 1)]
    assert "1" in (table(findings, form, word(findings, "overview")).note or "")
    assert table(findings, form, "Attended every session?").rows() == [("Yes", 4, 0.8), ("No", 1, 0.2)]
    topics = table(findings, form, "Topics found useful")
    assert topics.rows() == [("Planning", 3, 0.6), ("Budgeting <b>&</b> finance", 2, 0.4),
                             ("Monitoring", 2, 0.4)]
    numbers = {row[0]: row[1:] for row in table(findings, form, word(findings, "numbers")).rows()}
    assert numbers["Age in years"] == pytest.approx((6, 29, 39.5, 259 / 6, 62))
    assert numbers["Overall rating (0-10)"] == pytest.approx((5, 6.25, 8, 40.75 / 5, 10))
    assert numbers["Children of the participant › Child's age"] == pytest.approx((7, 1, 7, 51 / 7, 16))
    weeks = table(findings, form, f"Date of the session: {word(findings, 'by_week')}").rows()
    assert weeks == [(date(2024, 3, 4), 2), (date(2024, 3, 11), 2), (date(2024, 3, 18), 2)]
    ages = table(findings, form, f"Age in years: {word(findings, 'distribution')}")
    assert [row[:2] for row in ages.rows()] == [(str(age), 1) for age in (29, 34, 38, 41, 55, 62)]
    assert ages.chart is not None
    rating = table(findings, form, f"Overall rating (0-10): {word(findings, 'distribution')}").rows()
    assert len(rating) == 10 and sum(row[1] for row in rating) == 5 and rating[0][1] == rating[-1][1] == 1
    repeats = table(findings, form, word(findings, "repeats")).rows()
    assert repeats == [("Children of the participant", 4, 7, 0, 1, 3)]
    school = table(findings, form, "Children of the participant › Goes to school?")
    assert school.rows() == [("Yes", 4, 4 / 7), ("No", 3, 3 / 7)]
    assert "7" in (school.note or "")
    assert table(findings, form, word(findings, "text")).rows() == [
        ("Participant's name", 6, 5), ("Children of the participant › Child's name", 7, 7)]
    verbatim = table(findings, form, word(findings, "verbatim")).rows()
    assert verbatim[0] == ("Participant's name", "Nguyễn Thị Hoà", 2)
    assert {row[1] for row in verbatim} >= {SCRIPT, FORMULA}
    assert table(findings, form, word(findings, "locations")).rows() == [("Where the training was held", 3)]
    titles = " ".join(t.title for t in section(findings, form).tables)
    assert "Thank you" not in titles and "instanceID" not in titles, "notes and metadata are not questions"
    assert "Quân" not in {row[1] for row in verbatim}, "the quarantined submission is counted nowhere"


def test_vietnamese_only_form_keeps_its_labels_in_either_language(findings: Findings) -> None:
    form = "khao_sat_ho"
    assert section(findings, form).title == "Khảo sát hộ gia đình (khao_sat_ho)"
    assert table(findings, form, "Tỉnh").rows() == [("Sóc Trăng", 3, 0.6), ("Thanh Hoá", 0, 0.0),
                                                    ("Trà Vinh", 2, 0.4)]
    assert table(findings, form, "Nguồn thu nhập chính").rows() == [
        ("Trồng lúa", 3, 0.6), ("Nuôi cá", 2, 0.4), ("Làm thuê", 2, 0.4)]
    assert table(findings, form, word(findings, "verbatim")).rows() == [
        ("Ý kiến của hộ", "Cần thêm vốn vay ưu đãi.", 2), ("Ý kiến của hộ", "Đường giao thông xuống cấp.", 1)]
    assert table(findings, form, word(findings, "overview")).rows() == [(5, 5, 0)]


def test_html_shows_the_sections_escaped(findings: Findings, tmp_path: Path) -> None:
    html = write_html(findings, tmp_path / "report.html").read_text(encoding="utf-8")
    assert unicodedata.is_normalized("NFC", html)
    assert not re.search(r"<script|<b>", html, re.IGNORECASE), "answers and labels never become markup"
    assert escape(SCRIPT) in html and escape(FORMULA) in html and escape("Budgeting <b>&</b> finance") in html
    for form in ("training_feedback", "khao_sat_ho"):
        start = html.index(f'<section id="form-{form}">')
        part = html[start:html.index("</section>", start)]
        assert part.count("<svg") >= 3, "choices, histograms and weeks are drawn"
    assert "Sóc Trăng" in html and "Trồng lúa" in html and "Nguyễn Thị Hoà" in html
    start = html.index('<section id="unsummarised">')
    assert "unbuilt_form" in html[start:]


def test_workbook_has_a_sheet_per_foreign_form_with_inert_text(findings: Findings, tmp_path: Path) -> None:
    path = write_workbook(findings, tmp_path / "report.xlsx")
    book = load_workbook(path)
    names = book.sheetnames
    assert any(n.endswith("training_feedback") for n in names)
    assert any(n.endswith("khao_sat_ho") for n in names)
    assert len(names) == 1 + len([t for s in findings.sections if s.sheet is None for t in s.tables]) + 3  # and focal_point_update
    sheet = book[next(n for n in names if n.endswith("training_feedback"))]
    cells = {c.value: c for row in sheet.iter_rows() for c in row if c.value is not None}
    assert cells[FORMULA].data_type == "s" and cells[FORMULA].quotePrefix
    assert SCRIPT in cells and "Nguyễn Thị Hoà" in cells and "Budgeting <b>&</b> finance" in cells
    households = book[next(n for n in names if n.endswith("khao_sat_ho"))]
    rows = [tuple(c.value for c in row[:3]) for row in households.iter_rows()]
    assert ("Sóc Trăng", 3, 0.6) in rows and ("Trồng lúa", 3, 0.6) in rows
    with zipfile.ZipFile(path) as archive:
        sheets = [archive.read(n).decode("utf-8") for n in archive.namelist()
                  if n.startswith("xl/worksheets/sheet")]
    assert not any("<f>" in xml or "<f " in xml for xml in sheets), "no cell of the workbook is a formula"
    contents = [c.value for row in book[names[0]].iter_rows() for c in row if c.hyperlink]
    assert any("Training feedback" in str(v) for v in contents)


def test_markdown_gives_each_foreign_form_a_line(findings: Findings) -> None:
    summary = markdown_summary(findings)
    for form in ("training_feedback", "khao_sat_ho"):
        assert md(section(findings, form).summary or "") in summary
    assert "unbuilt\\_form" in summary and "<script" not in summary
    assert md(section(findings, "training_feedback").summary or "").startswith("6 ")


def households_table(forms: ForeignForms) -> str:
    return FormLayout.of(forms.schemas["khao_sat_ho"]).table("").name


def test_without_isg_forms_no_isg_finding_appears(foreign_forms: ForeignForms, tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'foreign.db'}")
    try:
        load_foreign(engine, foreign_forms)
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE {households_table(foreign_forms)}"))
        findings = compute_findings(engine, dict(foreign_forms.schemas), "en")
    finally:
        engine.dispose()
    keys = [s.key for s in findings.sections]
    assert keys == ["form-training_feedback", "form-unbuilt_form", "unsummarised"]
    assert findings.title == "Summary report of the collected data"
    assert [(h.label, h.value) for h in findings.headlines] == [
        ("Forms summarised", 2), ("Valid submissions", 13), ("Quarantined submissions", 1),
        ("Forms that could not be summarised", 1)]
    (left_out,) = findings.unsummarised
    assert left_out.form_id == "khao_sat_ho" and "consult sync" in left_out.reason


def test_a_form_that_fails_is_named_and_the_others_are_still_summarised(foreign_forms: ForeignForms,
                                                                        tmp_path: Path) -> None:
    """SQLite keeps whatever a column is given: a household size stored as text breaks the statistics."""
    engine = create_engine_for(f"sqlite:///{tmp_path / 'foreign.db'}")
    try:
        load_foreign(engine, foreign_forms)
        with engine.begin() as conn:
            column = foreign_forms.schemas["khao_sat_ho"].field("so_nguoi").column
            conn.execute(text(f"UPDATE {households_table(foreign_forms)} SET {column} = 'nhiều người'"))
        findings = compute_findings(engine, dict(foreign_forms.schemas), "vi")
    finally:
        engine.dispose()
    (failed,) = findings.unsummarised
    assert failed.form_id == "khao_sat_ho" and failed.reason.startswith("lỗi khi tổng hợp: ")
    assert "nhiều người" in failed.reason
    keys = [s.key for s in findings.sections]
    assert keys == ["form-training_feedback", "form-unbuilt_form", "unsummarised"]
    assert findings.table("unsummarised-forms").rows() == [("khao_sat_ho", 5, failed.reason)]


def test_a_long_answer_is_quoted_cut_within_an_excel_cell() -> None:
    answer = "Ý kiến rất dài. " * 400_000
    quoted = _quote(answer)
    assert len(quoted) == QUOTE < 32_767 and quoted.endswith("…") and answer.startswith(quoted[:-1])
    assert _quote("Ngắn.") == "Ngắn."
