"""Loading pages of FormRecords: the sync's hot path, and everything a sync writes.

Every function takes the caller's `Connection` and never commits: a sync opens one
`engine.begin()` per page and calls `load_page` in it, so a page's rows, its page-rule failures
and its place in `suite_pending` commit together or not at all; when the pass ends, one more
transaction takes `record_judgement` (the suites' failures), `recheck_duplicates` and
`advance_watermark`. Loading is an upsert by instance id, so a page loaded twice (a re-run
after a kill, the pull's overlap) leaves the database as if it was loaded once.

Rows go in bulk (COPY on PostgreSQL, executemany on SQLite) and deletes by IN lists of at
most 500 ids: a page of 1000 submissions costs a few dozen round trips whatever its size.

Duplicate interviews are judged form-wide, not per page (Central pages newest first, so a
page check would never see the earlier interview before the later one): after each pass over
the pages, `recheck_duplicates` keys what changed since the last recheck, judges the key groups
it touched as `DuplicateRule.across_form` would, and rewrites that rule's failures and the
statuses they change, in the caller's transaction.

This module is the one import a sync needs: the bookkeeping (`state`), failures and
`snapshot` are re-exported here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    MetaData,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    inspect,
    literal_column,
    select,
    update,
)
from sqlalchemy import table as table_named
from sqlalchemy.engine import Connection

from consult.forms.schema import FormSchema
from consult.validate.duplicates import (
    DuplicateRule,
    Interview,
    KeyedInterview,
    duplicate_rules,
    key_hash,
    key_of_stored,
    stored_key,
)
from consult.validate.report import Failure
from consult.warehouse.database import bulk_insert, upsert_into
from consult.warehouse.failures import (
    FailureRow,
    chunks,
    failures_hash,
    insert_failures,
    replace_failures,
    replace_rule_failures,
)
from consult.warehouse.records import INSTANCE, FormLayout, FormRecords, SubmissionSystem, parse_datetime
from consult.warehouse.snapshot import plain, snapshot
from consult.warehouse.state import (
    Watermark,
    advance_watermark,
    read_watermark,
    record_run_finish,
    record_run_start,
    record_write_back,
    remember_etag,
    written_back,
)
from consult.warehouse.tables import (
    QUARANTINED,
    VALID,
    duplicate_keys,
    duplicate_pending,
    form_tables,
    submissions,
    suite_pending,
    validation_failures,
)

__all__ = [
    "FailureRow",
    "LoadCounts",
    "Watermark",
    "advance_watermark",
    "awaiting_suites",
    "failing_instances",
    "failures_hash",
    "interviews",
    "load_page",
    "mark_deleted",
    "mark_pending",
    "mark_purged",
    "pending_cells",
    "pending_rows",
    "read_watermark",
    "recheck_duplicates",
    "record_judgement",
    "record_run_finish",
    "record_run_start",
    "record_write_back",
    "refresh_statuses",
    "remember_etag",
    "replace_rule_failures",
    "snapshot",
    "written_back",
]


@dataclass(frozen=True)
class LoadCounts:
    new: int = 0
    """Submissions the database did not hold."""
    updated: int = 0
    """Submissions it held already (edited, reviewed, or simply pulled again)."""
    unchanged: int = 0
    """Of the `updated`, those whose OData row was identical to the stored one."""
    changed: frozenset[str] = field(default_factory=frozenset)
    """The `updated` whose OData row differed from the stored one."""
    review_only: frozenset[str] = field(default_factory=frozenset)
    """Of the `changed`, those where only the review state (and with it `updatedAt`) differed."""


REVIEW_KEYS = ("reviewState", "updatedAt")


def _without_review(raw_json: str) -> dict[str, Any]:
    row = json.loads(raw_json)
    system = row.get("__system")
    if isinstance(system, dict):
        row["__system"] = {k: v for k, v in system.items() if k not in REVIEW_KEYS}
    return row


def _differs(stored: str, pulled: str) -> bool:
    """Whether a submission's OData row changed: compared as text, then, when the text differs, as
    data (a row stored by an earlier version of the sync may be written with other spacing)."""
    return stored != pulled and json.loads(stored) != json.loads(pulled)


def _submission_row(project_id: int, system: SubmissionSystem, status: str,
                    loaded_at: datetime) -> dict[str, Any]:
    return {
        "project_id": project_id, "form_id": system.form_id, "instance_id": system.instance_id,
        "form_version": system.form_version, "current_version_id": system.current_version_id,
        "instance_name": system.instance_name, "submitter_id": system.submitter_id,
        "submitter_name": system.submitter_name, "device_id": system.device_id,
        "submission_date": system.submission_date, "updated_at": system.updated_at,
        "deleted_at": system.deleted_at, "purged_at": None, "review_state": system.review_state,
        "edits": system.edits, "attachments_present": system.attachments_present,
        "attachments_expected": system.attachments_expected, "validation_status": status,
        "raw_json": system.raw_json, "loaded_at": loaded_at,
    }


def _stored_raw_json(conn: Connection, project_id: int, form_id: str,
                     instance_ids: Sequence[str]) -> dict[str, str]:
    s = submissions.c
    return {row.instance_id: row.raw_json for chunk in chunks(instance_ids)
            for row in conn.execute(select(s.instance_id, s.raw_json).where(
                s.project_id == project_id, s.form_id == form_id, s.instance_id.in_(chunk)))}


def _status(instance_id: str, statuses: Mapping[str, str], failed: set[str]) -> str:
    status = statuses.get(instance_id) or (QUARANTINED if instance_id in failed else VALID)
    if status not in (VALID, QUARANTINED):
        raise ValueError(f"validation status of {instance_id} is {status!r}, "
                         f"not {VALID!r} or {QUARANTINED!r}")
    return status


def load_page(conn: Connection, project_id: int, records: FormRecords, statuses: Mapping[str, str],
              failures: Sequence[FailureRow]) -> LoadCounts:
    """Upsert a page of submissions with all their rows and failures (see the module docstring), and
    leave them waiting for the expectation suites (`record_judgement`).

    An edit replaces a submission's repeat and choice rows wholesale: Central's repeat `__id`s
    are positional, so row 3 of an edit is not row 3 of the original. `statuses` maps instance
    id → `valid` | `quarantined`; a submission missing from it is quarantined iff it has failures.
    The layout's columns must exist: call `ensure_schema` with the layout first.
    """
    ids = records.instance_ids
    if len(set(ids)) != len(ids):
        raise ValueError("a page lists the same submission twice")
    form_id = records.layout.form_id
    stored = _stored_raw_json(conn, project_id, form_id, ids)
    failed = {f.instance_id for f in failures}
    loaded_at = datetime.now(UTC)
    _replace_submissions(conn, project_id, form_id, list(stored), [
        _submission_row(project_id, s, _status(s.instance_id, statuses, failed), loaded_at)
        for s in records.submissions])
    _replace_rows(conn, records, list(stored))
    replace_failures(conn, project_id, form_id, ids, failures)
    mark_pending(conn, project_id, form_id, ids)
    _mark(conn, suite_pending, project_id, form_id, ids)
    changed = {s.instance_id: s.raw_json for s in records.submissions
               if s.instance_id in stored and _differs(stored[s.instance_id], s.raw_json)}
    review_only = frozenset(i for i, raw in changed.items()
                            if _without_review(raw) == _without_review(stored[i]))
    return LoadCounts(new=len(ids) - len(stored), updated=len(stored), unchanged=len(stored) - len(changed),
                      changed=frozenset(changed), review_only=review_only)


def _replace_submissions(conn: Connection, project_id: int, form_id: str, stored_ids: Sequence[str],
                         rows: list[dict[str, Any]]) -> None:
    """An upsert as a delete of the stored rows and one bulk insert: on PostgreSQL that insert
    is a COPY, where INSERT ... ON CONFLICT would go row by row."""
    s = submissions.c
    for chunk in chunks(stored_ids):
        conn.execute(delete(submissions).where(
            s.project_id == project_id, s.form_id == form_id, s.instance_id.in_(chunk)))
    bulk_insert(conn, submissions, rows)


def _replace_rows(conn: Connection, records: FormRecords, stored_ids: Sequence[str]) -> None:
    """Children go before their form row (foreign keys), and come back after it. Only stored
    submissions have rows to delete (they are written with their `submissions` row)."""
    tables = form_tables(records.layout)
    ordered = [tables[t.key] for t in records.layout.tables]
    for chunk in chunks(stored_ids):
        for table in reversed(ordered):
            conn.execute(delete(table).where(table.c[INSTANCE].in_(chunk)))
    for table_layout, table in zip(records.layout.tables, ordered, strict=True):
        bulk_insert(conn, table, records.rows.get(table_layout.key, []))


def _deleted_at(value: datetime | str | None) -> datetime:
    moment = parse_datetime(value) if isinstance(value, str) else value
    if moment is None:
        raise ValueError("a deleted submission without deletedAt")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _set_by_id(conn: Connection, project_id: int, form_id: str, column: str,
               values: Mapping[str, datetime | None]) -> None:
    """One executemany UPDATE setting `column` per instance id."""
    if not values:
        return
    s = submissions.c
    conn.execute(update(submissions).where(
        s.project_id == project_id, s.form_id == form_id, s.instance_id == bindparam("b_instance_id"),
    ).values({column: bindparam("b_value")}),
        [{"b_instance_id": instance_id, "b_value": value} for instance_id, value in values.items()])


def mark_deleted(conn: Connection, project_id: int, form_id: str,
                 rows: Iterable[tuple[str, datetime | str | None]]) -> int:
    """Record Central's soft deletes (instance id, deletedAt as datetime or OData text); returns
    how many stored submissions changed. Their rows stay: reports filter on `deleted_at`."""
    wanted = {instance_id: _deleted_at(deleted_at) for instance_id, deleted_at in rows}
    s = submissions.c
    changed: dict[str, datetime | None] = {}
    for chunk in chunks(list(wanted)):
        for instance_id, deleted_at in conn.execute(select(s.instance_id, s.deleted_at).where(
                s.project_id == project_id, s.form_id == form_id, s.instance_id.in_(chunk))):
            if deleted_at != wanted[instance_id]:
                changed[instance_id] = wanted[instance_id]
    _set_by_id(conn, project_id, form_id, "deleted_at", changed)
    mark_pending(conn, project_id, form_id, changed)
    return len(changed)


def mark_purged(conn: Connection, project_id: int, form_id: str, live_ids: set[str],
                at: datetime | None = None, *, deleted_ids: set[str] | None = None) -> int:
    """Stamp `purged_at` on stored submissions Central no longer has at all, and clear it on any
    that are back; returns how many were newly purged. `live_ids` must be complete.

    Central purges only what was soft-deleted first: given `deleted_ids` (every soft-deleted
    submission Central still holds, complete), a stored submission marked deleted and in
    neither set is purged too; without it, deleted submissions are left alone."""
    s = submissions.c
    query = select(s.instance_id, s.purged_at).where(s.project_id == project_id, s.form_id == form_id)
    if deleted_ids is None:
        query = query.where(s.deleted_at.is_(None))
    held = live_ids | (deleted_ids or set())
    stored = conn.execute(query).all()
    moment = at or datetime.now(UTC)
    purged = {i: moment for i, purged_at in stored if purged_at is None and i not in held}
    back = {i: None for i, purged_at in stored if purged_at is not None and i in held}
    _set_by_id(conn, project_id, form_id, "purged_at", purged | back)
    mark_pending(conn, project_id, form_id, purged | back)
    return len(purged)


def interviews(conn: Connection, project_id: int, form_id: str, table_name: str,
               columns: Sequence[str], instance_ids: Sequence[str] | None = None) -> list[Interview]:
    """(instance id, submission date, values of `columns`) of every live submission of a form
    (neither deleted nor purged), ordered by instance id in the database's collation (the rule
    orders them itself): what a form-wide duplicate rule judges.
    Values come as stored (NULLs kept, dates as dates, timestamps aware); the rule normalises
    keys itself (case, spacing, Unicode form), so matching happens there, not in SQL.
    Given `instance_ids`, only those of them."""
    return list(iter_interviews(conn, project_id, form_id, table_name, columns, instance_ids))


def iter_interviews(conn: Connection, project_id: int, form_id: str, table_name: str,
                    columns: Sequence[str], instance_ids: Sequence[str] | None = None) -> Iterator[Interview]:
    """`interviews`, one at a time: a whole form's are read as a stream (a server-side cursor on
    PostgreSQL), so keying them holds no more than a batch."""
    table = Table(table_name, MetaData(), autoload_with=conn)
    s = submissions.c
    query = (select(table.c[INSTANCE], s.submission_date, *(table.c[c] for c in columns))
             .join(submissions, s.instance_id == table.c[INSTANCE])
             .where(s.project_id == project_id, s.form_id == form_id, s.deleted_at.is_(None),
                    s.purged_at.is_(None))
             .order_by(table.c[INSTANCE]))
    if instance_ids is None or len(instance_ids) > FULL_READ:
        wanted = None if instance_ids is None else set(instance_ids)
        found: Iterable[Any] = (row for row in conn.execute(query.execution_options(yield_per=KEY_BATCH))
                                if wanted is None or row[0] in wanted)
    else:
        found = (row for chunk in chunks(instance_ids) for row in conn.execute(query.where(
            table.c[INSTANCE].in_(chunk))))
    for instance_id, submitted, *values in found:
        yield instance_id, plain(submitted), tuple(plain(v) for v in values)


KEY_BATCH = 5000
"""Submissions keyed and stored at a time by a recheck that reads the whole form."""


def failing_instances(conn: Connection, project_id: int, form_id: str, except_rule: str) -> set[str]:
    """Submissions of a form with failures of any rule but `except_rule`: those a duplicate rule
    never takes as the original interview."""
    f = validation_failures.c
    return set(conn.execute(select(f.instance_id).distinct().where(
        f.project_id == project_id, f.form_id == form_id, f.rule != except_rule)).scalars())


def refresh_statuses(conn: Connection, project_id: int, form_id: str, instance_ids: Iterable[str]) -> None:
    """Each of these submissions becomes quarantined when it has any failure left, valid otherwise
    (ids the database does not hold are ignored)."""
    ids = sorted(set(instance_ids))
    f, s = validation_failures.c, submissions.c
    for chunk in chunks(ids):
        failing = set(conn.execute(select(f.instance_id).distinct().where(
            f.project_id == project_id, f.form_id == form_id, f.instance_id.in_(chunk))).scalars())
        for status, members in ((QUARANTINED, [i for i in chunk if i in failing]),
                                (VALID, [i for i in chunk if i not in failing])):
            if members:
                conn.execute(update(submissions).where(
                    s.project_id == project_id, s.form_id == form_id, s.instance_id.in_(members),
                ).values(validation_status=status))


def mark_pending(conn: Connection, project_id: int, form_id: str, instance_ids: Iterable[str]) -> None:
    """These submissions changed (loaded, deleted, purged): the next `recheck_duplicates` judges
    their keys again. Written in the caller's transaction, so a kill between a page and the
    recheck leaves them pending for the re-run."""
    _mark(conn, duplicate_pending, project_id, form_id, instance_ids)


def _mark(conn: Connection, pending: Table, project_id: int, form_id: str, instance_ids: Iterable[str]) -> None:
    """Add to a pending set what is not in it yet: no delete by id lists, which PostgreSQL plans as
    scans of a table it has no statistics for yet (a first sync)."""
    rows = [{"project_id": project_id, "form_id": form_id, "instance_id": i} for i in sorted(set(instance_ids))]
    if rows:
        conn.execute(upsert_into(conn, pending).on_conflict_do_nothing(), rows)


def _awaiting_suites(project_id: int, form_id: str) -> Select[tuple[str]]:
    p = suite_pending.c
    return select(p.instance_id).where(p.project_id == project_id, p.form_id == form_id)


def pending_rows(project_id: int, form_id: str, table_name: str) -> Select[Any]:
    """Every row of a form table whose submission awaits the suites: what they judge as one batch."""
    rows = table_named(table_name, literal_column(INSTANCE))
    return select(literal_column("*")).select_from(rows).where(
        rows.c[INSTANCE].in_(_awaiting_suites(project_id, form_id)))


def pending_cells(conn: Connection, project_id: int, form_id: str, rule: str) -> set[tuple[str, str | None, str | None]]:
    """(instance id, column, row id) of the stored failures of `rule` of submissions awaiting the suites."""
    f = validation_failures.c
    return {tuple(row) for row in conn.execute(select(f.instance_id, f.column, f.row_id).where(
        f.project_id == project_id, f.form_id == form_id, f.rule == rule,
        f.instance_id.in_(_awaiting_suites(project_id, form_id))))}


def awaiting_suites(conn: Connection, project_id: int, form_id: str) -> bool:
    """Whether any submission of the form waits for the suites (a killed run can leave some)."""
    return conn.execute(_awaiting_suites(project_id, form_id).limit(1)).first() is not None


def record_judgement(conn: Connection, project_id: int, form_id: str, failures: Sequence[FailureRow]) -> None:
    """The suites' verdicts on every submission awaiting them: their failures added (each load cleared
    the submission's earlier ones), the failing submissions quarantined, none left waiting."""
    waiting = set(conn.execute(_awaiting_suites(project_id, form_id)).scalars())
    stray = {f.instance_id for f in failures if f.instance_id not in waiting or (f.project_id, f.form_id) != (
        project_id, form_id)}
    if stray:
        raise ValueError(f"suite failures for submissions not awaiting them in {project_id}/{form_id}: "
                         f"{sorted(stray)[:5]}")
    insert_failures(conn, failures)
    s = submissions.c
    for chunk in chunks(sorted({f.instance_id for f in failures})):
        conn.execute(update(submissions).where(s.project_id == project_id, s.form_id == form_id,
                                               s.instance_id.in_(chunk)).values(validation_status=QUARANTINED))
    p = suite_pending.c
    conn.execute(delete(suite_pending).where(p.project_id == project_id, p.form_id == form_id))


