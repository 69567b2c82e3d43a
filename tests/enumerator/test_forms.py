"""The ISG forms filled by ODK's own engine: payload, relevance, constraints, choice filters.

The forms that pick a focal point read `focal_points.csv` as Central serves it: the session
deploys the forms to a sandbox, the engine fills a registration (three members), the sandbox
makes their entities, and the CSV the follow-up forms get from it is what the engine loads.

Answers are written by field name (`say("respondent_name", ...)`) and resolved to refs
through each form's FormSchema, so moving a question between groups does not break a
case, while renaming or dropping one does. `test_every_rule_has_a_case` derives every
relevant / constraint / choice_filter from the schemas and fails when one has no case
in the tables below, so a rule added to a form without a test fails the suite.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from pydantic import SecretStr

from consult.central import CentralSession, CentralSettings, built_forms, deploy_forms, resolve_project
from consult.forms import FormSchema
from consult.sandbox import SandboxServer

from .engine import EnumeratorEngine, EnumeratorError, FillResult, Step, answer

VI = "vi"
EN = "en"
FUTURE = (date.today() + timedelta(days=30)).isoformat()  # ODK's today() runs on the same clock


# --- Answers by field name --------------------------------------------------------------------


class Say(NamedTuple):
    """One answer: field name, value, and the 1-based repeat instance for fields in a repeat."""

    name: str
    value: Any
    n: int | None = None


def say(name: str, value: Any, n: int | None = None) -> Say:
    return Say(name, value, n)


def ref_of(schema: FormSchema, name: str, n: int | None = None) -> str:
    """The engine ref of a field or repeat; fields in a repeat need their instance `n`."""
    repeats = {r.name: r for r in schema.repeats}
    if name in repeats:
        return repeats[name].xpath
    f = schema.field(name)
    if f.repeat is None:
        assert n is None, f"{name} is not in a repeat"
        return f.xpath
    assert n is not None, f"{name} is in repeat {f.repeat}: say which instance"
    return f"{f.repeat}[{n}]{f.xpath.removeprefix(f.repeat)}"


def xml_path(schema: FormSchema, ref: str) -> str:
    """An ElementTree path, relative to the instance root, for an engine ref."""
    return ref.removeprefix(f"/{schema.root}/")


def replaced(says: list[Say], name: str, value: Any, n: int | None = None) -> list[Say]:
    """`says` with the answer to (name, n) given a new value; the last instance if n is None."""
    index = max(i for i, s in enumerate(says) if s.name == name and (n is None or s.n == n))
    return [*says[:index], says[index]._replace(value=value), *says[index + 1:]]


def without(says: list[Say], name: str, n: int | None = None) -> list[Say]:
    dropped = [s for s in says if not (s.name == name and s.n == n)]
    assert len(dropped) == len(says) - 1, f"{name}[{n}] is not answered exactly once"
    return dropped


# --- Fixtures ---------------------------------------------------------------------------------


class Forms:
    """The built forms plus the engine: interviews are given as field-name answers."""

    def __init__(self, built_forms, enumerator: EnumeratorEngine, media_dir: Path) -> None:
        self.built = built_forms
        self.media_dir = media_dir
        self.enumerator = enumerator
        self._schemas: dict[str, FormSchema] = {}

    def schema(self, form_id: str) -> FormSchema:
        if form_id not in self._schemas:
            self._schemas[form_id] = self.built.schema(form_id)
        return self._schemas[form_id]

    def ref(self, form_id: str, name: str, n: int | None = None) -> str:
        return ref_of(self.schema(form_id), name, n)

    def steps(self, form_id: str, says: list[Say]) -> list[Step]:
        return [answer(self.ref(form_id, s.name, s.n), s.value) for s in says]

    def fill(self, form_id: str, says: list[Say], language: str | None = None) -> FillResult:
        """A fresh interview; `language` is a code of the form (`vi`, `en`) or None for the default."""
        name = None if language is None else self.schema(form_id).languages[language]
        return self.enumerator.fill(self.built.xform(form_id), self.steps(form_id, says),
                                    media_dir=self.media_dir, language=name)


REGISTERED = [("Trần Văn Đức", "dpi", "Trưởng phòng Kế hoạch", "+84913456780"),
              ("Nguyễn Thị Hoà", "ppc", "Phó Chánh Văn phòng", "0793822345"),
              ("Thạch Sô Phết", "other", "", "")]
"""The Sóc Trăng team the engine registers: (name, agency, position, phone), the lead first."""


@dataclass(frozen=True)
class FocalPoint:
    """A row of the focal_points.csv Central serves to the forms that read the list."""

    uuid: str
    label: str
    properties: dict[str, str]


def registration(province: str = "soc_trang",
                 members: list[tuple[str, str, str, str]] = REGISTERED) -> list[Say]:
    """A registration of a province's team: (name, agency, position, phone) per member, the lead first."""
    says = [say("consultation_date", "2004-07-05"), say("interview_mode", "in_person"),
            say("province", province), say("decision_number", "512/QĐ-UBND"), say("decision_date", "2004-06-28"),
            say("issued_by", "ppc"), say("member_count", str(len(members)))]
    for n, (name, agency, position, phone) in enumerate(members, start=1):
        says += [say("member_name", name, n), say("member_agency", agency, n), say("member_gender", "male", n),
                 say("member_role", "lead" if n == 1 else "member", n)]
        says += [say("member_agency_other", "Ban Dân tộc tỉnh", n)] if agency == "other" else []
        says += [say("member_position", position, n)] if position else []
        says += [say("member_phone", phone, n)] if phone else []
    return says


