"""Rules read off the form's relevance and choice filters, checked row by row with pandas.

- `required_if_relevant`: a required question that is asked only sometimes is answered
  whenever its relevance (and its groups' and repeats') holds;
- `other_specified`: the same, for a "specify" text asked when 'other' is chosen;
- `cascading_choice`: a select_one whose choice filter reads another answer
  (`workshop = ${workshop}`, `org_type = ${org_type} or name = 'other'`) holds a choice the
  filter offers for that answer.
Expressions outside the shapes `expressions.py` reads are left to the form.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from consult.forms.schema import DataType, FormSchema
from consult.warehouse.records import INSTANCE, ROW, FormLayout, TableKind

from . import messages
from .expressions import (
    Compare,
    Expr,
    Ref,
    Selected,
    Text,
    Unsupported,
    columns_by_name,
    holds,
    parse,
    refs,
)
from .page import Page, PageRule, answer_column, visible_columns
from .report import Bilingual, Failure

OTHER = "other"


def row_failures(page: Page, table_key: str, mask: pd.Series, rule: str, field: str,
                 values: pd.Series | None, message: Bilingual) -> list[Failure]:
    """Failures for the rows of a table where `mask` holds; an empty value (None, NaN, pandas' NA of an
    `Int64` column) is shown as none."""
    frame = page.frames[table_key]
    hit = frame.index[mask.fillna(False).astype(bool)]
    if hit.empty:
        return []
    nothing = pd.Series(None, index=frame.index)
    rows = frame[ROW] if page.table(table_key).kind is TableKind.REPEAT else nothing
    shown = (values if values is not None else nothing).astype(object)
    shown = shown.where(shown.notna(), None)
    instances = frame[INSTANCE]
    return [Failure.of(instances.at[i], rule, field, rows.at[i], shown.at[i], message) for i in hit]


@dataclass(frozen=True)
class RequiredWhenRelevant:
    table: str
    field: str
    conditions: tuple[Expr, ...]
    other_of: str | None
    """The select whose 'other' this text specifies, if that is why it is asked."""
    claims: frozenset[str] = frozenset()

    @property
    def fields(self) -> frozenset[str]:
        return frozenset({self.field}.union(*(refs(c) for c in self.conditions)))

    @property
    def name(self) -> str:
        return "other_specified" if self.other_of else "required_if_relevant"

    def failures(self, page: Page) -> list[Failure]:
        frame = page.scoped(self.table)
        if frame.empty:
            return []
        asked = pd.Series(True, index=frame.index)
        for condition in self.conditions:
            asked &= page.holds(self.table, condition)
        missing = asked & frame[answer_column(page.table(self.table), self.field)].isna()
        q = messages.question(page.schema, self.field)
        message = (messages.other_unspecified(messages.question(page.schema, self.other_of), q)
                   if self.other_of else messages.required_here(q))
        return row_failures(page, self.table, missing, self.name, self.field, None, message)


@dataclass(frozen=True)
class CascadingChoice:
    table: str
    field: str
    filter: Expr
    name: str = "cascading_choice"
    claims: frozenset[str] = frozenset()

    @property
    def fields(self) -> frozenset[str]:
        return frozenset({self.field} | refs(self.filter))

    def failures(self, page: Page) -> list[Failure]:
        frame = page.scoped(self.table)
        choices = page.schema.choices_for(self.field)
        if frame.empty or choices is None:
            return []
        chosen = frame[answer_column(page.table(self.table), self.field)]

        def prop(name: str) -> pd.Series:
            if name == "name":
                return chosen
            return chosen.map({c.name: c.properties.get(name, "") for c in choices.choices})

        known = chosen.notna() & chosen.isin(choices.names())  # unknown names: the suite's `choice`
        outside = known & ~holds(self.filter, page.scope(self.table, prop))
        depends_on = [messages.question(page.schema, r) for r in sorted(refs(self.filter))]
        joined = Bilingual(", ".join(d.vi for d in depends_on), ", ".join(d.en for d in depends_on))
        message = messages.outside_filter(messages.question(page.schema, self.field), joined)
        return row_failures(page, self.table, outside, self.name, self.field, chosen, message)


def relevance_rules(schema: FormSchema, claimed: set[str]) -> list[PageRule]:
    """The rules above for a form, except for fields a hand-written rule in `rules.py` claims."""
    layout = FormLayout.of(schema)
    table_of = {k: t.key for t in layout.tables if t.kind is not TableKind.CHOICES for k in t.fields}
    columns = columns_by_name(schema)
    rules: list[PageRule] = []
    for f in schema.fields:
        key = table_of.get(f.key)
        if key is None or f.metadata or f.key in claimed:
            continue
        shown = visible_columns(layout, key)
        visible = {name for name, column in columns.items() if column in shown}
        if f.required and not f.always_asked:
            conditions = _parsed([*f.inherited_relevant, *([f.relevant] if f.relevant else [])], visible)
            if conditions is not None:
                own = conditions[-1] if f.relevant else None
                rules.append(RequiredWhenRelevant(key, f.key, conditions, _other_of(schema, own)))
        if f.data_type is DataType.SELECT_ONE and f.choice_filter:
            parsed = _parsed([f.choice_filter], visible)
            if parsed and refs(parsed[0]):
                rules.append(CascadingChoice(key, f.key, parsed[0]))
    return rules


def _parsed(texts: list[str], visible: set[str]) -> tuple[Expr, ...] | None:
    try:
        exprs = tuple(parse(t) for t in texts)
    except Unsupported:
        return None
    return exprs if all(refs(e) <= visible for e in exprs) else None


def _other_of(schema: FormSchema, relevant: Expr | None) -> str | None:
    """`${x} = 'other'` or `selected(${x}, 'other')`, where x offers 'other': the x."""
    sides = (relevant.left, relevant.right) if isinstance(relevant, Compare) and relevant.op == "=" else ()
    if Text(OTHER) in sides:
        name = next((side.name for side in sides if isinstance(side, Ref)), None)
    elif isinstance(relevant, Selected) and relevant.value == OTHER:
        name = relevant.ref.name
    else:
        return None
    choices = schema.choices_for(name) if name else None
    return name if choices and OTHER in choices.names() else None
