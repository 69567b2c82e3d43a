"""What each form is held to, derived from its FormSchema."""

from __future__ import annotations

from datetime import date

import pytest

from consult.forms import FormSchema
from consult.validate import duplicate_rules, rule_inventory
from consult.validate.rules import form_rules
from consult.validate.suite import allowed_choices, form_checks, left_to_form


def test_only_the_lead_rule_and_the_workshop_opening_are_left_to_the_form(
        schemas: dict[str, FormSchema]) -> None:
    left = {(form_id, field) for form_id, schema in schemas.items() for field, _ in left_to_form(schema)}
    assert left == {("province_consultation", "member_role"), ("focal_point_registration", "member_role"),
                    ("workshop_evaluation", "consultation_date")}


def test_required_is_checked_only_where_always_asked(schemas: dict[str, FormSchema]) -> None:
    schema = schemas["province_consultation"]
    required = {c.field for c in form_checks(schema) if c.rule == "required"}
    assert "respondent_name" in required
    assert not required & {"agency_other", "mpi_2215_used", "member_name"}  # relevance decides: relevance.py
    inventory = rule_inventory(schema)
    assert inventory["required_if_relevant"] + inventory["other_specified"] == sum(
        f.required and not f.always_asked for f in schema.fields)


def test_a_static_choice_filter_narrows_the_choices(schemas: dict[str, FormSchema]) -> None:
    schema = schemas["focal_point_registration"]
    pilots = ["thai_nguyen", "thanh_hoa", "tra_vinh", "an_giang", "soc_trang"]
    assert allowed_choices(schema, schema.field("province")) == pilots
    workshop = schemas["workshop_evaluation"]
    assert len(allowed_choices(workshop, workshop.field("province"))) == 64  # filter reads ${workshop}


def test_budget_rule_replaces_the_budget_required_check(schemas: dict[str, FormSchema]) -> None:
    inventory = rule_inventory(schemas["donor_consultation"])
    assert inventory["budget_matches_funding"] == 1 and inventory["required_if_relevant"] == 2  # project_name, focal_point


def test_duplicate_rules_say_which_columns_to_fetch(schemas: dict[str, FormSchema]) -> None:
    (donor,) = duplicate_rules(schemas["donor_consultation"])
    assert (donor.name, donor.table_key) == ("duplicate_interview", "")
    assert donor.columns == ("organisation", "organisation_other", "consultation_date")
    assert duplicate_rules(schemas["workshop_evaluation"]) == []
    (province,) = duplicate_rules(schemas["province_consultation"])
    db_row = {"province": "tra_vinh", "agency": "other", "agency_other": "Hội Nông dân ", "consultation_date":
              date(2004, 3, 15)}
    assert province.key(db_row) == ("tra_vinh", "hội nông dân", "2004-03-15")
    assert province.key(db_row | {"agency": None}) is None


def test_a_rule_naming_a_missing_field_fails_loudly(schemas: dict[str, FormSchema]) -> None:
    schema = schemas["donor_consultation"].model_copy(deep=True)
    schema.fields = [f for f in schema.fields if f.name != "support_types"]
    with pytest.raises(ValueError, match="support_types"):
        form_rules(schema)
