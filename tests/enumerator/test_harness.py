"""Tests of the enumerator harness itself, on a tiny bilingual form built here.

The form is written as an XLSForm with openpyxl and converted with pyxform, so these
tests need nothing from outside the repo; they check that the harness reports what
ODK's engine really does (relevance, constraints, required, choice_filter, payload).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import openpyxl
import pytest
from pyxform.xls2xform import convert

from .engine import EnumeratorEngine, EnumeratorError, add_repeat, answer, remove_repeat

EN = "English (en)"
VI = "Tiếng Việt (vi)"
VERSION = "2026010101"
R = "/data"  # pyxform names the instance root "data" (not the form_id) unless settings has `name`

SURVEY = [
    ["type", "name", f"label::{EN}", f"label::{VI}", "required", "relevant", "constraint",
     f"constraint_message::{EN}", f"constraint_message::{VI}", "choice_filter"],
    ["text", "respondent", "Respondent name", "Tên người trả lời", "yes", "", "", "", "", ""],
    ["integer", "age", "Age", "Tuổi", "", "", ". >= 18 and . <= 120",
     "Age must be between 18 and 120", "Tuổi phải từ 18 đến 120", ""],
    ["text", "elder_note", "Note for elders", "Ghi chú người cao tuổi", "", "${age} >= 60", "", "", "", ""],
    ["select_one yn", "has_members", "Any members?", "Có thành viên không?", "", "", "", "", "", ""],
    ["begin_repeat", "members", "Members", "Thành viên", "", "${has_members} = 'yes'", "", "", "", ""],
    ["text", "member_name", "Member name", "Tên thành viên", "", "", "", "", "", ""],
    ["select_multiple topic", "topics", "Topics", "Chủ đề", "", "", "", "", "", ""],
    ["end_repeat", "", "", "", "", "", "", "", "", ""],
    ["select_one region", "region", "Region", "Vùng", "", "", "", "", "", ""],
    ["select_one_from_file districts.csv", "district", "District", "Huyện", "", "", "", "", "",
     "region=${region}"],
]
CHOICES = [
    ["list_name", "name", f"label::{EN}", f"label::{VI}"],
    ["yn", "yes", "Yes", "Có"],
    ["yn", "no", "No", "Không"],
    ["topic", "health", "Health", "Y tế"],
    ["topic", "education", "Education", "Giáo dục"],
    ["topic", "roads", "Roads", "Đường sá"],
    ["region", "north", "North", "Miền Bắc"],
    ["region", "south", "South", "Miền Nam"],
]
SETTINGS = [
    ["form_title", "form_id", "version", "default_language"],
    ["Enumerator harness test", "enum_test", VERSION, EN],
]
DISTRICTS_CSV = (
    "name,label,region\n"
    "dong_hy,Đồng Hỷ,north\n"
    "phu_luong,Phú Lương,north\n"
    "cau_ke,Cầu Kè,south\n"
)


@pytest.fixture(scope="module")
def form(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the XLSForm, convert it to an XForm, and put the CSV attachment beside it."""
    folder = tmp_path_factory.mktemp("enum_form")
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in (("survey", SURVEY), ("choices", CHOICES), ("settings", SETTINGS)):
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    xlsx = folder / "enum_test.xlsx"
    book.save(xlsx)
    xform = folder / "enum_test.xml"
    xform.write_text(convert(xlsform=xlsx, validate=False).xform, encoding="utf-8")
    (folder / "districts.csv").write_text(DISTRICTS_CSV, encoding="utf-8")
    return xform


def fill(enumerator: EnumeratorEngine, form: Path, steps: list, language: str | None = None):
    return enumerator.fill(form, steps, media_dir=form.parent, language=language)