@pytest.fixture(scope="module")
def served_media(built_forms, enumerator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The forms' media as a phone gets them: provinces.csv, and focal_points.csv served by a sandbox
    after the engine's registration made the team's entities."""
    media = tmp_path_factory.mktemp("served-media")
    shutil.copy(built_forms.media_dir / "provinces.csv", media)
    filled = Forms(built_forms, enumerator, media)
    result = filled.fill("focal_point_registration", registration())
    assert result.payload_ok, result.violations
    with SandboxServer(data_dir=tmp_path_factory.mktemp("served-sandbox"), admin_password="enumerator-media",
                       worker_interval=0) as server:
        settings = CentralSettings(url=server.url, username=server.admin_email, password=SecretStr("enumerator-media"),
                                   project="Focal points", retries=1, backoff=0.01, timeout=30)
        with CentralSession(settings) as central:
            project_id = resolve_project(central, settings.project)
            deploy_forms(central, project_id, built_forms_of(built_forms))
            central.json("POST", f"projects/{project_id}/forms/focal_point_registration/submissions",
                         data=result.payload_xml.encode("utf-8"), headers={"Content-Type": "application/xml"})
            server.exhaust_worker()
            served = central.request("GET", f"projects/{project_id}/forms/province_consultation/attachments/"
                                            "focal_points.csv")
    (media / "focal_points.csv").write_bytes(served.content)
    return media


def built_forms_of(built) -> list:
    return built_forms(built.out_dir)


def focal_points(media: Path) -> list[FocalPoint]:
    with (media / "focal_points.csv").open(encoding="utf-8", newline="") as handle:
        return [FocalPoint(row.pop("name"), row.pop("label"), row) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def registered(served_media: Path) -> dict[str, FocalPoint]:
    """The registered focal points by full name."""
    return {p.properties["full_name"]: p for p in focal_points(served_media)}


@pytest.fixture(scope="module")
def forms(built_forms, enumerator, served_media) -> Forms:
    return Forms(built_forms, enumerator, served_media)


# --- Complete valid interviews ----------------------------------------------------------------


def province_consultation(willing: bool = True) -> list[Say]:
    """Sóc Trăng DARD: willing, nominating two members with the lead first; or unwilling, with reasons."""
    says = [
        say("consultation_date", "2004-09-15"),
        say("interview_mode", "in_person"),
        say("province", "soc_trang"),
        say("agency", "dard"),
        say("focal_point_listed", "no"),
        say("respondent_name", "Nguyễn Thị Hoà"),
        say("position", "Phó Giám đốc Sở Nông nghiệp và Phát triển nông thôn"),
        say("gender", "female"),
        say("phone", "0913456789"),
        say("email", "hoa.nguyen@soctrang.gov.vn"),
        say("cprgs_awareness", "well"),
        say("mpi_2215_received", "yes"),
        say("mpi_2215_used", "partly"),
        say("interest_level", "4"),
    ]
    if willing:
        says += [
            say("willing_to_join", "yes"),
            say("member_count", "2"),
            say("member_name", "Trần Văn Đức", 1),
            say("member_agency", "dpi", 1),
            say("member_position", "Trưởng phòng Kế hoạch", 1),
            say("member_gender", "male", 1),
            say("member_phone", "+84913456780", 1),
            say("member_email", "duc.tv@soctrang.gov.vn", 1),
            say("member_role", "lead", 1),
            say("member_name", "Lê Thị Thu Hương", 2),
            say("member_agency", "extension_centre", 2),
            say("member_gender", "female", 2),
            say("member_role", "member", 2),
        ]
    else:
        says += [
            say("willing_to_join", "no"),
            say("reasons_not_joining", ["no_staff", "no_budget"]),
        ]
    return says + [
        say("priority_topics", ["cprgs_ard", "market_access"]),
        say("preferred_activities", ["dialogue_meetings", "field_visits"]),
        say("staff_days", "40"),
        say("budget_mvnd", "12.5"),
        say("constraints", "Thiếu cán bộ có kinh nghiệm lập kế hoạch theo kết quả"),
        say("support_needed", ["training", "technical_assistance"]),
        say("comments", "Đề nghị tổ chức hội thảo vùng tại Cần Thơ."),
    ]


def ministry_consultation() -> list[Say]:
    return [
        say("consultation_date", "2004-10-05"),
        say("interview_mode", "in_person"),
        say("ministry", "mard"),
        say("department", "Vụ Kế hoạch"),
        say("focal_point_listed", "no"),
        say("respondent_name", "Phạm Quốc Việt"),
        say("position", "Phó Vụ trưởng"),
        say("gender", "male"),
        say("phone", "0438234567"),
        say("email", "viet.pq@mard.gov.vn"),
        say("coordination_roles", ["policy_guidance", "monitoring"]),
        say("interest_level", "5"),
        say("willing_to_support", "yes"),
        say("provincial_feedback_use", "sometimes"),
        say("feedback_example", "Góp ý của Sóc Trăng cho kế hoạch 5 năm của ngành"),
        say("priority_topics", ["results_based_planning", "pro_poor_budgeting"]),
        say("contributions", ["expertise", "data"]),
        say("comments", "Cần thống nhất biểu mẫu báo cáo giữa các tỉnh."),
    ]


def donor_consultation() -> list[Say]:
    return [
        say("consultation_date", "2004-11-12"),
        say("interview_mode", "in_person"),
        say("org_type", "bilateral"),
        say("organisation", "danida"),
        say("focal_point_listed", "no"),
        say("respondent_name", "Đặng Minh Châu"),
        say("position", "Cán bộ chương trình"),
        say("gender", "female"),
        say("email", "chau.dm@um.dk"),
        say("active_provinces", ["soc_trang", "tra_vinh"]),
        say("ard_portfolio_musd", "45.5"),
        say("cprgs_alignment", "largely"),
        say("interest_level", "4"),
        say("support_types", ["funding", "technical_assistance"]),
        say("indicative_budget_kusd", "812.5"),  # a whole number would come back as "812.0"
        say("priority_topics", ["cprgs_ard", "rural_credit"]),
        say("comments", "Ưu tiên các xã nghèo vùng đồng bào Khơ-me."),
    ]


def focal_point_registration() -> list[Say]:
    """Three members with the lead in the middle: the rule is 'exactly one', not 'the first'."""
    return [
        say("consultation_date", "2004-12-20"),
        say("interview_mode", "in_person"),
        say("province", "soc_trang"),
        say("decision_number", "1234/QĐ-UBND"),
        say("decision_date", "2004-12-01"),
        say("issued_by", "ppc"),
        say("member_count", "3"),
        say("member_name", "Lâm Văn Bé", 1),
        say("member_agency", "dard", 1),
        say("member_gender", "male", 1),
        say("member_role", "member", 1),
        say("member_name", "Nguyễn Thị Hoà", 2),
        say("member_agency", "ppc", 2),
        say("member_position", "Phó Chánh Văn phòng", 2),
        say("member_gender", "female", 2),
        say("member_phone", "0793822345", 2),
        say("member_role", "lead", 2),
        say("member_name", "Thạch Sô Phết", 3),
        say("member_agency", "dpi", 3),
        say("member_gender", "male", 3),
        say("member_email", "phet.ts@soctrang.gov.vn", 3),
        say("member_role", "member", 3),
        say("notes", "Quyết định do Phó Chủ tịch UBND tỉnh ký."),
    ]


def workshop_evaluation(will_apply: bool = True) -> list[Say]:
    follow_up = (
        [say("will_apply", "yes"), say("planned_actions", "Áp dụng khung theo dõi kết quả cho kế hoạch 2005")]
        if will_apply else [say("will_apply", "no"), say("barriers", "Chưa có chỉ đạo của lãnh đạo Sở")]
    )
    return [
        say("workshop", "soc_trang_2004"),
        say("province", "tra_vinh"),
        say("agency", "dard"),
        say("focal_point_listed", "no"),
        say("delegate_name", "Kim Thị Sa Rin"),
        say("gender", "female"),
        say("consultation_date", "2004-08-12"),
        say("interview_mode", "workshop"),
        say("cprgs_before", "2"),
        say("cprgs_after", "4"),
        say("results_before", "2"),
        say("results_after", "4"),
        say("session_cprgs", "5"),
        say("session_mpi_2215", "4"),
        say("session_results", "4"),
        say("session_indicators", "3"),
        say("session_group_work", "5"),
        *follow_up,
        say("suggestions", "Cần thêm tài liệu bằng tiếng Việt và tiếng Khơ-me."),
    ]


INTERVIEWS: dict[str, tuple[str, list[Say]]] = {
    "province_consultation": ("province_consultation", province_consultation()),
    "province_consultation-unwilling": ("province_consultation", province_consultation(willing=False)),
    "ministry_consultation": ("ministry_consultation", ministry_consultation()),
    "donor_consultation": ("donor_consultation", donor_consultation()),
    "focal_point_registration": ("focal_point_registration", focal_point_registration()),
    "workshop_evaluation": ("workshop_evaluation", workshop_evaluation()),
    "workshop_evaluation-not-applying": ("workshop_evaluation", workshop_evaluation(will_apply=False)),
}


def sent(text: str | None, value: Any) -> bool:
    """Whether the XML text is the answer: a select_multiple is its values joined by single spaces
    (in choice order, whatever order they were ticked in)."""
    if isinstance(value, list):
        return text is not None and sorted(text.split(" ")) == sorted(value)
    return text == value


def submitted(forms: Forms, form_id: str, says: list[Say]) -> tuple[FillResult, ET.Element]:
    """Fill an interview that must be ready to send; return the result and the parsed payload."""
    result = forms.fill(form_id, says)
    assert result.violations == [], result.violations
    assert result.payload_ok
    return result, ET.fromstring(result.payload_xml)


@pytest.mark.parametrize("interview", INTERVIEWS)
def test_complete_interview_is_submitted_intact(forms, interview):
    """Every answer reaches the XML as typed (diacritics, spaces between select_multiple values)."""
    form_id, says = INTERVIEWS[interview]
    schema = forms.schema(form_id)
    result, root = submitted(forms, form_id, says)

    assert result.language == schema.languages[schema.default_language] == "Tiếng Việt (vi)"
    assert root.tag == schema.root
    assert root.get("id") == form_id
    assert root.get("version") == schema.version and schema.version
    assert (root.findtext("meta/instanceID") or "").startswith("uuid:")
    for s in says:
        assert sent(root.findtext(xml_path(schema, forms.ref(form_id, s.name, s.n))), s.value), s
    # Non-relevant questions ('other' texts, hidden branches) are left out, not sent empty.
    for node in result.nodes:
        if not node["relevant"]:
            assert root.find(xml_path(schema, node["ref"])) is None, node["ref"]
    if "member_count" in {s.name for s in says}:
        count = next(s.value for s in says if s.name == "member_count")
        assert len(root.findall(xml_path(schema, forms.ref(form_id, "members")))) == int(count)


def test_vietnamese_text_is_sent_as_text_not_character_references(forms):
    """Central and the reports read the XML bytes: 'Hoà' must be UTF-8, not '&#224;'."""
    result, root = submitted(forms, "province_consultation", province_consultation())
    assert "<respondent_name>Nguyễn Thị Hoà</respondent_name>" in result.payload_xml
    assert root.findtext("respondent/respondent_name") == "Nguyễn Thị Hoà"


def test_each_interview_gets_its_own_instance_id(forms):
    form_id, says = INTERVIEWS["ministry_consultation"]
    ids = {submitted(forms, form_id, says)[1].findtext("meta/instanceID") for _ in range(2)}
    assert len(ids) == 2


# --- Rule cases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relevance:
    """`probe` is shown after `shown` and hidden after `hidden`.

    The probe defaults to the field itself (instance 1 in a repeat); a case for a group or
    repeat names a probe inside it, or the repeat itself.
    """

    form: str
    field: str
    shown: list[Say]
    hidden: list[Say]
    label: str = ""
    probe: tuple[str, int | None] | None = None
    kind = "relevant"

    @property
    def id(self) -> str:
        return f"{self.form}.{self.field}" + (f"-{self.label}" if self.label else "")


@dataclass(frozen=True)
class Constraint:
    """After `setup`, answering `bad` raises the form's message and answering `good` does not."""

    form: str
    field: str
    bad: Any
    good: Any
    label: str = ""
    setup: list[Say] = field(default_factory=list)
    n: int | None = None
    kind = "constraint"

    @property
    def id(self) -> str:
        return f"{self.form}.{self.field}-{self.label}" if self.label else f"{self.form}.{self.field}"


@dataclass(frozen=True)
class ChoiceFilter:
    """After `setup`, the field offers exactly `options`."""

    form: str
    field: str
    setup: list[Say]
    options: frozenset[str]
    label: str = ""
    kind = "choice_filter"

    @property
    def id(self) -> str:
        return f"{self.form}.{self.field}-{self.label}" if self.label else f"{self.form}.{self.field}"


PC, MC, DC, FP, WE, FU = ("province_consultation", "ministry_consultation", "donor_consultation",
                          "focal_point_registration", "workshop_evaluation", "focal_point_update")
PICKERS = (PC, MC, DC, WE)
"""The forms that pick their respondent from focal_points.csv."""
WILLING = [say("willing_to_join", "yes")]


def with_members(form: str, count: int) -> list[Say]:
    """Answers that open `count` member instances (province_consultation asks only the willing)."""
    return (WILLING if form == PC else []) + [say("member_count", str(count))]


def flip(form: str, field_name: str, parent: str, show: Any, hide: Any, label: str = "") -> Relevance:
    """The usual relevance case: one answer to `parent` shows the field, another hides it."""
    return Relevance(form, field_name, [say(parent, show)], [say(parent, hide)], label)


UNWILLING = [say("willing_to_join", "no")]
RELEVANCE = [
    # province_consultation
    flip(PC, "agency_other", "agency", "other", "dard"),
    flip(PC, "mpi_2215_used", "mpi_2215_received", "yes", "dont_know"),
    flip(PC, "reasons_not_joining", "willing_to_join", "no", "yes", "unwilling"),
    flip(PC, "reasons_not_joining", "willing_to_join", "undecided", "yes", "undecided"),
    Relevance(PC, "reasons_other", [*UNWILLING, say("reasons_not_joining", ["no_staff", "other"])],
              [*UNWILLING, say("reasons_not_joining", ["no_staff"])]),
    flip(PC, "member_count", "willing_to_join", "yes", "no"),
    Relevance(PC, "members", with_members(PC, 1), [*with_members(PC, 1), *UNWILLING],
              "fields-hidden-once-unwilling", probe=("member_name", 1)),
    Relevance(PC, "members", with_members(PC, 1), [say("willing_to_join", "undecided")], "repeat",
              probe=("members", None)),
    Relevance(PC, "member_agency_other", [*with_members(PC, 1), say("member_agency", "other", 1)],
              [*with_members(PC, 1), say("member_agency", "dard", 1)]),
    flip(PC, "topics_other", "priority_topics", ["forestry", "other"], ["forestry"]),
    flip(PC, "activities_other", "preferred_activities", ["other"], ["study_tours"]),
    flip(PC, "support_other", "support_needed", ["training", "other"], ["training"]),
    # ministry_consultation
    flip(MC, "ministry_other", "ministry", "other", "mpi"),
    flip(MC, "reasons_not_supporting", "willing_to_support", "no", "yes"),
    flip(MC, "feedback_example", "provincial_feedback_use", "regularly", "never", "regularly"),
    Relevance(MC, "feedback_example", [say("provincial_feedback_use", "sometimes")], [], "sometimes"),
    flip(MC, "topics_other", "priority_topics", ["other"], ["extension"]),
    flip(MC, "contributions_other", "contributions", ["data", "other"], ["data"]),
    # donor_consultation
    Relevance(DC, "organisation_other", [say("org_type", "ingo"), say("organisation", "other")],
              [say("org_type", "ingo"), say("organisation", "snv")]),
    flip(DC, "project_name", "org_type", "project", "multilateral"),
    flip(DC, "support_other", "support_types", ["other"], ["training"]),
    flip(DC, "indicative_budget_kusd", "support_types", ["training", "funding"], ["training"],
         "budget-only-when-funding-offered"),
    flip(DC, "topics_other", "priority_topics", ["other"], ["forestry"]),
    # focal_point_registration
    Relevance(FP, "member_agency_other", [*with_members(FP, 2), say("member_agency", "other", 1)],
              [*with_members(FP, 2), say("member_agency", "dolisa", 1)]),
    # workshop_evaluation
    flip(WE, "agency_other", "agency", "other", "dpi"),
    flip(WE, "planned_actions", "will_apply", "yes", "no"),
    flip(WE, "barriers", "will_apply", "no", "yes"),
    # the focal-point picker: only when the respondent is in the list
    *(flip(form, "focal_point", "focal_point_listed", "yes", "no") for form in PICKERS),
]

FUNDING = [say("support_types", ["funding"])]
CONSTRAINTS = [
    *(
        case
        for form in (PC, MC, DC, FP, FU)
        for case in (
            Constraint(form, "consultation_date", FUTURE, "2004-09-15", "future"),
            Constraint(form, "consultation_date", "2002-12-31", "2003-01-01", "before-2003"),
        )
    ),
    *(Constraint(FU, "phone", bad, good, label) for bad, good, label in (
        ("0013456789", "0913456789", "leading-00"), ("0913 456 789", "+84913456789", "spaces"))),
    *(Constraint(form, "respondent_name", " H ", "Hoà", "two-letters-after-trimming")
      for form in (PC, MC, DC)),
    *(
        Constraint(form, field_name, bad, good, label)
        for form in (PC, MC, DC)
        for field_name, bad, good, label in (
            ("phone", "0013456789", "0913456789", "leading-00"),
            ("phone", "0913 456 789", "+84913456789", "spaces"),
            ("email", "hoa@dard", "hoa@dard.gov.vn", "no-domain"),
            ("email", "hoà@dard.gov.vn", "hoa.nguyen@dard.gov.vn", "diacritics"),
        )
    ),
    *(
        Constraint(form, name, bad, good, setup=with_members(form, 1), n=1)
        for form in (PC, FP)
        for name, bad, good in (
            ("member_name", "Đ", "Đức"),
            ("member_phone", "12345", "0913456789"),
            ("member_email", "duc@", "duc@dpi.gov.vn"),
        )
    ),
    *(
        Constraint(form, "member_count", bad, good, label, setup=WILLING if form == PC else [])
        for form in (PC, FP)
        for bad, good, label in (("0", "1", "at-least-1"), ("16", "15", "at-most-15"))
    ),
    *(
        Constraint(form, "member_role", bad, good, label,
                   setup=[*with_members(form, 2), say("member_role", first, 1)], n=2)
        for form in (PC, FP)
        for first, bad, good, label in (
            ("lead", "lead", "member", "second-lead-refused"),
            ("member", "member", "lead", "last-member-needs-a-lead"),
        )
    ),
    *(
        Constraint(form, "priority_topics", ["cprgs_ard", "forestry", "extension", "rural_credit"],
                   ["cprgs_ard", "forestry", "extension"], "at-most-3")
        for form in (PC, MC, DC)
    ),
    Constraint(PC, "support_needed", ["none", "training"], ["none"], "none-is-exclusive"),
    Constraint(MC, "coordination_roles", ["none", "monitoring"], ["monitoring", "budget_allocation"],
               "none-is-exclusive"),
    Constraint(DC, "support_types", ["coordination", "none"], ["coordination", "research"],
               "none-is-exclusive"),
    Constraint(PC, "staff_days", "-1", "0", "at-least-0"),
    Constraint(PC, "staff_days", "2001", "2000", "at-most-2000"),
    Constraint(PC, "budget_mvnd", "-0.5", "0", "at-least-0"),
    Constraint(PC, "budget_mvnd", "5000.5", "5000", "at-most-5000"),
    Constraint(DC, "ard_portfolio_musd", "-1", "0", "at-least-0"),
    Constraint(DC, "ard_portfolio_musd", "2000.01", "2000", "at-most-2000"),
    Constraint(DC, "indicative_budget_kusd", "0", "0.5", "above-0", FUNDING),
    Constraint(DC, "indicative_budget_kusd", "100001", "100000", "at-most-100000", FUNDING),
    Constraint(FP, "decision_number", "1234/qđ-ubnd", "1234/QĐ-UBND", "upper-case"),
    Constraint(FP, "decision_number", "QĐ-UBND", "56/QĐ-UB", "number-first"),
    Constraint(FP, "decision_number", "1234567/QĐ-UBND", "12/QĐ-SNN&PTNT", "six-digits"),
    Constraint(FP, "decision_number", "1234/04/QĐ-UB", "1234/2004/QĐ-UB", "with-year"),
    Constraint(FP, "decision_number", "1234/QĐ-UBND ", "1234/QD-UBND", "no-trailing-space"),
    Constraint(FP, "decision_date", FUTURE, "2004-12-01", "future"),
    Constraint(FP, "decision_date", "2002-12-31", "2003-01-01", "before-2003"),
    Constraint(WE, "consultation_date", "2004-08-09", "2004-08-10", "soc-trang-opened-2004-08-10",
               [say("workshop", "soc_trang_2004")]),
    Constraint(WE, "consultation_date", "2004-08-23", "2004-08-24", "thanh-hoa-opened-2004-08-24",
               [say("workshop", "thanh_hoa_2004")]),
    Constraint(WE, "consultation_date", FUTURE, "2005-03-01", "future", [say("workshop", "thanh_hoa_2004")]),
]


def offers(form: str, field_name: str, setup: list[Say], names: str, label: str) -> ChoiceFilter:
    return ChoiceFilter(form, field_name, setup, frozenset(names.split()), label)


CHOICE_FILTERS = [
    offers(WE, "province", [say("workshop", "soc_trang_2004")], "an_giang soc_trang tra_vinh", "soc-trang"),
    offers(WE, "province", [say("workshop", "thanh_hoa_2004")], "thai_nguyen thanh_hoa", "thanh-hoa"),
    offers(FP, "province", [], "thai_nguyen thanh_hoa tra_vinh an_giang soc_trang", "the-5-pilots"),
    offers(DC, "organisation", [say("org_type", "multilateral")], "world_bank adb undp fao ifad ec other",
           "multilateral"),
    offers(DC, "organisation", [say("org_type", "ingo")], "ceci helvetas snv oxfam care actionaid other",
           "ingo"),
    offers(DC, "organisation", [say("org_type", "project")], "fssp ndm other", "project"),
    offers(DC, "organisation", [say("org_type", "research")], "ifpri icraf other", "research"),
    offers(DC, "organisation", [], "other", "other-before-a-type"),
]


def params(cases: list) -> list:
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), [i for i, k in Counter(ids).items() if k > 1]
    return [pytest.param(c, id=c.id) for c in cases]


