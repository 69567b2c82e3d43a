"""The generated fieldwork: deterministic, shaped like Collect's submissions, true to the 2004 story,
and passing validation except for the labelled mistakes, each caught by the rule it names."""

from __future__ import annotations

import io
import re
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from PIL import Image

from consult.fieldwork import EXPECTED_RULE, MISTAKES, Interview, fieldwork, province_interviews
from consult.forms import FormSchema
from consult.validate import Failure, ValidationContext, duplicate_rules, validate_records
from consult.warehouse.records import INSTANCE, RecordBuilder

from .conftest import FORM_IDS, BuiltForms
from .served import odata_rows

PILOTS = {"thai_nguyen", "thanh_hoa", "tra_vinh", "soc_trang", "an_giang"}
"""Central's submission dates in these tests: one minute apart, in the order they are sent."""


@pytest.fixture(scope="module")
def schemas(built_forms: BuiltForms) -> dict[str, FormSchema]:
    return {form_id: built_forms.schema(form_id) for form_id in FORM_IDS}


@pytest.fixture(scope="module")
def interviews(schemas: dict[str, FormSchema]) -> list[Interview]:
    return fieldwork(schemas)


def _of(interviews: list[Interview], form_id: str) -> list[Interview]:
    return [i for i in interviews if i.form_id == form_id]


def _answers(interview: Interview) -> dict[str, str]:
    """Leaf answers by element name (repeat entries: the last one's)."""
    return {e.tag: e.text or "" for e in ET.fromstring(interview.xml).iter() if len(e) == 0}


def _members(interview: Interview) -> list[dict[str, str]]:
    return [{e.tag: e.text or "" for e in m} for m in ET.fromstring(interview.xml).iter("members")]


def test_the_same_seed_gives_the_same_bytes(schemas: dict[str, FormSchema],
                                            interviews: list[Interview]) -> None:
    again = fieldwork(schemas)
    assert [(i.xml, i.attachments, i.mistake) for i in again] == [(i.xml, i.attachments, i.mistake)
                                                                   for i in interviews]
    assert [i.xml for i in fieldwork(schemas, seed=2003)] != [i.xml for i in interviews]


def test_counts_follow_the_source_document(interviews: list[Interview]) -> None:
    duplicates = Counter(i.form_id for i in interviews if i.mistake == "duplicate_interview")
    counts = Counter(i.form_id for i in interviews)
    assert {f: counts[f] - duplicates[f] for f in FORM_IDS} == {
        "province_consultation": 60, "ministry_consultation": 25, "donor_consultation": 30,
        "focal_point_registration": 5, "workshop_evaluation": 48, "focal_point_update": 6}
    delegates = Counter(_answers(i)["workshop"] for i in _of(interviews, "workshop_evaluation"))
    assert delegates == {"soc_trang_2004": 29, "thanh_hoa_2004": 19}
    registrations = [_answers(i)["province"] for i in _of(interviews, "focal_point_registration")]
    assert sorted(registrations) == sorted(PILOTS)
    provinces = Counter(_answers(i)["province"] in PILOTS for i in _of(interviews, "province_consultation"))
    assert provinces[True] > provinces[False] > 0


def test_the_pilot_story_holds(interviews: list[Interview]) -> None:
    for registration in _of(interviews, "focal_point_registration"):
        a, members = _answers(registration), _members(registration)
        assert 3 <= len(members) <= 7 and a["member_count"] == str(len(members))
        assert re.fullmatch(r"\d{1,6}(/2004)?/QĐ-[A-Z]+", a["decision_number"])
        assert a["decision_date"].startswith("2004-")
        if registration.mistake not in ("missing_lead", "two_leads"):
            assert [m["member_role"] for m in members].count("lead") == 1
    evaluations = [_answers(i) for i in _of(interviews, "workshop_evaluation")]
    assert sum(e["cprgs_after"] >= e["cprgs_before"] for e in evaluations) >= 0.9 * len(evaluations)
    assert sum(e["will_apply"] == "yes" for e in evaluations) >= 0.75 * len(evaluations)
    consultations = [i for i in interviews if i.form_id in MISTAKES["duplicate_interview"].forms]
    topics = Counter(t for i in consultations for t in _answers(i)["priority_topics"].split())
    assert topics.most_common(1)[0][0] == "cprgs_ard"
    dates = [_answers(i)["consultation_date"] for i in interviews if i.mistake != "future_date"]
    assert min(dates) >= "2003-01-01" and max(dates) <= "2004-12-31"


