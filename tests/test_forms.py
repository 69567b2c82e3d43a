"""The ISG forms as built: their FormSchemas carry what the DB, validation and reports need."""

from __future__ import annotations

import csv
import json

import pytest

from consult.forms import DataType, FormSchema

from .conftest import FORM_IDS, FORMS, BuiltForms

PILOTS = {"thai_nguyen", "thanh_hoa", "tra_vinh", "soc_trang", "an_giang"}


@pytest.fixture(scope="module")
def schemas(built_forms: BuiltForms) -> dict[str, FormSchema]:
    return {form_id: built_forms.schema(form_id) for form_id in FORM_IDS}


def test_every_form_is_built_with_a_dated_version(schemas: dict[str, FormSchema]) -> None:
    assert set(schemas) == set(FORM_IDS)
    for schema in schemas.values():
        assert len(schema.version) == 10 and schema.version.startswith("20")
        assert schema.default_language == "vi"
        assert schema.languages == {"vi": "Tiếng Việt (vi)", "en": "English (en)"}


def test_every_question_and_choice_is_labelled_in_both_languages(schemas: dict[str, FormSchema]) -> None:
    for schema in schemas.values():
        for field in schema.fields:
            if field.metadata or field.kind in ("calculate", "entity"):
                continue
            assert field.labels.get("vi") and field.labels.get("en"), (schema.form_id, field.name)
            if field.constraint:
                assert set(field.constraint_messages) == {"vi", "en"}, (schema.form_id, field.name)
        for choice_list in schema.choice_lists.values():
            for choice in choice_list.choices:
                assert choice.labels.get("vi") and choice.labels.get("en"), (choice_list.name, choice.name)


def test_standard_metadata_and_shared_questions(schemas: dict[str, FormSchema]) -> None:
    for schema in schemas.values():
        kinds = {f.kind for f in schema.fields if f.metadata}
        assert {"start", "end", "today", "deviceid", "username"} <= kinds, schema.form_id
        assert schema.field("instanceID").odata_path == ["meta", "instanceID"]
        date = schema.field("consultation_date")
        assert date.data_type is DataType.DATE and date.required and "today()" in date.constraint
        assert schema.field("interview_mode").required
        assert schema.field("location").data_type is DataType.GEOPOINT


def test_groups_nest_odata_paths_and_repeats_get_their_own_table(schemas: dict[str, FormSchema]) -> None:
    province = schemas["province_consultation"]
    assert province.tables == ["Submissions", "Submissions.members"]
    assert province.field("phone").odata_path == ["respondent", "phone"]
    member = province.field("member_role")
    assert (member.table, member.odata_path, member.repeat) == ("Submissions.members", ["member_role"], "/data/members")
    assert member.inherited_relevant == ["${willing_to_join} = 'yes'"]
    assert not member.always_asked and province.field("respondent_name").always_asked
    assert [f.name for f in province.fields_in("Submissions.members")][:2] == ["member_name", "member_agency"]
    assert "intro" not in [f.name for f in province.fields_in("Submissions")], "notes store no data"


def test_storage_types(schemas: dict[str, FormSchema]) -> None:
    province = schemas["province_consultation"]
    assert province.field("staff_days").data_type is DataType.INTEGER
    assert province.field("budget_mvnd").data_type is DataType.DECIMAL
    assert province.field("priority_topics").data_type is DataType.SELECT_MULTIPLE
    assert province.field("start_time").data_type is DataType.DATETIME
    assert schemas["focal_point_registration"].field("decision_photo").data_type is DataType.BINARY