@pytest.mark.parametrize("case", params(RELEVANCE))
def test_relevant_shows_and_hides(forms, case: Relevance):
    """The probe is shown (and serialized) on one answer and hidden (and left out) on the other."""
    schema = forms.schema(case.form)
    name, n = case.probe or (case.field, 1 if schema.field(case.field).repeat else None)
    ref = forms.ref(case.form, name, n)
    for says, shown in ((case.shown, True), (case.hidden, False)):
        result = forms.fill(case.form, says)
        assert result.relevant(ref) is shown, (ref, says)
        in_xml = ET.fromstring(result.draft_xml).find(xml_path(schema, ref)) is not None
        assert in_xml is shown, (ref, says)


def constraint_message(forms: Forms, case: Constraint, language: str) -> str:
    return forms.schema(case.form).field(case.field).constraint_messages[language]


@pytest.mark.parametrize("case", params(CONSTRAINTS))
def test_constraint_rejects_bad_and_accepts_good(forms, case: Constraint):
    """A bad value gets the form's own message (default language, Vietnamese); a good one passes."""
    ref = forms.ref(case.form, case.field, case.n)
    bad = forms.fill(case.form, [*case.setup, say(case.field, case.bad, case.n)])
    message = constraint_message(forms, case, VI)
    assert bad.violation(ref) == {"condition": "constraint", "message": message}
    assert {"ref": ref, "condition": "constraint", "message": message} in bad.violations
    good = forms.fill(case.form, [*case.setup, say(case.field, case.good, case.n)])
    assert good.violation(ref) is None