def test_answers_are_vietnamese(interviews: list[Interview]) -> None:
    text = b"".join(i.xml for i in interviews).decode("utf-8")
    for name in ("Nguyễn", "Trần", "Thị", "Sở", "Phó Giám đốc Sở"):
        assert name in text
    assert re.search(r"<respondent_name>(Thạch|Sơn|Kim|Danh) ", text), "no Khmer respondent in the Mekong"
    assert re.search(r"<phone>09\d{8}</phone>", text) and "@dard.gov.vn" in text
    assert "NN&amp;PTNT" in text, "text is escaped as XML (Bộ NN&PTNT)"


def test_submissions_have_collects_shape(built_forms: BuiltForms, interviews: list[Interview]) -> None:
    for form_id in FORM_IDS:
        template = _instance(built_forms.xform(form_id))
        order = _paths(template)
        for interview in _of(interviews, form_id):
            root = ET.fromstring(interview.xml)
            assert root.tag == template.tag and root.attrib == template.attrib, interview.instance_id
            assert interview.xml.startswith(b"<?xml")
            assert b'xmlns:jr="http://openrosa.org/javarosa"' in interview.xml
            paths = _paths(root)
            assert [p for p in order if p in paths] == paths, f"{form_id}: elements out of form order"
            instance_id = root.findtext("meta/instanceID")
            assert instance_id == interview.instance_id
            assert uuid.UUID(instance_id.removeprefix("uuid:")).version == 4
            for e in root.iter():
                if e.tag in ("start_time", "end_time") and e.text:
                    assert e.text.endswith("+07:00")
    assert len({i.instance_id for i in interviews}) == len(interviews)
    assert [i.submitted_order for i in interviews] == list(range(len(interviews)))


def test_decision_photos_are_jpegs_named_in_the_submission(interviews: list[Interview]) -> None:
    photos = 0
    for registration in _of(interviews, "focal_point_registration"):
        named = _answers(registration).get("decision_photo")
        assert set(registration.attachments) == ({named} if named else set())
        for content in registration.attachments.values():
            image = Image.open(io.BytesIO(content))
            image.load()
            assert image.format == "JPEG" and image.size == (96, 128)
            photos += 1
    assert photos >= 3


def test_every_mistake_kind_appears_at_the_default_rate(interviews: list[Interview]) -> None:
    made = Counter(i.mistake for i in interviews if i.mistake)
    assert set(made) == set(EXPECTED_RULE) == set(MISTAKES)
    assert sum(made.values()) <= 0.06 * len(interviews)


def test_duplicates_are_sent_after_their_original(schemas: dict[str, FormSchema],
                                                  interviews: list[Interview]) -> None:
    for duplicate in (i for i in interviews if i.mistake == "duplicate_interview"):
        (rule,) = duplicate_rules(schemas[duplicate.form_id])
        key = rule.key(_answers(duplicate))
        originals = [i for i in _of(interviews, duplicate.form_id) if i is not duplicate
                     and rule.key(_answers(i)) == key]
        assert len(originals) == 1 and originals[0].mistake is None
        assert originals[0].submitted_order < duplicate.submitted_order


def test_correct_interviews_pass_and_every_mistake_is_caught(
        built_forms: BuiltForms, schemas: dict[str, FormSchema], interviews: list[Interview]) -> None:
    for form_id in FORM_IDS:
        _check_validation(built_forms.xform(form_id), schemas[form_id], _of(interviews, form_id))


def test_province_interviews_are_fast_and_valid(built_forms: BuiltForms,
                                                schemas: dict[str, FormSchema]) -> None:
    schema = schemas["province_consultation"]
    started = time.perf_counter()
    bulk = province_interviews(schema, 5000, seed=7)
    rate = len(bulk) / (time.perf_counter() - started)
    print(f"province_interviews: {rate:.0f} interviews/s")
    assert rate > 1500  # ~6,500/s on a quiet machine; this only catches an accidental slowdown
    assert len(bulk) == 5000 and not any(i.mistake for i in bulk)
    assert len({i.instance_id for i in bulk}) == 5000
    _check_validation(built_forms.xform("province_consultation"), schema, bulk[:400])
    spoiled = province_interviews(schema, 400, seed=7, mistake_rate=0.05)
    assert {i.mistake for i in spoiled} - {None} == {k for k, m in MISTAKES.items()
                                                     if "province_consultation" in m.forms}
    _check_validation(built_forms.xform("province_consultation"), schema, spoiled)


