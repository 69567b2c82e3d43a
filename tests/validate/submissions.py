"""Synthetic OData rows of the five forms, as Central's `$expand=*` feed returns them.

Answers are given by field name and placed at each field's OData path, so a question
moving between groups does not break a test. Each form has one valid interview; tests
change one answer at a time.
"""

from __future__ import annotations

import copy
from typing import Any

from consult.forms import FormSchema

VALID: dict[str, dict[str, Any]] = {
    "province_consultation": {
        "consultation_date": "2004-03-15", "interview_mode": "in_person", "province": "tra_vinh",
        "agency": "dard", "respondent_name": "Nguyễn Văn Thành", "focal_point_listed": "no", "phone": "0913456789",
        "email": "thanh@dard.gov.vn", "cprgs_awareness": "heard", "mpi_2215_received": "yes",
        "mpi_2215_used": "partly", "interest_level": "4", "willing_to_join": "yes", "member_count": 2,
        "priority_topics": "cprgs_ard results_based_planning", "preferred_activities": "dialogue_meetings",
        "staff_days": 120, "budget_mvnd": 50.5, "support_needed": "training funding",
    },
    "ministry_consultation": {
        "consultation_date": "2004-04-02", "interview_mode": "in_person", "ministry": "mpi",
        "department": "Vụ Kinh tế Nông nghiệp", "respondent_name": "Trần Thị Hoa", "focal_point_listed": "no",
        "coordination_roles": "planning_guidance monitoring", "interest_level": "5",
        "willing_to_support": "yes", "provincial_feedback_use": "sometimes", "priority_topics": "cprgs_ard",
        "contributions": "expertise",
    },
    "donor_consultation": {
        "consultation_date": "2004-05-12", "interview_mode": "in_person", "org_type": "multilateral",
        "organisation": "undp", "respondent_name": "Jane Smith", "focal_point_listed": "no", "active_provinces": "tra_vinh soc_trang",
        "ard_portfolio_musd": 120.0, "cprgs_alignment": "largely", "interest_level": "4",
        "support_types": "funding technical_assistance", "indicative_budget_kusd": 250.0,
        "priority_topics": "cprgs_ard rural_credit",
    },
    "focal_point_registration": {
        "consultation_date": "2004-06-01", "interview_mode": "in_person", "province": "an_giang",
        "decision_number": "1234/QĐ-UBND", "decision_date": "2004-05-20", "issued_by": "ppc",
        "member_count": 2,
    },
    "workshop_evaluation": {
        "workshop": "soc_trang_2004", "province": "an_giang", "agency": "dpi", "focal_point_listed": "no",
        "consultation_date": "2004-08-11", "interview_mode": "workshop", "cprgs_before": "2",
        "cprgs_after": "4", "results_before": "2",
        "results_after": "4", "session_cprgs": "5", "session_mpi_2215": "4", "session_results": "4",
        "session_indicators": "3", "session_group_work": "5", "will_apply": "yes",
        "planned_actions": "Áp dụng khung kết quả vào kế hoạch 2005 của tỉnh",
    },
}
MEMBERS = [
    {"member_name": "Lê Văn Minh", "member_agency": "dard", "member_gender": "male", "member_role": "lead",
     "member_phone": "+84913456789"},
    {"member_name": "Phạm Thị Lan", "member_agency": "dpi", "member_gender": "female",
     "member_role": "member"},
]


def answers(form_id: str, **changes: Any) -> dict[str, Any]:
    """The valid interview with some answers changed (None removes one)."""
    return {k: v for k, v in (VALID[form_id] | changes).items() if v is not None}


def members(*changes: dict[str, Any]) -> list[dict[str, Any]]:
    """The two valid members, each updated by the matching dict of `changes`."""
    rows = copy.deepcopy(MEMBERS)
    for row, change in zip(rows, changes, strict=False):
        row.update(change)
    return rows


def odata_row(schema: FormSchema, instance_id: str, values: dict[str, Any],
              entries: list[dict[str, Any]] | None = None,
              submitted: str = "2004-06-02T08:00:00.000Z") -> dict:
    """One OData row; `entries` are the members repeat's (default: the valid two for team forms)."""
    system = {"submissionDate": submitted, "updatedAt": None, "deletedAt": None, "reviewState": None,
              "submitterId": "5", "submitterName": "enumerator", "attachmentsPresent": 0,
              "attachmentsExpected": 0, "edits": 0}
    row: dict[str, Any] = {"__id": instance_id, "meta": {"instanceID": instance_id}, "__system": system}
    for name, value in values.items():
        _put(row, schema.field(name).odata_path, value)
    if schema.repeats:
        repeat = schema.repeats[0]
        given = MEMBERS if entries is None else entries
        row[repeat.name] = [{"__id": f"{instance_id}-m{n}", **entry}
                            for n, entry in enumerate(given, start=1)]
    return row


def _put(row: dict, path: list[str], value: Any) -> None:
    for key in path[:-1]:
        row = row.setdefault(key, {})
    row[path[-1]] = value