def first_case_per_form(cases: list[Constraint]) -> list[Constraint]:
    return list({c.form: c for c in reversed(cases)}.values())


@pytest.mark.parametrize("language", [VI, EN])
@pytest.mark.parametrize("case", params(first_case_per_form(CONSTRAINTS)))
def test_constraint_message_follows_the_chosen_language(forms, case: Constraint, language):
    """The same violation reads in Vietnamese under 'Tiếng Việt (vi)', in English under 'English (en)'."""
    result = forms.fill(case.form, [*case.setup, say(case.field, case.bad, case.n)], language)
    assert result.language == forms.schema(case.form).languages[language]
    message = result.violation(forms.ref(case.form, case.field, case.n))["message"]
    assert message == constraint_message(forms, case, language)
    assert message != constraint_message(forms, case, EN if language == VI else VI)


def test_every_constraint_has_a_message_in_every_language(built_forms):
    """An enumerator must read why an answer is refused whichever language the device uses."""
    missing = [
        (schema.form_id, f.name, code)
        for schema in all_schemas(built_forms)
        for f in schema.fields
        if f.constraint
        for code in schema.languages
        if not f.constraint_messages.get(code)
    ]
    assert missing == []


LEAD_SCENARIOS = {
    "lead-first": ([(1, "lead"), (2, "member"), (3, "member")], set()),
    "lead-in-the-middle": ([(1, "member"), (2, "lead"), (3, "member")], set()),
    "lead-last": ([(1, "member"), (2, "member"), (3, "lead")], set()),
    "lead-named-after-the-last-member": ([(1, "member"), (2, "member"), (3, "member"), (2, "lead")], set()),
    "no-lead": ([(1, "member"), (2, "member"), (3, "member")], {3}),
    # lead_count is form-wide, so a second lead makes every member's role invalid, not only the leads'.
    "two-leads": ([(1, "lead"), (2, "member"), (3, "lead")], {1, 2, 3}),
}