def test_fresh_instance_reports_nodes_languages_and_preloaded_instance_id(enumerator, form):
    result = fill(enumerator, form, [])
    assert result.languages == [EN, VI]  # in the order of the form's itext
    assert result.language == EN
    assert result.node(f"{R}/respondent")["type"] == "input"
    assert result.node(f"{R}/respondent")["required"] is True
    assert result.node(f"{R}/members")["type"] == "repeat-range:uncontrolled"
    assert result.node(f"{R}/region")["select_type"] == "select1"
    assert result.value(f"{R}/meta/instanceID").startswith("uuid:")
    assert result.label(f"{R}/age") == "Age"


def test_relevance_flips_for_question_and_repeat(enumerator, form):
    before = fill(enumerator, form, [answer(f"{R}/age", "30")])
    assert before.relevant(f"{R}/elder_note") is False
    assert before.relevant(f"{R}/members") is False
    assert before.relevant(f"{R}/members[1]/member_name") is False  # relevance is inherited
    # Non-relevant nodes are left out of the submission, not sent empty.
    assert "<elder_note" not in before.draft_xml and "<members" not in before.draft_xml

    after = fill(enumerator, form, [answer(f"{R}/age", "70"), answer(f"{R}/has_members", "yes")])
    assert after.relevant(f"{R}/elder_note") is True
    assert after.relevant(f"{R}/members") is True


def test_answering_a_non_relevant_question_is_an_error(enumerator, form):
    with pytest.raises(EnumeratorError, match=r"steps\[1\].*elder_note.*not relevant"):
        fill(enumerator, form, [answer(f"{R}/age", "30"), answer(f"{R}/elder_note", "x")])


@pytest.mark.parametrize(
    ("language", "message"),
    [
        (None, "Age must be between 18 and 120"),
        (VI, "Tuổi phải từ 18 đến 120"),
        ("vi", "Tuổi phải từ 18 đến 120"),  # the code in parentheses is accepted too
    ],
)
def test_constraint_violation_message_in_chosen_language(enumerator, form, language, message):
    result = fill(enumerator, form, [answer(f"{R}/respondent", "A"), answer(f"{R}/age", "7")], language)
    assert result.violation(f"{R}/age") == {"condition": "constraint", "message": message}
    assert not result.payload_ok
    assert result.payload_xml is None
    assert {"ref": f"{R}/age", "condition": "constraint", "message": message} in result.violations
    if language:
        assert result.label(f"{R}/age") == "Tuổi"
        assert result.node(f"{R}/region")["option_labels"] == ["Miền Bắc", "Miền Nam"]


def test_unknown_language_is_an_error_listing_languages(enumerator, form):
    with pytest.raises(EnumeratorError, match=r"Klingon.*English \(en\)"):
        fill(enumerator, form, [], language="Klingon")


def test_required_question_blocks_payload(enumerator, form):
    result = fill(enumerator, form, [answer(f"{R}/age", "40")])
    assert result.violation(f"{R}/respondent")["condition"] == "required"
    assert not result.payload_ok
    assert result.payload["status"] == "pending"
    assert [v["ref"] for v in result.violations] == [f"{R}/respondent"]
    assert result.payload_xml is None
    assert "<respondent/>" in result.draft_xml


