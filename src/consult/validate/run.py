"""Validate one page of a form's submissions: GX suites per table, then the page rules.

Only live submissions are validated: the caller passes pages without deleted ones
(`SubmissionSystem.deleted_at` set), which are neither loaded nor reviewed.

Duplicate interviews are not judged here: whether an interview repeats another depends on
every submission of the form, not on one page, so the sync judges them form-wide after each
pass (`DuplicateRule.across_form`, `consult.warehouse.load.recheck_duplicates`). They are
still counted in `rule_inventory`.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from consult.forms.schema import FormSchema
from consult.warehouse.records import INSTANCE, ROW, FormLayout, FormRecords, TableKind

from . import gx_context
from .duplicates import DuplicateRule, duplicate_rules
from .page import Page, PageRule
from .relevance import relevance_rules
from .report import Failure, Status, ValidationContext, ValidationReport
from .rules import WRONG_TYPE, form_rules
from .suite import Check, expectation_suite, form_checks

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite


@dataclass(frozen=True)
class Ruleset:
    """Everything a form is held to, built once per form version."""

    checks: dict[str, list[Check]]
    """Table key → its expectations' meaning."""
    suites: dict[str, ExpectationSuite]
    rules: list[PageRule]
    duplicates: list[DuplicateRule]
    """Not run on pages (they are judged form-wide, see the module docstring); only counted."""

    @classmethod
    def of(cls, schema: FormSchema) -> Ruleset:
        layout = FormLayout.of(schema)
        checks: dict[str, list[Check]] = {}
        for check in form_checks(schema):
            checks.setdefault(check.table, []).append(check)
        suites = {key: expectation_suite(layout.table(key).name, table_checks)
                  for key, table_checks in checks.items()}
        hand_written = form_rules(schema)
        claimed = set().union(*(r.claims for r in hand_written))
        rules = [*relevance_rules(schema, claimed), *hand_written]
        return cls(checks, suites, rules, duplicate_rules(schema))


_rulesets: dict[tuple[str, str, str], Ruleset] = {}
_rulesets_lock = threading.Lock()


def ruleset(schema: FormSchema) -> Ruleset:
    """The form's ruleset; the profile is part of the key, as it decides the domain rules."""
    key = (schema.form_id, schema.xform_sha256, schema.profile)
    with _rulesets_lock:
        if key not in _rulesets:
            _rulesets[key] = Ruleset.of(schema)
        return _rulesets[key]


def rule_inventory(schema: FormSchema) -> dict[str, int]:
    """How many checks of each rule a form gets (for docs and reports)."""
    rules = ruleset(schema)
    counted = Counter(c.rule for checks in rules.checks.values() for c in checks)
    counted.update(r.name for r in [*rules.rules, *rules.duplicates])
    return dict(sorted(counted.items()))


def validate_records(schema: FormSchema, records: FormRecords,
                     context: ValidationContext) -> ValidationReport:
    """Every submission of the page is `valid` or, with at least one failure, `quarantined`.

    Duplicate interviews are left to the form-wide recheck (see the module docstring).
    Failures in repeat entries and choices tables belong to their submission (`_instance_id`).
    """
    rules = ruleset(schema)
    page = Page(schema, records, context)
    failures = _expectation_failures(page, rules)
    for rule in rules.rules:
        failures += rule.failures(page)
    failures = _without_echoes(failures)
    order = {instance: i for i, instance in enumerate(records.instance_ids)}
    failures.sort(key=lambda f: (order.get(f.instance_id, len(order)), f.row_id or "", f.column or "",
                                 f.rule))
    failed = {f.instance_id for f in failures}
    statuses: dict[str, Status] = {i: "quarantined" if i in failed else "valid" for i in records.instance_ids}
    return ValidationReport(statuses, failures)


def _without_echoes(failures: list[Failure]) -> list[Failure]:
    """A value of the wrong type is read as empty; other verdicts on that cell ('not answered')
    would only echo the `value_type` failure and mislead the supervisor, so they are dropped."""
    mistyped = {(f.instance_id, f.column, f.row_id) for f in failures if f.rule == WRONG_TYPE}
    return [f for f in failures
            if f.rule == WRONG_TYPE or (f.instance_id, f.column, f.row_id) not in mistyped]


def _expectation_failures(page: Page, rules: Ruleset) -> list[Failure]:
    failures = []
    for key, checks in rules.checks.items():
        frame = page.frames[key]
        if frame.empty:
            continue
        index = [INSTANCE] if page.table(key).kind is TableKind.FORM else [INSTANCE, ROW]
        result = gx_context.validate_frame(rules.suites[key], frame, index, page.context.today)
        for outcome in result.results:
            if outcome.success:
                continue
            check = checks[outcome.expectation_config.meta["check"]]
            for row in outcome.result.get("unexpected_index_list") or []:
                failures.append(Failure.of(row[INSTANCE], check.rule, check.field, row.get(ROW),
                                           row.get(check.column), check.message))
    return failures