@pytest.mark.parametrize("scenario", LEAD_SCENARIOS)
@pytest.mark.parametrize("form", [PC, FP])
def test_exactly_one_lead_among_members(forms, form, scenario):
    """One lead anywhere is accepted in any order of entry; no lead flags the last member."""
    roles, flagged = LEAD_SCENARIOS[scenario]
    result = forms.fill(form, [*with_members(form, 3), *(say("member_role", role, n) for n, role in roles)])
    violations = {n for n in (1, 2, 3) if result.violation(forms.ref(form, "member_role", n))}
    assert violations == flagged
    final_roles = dict(roles).values()
    assert result.value(forms.ref(form, "lead_count")) == str(list(final_roles).count("lead"))


@pytest.mark.parametrize("case", params(CHOICE_FILTERS))
def test_choice_filter_offers_exactly(forms, case: ChoiceFilter):
    result = forms.fill(case.form, case.setup)
    options = result.options(forms.ref(case.form, case.field))
    assert len(options) == len(set(options))
    assert set(options) == case.options


def test_changing_workshop_clears_a_province_it_no_longer_offers(forms):
    """A delegate moved to the other workshop must not keep a province of the first one."""
    result = forms.fill(WE, [say("workshop", "soc_trang_2004"), say("province", "soc_trang"),
                             say("workshop", "thanh_hoa_2004")])
    assert result.value(forms.ref(WE, "province")) == ""


