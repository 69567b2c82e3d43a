"""The focal-point registry as the phones see it: who is in `focal_points.csv` when an interview starts.

Each pilot province's registration makes one focal point per member. A consultation (or a
workshop evaluation) then either picks a focal point of its province and agency (its ministry,
its organisation) that was registered before the interview started, and takes the name,
position and phone from the list, or types the respondent in, which registers them. Interviews
spoiled on purpose never pick anyone (their mistake stays theirs) and register people nobody
picks later, so a wrong phone is not copied into a correct interview. In December 2004, after the
last consultation, the ISG Office phoned a few registered members and recorded a new phone or
post with `focal_point_update` (each entity's version 2).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from .interview import Draft, Entity
from . import people
from .kit import OTHER, PROVINCE_LIST, FormKit, working_day

LIST_NAME = "focal_points"
PICK_SHARE = 0.8
"""How often an enumerator whose respondent is in the list picks them rather than typing again."""
STAKEHOLDERS = {"province_consultation": "province", "workshop_evaluation": "province",
                "ministry_consultation": "ministry", "donor_consultation": "donor"}
"""Form → the stakeholder_type of the people it registers."""
NAME_FIELD = {"workshop_evaluation": "delegate_name"}
SAVED = ("position", "phone")
"""Answers taken from the list when a focal point is picked, besides the name (the properties)."""
PRIVATE = ("gender", "email")
"""What the interview also knows of a picked person, though not from the list."""
UPDATES = 6
"""Registered members whose phone or post changed by December 2004."""
UPDATED = (date(2004, 12, 1), date(2004, 12, 22))
NEW_POSTS = ["Phó Giám đốc Sở", "Trưởng phòng Kế hoạch", "Phó Chánh Văn phòng UBND tỉnh",
             "Chuyên viên chính phòng Tổng hợp"]


@dataclass(frozen=True)
class FocalPoint:
    uuid: str
    full_name: str
    province: str
    stakeholder_type: str
    agency: str
    answers: Mapping[str, str]
    """position, phone, gender, email as the registering interview gave them."""
    listed_from: datetime
    """When the registering submission reached Central: from then on the list holds them."""


def link_focal_points(drafts: Sequence[Draft], kits: Mapping[str, FormKit], rng: random.Random) -> list[Draft]:
    """Register and pick focal points through `drafts`, in the order the phones send them; the
    update interviews that follow (when `kits` has focal_point_update)."""
    registry: list[FocalPoint] = []
    members: list[FocalPoint] = []
    for draft in sorted(drafts, key=lambda d: d.sent):
        kit = kits[draft.form_id]
        if draft.form_id == "focal_point_registration":
            team = _register_team(draft, kit, rng)
            registry += team
            members += team
        elif draft.form_id in STAKEHOLDERS:
            person = _consult(draft, kit, rng, registry)
            if person is not None:
                registry.append(person)
    kit = kits.get("focal_point_update")
    if kit is None or not members:
        return []
    return [_update(kit, person) for person in kit.rng.sample(members, min(UPDATES, len(members)))]


def _update(kit: FormKit, person: FocalPoint) -> Draft:
    """A phone call to a registered member: a new mobile number, or a new post."""
    rng = kit.rng
    draft = kit.open(working_day(rng, *UPDATED), kit.pick({"phone": 70, "in_person": 30}), person.province)
    a = draft.answers
    a["focal_point"], a["agency"] = person.uuid, person.agency
    position, phone = person.answers.get("position", ""), person.answers.get("phone", "")
    a["current_agency"], a["current_position"], a["current_phone"] = person.agency, position, phone
    if rng.random() < 0.7 or not position:
        phone = people.phone(rng, person.province, mobile_share=1.0)
    else:
        position = rng.choice([p for p in NEW_POSTS if p != position])
    a |= {k: v for k, v in (("position", position), ("phone", phone)) if v}
    draft.entity = Entity(LIST_NAME, person.uuid, "", "", update="true", base_version="1")
    return draft


def _register_team(draft: Draft, kit: FormKit, rng: random.Random) -> list[FocalPoint]:
    province = draft.answers["province"]
    team = []
    for entry in draft.entries.get("members", []):
        agency = entry.get("member_agency_other", "") if entry["member_agency"] == OTHER else entry["member_agency"]
        entry |= {"member_province": province, "member_stakeholder_type": "province", "member_agency_code": agency}
        person = FocalPoint(_uuid(rng), entry["member_name"], province, "province", agency,
                            {k: entry[f"member_{k}"] for k in (*SAVED, *PRIVATE) if entry.get(f"member_{k}")},
                            draft.sent)
        label = _label(kit, person.full_name, "agency", entry["member_agency"], agency, province)
        draft.entry_entities.setdefault("members", []).append(Entity(LIST_NAME, person.uuid, label, "1"))
        if draft.mistake is None:
            team.append(person)
    return team


def _consult(draft: Draft, kit: FormKit, rng: random.Random, registry: list[FocalPoint]) -> FocalPoint | None:
    """Pick the respondent from the list or register them; the newly registered person, if any."""
    a = draft.answers
    stakeholder = STAKEHOLDERS[draft.form_id]
    choice, agency = _agency_of(draft)
    province = a.get("province", "") if stakeholder == "province" else ""
    a["stakeholder_type"], a["focal_point_agency"] = stakeholder, agency
    name_field = NAME_FIELD.get(draft.form_id, "respondent_name")
    started = datetime.fromisoformat(a["start_time"])
    known = [p for p in registry if (p.stakeholder_type, p.province, p.agency) == (stakeholder, province, agency)
             and p.listed_from < started]
    if known and draft.mistake is None and not draft.original and rng.random() < PICK_SHARE:
        person = rng.choice(known)
        a["focal_point_listed"], a["focal_point"], a[name_field] = "yes", person.uuid, person.full_name
        asked = {f.name for f in kit.schema.fields}
        for key in (k for k in (*SAVED, *PRIVATE) if k in asked):
            if key in a or key in person.answers:
                a.pop(key, None)
                if key in person.answers:
                    a[key] = person.answers[key]
        draft.entity = Entity(LIST_NAME, _uuid(rng), _label_of(draft, kit, choice, agency), "false")
        return None
    a["focal_point_listed"] = "no"
    named = len((a.get(name_field) or "").strip()) >= 2
    draft.entity = Entity(LIST_NAME, _uuid(rng), _label_of(draft, kit, choice, agency), "true" if named else "false")
    if not named or draft.mistake is not None:
        return None
    return FocalPoint(draft.entity.id, a[name_field], province, stakeholder, agency,
                      {k: a[k] for k in (*SAVED, *PRIVATE) if a.get(k)}, draft.sent)


def _agency_of(draft: Draft) -> tuple[str, str]:
    """(the select answering who they work for, the `agency` property: that code or the typed name)."""
    field = {"ministry_consultation": "ministry", "donor_consultation": "organisation"}.get(draft.form_id, "agency")
    choice = draft.answers.get(field, "")
    return choice, draft.answers.get(f"{field}_other", "") if choice == OTHER else choice


def _label_of(draft: Draft, kit: FormKit, choice: str, agency: str) -> str:
    """The label the form computes: name – agency – province (ministries: – department – ministry;
    donors: – organisation type – organisation)."""
    a = draft.answers
    name = a.get(NAME_FIELD.get(draft.form_id, "respondent_name"), "")
    if draft.form_id == "ministry_consultation":
        return " – ".join((name, a.get("department", ""), _choice_label(kit, "ministry", choice, agency)))
    if draft.form_id == "donor_consultation":
        return " – ".join((name, kit.schema.choice_lists["org_type"].label(a["org_type"], "vi"),
                           _choice_label(kit, "organisation", choice, agency)))
    return _label(kit, name, "agency", choice, agency, a.get("province", ""))


def _label(kit: FormKit, name: str, list_name: str, choice: str, agency: str, province: str) -> str:
    provinces = kit.schema.choice_lists[PROVINCE_LIST]
    return " – ".join((name, _choice_label(kit, list_name, choice, agency), provinces.label(province, "vi")))


def _choice_label(kit: FormKit, list_name: str, choice: str, agency: str) -> str:
    return agency if choice == OTHER else kit.schema.choice_lists[list_name].label(choice, "vi")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
