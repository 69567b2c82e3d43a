"""Validate a form's submissions in two steps: the page rules on each page in memory, the GX
suites once per table over what a sync pass loaded.

A sync judges each page with the page rules (`judge_page`: domain rules, relevance, values of the
wrong type) and loads it with those failures; the page's submissions wait in `suite_pending`
for the suites. When the pass ends, `judge_loaded` runs each table's suite once as SQL over the
rows of every waiting submission, and the sync records those failures with the statuses they
change (`consult.warehouse.load.record_judgement`). `validate_records` does the same for one page
on its own, in a scratch database. Only live submissions are validated: the caller passes pages
without deleted ones (`SubmissionSystem.deleted_at` set), which are neither loaded nor reviewed.

Duplicate interviews are not judged here: whether an interview repeats another depends on
every submission of the form, not on one page, so the sync judges them form-wide after each
pass (`DuplicateRule.across_form`, `consult.warehouse.load.recheck_duplicates`). They are
still counted in `rule_inventory`.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from consult.forms.schema import FormSchema
from consult.warehouse.database import create_engine_for
from consult.warehouse.load import (
    FailureRow,
    load_page,
    pending_cells,
    pending_rows,
    record_judgement,
    refresh_pending_statistics,
)
from consult.warehouse.records import INSTANCE, ROW, FormLayout, FormRecords, TableKind
from consult.warehouse.tables import ensure_schema

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

    layout: FormLayout
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
        return cls(layout, checks, suites, rules, duplicate_rules(schema))


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


def judge_page(schema: FormSchema, records: FormRecords, context: ValidationContext) -> list[Failure]:
    """The page rules' failures of one page, in memory, in the page's order: what a sync loads with
    the page. The suites judge the page once it is in the database (`judge_loaded`)."""
    rules = ruleset(schema)
    page = Page(schema, records, context)
    return _in_page_order(_without_echoes([f for rule in rules.rules for f in rule.failures(page)]),
                          records.instance_ids)


def _in_page_order(failures: list[Failure], instance_ids: list[str]) -> list[Failure]:
    order = {instance: i for i, instance in enumerate(instance_ids)}
    return sorted(failures, key=lambda f: (order.get(f.instance_id, len(order)), f.row_id or "", f.column or "",
                                           f.rule))


def judge_loaded(schema: FormSchema, engine: Engine, project_id: int, context: ValidationContext) -> list[Failure]:
    """The suites' failures of every submission of the form loaded since its last judgement
    (`suite_pending`): each table's suite runs once, as SQL, over those submissions' rows (GX's
    SQL data source on the reporting database), and names each failing row by its key. A value
    of the wrong type (a `value_type` failure the page rules stored) is not judged again."""
    rules = ruleset(schema)
    failures = []
    with engine.begin() as conn:
        pending = {key: pending_rows(project_id, schema.form_id, rules.layout.table(key).name) for key in rules.checks}
        refresh_pending_statistics(conn)
        mistyped = pending_cells(conn, project_id, schema.form_id, WRONG_TYPE)
        present = {key for key, query in pending.items() if conn.execute(query.limit(1)).first() is not None}
    for key in sorted(present):
        checks = rules.checks[key]
        index = [INSTANCE] if rules.layout.table(key).kind is TableKind.FORM else [INSTANCE, ROW]
        query = str(pending[key].compile(engine, compile_kwargs={"literal_binds": True}))
        result = gx_context.validate_query(rules.suites[key], engine.url, _asset_name(key, project_id, schema),
                                           query, index, context.today)
        for outcome in result.results:
            if outcome.success:
                continue
            check = checks[outcome.expectation_config.meta["check"]]
            for row in outcome.result.get("unexpected_index_list") or []:
                failure = Failure.of(row[INSTANCE], check.rule, check.field, row.get(ROW), row.get(check.column),
                                     check.message)
                if (failure.instance_id, failure.column, failure.row_id) not in mistyped:
                    failures.append(failure)
    failures.sort(key=lambda f: (f.instance_id, f.row_id or "", f.column or "", f.rule))
    return failures


def _asset_name(key: str, project_id: int, schema: FormSchema) -> str:
    """The GX asset of a table's rows awaiting judgement: one per project, form and table."""
    return f"{project_id}-{schema.form_id}-{key or 'form'}-pending"


def validate_records(schema: FormSchema, records: FormRecords,
                     context: ValidationContext) -> ValidationReport:
    """Every submission of the page is `valid` or, with at least one failure, `quarantined`: one page
    judged on its own as a sync judges it (`judge_page`, the page loaded, `judge_loaded`), in a
    scratch SQLite database of this process's own.

    Duplicate interviews are left to the form-wide recheck (see the module docstring).
    Failures in repeat entries and choices tables belong to their submission (`_instance_id`).
    """
    failures = judge_page(schema, records, context)
    rows = [FailureRow.of(SCRATCH_PROJECT, schema.form_id, f) for f in failures]
    with _scratch_lock:
        engine = _scratch_engine(records.layout)
        with engine.begin() as conn:
            load_page(conn, SCRATCH_PROJECT, records, {}, rows)
        judged = judge_loaded(schema, engine, SCRATCH_PROJECT, context)
        with engine.begin() as conn:
            record_judgement(conn, SCRATCH_PROJECT, schema.form_id,
                             [FailureRow.of(SCRATCH_PROJECT, schema.form_id, f) for f in judged])
    failures = _in_page_order([*failures, *judged], records.instance_ids)
    failed = {f.instance_id for f in failures}
    statuses: dict[str, Status] = {i: "quarantined" if i in failed else "valid" for i in records.instance_ids}
    return ValidationReport(statuses, failures)


SCRATCH_PROJECT = 0
_scratch_lock = threading.Lock()


@functools.cache
def _scratch_engine(layout: FormLayout) -> Engine:
    """A SQLite file of this process's own per form layout, removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix="consult-validate-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    engine = create_engine_for(f"sqlite:///{folder / 'scratch.db'}")
    ensure_schema(engine, [layout])
    return engine


def _without_echoes(failures: list[Failure]) -> list[Failure]:
    """A value of the wrong type is read as empty; other verdicts on that cell ('not answered')
    would only echo the `value_type` failure and mislead the supervisor, so they are dropped."""
    mistyped = {(f.instance_id, f.column, f.row_id) for f in failures if f.rule == WRONG_TYPE}
    return [f for f in failures
            if f.rule == WRONG_TYPE or (f.instance_id, f.column, f.row_id) not in mistyped]