def test_a_province_outside_the_pilots_cannot_be_registered(forms):
    with pytest.raises(EnumeratorError, match="not an available choice"):
        forms.fill(FP, [say("province", "ha_noi")])


# --- Coverage of the rule tables --------------------------------------------------------------


def all_schemas(built_forms) -> list[FormSchema]:
    paths = sorted(built_forms.out_dir.glob("*.schema.json"))
    assert len(paths) == 6, paths
    return [FormSchema.read(p) for p in paths]


def group_of(schema: FormSchema, condition: str) -> str:
    """The group whose `relevant` is `condition`: the deepest folder shared by all fields it hides."""
    parents = [f.xpath.split("/")[:-1] for f in schema.fields if condition in f.inherited_relevant]
    return os.path.commonprefix(parents)[-1]


def rules(schema: FormSchema) -> set[tuple[str, str, str]]:
    """(form_id, name, kind) for every relevant, constraint and choice_filter of the form."""
    found = {(schema.form_id, r.name, "relevant") for r in schema.repeats if r.relevant}
    for f in schema.fields:
        if f.relevant:
            found.add((schema.form_id, f.name, "relevant"))
        if f.constraint:
            found.add((schema.form_id, f.name, "constraint"))
        if f.choice_filter:
            found.add((schema.form_id, f.name, "choice_filter"))
        from_repeats = Counter(r.relevant for r in schema.repeats if f.xpath.startswith(f"{r.xpath}/"))
        for condition in (Counter(f.inherited_relevant) - from_repeats).elements():
            found.add((schema.form_id, group_of(schema, condition), "relevant"))
    return found