@dataclass(frozen=True)
class _RuleScope:
    project_id: int
    form_id: str
    rule: str

    @property
    def keys(self) -> Any:
        k = duplicate_keys.c
        return and_(k.project_id == self.project_id, k.form_id == self.form_id, k.rule == self.rule)


def _pending_ids(conn: Connection, project_id: int, form_id: str) -> set[str]:
    p = duplicate_pending.c
    return set(conn.execute(select(p.instance_id).where(
        p.project_id == project_id, p.form_id == form_id)).scalars())


def form_count(conn: Connection, project_id: int, form_id: str) -> int:
    """Submissions of the form, deleted and purged included: counted on the index alone."""
    s = submissions.c
    return conn.execute(select(func.count()).select_from(submissions).where(
        s.project_id == project_id, s.form_id == form_id)).scalar_one()


def _all_ids(conn: Connection, project_id: int, form_id: str) -> set[str]:
    s = submissions.c
    return set(conn.execute(select(s.instance_id).where(
        s.project_id == project_id, s.form_id == form_id)).scalars())


def _rekey(conn: Connection, scope: _RuleScope, rule: DuplicateRule, table_name: str,
           ids: set[str], whole: bool) -> set[tuple[str, ...]]:
    """Store the current key of each of `ids` (None for a deleted or purged one) and return the
    keys they had and have now: the groups whose verdicts may have changed. `whole`: `ids` are a large share of
    the form, read whole tables rather than IN lists."""
    k = duplicate_keys.c
    touched: set[tuple[str, ...]] = set()
    if whole:
        held = {i: key for i, key in conn.execute(select(k.instance_id, k.key).where(scope.keys)) if i in ids}
        touched |= {key_of_stored(key) for key in held.values() if key is not None}
        stale = sorted(held)
    else:
        stale = sorted(ids)
        for chunk in chunks(stale):
            touched |= {key_of_stored(key) for key in conn.execute(select(k.key).where(
                scope.keys, k.instance_id.in_(chunk), k.key.is_not(None))).scalars()}
    for chunk in chunks(stale):
        conn.execute(delete(duplicate_keys).where(scope.keys, k.instance_id.in_(chunk)))
    rows: list[dict[str, Any]] = []
    live: set[str] = set()
    for instance_id, submitted, values in iter_interviews(conn, scope.project_id, scope.form_id, table_name,
                                                          rule.columns, None if whole else sorted(ids)):
        if whole and instance_id not in ids:
            continue
        key = rule.key(dict(zip(rule.columns, values, strict=True)))
        if key is not None:
            touched.add(key)
        live.add(instance_id)
        rows.append({"project_id": scope.project_id, "form_id": scope.form_id, "rule": rule.name,
                     "instance_id": instance_id, "key_hash": key_hash(key), "key": stored_key(key),
                     "submission_date": submitted})
        if len(rows) == KEY_BATCH:
            bulk_insert(conn, duplicate_keys, rows)
            rows = []
    rows += [{"project_id": scope.project_id, "form_id": scope.form_id, "rule": rule.name, "instance_id": i,
              "key_hash": None, "key": None, "submission_date": None} for i in ids - live]
    bulk_insert(conn, duplicate_keys, rows)
    return touched


