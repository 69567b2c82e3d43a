"""Deliberate mistakes: a few interviews filled in wrongly the way enumerators do, each labelled.

Each kind names the validation rule that must report it (`EXPECTED_RULE`), so the demo and
the tests can show every one caught. The mistakes are the real ones of paper-to-phone
fieldwork: a unit mistaken (days ×10, VND in thousands, USD instead of thousand USD), a
year typed 2040 for 2004, a phone without its leading zero, the same agency interviewed
twice on one day, 'other' chosen and never specified, a team without its lead or with two.
"""

from __future__ import annotations

import copy
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from consult.forms.schema import DataType

from . import people
from .interview import INSTANCE_ID, Draft
from .kit import OTHER, FormKit, new_instance_id, odk_datetime

EXPECTED_RULE: dict[str, str] = {
    "out_of_range": "range",
    "missing_lead": "one_lead",
    "two_leads": "one_lead",
    "future_date": "date_range",
    "duplicate_interview": "duplicate_interview",
    "bad_phone": "pattern",
    "workshop_province_mismatch": "cascading_choice",
    "budget_without_funding": "budget_matches_funding",
    "other_unspecified": "other_specified",
}
"""Mistake kind → the rule of `consult.validate` that reports it."""

TEAM_FORMS = ("province_consultation", "focal_point_registration")
INTERVIEW_FORMS = ("province_consultation", "ministry_consultation", "donor_consultation")
"""Forms keyed by who was interviewed when: where a second interview is a duplicate."""
FIND_ATTEMPTS = 200
_OTHER_RELEVANT = re.compile(r"^\$\{(?P<field>\w+)\}\s*=\s*'other'$")


@dataclass(frozen=True)
class Mistake:
    kind: str
    forms: tuple[str, ...]
    fits: Callable[[Draft, FormKit], bool]
    make: Callable[[Draft, FormKit, random.Random], Draft]
    """Spoils the draft and returns it, or returns a new, spoiling draft (a duplicate)."""


def _members(draft: Draft) -> list[dict[str, str]]:
    return draft.entries.get("members", [])


def _phones(draft: Draft) -> list[dict[str, str]]:
    """The answers dicts (the form's, or its members') that hold a phone number."""
    holders = [draft.answers] if "phone" in draft.answers else []
    return holders + [m for m in _members(draft) if "member_phone" in m]


def _specify_targets(draft: Draft, kit: FormKit) -> list[tuple[dict[str, str], str, str]]:
    """(answers dict, select_one, its 'specify' question) for each 'other' the draft could choose."""
    targets = []
    for f in kit.schema.fields:
        match = _OTHER_RELEVANT.match(f.relevant or "")
        if not match or kit.schema.field(match["field"]).data_type is not DataType.SELECT_ONE:
            continue
        holders = _members(draft) if f.repeat else [draft.answers]
        targets += [(h, match["field"], f.name) for h in holders if match["field"] in h]
    return targets


def _out_of_range(draft: Draft, kit: FormKit, rng: random.Random) -> Draft:
    a = draft.answers
    if draft.form_id == "donor_consultation":
        a["ard_portfolio_musd"] = f"{float(a['ard_portfolio_musd']) * 1000:.0f}"  # thousand USD, not million
    elif int(a["staff_days"]) > 200 and (rng.random() < 0.5 or float(a["budget_mvnd"]) <= 5):
        a["staff_days"] += "0"
    else:
        a["budget_mvnd"] = f"{float(a['budget_mvnd']) * 1000:g}"  # thousand VND, not million
    return draft


def _out_of_range_fits(draft: Draft, kit: FormKit) -> bool:
    a = draft.answers
    if draft.form_id == "donor_consultation":
        return float(a["ard_portfolio_musd"]) > 2
    return int(a["staff_days"]) > 200 or float(a["budget_mvnd"]) > 5


def _missing_lead(draft: Draft, kit: FormKit, rng: random.Random) -> Draft:
    for member in _members(draft):
        member["member_role"] = "member"
    return draft


def _two_leads(draft: Draft, kit: FormKit, rng: random.Random) -> Draft:
    rng.choice([m for m in _members(draft) if m["member_role"] != "lead"])["member_role"] = "lead"
    return draft


def _future_date(draft: Draft, kit: FormKit, rng: random.Random) -> Draft:
    draft.answers["consultation_date"] = "2040" + draft.answers["consultation_date"][4:]  # 04 typed as 40
    return draft