def test_scale_multiplies_the_consultations_only(schemas: dict[str, FormSchema]) -> None:
    counts = Counter(i.form_id for i in fieldwork(schemas, scale=0.5, mistake_rate=0))
    assert counts == {"province_consultation": 30, "ministry_consultation": 12, "donor_consultation": 15,
                      "focal_point_registration": 5, "workshop_evaluation": 48, "focal_point_update": 6}


def _check_validation(xform: Path, schema: FormSchema, interviews: list[Interview]) -> None:
    """Through Central's OData rows, the warehouse records and the validator, as a sync would."""
    records = RecordBuilder(schema).build(odata_rows(xform, interviews))
    report = validate_records(schema, records, ValidationContext(today=date.today()))
    failures: dict[str, list[Failure]] = {}
    for failure in report.failures:
        failures.setdefault(failure.instance_id, []).append(failure)
    dates = {s.instance_id: s.submission_date for s in records.submissions}
    for rule in duplicate_rules(schema):
        rows = [(r[INSTANCE], dates[r[INSTANCE]], tuple(r[c] for c in rule.columns))
                for r in records.rows[rule.table_key]]
        for failure in rule.across_form(schema, rows, set(failures)):
            failures.setdefault(failure.instance_id, []).append(failure)
    for interview in interviews:
        rules = {f.rule for f in failures.get(interview.instance_id, [])}
        if interview.mistake is None:
            assert not rules, f"{schema.form_id} {interview.instance_id}: {failures[interview.instance_id]}"
        else:
            expected = EXPECTED_RULE[interview.mistake]
            assert expected in rules, f"{interview.mistake} caught as {rules or 'valid'}"


def _instance(xform: Path) -> ET.Element:
    """The primary instance of a built XForm, without repeat templates."""
    ns = {"h": "http://www.w3.org/1999/xhtml", "x": "http://www.w3.org/2002/xforms"}
    instance = ET.parse(xform).getroot().find("h:head/x:model/x:instance", ns)
    assert instance is not None
    root = instance[0]
    for element in root.iter():
        element.tag = element.tag.split("}")[-1]
    return root


def _paths(root: ET.Element) -> list[str]:
    """Element paths in document order, each once (repeat entries share theirs)."""
    seen: dict[str, None] = {}

    def walk(element: ET.Element, path: str) -> None:
        for child in element:
            seen.setdefault(f"{path}/{child.tag}")
            walk(child, f"{path}/{child.tag}")

    walk(root, "")
    return list(seen)


def _entities(interview: Interview) -> list[ET.Element]:
    return list(ET.fromstring(interview.xml).iter("entity"))


def test_consultations_pick_focal_points_registered_before_them_or_register_the_respondent(
        interviews: list[Interview]) -> None:
    """Registrations make one focal point per member; a later interview either picks one of its province
    and agency (ministry, organisation) and repeats the name from the list, or registers its respondent."""
    known: dict[str, dict[str, str]] = {}
    picked = registered = 0
    for interview in interviews:  # in the order they are sent
        answers, entities = _answers(interview), _entities(interview)
        if interview.form_id == "focal_point_registration":
            root = ET.fromstring(interview.xml)
            for member in root.findall("members"):
                (entity,) = member.iter("entity")
                assert (entity.get("dataset"), entity.get("create")) == ("focal_points", "1")
                assert entity.findtext("label").startswith(member.findtext("member_name") + " – ")
                if interview.mistake is None:
                    known[entity.get("id")] = {"name": member.findtext("member_name"),
                                               "phone": member.findtext("member_phone") or ""}
        elif interview.form_id == "focal_point_update":
            (entity,) = entities
            assert entity.get("id") in known and (entity.get("update"), entity.get("baseVersion")) == ("true", "1")
            assert answers["phone"] != known[entity.get("id")]["phone"] or answers["position"]
        else:
            (entity,) = entities
            name = answers.get("respondent_name") or answers.get("delegate_name") or ""
            if answers["focal_point_listed"] == "yes":
                picked += 1
                assert known[answers["focal_point"]]["name"] == name and entity.get("create") == "false"
                if interview.form_id != "workshop_evaluation":  # which asks no phone
                    assert answers.get("phone", "") == known[answers["focal_point"]]["phone"]
            else:
                registered += entity.get("create") == "true"
                assert not answers.get("focal_point")
                if entity.get("create") == "true" and interview.mistake is None:
                    known[entity.get("id")] = {"name": name, "phone": answers.get("phone", "")}
            assert entity.findtext("label").startswith(f"{name} – ")
            assert answers["stakeholder_type"] in ("province", "ministry", "donor")
    assert picked >= 40 and registered >= 80, (picked, registered)
