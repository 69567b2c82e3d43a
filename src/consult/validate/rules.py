"""Hand-written page rules: what a form cannot say simply, as generic rule types.

- `MembersPresent(repeat)`: a repeat that is asked has at least one entry;
- `OneLead(repeat, role, lead)`: a repeat with entries has exactly one whose `role` is `lead`;
- `BudgetMatchesFunding(budget, support, funding)`: a number is given exactly when a choice
  is among a select_multiple's answers;
- `WrongType`: every value Central accepted but that does not fit its type is a failure
  (`value_type`); it applies to every form.
Which form gets which of the first three, on which questions, is its profile's to say
(`consult.profiles`). Profiles build these rules when they load, without pandas: the
warehouse reads them for duplicate keys, so pandas and the expression reader load only when
a rule first judges a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from consult.forms.schema import FormSchema
from consult.profiles import rules_for
from consult.warehouse.records import INSTANCE

from . import messages
from .fields import FORM_TABLE
from .report import Failure, value_text

if TYPE_CHECKING:
    import pandas as pd

    from .page import Page, PageRule

WRONG_TYPE = "value_type"


def _asked(page: Page, repeat: str) -> pd.Series:
    """Submissions (form-table rows) where the repeat is asked; if its relevance is beyond
    `expressions.py`, those that have entries (so no team is faulted for being absent)."""
    import pandas as pd

    from .expressions import Unsupported, parse

    frame = page.frames[FORM_TABLE]
    relevant = next(r.relevant for r in page.schema.repeats if r.name == repeat)
    if not relevant:
        return pd.Series(True, index=frame.index)
    try:
        return page.holds(FORM_TABLE, parse(relevant))
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
        from .relevance import row_failures

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
        from .relevance import row_failures

        members = page.frames[self.repeat]
        leads = members[INSTANCE][members[self.role] == self.lead].value_counts()
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
        from .relevance import row_failures

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


def form_rules(schema: FormSchema) -> list[PageRule]:
    """The hand-written rules of a form: its profile's, refused if they name a field the form lacks
    (duplicates aside: `duplicates.py`), and `WrongType`."""
    return [*rules_for(schema).rules, WrongType()]
