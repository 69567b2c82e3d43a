"""`consult forms lint` on deliberately broken copies of the real forms.

Each case breaks one thing the way a person editing the XLSForm in Excel would, and
checks that the error names the file, sheet, row and column where it is, without a
traceback, and that the untouched forms pass.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from consult.cli import app
from consult.forms import FormIssue, Severity, check_form

from .conftest import FORMS

EN = "English (en)"
VI = "Tiếng Việt (vi)"


class FormCopy:
    """A copy of one real XLSForm, with its media, to break in one place."""

    def __init__(self, tmp_path: Path, form_id: str):
        self.dir = tmp_path / "forms"
        shutil.copytree(FORMS.media_dir, self.dir / "media")
        shutil.copy(FORMS.forms_dir / "consult.toml", self.dir / "consult.toml")
        self.path = self.dir / f"{form_id}.xlsx"
        shutil.copy(FORMS.forms_dir / f"{form_id}.xlsx", self.path)
        self.book = openpyxl.load_workbook(self.path)

    def _column(self, sheet: str, header: str) -> int:
        headers = [c.value for c in self.book[sheet][1]]
        if header not in headers:
            self.book[sheet].cell(row=1, column=len(headers) + 1).value = header
            return len(headers) + 1
        return headers.index(header) + 1

    def row_of(self, sheet: str, name: str, list_name: str | None = None) -> int:
        ws = self.book[sheet]
        name_col, list_col = self._column(sheet, "name"), (self._column(sheet, "list_name") if list_name else None)
        for row in range(2, ws.max_row + 1):
            if ws.cell(row, name_col).value == name and (
                    list_col is None or ws.cell(row, list_col).value == list_name):
                return row
        raise KeyError(name)

    def set(self, sheet: str, row: int, header: str, value: object) -> FormCopy:
        self.book[sheet].cell(row=row, column=self._column(sheet, header)).value = value
        return self

    def append(self, sheet: str, values: dict[str, object]) -> int:
        ws = self.book[sheet]
        row = ws.max_row + 1
        for header, value in values.items():
            self.set(sheet, row, header, value)
        return row

    def check(self, previous=None) -> list[FormIssue]:
        self.book.save(self.path)
        report = check_form(self.path, self.dir / "media", previous)
        return [i for i in report.issues if i.severity is Severity.ERROR]


def _one(issues: list[FormIssue], fragment: str) -> FormIssue:
    matching = [i for i in issues if fragment in i.message]
    assert matching, f"no issue mentions {fragment!r}: {[str(i) for i in issues]}"
    return matching[0]


@pytest.fixture
def province(tmp_path: Path) -> FormCopy:
    return FormCopy(tmp_path, "province_consultation")


def test_the_real_forms_pass_lint_with_odk_validate(tmp_path: Path) -> None:
    for path in FORMS.xlsforms():
        report = check_form(path, FORMS.media_dir)
        assert report.ok, [str(i) for i in report.issues]
        assert report.compiled is not None and "<h:html" in report.compiled.xform


def test_missing_english_label_names_sheet_row_and_column(province: FormCopy) -> None:
    row = province.row_of("survey", "staff_days")
    issue = _one(province.set("survey", row, f"label::{EN}", None).check(), f"label missing in {EN}")
    assert (issue.sheet, issue.row, issue.column) == ("survey", row, f"label::{EN}")
    assert str(issue).startswith(f"{province.path}, sheet survey, row {row}, column label::{EN}: error:")


def test_missing_vietnamese_hint_when_english_hint_given(province: FormCopy) -> None:
    row = province.row_of("survey", "budget_mvnd")
    issue = _one(province.set("survey", row, f"hint::{EN}", "Per year").check(), f"hint missing in {VI}")
    assert (issue.row, issue.column) == (row, f"hint::{VI}")


def test_constraint_without_message(province: FormCopy) -> None:
    row = province.row_of("survey", "respondent_name")
    issues = province.set("survey", row, "constraint", ". != 'x'").set(
        "survey", row, f"constraint_message::{VI}", None).check()
    issue = _one(issues, "has no message in Tiếng Việt (vi)")
    assert (issue.sheet, issue.row, issue.column) == ("survey", row, f"constraint_message::{VI}")


def test_untranslated_label_column(province: FormCopy) -> None:
    issue = _one(province.set("survey", 2, "label", "Start").check(), "column 'label' has no language")
    assert (issue.sheet, issue.row, issue.column) == ("survey", 1, "label")


def test_choice_label_missing_a_language(province: FormCopy) -> None:
    row = province.row_of("choices", "dard", list_name="agency")
    issue = _one(province.set("choices", row, f"label::{VI}", None).check(), f"label missing in {VI}")
    assert (issue.sheet, issue.row, issue.column) == ("choices", row, f"label::{VI}")


def test_unused_choice_list(province: FormCopy) -> None:
    row = province.append("choices", {"list_name": "orphan", "name": "a", f"label::{VI}": "A", f"label::{EN}": "A"})
    issue = _one(province.check(), "choice list 'orphan' is not used")
    assert (issue.sheet, issue.row, issue.column) == ("choices", row, "list_name")


def test_undefined_choice_list(province: FormCopy) -> None:
    row = province.row_of("survey", "agency")
    issue = _one(province.set("survey", row, "type", "select_one agencies").check(), "'agencies' is not defined")
    assert (issue.sheet, issue.row, issue.column) == ("survey", row, "type")


def test_choice_name_with_a_space(province: FormCopy) -> None:
    row = province.row_of("choices", "dard", list_name="agency")
    issue = _one(province.set("choices", row, "name", "da rd").check(), "choice name 'da rd'")
    assert (issue.sheet, issue.row, issue.column) == ("choices", row, "name")


@pytest.mark.parametrize("name, fragment", [
    ("Staff Days", "not safe for SQL and OData"),
    ("staff-days", "not safe for SQL and OData"),
    ("2staff", "not safe for SQL and OData"),
    ("order", "SQL reserved word"),
    ("respondent_name", "already used on row"),
])
def test_unsafe_or_duplicate_names(province: FormCopy, name: str, fragment: str) -> None:
    row = province.row_of("survey", "staff_days")
    issue = _one(province.set("survey", row, "name", name).check(), fragment)
    assert (issue.sheet, issue.row, issue.column) == ("survey", row, "name")


def test_reference_to_an_unknown_question(province: FormCopy) -> None:
    row = province.row_of("survey", "mpi_2215_used")
    issue = _one(province.set("survey", row, "relevant", "${mpi_letter} = 'yes'").check(), "${mpi_letter}")
    assert (issue.sheet, issue.row, issue.column) == ("survey", row, "relevant")


def test_choice_filter_on_a_column_the_list_lacks(tmp_path: Path) -> None:
    form = FormCopy(tmp_path, "workshop_evaluation")
    row = form.row_of("survey", "province")
    issue = _one(form.set("survey", row, "choice_filter", "workshops = ${workshop}").check(), "'workshops'")
    assert (issue.sheet, issue.row, issue.column) == ("survey", row, "choice_filter")


def test_missing_media_file(tmp_path: Path) -> None:
    form = FormCopy(tmp_path, "workshop_evaluation")
    (form.dir / "media" / "provinces.csv").unlink()
    issue = _one(form.check(), "media file 'provinces.csv' not found")
    assert (issue.sheet, issue.column) == ("survey", "type")


def test_media_row_without_english_label(tmp_path: Path) -> None:
    form = FormCopy(tmp_path, "workshop_evaluation")
    csv_path = form.dir / "media" / "provinces.csv"
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace(",Cao Bang,", ",,")
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    issue = _one(form.check(), "empty 'label_en'")
    assert (issue.sheet, issue.row, issue.column) == ("provinces.csv", 4, "label_en")


def test_media_column_that_is_not_an_xml_name(tmp_path: Path) -> None:
    form = FormCopy(tmp_path, "workshop_evaluation")
    csv_path = form.dir / "media" / "provinces.csv"
    text = csv_path.read_text(encoding="utf-8")
    csv_path.write_text(text.replace("label_en", f"label::{EN}", 1), encoding="utf-8")
    issue = _one(form.check(), "is not an XML name")
    assert (issue.sheet, issue.row, issue.column) == ("provinces.csv", 1, f"label::{EN}")


def test_broken_constraint_expression_is_caught_by_odk_validate(province: FormCopy) -> None:
    row = province.row_of("survey", "staff_days")
    issues = province.set("survey", row, "constraint", ". >= 0 and and . <= 2000").check()
    assert issues, "a broken XPath must not pass"
    assert any(i.row == row and i.sheet == "survey" for i in issues), [str(i) for i in issues]


def test_unknown_question_type_names_its_row(province: FormCopy) -> None:
    row = province.row_of("survey", "staff_days")
    issue = _one(province.set("survey", row, "type", "intger").check(), "intger")
    assert (issue.sheet, issue.row) == ("survey", row)


@pytest.mark.parametrize("version, fragment", [
    (None, "is not YYYYMMDDNN"),
    ("2026-11-28", "is not YYYYMMDDNN"),
    ("2026133101", "does not start with a real date"),
])
def test_bad_versions(province: FormCopy, version: str | None, fragment: str) -> None:
    issue = _one(province.set("settings", 2, "version", version).check(), fragment)
    assert (issue.sheet, issue.row, issue.column) == ("settings", 2, "version")


def test_version_must_move_forward_when_the_form_changes(province: FormCopy) -> None:
    built = check_form(FORMS.forms_dir / "province_consultation.xlsx", FORMS.media_dir).compiled
    assert built is not None
    previous = built.schema
    assert province.check(previous) == [], "an unchanged form at the same version is fine"

    row = province.row_of("survey", "staff_days")
    province.set("survey", row, f"label::{EN}", "Staff-days per year")
    issue = _one(province.check(previous), "did not")
    assert (issue.sheet, issue.column) == ("settings", "version")

    province.set("settings", 2, "version", str(int(previous.version) + 1))
    assert province.check(previous) == []

    province.set("settings", 2, "version", "2026010101")
    _one(province.check(previous), "older than the one last built")


def test_missing_survey_sheet(province: FormCopy) -> None:
    del province.book["survey"]
    issue = _one(province.check(), "no 'survey' sheet")
    assert issue.sheet == "survey"


def test_a_file_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "notes.xlsx"
    path.write_text("this is not a spreadsheet", encoding="utf-8")
    issues = check_form(path, tmp_path)
    assert not issues.ok
    assert "cannot read the workbook" in issues.issues[0].message


def test_cli_reports_readably_and_fails(province: FormCopy) -> None:
    row = province.row_of("survey", "staff_days")
    province.set("survey", row, f"label::{EN}", None).check()
    result = CliRunner().invoke(app, ["forms", "lint", str(province.path), "--forms-dir", str(province.dir),
                                      "--against", str(province.dir / "none")])
    assert result.exit_code == 1
    output = result.output
    assert f"sheet survey, row {row}, column label::{EN}" in " ".join(output.split())
    assert "Traceback" not in output


def test_cli_build_writes_xforms_and_schemas(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["forms", "build", "--forms-dir", str(FORMS.forms_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for form_id in ("province_consultation", "ministry_consultation", "donor_consultation",
                    "focal_point_registration", "workshop_evaluation", "focal_point_update"):
        assert (out / f"{form_id}.xml").is_file() and (out / f"{form_id}.schema.json").is_file()
    assert (out / "media" / "provinces.csv").read_bytes() == (FORMS.media_dir / "provinces.csv").read_bytes()


def test_build_refuses_a_broken_form_and_keeps_the_last_good_build(province: FormCopy, tmp_path: Path) -> None:
    out = tmp_path / "out"
    runner: Callable = CliRunner().invoke
    assert runner(app, ["forms", "build", str(province.path), "--forms-dir", str(province.dir),
                        "--out", str(out)]).exit_code == 0
    good = (out / "province_consultation.xml").read_text(encoding="utf-8")
    province.set("survey", province.row_of("survey", "staff_days"), "type", "intger").check()
    result = runner(app, ["forms", "build", str(province.path), "--forms-dir", str(province.dir), "--out", str(out)])
    assert result.exit_code == 1
    assert (out / "province_consultation.xml").read_text(encoding="utf-8") == good


def _reader_only(tmp_path: Path, lists_in_toml: bool) -> FormCopy:
    """province_consultation reading focal_points.csv without registering anyone (no entities sheet)."""
    form = FormCopy(tmp_path, "province_consultation")
    del form.book["entities"]
    save_to = form._column("survey", "save_to")
    for row in range(2, form.book["survey"].max_row + 1):
        form.book["survey"].cell(row, save_to).value = None
    toml = (FORMS.forms_dir / "consult.toml").read_text(encoding="utf-8")
    if not lists_in_toml:
        toml = toml.split("[entity_lists.")[0]
    (form.dir / "consult.toml").write_text(toml, encoding="utf-8")
    assert not (form.dir / "media" / "focal_points.csv").exists()
    return form


def test_a_list_csv_declared_nowhere_is_one_clear_error(tmp_path: Path) -> None:
    form = _reader_only(tmp_path, lists_in_toml=False)
    issue = _one(form.check(), "media file 'focal_points.csv' not found")
    assert "no form here declares an entity list 'focal_points'" in issue.message
    assert "[entity_lists.focal_points] in consult.toml" in issue.message
    assert (issue.sheet, issue.row, issue.column) == ("survey", form.row_of("survey", "focal_point"), "type")


def test_a_list_csv_needs_no_file_when_the_registration_form_declares_the_list(tmp_path: Path) -> None:
    """The registration's entities sheet declares focal_points and its save_to columns are the CSV's
    columns, so a choice filter on a property the list lacks is still caught."""
    form = _reader_only(tmp_path, lists_in_toml=False)
    shutil.copy(FORMS.forms_dir / "focal_point_registration.xlsx", form.dir)
    assert form.check() == []
    row = form.row_of("survey", "focal_point")
    issue = _one(form.set("survey", row, "choice_filter", "email = ${email}").check(), "'email'")
    assert "columns: __version, agency, full_name, label, name, phone, position, province, stakeholder_type" \
        in issue.message
    assert (issue.sheet, issue.row, issue.column) == ("survey", row, "choice_filter")


def test_a_list_csv_needs_no_file_when_consult_toml_names_the_list(tmp_path: Path) -> None:
    assert _reader_only(tmp_path, lists_in_toml=True).check() == []


def test_the_forms_build_without_a_copy_of_the_list_csv(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["forms", "build", "--forms-dir", str(FORMS.forms_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert not (FORMS.media_dir / "focal_points.csv").exists()
    assert sorted(p.name for p in (out / "media").iterdir()) == ["provinces.csv"]
    assert (out / "focal_point_update.xml").is_file()
