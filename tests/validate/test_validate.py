"""Each kind of failure, caught on the right submission with the right rule, column and messages.

Every case is one submission differing from a valid interview by one defect; the cases of a
form go through validation together as one page, so a case also shows the failure lands on
its own submission only, and that one defect yields exactly one failure (no rule repeats
another's finding). Duplicate interviews are judged form-wide, not per page: test_duplicates.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest

from consult.forms import FormSchema
from consult.validate import ValidationReport

from .conftest import TODAY, validate
from .submissions import VALID, answers, members, odata_row

DAY_AFTER = (TODAY + timedelta(days=1)).isoformat()


@dataclass(frozen=True)
class Case:
    name: str
    form: str
    changes: dict[str, Any] = field(default_factory=dict)
    entries: list[dict[str, Any]] | None = None
    rule: str | None = None
    """None: the submission is valid."""
    column: str | None = None
    value: str | None = None
    row: str | None = None
    """Suffix of the repeat entry's id (`m2`) when the failure is in a repeat."""
    submitted: str = "2004-09-01T08:00:00.000Z"

    @property
    def instance_id(self) -> str:
        return f"uuid:{self.form[:5]}-{self.name}"


P, M, D, F, W = ("province_consultation", "ministry_consultation", "donor_consultation",
                 "focal_point_registration", "workshop_evaluation")
CASES = [
    *(Case("valid", form) for form in VALID),
    Case("valid-today", P, {"consultation_date": TODAY.isoformat()}),
    Case("valid-not-joining", P,
         {"willing_to_join": "no", "reasons_not_joining": "no_staff", "member_count": None}, entries=[]),
    # carried over from constraints, with the form's own message
    Case("staff-days", P, {"staff_days": 2500}, rule="range", column="staff_days", value="2500"),
    Case("future", P, {"consultation_date": DAY_AFTER}, rule="date_range", column="consultation_date",
         value=DAY_AFTER),
    Case("before-2003", M, {"consultation_date": "2002-12-31"}, rule="date_range",
         column="consultation_date"),
    Case("future-decision", F, {"decision_date": DAY_AFTER}, rule="date_range", column="decision_date"),
    Case("future-evaluation", W, {"consultation_date": DAY_AFTER}, rule="date_range",
         column="consultation_date"),
    Case("bad-phone", P, {"phone": "12345"}, rule="pattern", column="phone", value="12345"),
    Case("bad-member-phone", F, entries=members({}, {"member_phone": "09-13"}), rule="pattern",
         column="member_phone", row="m2"),
    Case("bad-decision-number", F, {"decision_number": "số 12"}, rule="pattern", column="decision_number"),
    Case("short-name", M, {"respondent_name": " A "}, rule="min_length", column="respondent_name"),
    Case("four-topics", P, {"priority_topics": "cprgs_ard extension forestry market_access"},
         rule="max_selected", column="priority_topics"),
    Case("none-and-more", P, {"support_needed": "none training"}, rule="exclusive_choice",
         column="support_needed"),
    Case("no-role-and-more", M, {"coordination_roles": "monitoring none"}, rule="exclusive_choice",
         column="coordination_roles"),
    # choice lists
    Case("unknown-province", P, {"province": "sai_gon"}, rule="choice", column="province", value="sai_gon"),
    Case("unknown-topic", D, {"priority_topics": "cprgs_ard astrology"}, rule="choice_token",
         column="priority_topics", value="astrology"),
    Case("unknown-member-agency", P, entries=members({"member_agency": "police"}), rule="choice",
         column="member_agency", row="m1"),
    Case("not-a-pilot-province", F, {"province": "ha_noi"}, rule="choice", column="province", value="ha_noi"),
    Case("workshop-province", W, {"workshop": "thanh_hoa_2004", "consultation_date": "2004-08-25"},
         rule="cascading_choice", column="province", value="an_giang"),
    Case("organisation-type", D, {"org_type": "ingo"}, rule="cascading_choice", column="organisation",
         value="undp"),
    # teams
    Case("two-leads", F, entries=members({}, {"member_role": "lead"}), rule="one_lead", column="member_role",
         value="2"),
    Case("no-lead", P, entries=members({"member_role": "member"}), rule="one_lead", column="member_role",
         value="0"),
    Case("no-members", F, entries=[], rule="members_present", column="members", value="0"),
    Case("joining-without-members", P, entries=[], rule="members_present", column="members"),
    # budget and funding
    Case("budget-without-funding", D, {"support_types": "training"}, rule="budget_matches_funding",
         column="indicative_budget_kusd", value="250"),
    Case("funding-without-budget", D, {"indicative_budget_kusd": None}, rule="budget_matches_funding",
         column="indicative_budget_kusd"),
    # required answers
    Case("no-name", P, {"respondent_name": None}, rule="required", column="respondent_name"),
    Case("no-member-name", F, entries=members({"member_name": None}), rule="required", column="member_name",
         row="m1"),
    Case("no-planned-actions", W, {"planned_actions": None}, rule="required_if_relevant",
         column="planned_actions"),
    Case("no-mpi-usage", P, {"mpi_2215_used": None}, rule="required_if_relevant", column="mpi_2215_used"),
    Case("no-joining-member-gender", P, entries=members({}, {"member_gender": None}),
         rule="required_if_relevant", column="member_gender", row="m2"),
    Case("no-reasons", M, {"willing_to_support": "undecided"}, rule="required_if_relevant",
         column="reasons_not_supporting"),
    Case("other-agency", P, {"agency": "other"}, rule="other_specified", column="agency_other"),
    Case("other-topic", D, {"priority_topics": "cprgs_ard other"}, rule="other_specified",
         column="topics_other"),
    Case("other-member-agency", F, entries=members({"member_agency": "other"}), rule="other_specified",
         column="member_agency_other", row="m1"),
    # types
    Case("wrong-type", P, {"staff_days": "nhiều"}, rule="value_type", column="staff_days", value="nhiều"),
    Case("wrong-date", W, {"consultation_date": "11/08/2004"}, rule="value_type", column="consultation_date"),
]