def _members(conn: Connection, scope: _RuleScope, keys: set[tuple[str, ...]]) -> list[KeyedInterview]:
    """Every live submission holding one of `keys`, through the key index."""
    k = duplicate_keys.c
    hashes = sorted({key_hash(key) for key in keys})
    found = [row for chunk in chunks(hashes)
             for row in conn.execute(select(k.instance_id, k.submission_date, k.key).where(
                 scope.keys, k.key_hash.in_(chunk)))]
    return [(i, plain(submitted), key) for i, submitted, text in found
            if (key := key_of_stored(text)) in keys]


def _judged(conn: Connection, schema: FormSchema, scope: _RuleScope, rule: DuplicateRule,
            keys: set[tuple[str, ...]], dense: Callable[[int], bool]) -> tuple[list[Failure], set[str]]:
    """The rule's verdicts on every live submission holding one of `keys`, and who those are. When
    the keys are most of the form's (a first sync), the keys are read in key order and judged a batch
    of whole key groups at a time (a key's verdict depends on its members only), so no more than a
    batch is held; a few keys are read through the key index at once."""
    if not dense(len(keys)):
        members = _members(conn, scope, keys)
        member_ids = sorted(i for i, _, _ in members)
        failing = _failing_among(conn, scope.project_id, scope.form_id, rule.name, member_ids,
                                 dense(len(member_ids)))
        return rule.judge(schema, members, failing), set(member_ids)
    failing = failing_instances(conn, scope.project_id, scope.form_id, rule.name)
    k = duplicate_keys.c
    query = (select(k.instance_id, k.submission_date, k.key, k.key_hash).where(scope.keys, k.key.is_not(None))
             .order_by(k.key_hash).execution_options(yield_per=KEY_BATCH))
    judged: list[Failure] = []
    member_ids: set[str] = set()
    batch: list[KeyedInterview] = []
    last = None
    for instance_id, submitted, text, digest in conn.execute(query):
        if len(batch) >= KEY_BATCH and digest != last:
            judged += rule.judge(schema, batch, failing)
            batch = []
        last = digest
        if (key := key_of_stored(text)) in keys:
            batch.append((instance_id, plain(submitted), key))
            member_ids.add(instance_id)
    return judged + rule.judge(schema, batch, failing), member_ids


