"""Expectation Suites generated from a FormSchema: one per table of the form's layout.

What each table is held to:
- required questions that are always asked (`Field.always_asked`) are not null;
- select_one answers are in their choice list (the province CSV included), narrowed by a
  choice filter that reads only the choice's own columns (`pilot = '1'`); filters that
  depend on another answer (`workshop = ${workshop}`) are checked by `relevance.py`;
- each choices table's `value` (one chosen option per row) is in the select_multiple's list;
- what `constraints.py` carries over from the form's constraints, with the form's message;
- when the form's profile declares a date period (`consult.profiles.Period`, e.g. ISG's
  consultation period 2003-01-01 … validation day), every date question lies in it, for the
  bounds its own constraint does not already state; other forms get no such check.
The validation day enters as the suite parameter `today`, so a suite serves any day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd

from consult.forms.schema import DataType, Field, FormSchema
from consult.profiles import Period, rules_for
from consult.warehouse.records import VALUE, FormLayout, TableKind, TableLayout

from . import gx_context, messages
from .constraints import TODAY, Range, read
from .expressions import Scope, Unsupported, holds, parse, refs
from .page import answer_column
from .report import Bilingual

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite

TODAY_PARAMETER = {"$PARAMETER": "today"}


@dataclass(frozen=True)
class Check:
    """One expectation and what its failure means to the supervisor."""

    rule: str
    table: str
    """Key of the table in the form's layout (`""`, a repeat, a select_multiple)."""
    field: str
    """The form field reported in failures."""
    column: str
    """The DataFrame column the expectation reads."""
    expectation: str
    """GX expectation class, e.g. `ExpectColumnValuesToBeBetween`."""
    kwargs: dict[str, Any] = field(hash=False)
    message: Bilingual


def form_checks(schema: FormSchema) -> list[Check]:
    layout = FormLayout.of(schema)
    period = rules_for(schema).period
    checks: list[Check] = []
    for table in layout.tables:
        if table.kind is TableKind.CHOICES:
            checks += _token_checks(schema, table)
            continue
        for key in table.fields:
            f = schema.field(key)
            if not f.metadata:
                checks += _field_checks(schema, table, f, answer_column(table, f.key), period)
    return checks


def left_to_form(schema: FormSchema) -> list[tuple[str, str]]:
    """(field, constraint part) pairs no expectation carries over."""
    return [(f.name, part) for f in schema.fields for part in read(f.constraint).left_to_form]


def expectation_suite(name: str, checks: Sequence[Check]) -> ExpectationSuite:
    """The GX suite for one table; each expectation's `meta.check` indexes `checks`."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    gx_context.context()  # GX builds suites only once a context is active
    suite = gx.ExpectationSuite(name=name)
    for i, check in enumerate(checks):
        kind = getattr(gxe, check.expectation)
        suite.add_expectation(kind(column=check.column, **check.kwargs, description=check.message.en,
                                   notes=check.message.vi, meta={"check": i, "rule": check.rule}))
    return suite


def _field_checks(schema: FormSchema, table: TableLayout, f: Field, column: str,
                  period: Period | None) -> list[Check]:
    q = messages.question(schema, f.key)

    def check(rule: str, expectation: str, message: Bilingual, **kwargs: Any) -> Check:
        return Check(rule, table.key, f.key, column, expectation, kwargs, message)

    checks = []
    if f.required and f.always_asked:
        checks.append(check("required", "ExpectColumnValuesToNotBeNull", messages.required(q)))
    if f.data_type is DataType.SELECT_ONE and (allowed := allowed_choices(schema, f)) is not None:
        checks.append(check("choice", "ExpectColumnValuesToBeInSet", messages.not_a_choice(q),
                            value_set=allowed))
    reading = read(f.constraint)
    form_message = (Bilingual(f.constraint_messages["vi"], f.constraint_messages["en"])
                    if {"vi", "en"} <= f.constraint_messages.keys() else messages.constraint_broken(q))
    if reading.range and (bounds := _between(reading.range, f.data_type)):
        rule = "date_range" if f.data_type is DataType.DATE else "range"
        checks.append(check(rule, "ExpectColumnValuesToBeBetween", form_message, **bounds))
    for pattern in reading.patterns:
        expectation = ("ExpectColumnValuesToMatchRegex" if pattern.must_match
                       else "ExpectColumnValuesToNotMatchRegex")
        checks.append(check(pattern.rule, expectation, form_message, regex=pattern.regex))
    if period and f.data_type is DataType.DATE and (bounds := _period_bounds(reading.range, period.start)):
        checks.append(check(period.rule, "ExpectColumnValuesToBeBetween",
                            messages.outside_period(q, period.start.strftime("%d/%m/%Y")), **bounds))
    return checks


def _token_checks(schema: FormSchema, table: TableLayout) -> list[Check]:
    f = schema.field(table.fields[0])
    allowed = allowed_choices(schema, f)
    if allowed is None:
        return []
    message = messages.not_a_token(messages.question(schema, f.key))
    return [Check("choice_token", table.key, f.key, VALUE, "ExpectColumnValuesToBeInSet",
                  {"value_set": allowed}, message)]


def allowed_choices(schema: FormSchema, f: Field) -> list[str] | None:
    """The choice names an answer may take, or None when the list is unknown (a dynamic list)."""
    choices = schema.choices_for(f)
    if choices is None:
        return None
    names = choices.names()
    if not f.choice_filter:
        return names
    try:
        expr = parse(f.choice_filter)
    except Unsupported:
        return names
    if refs(expr):
        return names  # depends on another answer: relevance.py checks it row by row
    index = pd.RangeIndex(len(names))

    def prop(name: str) -> pd.Series:
        return pd.Series(names if name == "name" else [c.properties.get(name, "") for c in choices.choices],
                         index=index)

    def no_refs(name: str) -> pd.Series:
        raise Unsupported(name)

    offered = holds(expr, Scope(index, no_refs, prop))
    return [n for n, keep in zip(names, offered, strict=True) if keep]


def _between(range_: Range, data_type: DataType) -> dict[str, Any]:
    is_date = data_type is DataType.DATE
    numeric = data_type in (DataType.INTEGER, DataType.DECIMAL)
    if not (is_date or numeric):
        return {}

    def fits(bound: object) -> bool:
        if is_date:
            return bound == TODAY or isinstance(bound, date)
        return isinstance(bound, (int, float))

    kwargs: dict[str, Any] = {}
    if range_.low is not None and fits(range_.low):
        kwargs |= {"min_value": _bound_value(range_.low), "strict_min": range_.strict_low}
    if range_.high is not None and fits(range_.high):
        kwargs |= {"max_value": _bound_value(range_.high), "strict_max": range_.strict_high}
    return kwargs


def _bound_value(bound: object) -> object:
    return TODAY_PARAMETER if bound == TODAY else bound


def _period_bounds(range_: Range | None, start: date) -> dict[str, Any]:
    """The period's bounds a date's own constraint leaves unstated (or states looser)."""
    low = range_.low if range_ else None
    high = range_.high if range_ else None
    kwargs: dict[str, Any] = {}
    if not (isinstance(low, date) and low >= start):
        kwargs["min_value"] = start
    if high is None:
        kwargs["max_value"] = TODAY_PARAMETER
    return kwargs