def _page(schema: FormSchema) -> list[dict[str, Any]]:
    """The form's cases as one page; cases that do not set a date get one of their own (no duplicates)."""
    rows = []
    for n, case in enumerate(c for c in CASES if c.form == schema.form_id):
        own_date = {"consultation_date": (date(2004, 1, 1) + timedelta(days=n)).isoformat()}
        values = answers(case.form, **(({} if case.form == W else own_date) | case.changes))
        rows.append(odata_row(schema, case.instance_id, values, case.entries, case.submitted))
    return rows


@pytest.fixture(scope="module")
def reports(schemas: dict[str, FormSchema]) -> dict[str, ValidationReport]:
    return {form_id: validate(schema, _page(schema)) for form_id, schema in schemas.items()}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.form}-{c.name}")
def test_case(case: Case, reports: dict[str, ValidationReport]) -> None:
    report = reports[case.form]
    instance_id = case.instance_id
    failures = report.failures_of(instance_id)
    if case.rule is None:
        assert failures == [] and report.statuses[instance_id] == "valid"
        return
    assert report.statuses[instance_id] == "quarantined"
    assert [(f.rule, f.column) for f in failures] == [(case.rule, case.column)]
    failure = failures[0]
    assert failure.row_id == (f"{instance_id}-{case.row}" if case.row else None)
    if case.value is not None:
        assert failure.value == case.value
    assert failure.message_vi and failure.message_en and failure.message_vi != failure.message_en


def test_every_submission_has_a_status(reports: dict[str, ValidationReport]) -> None:
    for form_id, report in reports.items():
        assert len(report.statuses) == sum(c.form == form_id for c in CASES)
        assert {f.instance_id for f in report.failures} == set(report.quarantined)


def test_constraint_rules_use_the_forms_own_messages(reports: dict[str, ValidationReport],
                                                     schemas: dict[str, FormSchema]) -> None:
    failure = reports[P].failures_of(Case("staff-days", P).instance_id)[0]
    messages = schemas[P].field("staff_days").constraint_messages
    assert (failure.message_vi, failure.message_en) == (messages["vi"], messages["en"])
    assert failure.message_vi == "Số ngày công phải từ 0 đến 2000."


def test_other_messages_name_the_question_in_both_languages(reports: dict[str, ValidationReport]) -> None:
    failure = reports[P].failures_of(Case("no-name", P).instance_id)[0]
    assert failure.message_vi == "Chưa trả lời câu hỏi bắt buộc “Họ và tên người trả lời”."
    assert failure.message_en == "The required question “Respondent's full name” is not answered."
    workshop = reports[W].failures_of(Case("workshop-province", W).instance_id)[0]
    assert "“Tỉnh của đại biểu”" in workshop.message_vi and "“Delegate's province”" in workshop.message_en


def test_vietnamese_survives_in_values_and_messages(reports: dict[str, ValidationReport]) -> None:
    wrong = reports[P].failures_of(Case("wrong-type", P).instance_id)[0]
    assert wrong.value == "nhiều" and "“nhiều”" in wrong.message_vi and "“nhiều”" in wrong.message_en


def test_the_suites_refuse_an_in_memory_sqlite_database_they_could_not_read() -> None:
    """The suites read the pass's rows through their own connection: an in-memory database would look
    empty to them, and every submission would pass unjudged."""
    from sqlalchemy import make_url

    from consult.validate import gx_context

    for url in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(ValueError, match="in-memory SQLite"):
            gx_context.validate_query(None, make_url(url), "rows", "SELECT 1", ["_instance_id"], TODAY)  # type: ignore[arg-type]