def test_province_list_is_one_csv_with_the_five_pilots_and_their_workshops(schemas: dict[str, FormSchema]) -> None:
    with (FORMS.media_dir / "provinces.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 64, "Viet Nam had 64 provinces in 2004"
    assert len({r["code"] for r in rows}) == 64
    assert {r["name"] for r in rows if r["pilot"] == "1"} == PILOTS
    assert {r["name"] for r in rows if r["workshop"] == "soc_trang_2004"} == {"an_giang", "soc_trang", "tra_vinh"}
    assert {r["name"] for r in rows if r["workshop"] == "thanh_hoa_2004"} == {"thai_nguyen", "thanh_hoa"}
    users = [s.form_id for s in schemas.values() if "provinces.csv" in s.media]
    assert sorted(users) == sorted(["province_consultation", "donor_consultation", "focal_point_registration",
                                    "workshop_evaluation"])
    provinces = schemas["workshop_evaluation"].choice_lists["provinces.csv"]
    assert provinces.label("thanh_hoa", "vi") == "Thanh Hoá" and provinces.label("thanh_hoa", "en") == "Thanh Hoa"
    assert schemas["workshop_evaluation"].field("province").choice_filter == "workshop = ${workshop}"


def test_the_source_document_is_in_the_forms(schemas: dict[str, FormSchema]) -> None:
    province = schemas["province_consultation"]
    assert "2215 BKH/TH" in province.field("mpi_2215_received").labels["vi"]
    topics = province.choice_lists["topic"]
    assert topics.label("cprgs_ard", "vi") == "Hỗ trợ thực hiện CPRGS trong nông nghiệp và PTNT"
    workshops = schemas["workshop_evaluation"].choice_lists["workshop"]
    assert workshops.names() == ["soc_trang_2004", "thanh_hoa_2004"]
    assert workshops.label("soc_trang_2004", "vi") == "Sóc Trăng, 10–11/8/2004"
    donor = schemas["donor_consultation"]
    assert donor.field("indicative_budget_kusd").relevant == "selected(${support_types}, 'funding')"
    assert donor.choice_lists["organisation"].label("ceci", "en").startswith("CECI")


def test_schema_json_round_trips_and_keeps_diacritics(built_forms: BuiltForms) -> None:
    path = built_forms.out_dir / "focal_point_registration.schema.json"
    text = path.read_text(encoding="utf-8")
    assert "Uỷ ban nhân dân tỉnh" in text, "Vietnamese stays readable in the JSON, not \\u-escaped"
    schema = FormSchema.model_validate(json.loads(text))
    assert schema == built_forms.schema("focal_point_registration")
    xform = built_forms.xform("focal_point_registration").read_text(encoding="utf-8")
    assert "Đăng ký thành viên Đầu mối đối thoại chính sách" in xform
    assert f'version="{schema.version}"' in xform


CONTRACT_PROPERTIES = {"full_name", "province", "stakeholder_type", "agency", "position", "phone"}
"""The focal_points properties of the shared contract (issue 18): gender and email stay off the phones."""
PICKERS = {"province_consultation": "province = ${province}", "workshop_evaluation": "province = ${province}",
           "ministry_consultation": "stakeholder_type = 'ministry'",
           "donor_consultation": "stakeholder_type = 'donor'"}


def test_the_forms_fill_and_read_the_focal_points_list_as_the_contract_says(built_forms: BuiltForms,
                                                                           schemas: dict[str, FormSchema]) -> None:
    from consult.central.entities import form_entities

    declared = {f: form_entities(f, built_forms.xform(f).read_text(encoding="utf-8")) for f in FORM_IDS}
    registration = declared["focal_point_registration"]
    assert registration.creates == {"focal_points"} and registration.saves["focal_points"] == CONTRACT_PROPERTIES
    assert schemas["focal_point_registration"].field("entity").xpath == "/data/members/meta/entity", \
        "one focal point per member"
    update = declared["focal_point_update"]
    assert (update.creates, update.updates) == (frozenset(), {"focal_points"})
    assert update.saves["focal_points"] == {"agency", "position", "phone"}
    assert {f.name: f.entity_property for f in schemas["focal_point_update"].fields if f.entity_property} == {
        "agency": "agency", "position": "position", "phone": "phone"}, "the schema knows what is saved to the list"
    for form_id, choice_filter in PICKERS.items():
        entities, schema = declared[form_id], schemas[form_id]
        assert entities.creates == {"focal_points"} and "focal_points.csv" in entities.csv_files, form_id
        assert entities.saves["focal_points"] <= CONTRACT_PROPERTIES, form_id
        picker = schema.field("focal_point")
        assert (picker.choice_list, picker.choice_filter, picker.appearance) == (
            "focal_points.csv", choice_filter, "autocomplete"), form_id
        assert picker.relevant == "${focal_point_listed} = 'yes'"
        assert schema.choice_lists["listed"].names() == ["yes", "no"]
        assert "focal_points.csv" not in schema.choice_lists, "the list comes from Central, not forms/media"
    xform = built_forms.xform("province_consultation").read_text(encoding="utf-8")
    assert 'nodeset="/data/meta/entity/@create" calculate=" /data/respondent/focal_point_listed  = \'no\'"' in xform
