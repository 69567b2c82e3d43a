"""The ISG Office's profile: what its consultation forms are held to beyond their own checks.

- a focal-point team (focal_point_registration; province_consultation when the province is
  willing to join) has at least one member (`members_present`) and exactly one lead
  (`one_lead`);
- donor_consultation: the indicative budget is given exactly when 'funding' is among the
  support types (`budget_matches_funding`);
- one organisation is consulted once per date (`duplicate_interview`): a province agency,
  a ministry department, a donor organisation; an 'other' answer stands for the
  organisation its specify text names;
- every date of the five forms and of focal_point_update lies in the consultation period, 2003-01-01 to the day of
  the check (`consultation_period`).

A form with profile `isg` that is not listed here (the next round's form, before someone
writes its rules) gets none of these, not even the period: the period is about when ISG
consulted, and a new form may well ask for older dates (a project's start, a decision of
the 1990s). Listing the form, with `PERIOD` at least, opts it in.
"""

from __future__ import annotations

from datetime import date

from consult.validate.duplicates import DuplicateRule, KeyPart
from consult.validate.rules import BudgetMatchesFunding, MembersPresent, OneLead

from . import FormRules, Period, Profile

PERIOD = Period(start=date(2003, 1, 1), rule="consultation_period")
"""The ISG Office began consulting for the focal-point network in 2003."""

TEAM = (MembersPresent("members"), OneLead("members", "member_role", "lead"))


def interview(*parts: KeyPart) -> tuple[DuplicateRule, ...]:
    """Who was interviewed when: one interview per organisation and date."""
    return (DuplicateRule.of("duplicate_interview", parts),)


PROFILE = Profile("isg", {
    "province_consultation": FormRules(
        rules=TEAM, period=PERIOD,
        duplicates=interview(KeyPart("province"), KeyPart("agency", "agency_other"),
                             KeyPart("consultation_date"))),
    "ministry_consultation": FormRules(
        period=PERIOD,
        duplicates=interview(KeyPart("ministry", "ministry_other"), KeyPart("department"),
                             KeyPart("consultation_date"))),
    "donor_consultation": FormRules(
        rules=(BudgetMatchesFunding("indicative_budget_kusd", "support_types", "funding"),), period=PERIOD,
        duplicates=interview(KeyPart("organisation", "organisation_other"), KeyPart("consultation_date"))),
    "focal_point_registration": FormRules(rules=TEAM, period=PERIOD),
    "workshop_evaluation": FormRules(period=PERIOD),
    "focal_point_update": FormRules(period=PERIOD),
})