def _failing_among(conn: Connection, project_id: int, form_id: str, except_rule: str,
                   instance_ids: Sequence[str], whole: bool) -> set[str]:
    if whole:
        return failing_instances(conn, project_id, form_id, except_rule) & set(instance_ids)
    f = validation_failures.c
    return {i for chunk in chunks(instance_ids) for i in conn.execute(select(f.instance_id).distinct().where(
        f.project_id == project_id, f.form_id == form_id, f.rule != except_rule, f.instance_id.in_(chunk))).scalars()}


def _nulls_first(row: tuple[str | None, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((v is not None, v or "") for v in row)


FULL_READ = 20_000
"""Above this many submissions, `interviews` reads the whole form rather than IN lists of 500."""
DENSE = 8
"""Read whole tables once the ids to look up are more than 1/DENSE of the form's
submissions: one scan then costs less than the IN lists of 500."""


def dense(n: int, held: int) -> bool:
    """Whether looking up `n` of a form's `held` submissions should read whole tables (`DENSE`)."""
    return n * DENSE > held


def recheck_duplicates(conn: Connection, project_id: int, schema: FormSchema, layout: FormLayout) -> set[str]:
    """Judge the form's duplicate rules, rewrite their failures and the statuses that changed;
    returns the submissions whose duplicate failures changed (so whose status may have). Call
    it after a pass over the pages (and after marking deletions), in one transaction: calling
    it again without changes in between returns an empty set and writes nothing.

    The verdicts are those of `DuplicateRule.across_form` over every live submission, computed
    over what changed: the submissions loaded, deleted or purged since the last recheck
    (`duplicate_pending`) are keyed again (`duplicate_keys`), and only the submissions sharing
    a key they had or have are judged again; a key's verdict depends on its members only. A
    warehouse whose stored keys do not cover its submissions (one loaded before this
    existed) is keyed again whole: it holds one row per submission of the form, live or not,
    so that two index-only counts tell."""
    form_id = schema.form_id
    p = duplicate_pending.c
    of_form = and_(p.project_id == project_id, p.form_id == form_id)
    rules = duplicate_rules(schema)
    if not rules:
        if inspect(conn).has_table(duplicate_pending.name):
            conn.execute(delete(duplicate_pending).where(of_form))
        return set()
    pending = _pending_ids(conn, project_id, form_id)
    changed: set[str] = set()
    again: set[str] = set()
    for index, rule in enumerate(rules):
        scope = _RuleScope(project_id, form_id, rule.name)
        table_name = layout.table(rule.table_key).name
        ids = pending | changed
        held = form_count(conn, project_id, form_id)
        is_dense = functools.partial(dense, held=held)
        keys = _rekey(conn, scope, rule, table_name, ids, is_dense(len(ids)))
        stored = conn.execute(select(func.count()).select_from(duplicate_keys).where(scope.keys)).scalar_one()
        if stored != held:
            ids = _all_ids(conn, project_id, form_id)
            conn.execute(delete(duplicate_keys).where(scope.keys))
            keys = _rekey(conn, scope, rule, table_name, ids, True)
        judged, member_ids = _judged(conn, schema, scope, rule, keys, is_dense)
        rows = [FailureRow.of(project_id, form_id, f) for f in judged]
        scoped = ids | member_ids
        rule_changed = replace_rule_failures(conn, project_id, form_id, scope.rule, rows, among=scoped,
                                             scan=is_dense(len(scoped)))
        refresh_statuses(conn, project_id, form_id, rule_changed)
        changed |= rule_changed
        if index:
            again |= rule_changed
    conn.execute(delete(duplicate_pending).where(of_form))
    mark_pending(conn, project_id, form_id, again)  # a later rule's failures change an earlier one's `failing`
    return changed
