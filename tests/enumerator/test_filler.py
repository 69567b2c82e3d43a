"""The generic filler on forms of the collection: every answer valid for its type, the payload complete.

The forms are converted here with pyxform alone (no consult code), so these tests hold whatever
the core's FormSchema is doing.
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from pyxform.xls2xform import convert

from ..forms.make_forms import HERE as FORMS_DIR
from ..forms.make_forms import MEDIA
from .filler import ANSWERS, AUDIT, BACKGROUND_AUDIO, DEVICE, TEXT, FillError, fill_any

FORMS = ("type_integer", "type_range", "type_rank", "type_image", "type_geotrace", "type_time",
         "nested_repeats", "repeat_in_group_in_repeat", "choice_filter_csv", "relevance", "repeat_count",
         "type_or_other", "name_duplicate_in_groups", "loop", "type_metadata", "type_background_audio")


@pytest.fixture(scope="module")
def xforms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("filler")
    paths = {}
    for form_id in FORMS:
        path = out / f"{form_id}.xml"
        xform = convert(xlsform=FORMS_DIR / f"{form_id}.xlsx", validate=False).xform
        path.write_text(xform, encoding="utf-8")
        paths[form_id] = path
    return paths


def submitted(enumerator, xforms, form_id: str) -> ET.Element:
    filled = fill_any(enumerator, xforms[form_id], MEDIA)
    return ET.fromstring(filled.xml)


def test_numbers_satisfy_their_constraints(enumerator, xforms):
    root = submitted(enumerator, xforms, "type_integer")
    assert 1 <= int(root.findtext("households")) <= 500
    assert 2003 <= int(root.findtext("year_joined")) <= 2006  # found by trying numbers of the constraint


def test_range_answer_is_on_a_step(enumerator, xforms):
    root = submitted(enumerator, xforms, "type_range")
    assert 1 <= int(root.findtext("interest")) <= 5
    share = int(root.findtext("share"))
    assert 0 <= share <= 100 and share % 10 == 0


def test_rank_orders_every_choice(enumerator, xforms):
    root = submitted(enumerator, xforms, "type_rank")
    assert sorted(root.findtext("colour_rank").split()) == ["blue", "green", "red"]


def test_upload_sends_the_file_as_an_attachment(enumerator, xforms):
    filled = fill_any(enumerator, xforms["type_image"], MEDIA)
    assert ET.fromstring(filled.xml).findtext("photo") == "photo.jpg"
    assert filled.attachments == {"photo.jpg": (ANSWERS / "photo.jpg").read_bytes()}


def test_geotrace_and_time_values_survive_the_engine(enumerator, xforms):
    points = submitted(enumerator, xforms, "type_geotrace").findtext("road").split(";")
    assert len(points) == 3 and all(len(p.split()) == 4 for p in points)
    assert submitted(enumerator, xforms, "type_time").findtext("start_time").endswith("+07:00")


def test_texts_carry_diacritics_and_differ_between_questions(enumerator, xforms):
    root = submitted(enumerator, xforms, "name_duplicate_in_groups")
    texts = [root.findtext("respondent"), root.findtext("g1/dup"), root.findtext("g2/dup")]
    assert all(t.startswith(TEXT) for t in texts)
    assert len(set(texts)) == 3
    assert root.findtext("g1/n") != root.findtext("g2/n"), "a value in the wrong column must show"


def test_repeats_get_two_instances_at_every_depth(enumerator, xforms):
    root = submitted(enumerator, xforms, "nested_repeats")
    households = root.findall("household")
    assert len(households) == 2
    assert [len(h.findall("member")) for h in households] == [2, 2]
    assert all(h.findtext("member/member_name") for h in households)

    root = submitted(enumerator, xforms, "repeat_in_group_in_repeat")
    assert [len(h.findall("hh_group/asset")) for h in root.findall("household")] == [2, 2]


def test_choice_filter_over_csv_is_answered_after_its_parent(enumerator, xforms):
    root = submitted(enumerator, xforms, "choice_filter_csv")
    with (MEDIA / "places.csv").open(encoding="utf-8") as f:
        region_of = {row["name"]: row["region"] for row in csv.DictReader(f)}
    assert region_of[root.findtext("place")] == root.findtext("region")


def test_only_relevant_questions_are_answered(enumerator, xforms):
    filled = fill_any(enumerator, xforms["relevance"], MEDIA)
    root = ET.fromstring(filled.xml)
    assert root.findtext("has_members") == "yes"
    assert root.find("why_not") is None and not any(r.endswith("/why_not") for r in filled.answers)
    assert len(root.findall("member")) == 2


def test_a_counted_repeat_follows_its_count(enumerator, xforms):
    root = submitted(enumerator, xforms, "repeat_count")
    assert len(root.findall("member")) == int(root.findtext("n_members"))


def test_or_other_and_loop(enumerator, xforms):
    root = submitted(enumerator, xforms, "type_or_other")
    assert root.findtext("main_crop") == "rice"
    assert root.findtext("other_crops") == "rice maize"
    loop = submitted(enumerator, xforms, "loop")
    assert loop.findtext("rooms/bedroom/windows") and loop.findtext("rooms/kitchen/windows")


def test_metadata_is_filled_by_the_engine_and_what_only_a_phone_knows_as_collect_would(enumerator, xforms):
    filled = fill_any(enumerator, xforms["type_metadata"], MEDIA)
    root = ET.fromstring(filled.xml)
    assert root.findtext("today") == date.today().isoformat()
    assert root.findtext("meta/instanceID").startswith("uuid:")
    assert [r.rsplit("/", 1)[-1] for r in filled.answers] == ["respondent"]
    assert {name: root.findtext(name) for name in DEVICE} == DEVICE
    assert root.findtext("meta/audit") == AUDIT
    assert filled.attachments == {AUDIT: (ANSWERS / AUDIT).read_bytes()}


def test_background_audio_is_attached_as_collect_records_it(enumerator, xforms):
    filled = fill_any(enumerator, xforms["type_background_audio"], MEDIA)
    assert ET.fromstring(filled.xml).findtext("recording") == BACKGROUND_AUDIO
    assert list(filled.attachments) == [BACKGROUND_AUDIO]


def test_no_acceptable_value_is_a_clear_error(enumerator, tmp_path):
    book = openpyxl.Workbook()
    book.active.title = "survey"
    for row in (["type", "name", "label", "constraint"],
                ["text", "code", "Mã", "regex(., '^[0-9]{4}$')"]):
        book.active.append(row)
    xlsx = tmp_path / "strict.xlsx"
    book.save(xlsx)
    xform = tmp_path / "strict.xml"
    xform.write_text(convert(xlsform=xlsx, validate=False).xform, encoding="utf-8")
    with pytest.raises(FillError, match=r"no candidate satisfies /data/code"):
        fill_any(enumerator, xform)
