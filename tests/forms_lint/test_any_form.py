"""Lint and build of forms that are not ISG's: profiles, the readers, ODK Validate's message,
the false positives the ISG-only lint had, and media of every kind."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from consult.cli import app
from consult.forms import (
    FormIssue,
    FormProfiles,
    FormsConfigError,
    FormSources,
    Profile,
    Severity,
    build_forms,
    check_form,
    check_forms,
)

from ..conftest import FORM_IDS, BuiltForms
from .forms import Sheets, line_of, write_form

FOREIGN: Sheets = {
    "survey": [
        ["type", "name", "label::English (en)", "label::Français (fr)", "relevant", "constraint"],
        ["text", "Nom-du.village", "Village", "Village", "", ""],
        ["integer", "Age", "Age", "Âge", "", ". > 0"],
        ["integer", "age_2", "Second age", "", "${Age} > 1", ""],
        ["begin_repeat", "kids", "Kids", "Enfants", "", ""],
        ["text", "kid", "Name", "Nom", "", ""],
        ["end_repeat", "", "", "", "", ""],
    ],
    "settings": [["form_id", "version"], ["foreign_form", "7"]],
}
"""A form from another organisation: two other languages, mixed-case names with '-' and '.',
a constraint without message, a version that is no date, one missing French label."""


def errors(issues: list[FormIssue]) -> list[FormIssue]:
    return [i for i in issues if i.severity is Severity.ERROR]


def _one(issues: list[FormIssue], fragment: str) -> FormIssue:
    matching = [i for i in issues if fragment in i.message]
    assert matching, f"no issue mentions {fragment!r}: {[str(i) for i in issues]}"
    return matching[0]


@pytest.fixture
def forms_dir(tmp_path: Path) -> Path:
    (tmp_path / "forms" / "media").mkdir(parents=True)
    return tmp_path / "forms"


# --- profiles ------------------------------------------------------------------------------------

def test_a_foreign_form_passes_odk_with_warnings_and_fails_isg(forms_dir: Path) -> None:
    path = write_form(forms_dir / "foreign.xlsx", FOREIGN)
    odk = check_form(path, forms_dir / "media")
    assert odk.profile is Profile.ODK and odk.ok, [str(i) for i in odk.issues]
    assert odk.compiled is not None and odk.compiled.schema.profile == "odk"
    warning = _one(odk.issues, "label missing in Français (fr)")
    assert (warning.severity, warning.sheet, warning.row, warning.column) == (
        Severity.WARNING, "survey", 4, "label::Français (fr)")

    isg = check_form(path, forms_dir / "media", profile="isg")
    assert not isg.ok
    problems = errors(isg.issues)
    assert _one(problems, "'Nom-du.village' is not safe for SQL").row == 2
    assert _one(problems, "has no message in Tiếng Việt (vi)").row == 3
    assert _one(problems, "is not YYYYMMDDNN").sheet == "settings"
    assert _one(problems, "default_language must be").sheet == "settings"


def test_consult_toml_opts_a_form_into_isg_by_form_id_or_file_name(forms_dir: Path) -> None:
    first = write_form(forms_dir / "foreign.md", FOREIGN)
    second = write_form(forms_dir / "other.md", {**FOREIGN, "settings": [["form_id"], ["other_form"]]})
    (forms_dir / "consult.toml").write_text('[profiles.isg]\nforms = ["foreign_form"]\n', encoding="utf-8")
    reports = check_forms([first, second], forms_dir / "media")
    assert [r.profile for r in reports] == [Profile.ISG, Profile.ODK]
    assert [r.ok for r in reports] == [False, True]

    (forms_dir / "consult.toml").write_text('[profiles.isg]\nforms = ["other.md"]\n', encoding="utf-8")
    assert [r.profile for r in check_forms([first, second], forms_dir / "media")] == [Profile.ODK, Profile.ISG]
    assert FormProfiles.read(forms_dir).profile_of(second, "other_form") is Profile.ISG

    overridden = check_forms([first, second], forms_dir / "media", profile="odk")
    assert all(r.ok and r.profile is Profile.ODK for r in overridden)


def test_the_command_line_profile_overrides_consult_toml(forms_dir: Path, tmp_path: Path) -> None:
    write_form(forms_dir / "foreign.xlsx", FOREIGN)
    (forms_dir / "consult.toml").write_text('[profiles.isg]\nforms = ["foreign_form"]\n', encoding="utf-8")
    out = tmp_path / "out"
    runner = CliRunner()
    refused = runner.invoke(app, ["forms", "build", "--forms-dir", str(forms_dir), "--out", str(out)])
    assert refused.exit_code == 1 and not (out / "foreign_form.xml").exists()
    built = runner.invoke(app, ["forms", "build", "--forms-dir", str(forms_dir), "--out", str(out),
                                "--profile", "odk"])
    assert built.exit_code == 0, built.output
    assert "warning: label missing in Français (fr)" in " ".join(built.output.split())
    assert '"profile": "odk"' in (out / "foreign_form.schema.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("toml, fragment", [
    ('[profiles.isg]\nforms = ["a"]\n[profiles.odk]\nforms = ["a"]\n', "listed under both"),
    ('[profiles.kobo]\nforms = ["a"]\n', "[profiles.kobo] is not a profile"),
    ('[profiles.isg]\nforms = "a"\n', "must be a list"),
    ('[profiles.isg\n', "not valid TOML"),
])
def test_a_broken_consult_toml_is_one_line_and_exit_1(forms_dir: Path, toml: str, fragment: str) -> None:
    write_form(forms_dir / "foreign.md", FOREIGN)
    (forms_dir / "consult.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(FormsConfigError, match=fragment.replace("[", r"\[")):
        FormProfiles.read(forms_dir)
    result = CliRunner().invoke(app, ["forms", "lint", "--forms-dir", str(forms_dir)])
    assert result.exit_code == 1 and fragment in result.output and "Traceback" not in result.output


def test_isg_forms_are_built_under_the_isg_profile(built_forms: BuiltForms) -> None:
    assert {built_forms.schema(form_id).profile for form_id in FORM_IDS} == {"isg"}


def test_odk_still_refuses_what_breaks_the_pipeline(forms_dir: Path) -> None:
    sheets = {"survey": [["type", "name", "label", "relevant"],
                         ["text", "a", "A", ""],
                         ["select_one colours", "b", "B", "${nowhere} = 1"]],
              "choices": [["list_name", "name", "label"], ["yn", "y", "Y"]]}
    report = check_form(write_form(forms_dir / "broken.xlsx", sheets), forms_dir / "media")
    assert not report.ok
    reference = _one(errors(report.issues), "${nowhere} refers to no question")
    assert (reference.sheet, reference.row, reference.column) == ("survey", 3, "relevant")
    undefined = _one(errors(report.issues), "choice list 'colours' is not defined")
    assert (undefined.row, undefined.column) == (3, "type")


# --- false positives -----------------------------------------------------------------------------

TRICKY: Sheets = {
    "survey": [
        ["type", "name", "label", "choice_filter"],
        ["begin_repeat", "visits", "Visits", ""],
        ["text", "place", "Place", ""],
        ["end_repeat", "", "", ""],
        ["begin loop over rooms", "room", "Room", ""],
        ["integer", "windows", "Windows", ""],
        ["end loop", "", "", ""],
        ["select_one yn or_other", "ok", "OK?", ""],
        ["select one yn", "ok_again", "OK again?", ""],
        ["begin_group", "grp", "Group", ""],
        ["text", "note_text", "Text", ""],
        ["end_group", "", "", ""],
        ["select_one_from_file fruits.csv", "fruit", "Fruit", "colour = 'red'"],
        ["select_multiple_from_file fruits.csv", "fruits", "Fruits", ""],
        ["select_one ${place}", "best_visit", "Best visit", ""],
        ["text", "village", "Village (last time: ${last-saved#village})", ""],
    ],
    "choices": [["list_name", "name", "label"], ["yn", "yes", "Yes"], ["yn", "yes", "Yes, surely"],
                ["yn", "no", "No"], ["rooms", "kitchen", "Kitchen"], ["rooms", "bedroom", "Bedroom"]],
    "settings": [["form_id", "allow_choice_duplicates"], ["tricky", "yes"]],
}
FRUITS = "name,label,colour\napple,Apple,red\nkiwi,Kiwi,green\n"


@pytest.mark.parametrize("profile", ["odk", "isg"])
def test_no_false_positive_on_what_pyxform_accepts(forms_dir: Path, profile: str) -> None:
    (forms_dir / "media" / "fruits.csv").write_text(FRUITS, encoding="utf-8")
    report = check_form(write_form(forms_dir / "tricky.xlsx", TRICKY), forms_dir / "media", profile=profile)
    messages = " | ".join(str(i) for i in report.issues)
    for false_positive in ("has no name", "appears twice", "is not defined", "not a column", "not found",
                           "refers to no question", "is not used"):
        assert false_positive not in messages, messages
    if profile == "odk":
        assert report.ok and report.compiled is not None
        assert {"place", "fruit", "fruits", "ok", "ok_again"} <= {f.name for f in report.compiled.schema.fields}


def test_a_one_sheet_workbook_is_read_as_the_survey(forms_dir: Path) -> None:
    path = write_form(forms_dir / "one.xlsx", {"Sheet1": [["type", "name", "label"], ["integer", "n", "N"],
                                                          ["text", "t", "${n} things"]]})
    report = check_form(path, forms_dir / "media")
    assert report.ok, [str(i) for i in report.issues]
    assert [f.name for f in report.compiled.schema.fields if not f.metadata] == ["n", "t"]


# --- readers -------------------------------------------------------------------------------------

SMALL: Sheets = {
    "survey": [["type", "name", "label", "relevant"],
               ["integer", "age", "Âge (năm)", ""],
               ["text", "comment", "Ghi chú", "${agee} > 1"]],
    "settings": [["form_id", "version"], ["small", "3"]],
}


@pytest.mark.parametrize("suffix", [".xlsx", ".xlsm", ".xls", ".md", ".csv"])
def test_every_format_pyxform_reads_is_linted_with_locations(forms_dir: Path, suffix: str) -> None:
    path = write_form(forms_dir / f"small{suffix}", SMALL)
    broken = check_form(path, forms_dir / "media")
    issue = _one(errors(broken.issues), "${agee} refers to no question")
    row = 3 if suffix in (".xlsx", ".xlsm", ".xls") else line_of(path, "agee")
    assert (issue.sheet, issue.row, issue.column) == ("survey", row, "relevant")

    fixed = {**SMALL, "survey": [r if r[1] != "comment" else [*r[:3], "${age} > 1"] for r in SMALL["survey"]]}
    report = check_form(write_form(path, fixed), forms_dir / "media")
    assert report.ok, [str(i) for i in report.issues]
    schema = report.compiled.schema
    assert (schema.form_id, schema.version) == ("small", "3")
    assert schema.field("age").labels == {"default": "Âge (năm)"}


def test_pyxform_errors_in_markdown_forms_name_the_line(forms_dir: Path) -> None:
    path = write_form(forms_dir / "bad.md", {"survey": [["type", "name", "label"], ["integer", "a", "A"],
                                                        ["intger", "b", "B"]]})
    issue = _one(errors(check_form(path, forms_dir / "media").issues), "intger")
    assert (issue.sheet, issue.row) == ("survey", line_of(path, "intger"))


def test_form_sources_find_every_format_but_not_media(forms_dir: Path) -> None:
    for suffix in (".xlsx", ".xlsm", ".xls", ".md", ".csv"):
        write_form(forms_dir / f"small{suffix}", SMALL)
    (forms_dir / "media" / "fruits.csv").write_text(FRUITS, encoding="utf-8")
    (forms_dir / "~$small.xlsx").write_bytes(b"lock file")
    (forms_dir / "consult.toml").write_text("", encoding="utf-8")
    assert [p.name for p in FormSources(forms_dir).xlsforms()] == [
        "small.csv", "small.md", "small.xls", "small.xlsm", "small.xlsx"]


# --- ODK Validate --------------------------------------------------------------------------------

def test_odk_validate_keeps_the_whole_cause_located(forms_dir: Path) -> None:
    sheets = {"survey": [["type", "name", "label", "choice_filter"],
                         ["integer", "a", "A", ""],
                         ["select_one yn", "t", "T", "cf = ${a} and and 1"]],
              "choices": [["list_name", "name", "label", "cf"], ["yn", "y", "Y", "1"]]}
    issue = _one(errors(check_form(write_form(forms_dir / "v.xlsx", sheets), forms_dir / "media").issues),
                 "ODK Validate")
    assert "org.javarosa.xpath.XPathUnsupportedException" in issue.message
    assert "instance('yn')/root/item[cf =  ${a}  and and 1]" in issue.message, issue.message
    assert (issue.sheet, issue.row, issue.column) == ("survey", 3, "choice_filter")
    assert "failed validation" not in issue.message and "tmp" not in issue.message


def test_odk_validate_runtime_cause_and_no_stack_frames(forms_dir: Path) -> None:
    sheets = {"survey": [["type", "name", "label", "calculation"],
                         ["integer", "a", "A", ""],
                         ["calculate", "d", "", "date('abc') + ${a}"]]}
    issue = _one(errors(check_form(write_form(forms_dir / "d.xlsx", sheets), forms_dir / "media").issues),
                 "ODK Validate")
    assert 'The value "abc" can\'t be converted to a date' in issue.message
    assert "XPathTypeMismatchException" in issue.message
    assert " at org." not in issue.message and "more" not in issue.message
    assert (issue.row, issue.column) == (3, "calculation")


# --- media ---------------------------------------------------------------------------------------

MEDIA_FORM: Sheets = {
    "survey": [
        ["type", "name", "label::English (en)", "image::English (en)", "audio", "video::English (en)",
         "big-image::English (en)", "calculation", "appearance"],
        ["select_one_from_file fruits.csv", "fruit", "Fruit", "fruit.png", "fruit.mp3", "", "", "", ""],
        ["select_one yn", "shop", "Shop", "", "", "", "", "", "search('shops', 'matches', 'name', ${fruit})"],
        ["calculate", "price", "", "", "", "", "", "pulldata('prices', 'price', 'name', ${fruit})", ""],
        ["calculate", "town", "", "", "", "", "", "instance('towns')/root/item[name=${fruit}]/label", ""],
        ["xml-external", "towns", "", "", "", "", "", "", ""],
        ["csv-external", "stalls", "", "", "", "", "", "", ""],
        ["note", "n", "Look", "small.jpg", "", "clip.mp4", "big.jpg", "", ""],
        ["select_one_from_file places.xml", "place", "Place", "", "", "", "", "", ""],
    ],
    "choices": [["list_name", "name", "label::English (en)", "image::English (en)", "audio::English (en)"],
                ["yn", "yes", "Yes", "yes.png", "yes.mp3"], ["yn", "no", "No", "", ""]],
}
MEDIA_FILES = {"fruits.csv": FRUITS, "fruit.png": "png", "fruit.mp3": "mp3", "shops.csv": "name,label\nx,X\n",
               "prices.csv": "name,price\napple,3\n", "towns.xml": "<root><item><name>a</name></item></root>",
               "stalls.csv": "name,label\ns,S\n", "small.jpg": "jpg", "clip.mp4": "mp4", "big.jpg": "jpg",
               "places.xml": "<root><item><name>p</name><label>P</label></item></root>", "yes.png": "png",
               "yes.mp3": "mp3"}


def test_build_copies_media_of_every_kind(forms_dir: Path, tmp_path: Path) -> None:
    for name, content in MEDIA_FILES.items():
        (forms_dir / "media" / name).write_text(content, encoding="utf-8")
    (forms_dir / "media" / "unused.png").write_text("png", encoding="utf-8")
    path = write_form(forms_dir / "media_form.xlsx", MEDIA_FORM)
    out = tmp_path / "out"
    [report] = build_forms([path], forms_dir / "media", out)
    assert report.ok, [str(i) for i in report.issues]
    assert sorted(report.compiled.schema.media) == sorted(MEDIA_FILES)
    assert sorted(p.name for p in (out / "media").iterdir()) == sorted(MEDIA_FILES)
    for name, content in MEDIA_FILES.items():
        assert (out / "media" / name).read_text(encoding="utf-8") == content


@pytest.mark.parametrize("name, sheet, row, column", [
    ("fruits.csv", "survey", 2, "type"),
    ("fruit.mp3", "survey", 2, "audio"),
    ("shops.csv", "survey", 3, "appearance"),
    ("prices.csv", "survey", 4, "calculation"),
    ("towns.xml", "survey", 5, "calculation"),
    ("stalls.csv", "survey", 7, "type"),
    ("clip.mp4", "survey", 8, "video::English (en)"),
    ("big.jpg", "survey", 8, "big-image::English (en)"),
    ("yes.mp3", "choices", 2, "audio::English (en)"),
])
def test_a_missing_media_file_names_the_cell_that_needs_it(forms_dir: Path, name: str, sheet: str, row: int,
                                                          column: str) -> None:
    for other, content in MEDIA_FILES.items():
        if other != name:
            (forms_dir / "media" / other).write_text(content, encoding="utf-8")
    report = check_form(write_form(forms_dir / "media_form.xlsx", MEDIA_FORM), forms_dir / "media")
    issue = _one(errors(report.issues), f"media file '{name}' not found")
    assert (issue.sheet, issue.row, issue.column) == (sheet, row, column)
    assert len(errors(report.issues)) == 1 and not report.ok



EXTERNAL: Sheets = {
    "survey": [["type", "name", "label", "choice_filter"],
               ["select_one region", "region", "Region", ""],
               ["select_one_external district", "district", "District", "region=${region}"]],
    "choices": [["list_name", "name", "label"], ["region", "north", "North"], ["region", "south", "South"]],
    "external_choices": [["list_name", "name", "label", "region"], ["district", "d1", "Huyện 1", "north"],
                         ["district", "d2", "Huyện 2", "south"]],
}


def test_select_one_external_gets_its_itemsets_from_the_form(forms_dir: Path, tmp_path: Path) -> None:
    first = write_form(forms_dir / "ext.xlsx", {**EXTERNAL, "settings": [["form_id"], ["ext_one"]]})
    same = write_form(forms_dir / "ext_same.md", {**EXTERNAL, "settings": [["form_id"], ["ext_two"]]})
    other = {**EXTERNAL, "external_choices": EXTERNAL["external_choices"][:2], "settings": [["form_id"], ["ext_3"]]}
    different = write_form(forms_dir / "ext_other.xlsx", other)
    out = tmp_path / "out"
    reports = build_forms([first, same, different], forms_dir / "media", out)
    assert [r.ok for r in reports] == [True, True, False], [str(i) for r in reports for i in r.issues]
    assert reports[0].compiled.schema.media == ["itemsets.csv"]
    itemsets = (out / "media" / "itemsets.csv").read_text(encoding="utf-8")
    assert itemsets.splitlines()[0] == '"list_name","name","label","region"' and '"Huyện 2"' in itemsets
    _one(errors(reports[2].issues), "external_choices differ from those of ext_one")
    assert not (out / "ext_3.xml").exists()