def rule_inventory(built_forms) -> dict[str, Counter]:
    return {s.form_id: Counter(kind for *_, kind in rules(s)) for s in all_schemas(built_forms)}


def test_every_rule_has_a_case(built_forms):
    """Each rule of the forms is exercised by a case above, and each case names a real rule."""
    expected = set().union(*(rules(s) for s in all_schemas(built_forms)))
    tested = {(c.form, c.field, c.kind) for c in [*RELEVANCE, *CONSTRAINTS, *CHOICE_FILTERS]}
    tested |= {(form, "focal_point", "choice_filter") for form in FOCAL_POINT_FILTERS}
    assert sorted(expected - tested) == [], "rules without a case"
    assert sorted(tested - expected) == [], "cases for rules the forms no longer have"
    for form_id, counts in rule_inventory(built_forms).items():
        print(form_id, *(f"{kind} {counts[kind]}" for kind in ("relevant", "constraint", "choice_filter")))


# --- Required questions -----------------------------------------------------------------------

REQUIRED = [
    ("province_consultation", "province", None),
    ("province_consultation", "consultation_date", None),
    ("province_consultation", "member_gender", 2),
    ("province_consultation", "member_role", 2),
    ("province_consultation", "priority_topics", None),
    ("province_consultation-unwilling", "reasons_not_joining", None),
    ("ministry_consultation", "department", None),
    ("ministry_consultation", "coordination_roles", None),
    ("donor_consultation", "active_provinces", None),
    ("donor_consultation", "indicative_budget_kusd", None),
    ("focal_point_registration", "decision_number", None),
    ("focal_point_registration", "member_name", 3),
    ("workshop_evaluation", "province", None),
    ("workshop_evaluation", "planned_actions", None),
]


def answer_params(rows: list[tuple[str, str, int | None]]) -> list:
    return [pytest.param(*row, id=f"{row[0]}.{row[1]}" + (f"[{row[2]}]" if row[2] else "")) for row in rows]


@pytest.mark.parametrize(("interview", "name", "n"), answer_params(REQUIRED))
def test_missing_required_answer_blocks_the_payload(forms, interview, name, n):
    form_id, says = INTERVIEWS[interview]
    result = forms.fill(form_id, without(says, name, n))
    ref = forms.ref(form_id, name, n)
    assert not result.payload_ok and result.payload_xml is None
    assert [(v["ref"], v["condition"]) for v in result.violations] == [(ref, "required")]
    assert result.violation(ref)["condition"] == "required"


OTHER_SPECIFY = [
    ("province_consultation", "agency_other", None),
    ("province_consultation", "member_agency_other", 2),
    ("province_consultation-unwilling", "reasons_other", None),
    ("province_consultation", "topics_other", None),
    ("province_consultation", "activities_other", None),
    ("province_consultation", "support_other", None),
    ("ministry_consultation", "ministry_other", None),
    ("ministry_consultation", "topics_other", None),
    ("ministry_consultation", "contributions_other", None),
    ("donor_consultation", "organisation_other", None),
    ("donor_consultation", "support_other", None),
    ("donor_consultation", "topics_other", None),
    ("focal_point_registration", "member_agency_other", 1),
    ("workshop_evaluation", "agency_other", None),
]
OTHER_RELEVANT = re.compile(r"^(?:selected\(\$\{(\w+)\}, 'other'\)|\$\{(\w+)\} = 'other')$")


def other_parent(schema: FormSchema, name: str) -> str | None:
    """The select whose 'other' choice opens `name`, or None if `name` is not an 'other, specify'."""
    match = OTHER_RELEVANT.match(schema.field(name).relevant or "")
    return match and (match[1] or match[2])


def choosing_other(says: list[Say], parent: str, n: int | None) -> list[Say]:
    """`says` with 'other' chosen for `parent`: replacing a select_one, added to a select_multiple."""
    current = next(s.value for s in says if s.name == parent and s.n == n)
    return replaced(says, parent, [*current, "other"] if isinstance(current, list) else "other", n)


@pytest.mark.parametrize(("interview", "name", "n"), answer_params(OTHER_SPECIFY))
def test_other_specify_is_required_only_when_other_is_chosen(forms, interview, name, n):
    """The valid interviews are sent without it; choosing 'other' makes it required, then it is sent."""
    form_id, says = INTERVIEWS[interview]
    ref = forms.ref(form_id, name, n)
    with_other = choosing_other(says, other_parent(forms.schema(form_id), name), n)
    blocked = forms.fill(form_id, with_other)
    assert [(v["ref"], v["condition"]) for v in blocked.violations] == [(ref, "required")]
    text = "Hội Liên hiệp Phụ nữ tỉnh"
    _, root = submitted(forms, form_id, [*with_other, say(name, text, n)])
    assert root.findtext(xml_path(forms.schema(form_id), ref)) == text


def test_other_specify_cases_cover_every_other_field(built_forms):
    listed = {(INTERVIEWS[i][0], name) for i, name, _ in OTHER_SPECIFY}
    found = {(s.form_id, f.name) for s in all_schemas(built_forms) for f in s.fields
             if other_parent(s, f.name)}
    assert listed == found


# --- The shipped media ------------------------------------------------------------------------

FORMS_WITH_PROVINCES = [PC, DC, FP, WE]


def provinces_field(schema: FormSchema) -> str:
    return next(f.name for f in schema.fields if f.choice_list == "provinces.csv")