def _duplicate(draft: Draft, kit: FormKit, rng: random.Random) -> Draft:
    """The same agency interviewed again that day by another colleague, sent days after the first."""
    draft.original = True
    again = copy.deepcopy(draft)
    a = again.answers
    a[INSTANCE_ID] = new_instance_id(rng)
    start = datetime.fromisoformat(a["end_time"]) + timedelta(minutes=rng.randint(10, 90))
    a["start_time"] = odk_datetime(start)
    a["end_time"] = odk_datetime(start + timedelta(minutes=rng.randint(25, 80)))
    person = people.vietnamese(rng, a.get("province"))
    a["respondent_name"], a["gender"] = person.name, person.gender
    for optional in ("position", "phone", "email"):
        a.pop(optional, None)
    again.sent = draft.sent + timedelta(days=rng.uniform(1, 5))
    return again


def _bad_phone(draft: Draft, kit: FormKit, rng: random.Random) -> Draft:
    holder = rng.choice(_phones(draft))
    key = "phone" if "phone" in holder else "member_phone"
    number = holder[key]
    holder[key] = rng.choice([number[1:], f"{number[:4]}.{number[4:7]}.{number[7:]}", number[:-3]])
    return draft


def _workshop_province_mismatch(draft: Draft, kit: FormKit, rng: random.Random) -> Draft:
    """A delegate entered under the province of the other workshop."""
    workshop = draft.answers["workshop"]
    elsewhere = [p for p in kit.provinces(pilot="1") if p.properties.get("workshop") not in ("", workshop)]
    draft.answers["province"] = rng.choice(elsewhere).name
    return draft


def _budget_without_funding(draft: Draft, kit: FormKit, rng: random.Random) -> Draft:
    support = [s for s in draft.answers["support_types"].split() if s != "funding"]
    draft.answers["support_types"] = " ".join(support) or "technical_assistance"
    return draft


def _other_unspecified(draft: Draft, kit: FormKit, rng: random.Random) -> Draft:
    holder, select, specify = rng.choice(_specify_targets(draft, kit))
    holder[select] = OTHER
    holder.pop(specify, None)
    return draft


MISTAKES: dict[str, Mistake] = {m.kind: m for m in (
    Mistake("out_of_range", ("province_consultation", "donor_consultation"), _out_of_range_fits,
            _out_of_range),
    Mistake("missing_lead", TEAM_FORMS, lambda d, k: bool(_members(d)), _missing_lead),
    Mistake("two_leads", TEAM_FORMS, lambda d, k: len(_members(d)) >= 2, _two_leads),
    Mistake("future_date", (*INTERVIEW_FORMS, "focal_point_registration", "workshop_evaluation"),
            lambda d, k: d.answers["consultation_date"].startswith("2004"), _future_date),
    Mistake("duplicate_interview", INTERVIEW_FORMS, lambda d, k: True, _duplicate),
    Mistake("bad_phone", (*INTERVIEW_FORMS, "focal_point_registration"), lambda d, k: bool(_phones(d)),
            _bad_phone),
    Mistake("workshop_province_mismatch", ("workshop_evaluation",), lambda d, k: True,
            _workshop_province_mismatch),
    Mistake("budget_without_funding", ("donor_consultation",),
            lambda d, k: "funding" in d.answers.get("support_types", "").split(), _budget_without_funding),
    Mistake("other_unspecified", (*INTERVIEW_FORMS, "focal_point_registration", "workshop_evaluation"),
            lambda d, k: bool(_specify_targets(d, k)), _other_unspecified),
)}


def deliberate_mistakes(drafts: list[Draft], kits: dict[str, FormKit], rng: random.Random,
                        rate: float) -> list[Draft]:
    """Spoil about `rate` of the drafts (rounded up), each kind in turn; returns the duplicates added.

    A spoiled draft is spoiled once, and the original of a duplicate stays correct, so every
    labelled mistake is the only reason its interview fails.
    """
    kinds = list(MISTAKES)
    rng.shuffle(kinds)
    added: list[Draft] = []
    for i in range(math.ceil(len(drafts) * rate) if rate > 0 else 0):
        mistake = MISTAKES[kinds[i % len(kinds)]]
        target = _find(drafts, kits, mistake, rng)
        if target is None:
            continue
        spoiled = mistake.make(target, kits[target.form_id], rng)
        spoiled.mistake = mistake.kind
        if spoiled is not target:
            added.append(spoiled)
    return added


def _find(drafts: list[Draft], kits: dict[str, FormKit], mistake: Mistake,
          rng: random.Random) -> Draft | None:
    """A random correct draft the mistake fits: a few random tries, then a full search."""
    def fits(d: Draft) -> bool:
        return (d.form_id in mistake.forms and d.mistake is None and not d.original
                and mistake.fits(d, kits[d.form_id]))

    for _ in range(FIND_ATTEMPTS if drafts else 0):
        if fits(draft := rng.choice(drafts)):
            return draft
    candidates = [d for d in drafts if fits(d)]
    return rng.choice(candidates) if candidates else None
