"""Hand-written domain rules per form: what the ISG Office knows that the XLSForms cannot say simply.

- a focal-point team (focal_point_registration; province_consultation when the province is
  willing to join) has at least one member (`members_present`) and exactly one lead
  (`one_lead`);
- donor_consultation: the indicative budget is given exactly when 'funding' is among the
  support types (`budget_matches_funding`);
- every value Central accepted but that does not fit its type is a failure (`value_type`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from consult.forms.schema import FormSchema
from consult.warehouse.records import INSTANCE

from . import messages
from .expressions import Unsupported, holds, parse
from .page import FORM_TABLE, Page, PageRule, require_fields
from .relevance import row_failures, scope_of
from .report import Failure, value_text

WRONG_TYPE = "value_type"


def _asked(page: Page, repeat: str) -> pd.Series:
    """Submissions (form-table rows) where the repeat is asked; if its relevance is beyond
    `expressions.py`, those that have entries (so no team is faulted for being absent)."""
    frame = page.frames[FORM_TABLE]
    relevant = next(r.relevant for r in page.schema.repeats if r.name == repeat)
    if not relevant:
        return pd.Series(True, index=frame.index)
    try:
        return holds(parse(relevant), scope_of(frame))
    except Unsupported:
        return _entries(page, repeat) > 0


def _entries(page: Page, repeat: str) -> pd.Series:
    """Count of the repeat's entries per submission, aligned with the form table."""
    counts = page.frames[repeat][INSTANCE].value_counts()
    return page.frames[FORM_TABLE][INSTANCE].map(counts).fillna(0).astype(int)


@dataclass(frozen=True)
class MembersPresent:
    repeat: str
    name: str = "members_present"
    claims: frozenset[str] = frozenset()

    @property
    def fields(self) -> frozenset[str]:
        return frozenset({self.repeat})

    def failures(self, page: Page) -> list[Failure]:
        entries = _entries(page, self.repeat)
        message = messages.no_members(messages.question(page.schema, self.repeat))
        return row_failures(page, FORM_TABLE, _asked(page, self.repeat) & (entries == 0), self.name,
                            self.repeat, entries, message)


@dataclass(frozen=True)
class OneLead:
    repeat: str
    role: str
    lead: str
    name: str = "one_lead"
    claims: frozenset[str] = frozenset()

    @property
    def fields(self) -> frozenset[str]:
        return frozenset({self.repeat, self.role})

    def failures(self, page: Page) -> list[Failure]:
        members = page.frames[self.repeat]
        leads = members.loc[members[self.role] == self.lead, INSTANCE].value_counts()
        counts = page.frames[FORM_TABLE][INSTANCE].map(leads).fillna(0).astype(int)
        wrong = _asked(page, self.repeat) & (_entries(page, self.repeat) > 0) & (counts != 1)
        role = messages.question(page.schema, self.role)
        lead = messages.choice(page.schema, self.role, self.lead)
        failures = []
        for count in sorted(set(counts[wrong])):
            rows = wrong & (counts == count)
            failures += row_failures(page, FORM_TABLE, rows, self.name, self.role, counts,
                                     messages.lead_count(role, lead, count))
        return failures


@dataclass(frozen=True)
class BudgetMatchesFunding:
    budget: str
    support: str
    funding: str
    name: str = "budget_matches_funding"

    @property
    def fields(self) -> frozenset[str]:
        return frozenset({self.budget, self.support})

    @property
    def claims(self) -> frozenset[str]:
        """Its both-ways check replaces the budget's required-when-relevant one."""
        return frozenset({self.budget})

    def failures(self, page: Page) -> list[Failure]:
        frame = page.frames[FORM_TABLE]
        chosen = frame[self.support].fillna("").str.split().map(lambda names: self.funding in names)
        given = frame[self.budget].notna()
        parts = (messages.question(page.schema, self.budget), messages.question(page.schema, self.support),
                 messages.choice(page.schema, self.support, self.funding))
        return (row_failures(page, FORM_TABLE, given & ~chosen, self.name, self.budget, frame[self.budget],
                             messages.budget_without_funding(*parts))
                + row_failures(page, FORM_TABLE, chosen & ~given, self.name, self.budget, None,
                               messages.funding_without_budget(*parts)))


@dataclass(frozen=True)
class WrongType:
    name: str = WRONG_TYPE
    fields: frozenset[str] = frozenset()
    claims: frozenset[str] = frozenset()

    def failures(self, page: Page) -> list[Failure]:
        fields = {f.name: f for f in page.schema.fields}
        failures = []
        for problem in page.records.problems:
            f = fields.get(problem.field)
            shown = value_text(problem.value)
            message = messages.wrong_type(messages.question(page.schema, problem.field),
                                          f.data_type if f else None, shown)
            failures.append(Failure.of(problem.instance_id, self.name, problem.field, problem.row_id,
                                       problem.value, message))
        return failures


TEAM = (MembersPresent("members"), OneLead("members", "member_role", "lead"))
FORM_RULES: dict[str, tuple[PageRule, ...]] = {
    "focal_point_registration": TEAM,
    "province_consultation": TEAM,
    "donor_consultation": (BudgetMatchesFunding("indicative_budget_kusd", "support_types", "funding"),),
}
def form_rules(schema: FormSchema) -> list[PageRule]:
    """The hand-written rules of a form (duplicates aside: `duplicates.py`)."""
    rules: list[PageRule] = [*FORM_RULES.get(schema.form_id, ()), WrongType()]
    for rule in rules:
        require_fields(schema, rule.name, rule.fields)
    return rules