@pytest.mark.parametrize("form_id", FORMS_WITH_PROVINCES)
def test_forms_load_with_shipped_media(forms, built_forms, form_id):
    """The build ships provinces.csv; focal_points.csv comes from Central (the served media)."""
    schema = forms.schema(form_id)
    assert "provinces.csv" in schema.media
    assert sorted(p.name for p in built_forms.media_dir.iterdir()) == ["provinces.csv"]
    result = forms.fill(form_id, [])
    assert result.options(forms.ref(form_id, provinces_field(schema)))


# --- The focal-point list ---------------------------------------------------------------------

FOCAL_POINT_FILTERS = {
    PC: ([say("province", "soc_trang")], {"Trần Văn Đức", "Nguyễn Thị Hoà", "Thạch Sô Phết"}),
    WE: ([say("workshop", "soc_trang_2004"), say("province", "tra_vinh")], set()),
    MC: ([], set()),
    DC: ([], set()),
}
"""Form → (setup, names offered): Sóc Trăng's registered team, nobody of Trà Vinh, no ministry or donor yet."""


def test_the_served_list_holds_the_registered_team_with_the_contract_properties(registered):
    assert set(registered) == {name for name, *_ in REGISTERED}
    duc, hoa, phet = (registered[name] for name, *_ in REGISTERED)
    assert duc.label == "Trần Văn Đức – Sở Kế hoạch và Đầu tư – Sóc Trăng"
    assert phet.label == "Thạch Sô Phết – Ban Dân tộc tỉnh – Sóc Trăng", "an 'other' agency is the typed name"
    assert hoa.properties == {"__version": "1", "full_name": "Nguyễn Thị Hoà", "province": "soc_trang",
                              "stakeholder_type": "province", "agency": "ppc", "position": "Phó Chánh Văn phòng",
                              "phone": "0793822345"} | {k: v for k, v in hoa.properties.items()
                                                        if k not in ("__version", "full_name", "province",
                                                                     "stakeholder_type", "agency", "position",
                                                                     "phone")}
    assert phet.properties["agency"] == "Ban Dân tộc tỉnh" and phet.properties["phone"] == ""
    assert not {"gender", "email", "member_gender", "member_email"} & set(hoa.properties), "kept off the phones"


@pytest.mark.parametrize("form_id", FOCAL_POINT_FILTERS)
def test_the_picker_offers_the_focal_points_of_the_province_or_stakeholder_type(forms, registered, form_id):
    setup, names = FOCAL_POINT_FILTERS[form_id]
    result = forms.fill(form_id, [*setup, say("focal_point_listed", "yes")])
    assert set(result.options(forms.ref(form_id, "focal_point"))) == {registered[n].uuid for n in names}


def test_a_listed_respondent_is_taken_from_the_list_and_registers_nobody(forms, registered):
    hoa = registered["Nguyễn Thị Hoà"]
    says = [*without(without(without(province_consultation(), "respondent_name"), "position"), "phone")]
    says = replaced(says, "focal_point_listed", "yes")
    says.insert(next(i for i, s in enumerate(says) if s.name == "focal_point_listed") + 1, say("focal_point", hoa.uuid))
    _, root = submitted(forms, PC, says)
    respondent = root.find("respondent")
    assert (respondent.findtext("focal_point"), respondent.findtext("respondent_name"),
            respondent.findtext("position"), respondent.findtext("phone")) == (
        hoa.uuid, "Nguyễn Thị Hoà", "Phó Chánh Văn phòng", "0793822345")
    assert root.find("meta/entity").get("create") == "false"


@pytest.mark.parametrize(("form_id", "label"), [
    (PC, "Nguyễn Thị Hoà – Sở Nông nghiệp và PTNT – Sóc Trăng"),
    (MC, "Phạm Quốc Việt – Vụ Kế hoạch – Bộ Nông nghiệp và PTNT"),
    (DC, "Đặng Minh Châu – Nhà tài trợ song phương – Danida (Đan Mạch)"),
    (WE, "Kim Thị Sa Rin – Sở Nông nghiệp và PTNT – Trà Vinh"),
])
def test_a_respondent_not_in_the_list_is_registered_as_a_new_focal_point(forms, form_id, label):
    interview = next(says for f, says in INTERVIEWS.values() if f == form_id)
    _, root = submitted(forms, form_id, interview)
    entity = root.find("meta/entity")
    assert (entity.get("dataset"), entity.get("create"), entity.findtext("label")) == ("focal_points", "true", label)
    assert re.fullmatch(r"[0-9a-f-]{36}", entity.get("id"))
    group = root.find("respondent") if form_id != WE else root.find("delegate")
    assert group.findtext("stakeholder_type") == ("ministry" if form_id == MC else "donor" if form_id == DC
                                                  else "province")


def test_an_anonymous_delegate_registers_nobody(forms):
    says = without(workshop_evaluation(), "delegate_name")
    _, root = submitted(forms, WE, says)
    assert root.find("meta/entity").get("create") == "false"


def test_the_update_form_prefills_the_current_values_and_updates_only_what_changed(forms, registered):
    duc = registered["Trần Văn Đức"]
    opening = [say("consultation_date", "2004-10-01"), say("interview_mode", "phone"), say("focal_point", duc.uuid)]
    unchanged = forms.fill(FU, opening)
    assert [unchanged.value(forms.ref(FU, n)) for n in ("agency", "position", "phone")] == [
        "dpi", "Trưởng phòng Kế hoạch", "+84913456780"]
    entity = ET.fromstring(unchanged.payload_xml).find("meta/entity")
    assert (entity.get("id"), entity.get("update"), entity.get("baseVersion")) == (duc.uuid, "false", "1")
    _, root = submitted(forms, FU, [*opening, say("phone", "0913000111")])
    entity = root.find("meta/entity")
    assert (entity.get("dataset"), entity.get("id"), entity.get("update"), entity.get("baseVersion")) == (
        "focal_points", duc.uuid, "true", "1")
    assert root.findtext("changes/phone") == "0913000111" and root.findtext("changes/position") == duc.properties[
        "position"]