def test_full_interview_payload(enumerator, form):
    name = "Nguyễn Thị Hoà"
    result = fill(
        enumerator,
        form,
        [
            answer(f"{R}/respondent", name),
            answer(f"{R}/age", "65"),
            answer(f"{R}/elder_note", "Cụ ông ở Đồng Hỷ"),
            answer(f"{R}/has_members", "yes"),
            add_repeat(f"{R}/members", count=2),  # one instance exists already: now three
            answer(f"{R}/members[1]/member_name", "first"),
            answer(f"{R}/members[2]/member_name", "Trần Văn Đức"),
            answer(f"{R}/members[2]/topics", ["health", "roads"]),
            answer(f"{R}/members[3]/member_name", "third"),
            remove_repeat(f"{R}/members", index=0),  # drops "first"; the rest shift down
            remove_repeat(f"{R}/members[2]"),  # drops "third" by its instance ref
            answer(f"{R}/region", "north"),
            answer(f"{R}/district", "dong_hy"),
        ],
    )
    assert result.violations == []
    assert result.payload_ok, result.violations
    assert result.node(f"{R}/members")["count"] == 1
    assert result.value(f"{R}/members[1]/topics") == ["health", "roads"]
    xml = result.payload_xml
    assert xml is not None
    assert name in xml and "Trần Văn Đức" in xml and "Cụ ông ở Đồng Hỷ" in xml
    root = ET.fromstring(xml)
    assert root.tag == "data"
    assert root.get("id") == "enum_test"
    assert root.get("version") == VERSION
    instance_id = root.findtext("meta/instanceID")
    assert instance_id and instance_id.startswith("uuid:")
    members = root.findall("members")
    assert [m.findtext("member_name") for m in members] == ["Trần Văn Đức"]
    assert members[0].findtext("topics") == "health roads"
    assert root.findtext("district") == "dong_hy"


def test_each_request_is_a_fresh_instance(enumerator, form):
    first = fill(enumerator, form, [answer(f"{R}/respondent", "A")])
    second = fill(enumerator, form, [])
    assert second.value(f"{R}/respondent") == ""
    assert first.value(f"{R}/meta/instanceID") != second.value(f"{R}/meta/instanceID")


def test_choice_filter_from_csv_follows_parent_answer(enumerator, form):
    none = fill(enumerator, form, [])
    assert none.options(f"{R}/district") == []
    north = fill(enumerator, form, [answer(f"{R}/region", "north")])
    assert north.options(f"{R}/district") == ["dong_hy", "phu_luong"]
    assert north.node(f"{R}/district")["option_labels"] == ["Đồng Hỷ", "Phú Lương"]
    south = fill(enumerator, form, [answer(f"{R}/region", "south")])
    assert south.options(f"{R}/district") == ["cau_ke"]
    # An answer the filter no longer offers is cleared by the engine.
    switched = fill(
        enumerator,
        form,
        [answer(f"{R}/region", "north"), answer(f"{R}/district", "dong_hy"), answer(f"{R}/region", "south")],
    )
    assert switched.value(f"{R}/district") == ""


def test_choice_outside_filter_is_an_error(enumerator, form):
    with pytest.raises(EnumeratorError, match=r"steps\[1\].*district.*cau_ke.*dong_hy"):
        fill(enumerator, form, [answer(f"{R}/region", "north"), answer(f"{R}/district", "cau_ke")])


def test_missing_media_dir_is_a_clear_error(enumerator, form):
    with pytest.raises(EnumeratorError, match=r"districts\.csv.*media_dir"):
        enumerator.fill(form, [], media_dir=None)


def test_unparseable_value_is_an_error_not_silently_dropped(enumerator, form):
    with pytest.raises(EnumeratorError, match=r"steps\[0\].*age.*not a valid int"):
        fill(enumerator, form, [answer(f"{R}/age", "abc")])


def test_unknown_ref_is_clear_error_and_harness_keeps_serving(enumerator, form):
    with pytest.raises(EnumeratorError) as caught:
        fill(
            enumerator,
            form,
            [answer(f"{R}/has_members", "yes"), answer(f"{R}/members/member_name", "x")],
        )
    message = str(caught.value)
    assert "steps[1]" in message
    assert f'"{R}/members/member_name"' in message
    assert f"{R}/members[1]/member_name" in message  # the closest real ref is suggested
    assert caught.value.response is not None and caught.value.response["ok"] is False

    raw = enumerator.request({"xform": "relative/path.xml", "steps": []})
    assert raw["ok"] is False and "absolute path" in raw["error"]

    again = fill(enumerator, form, [answer(f"{R}/respondent", "B")])
    assert again.value(f"{R}/respondent") == "B"
