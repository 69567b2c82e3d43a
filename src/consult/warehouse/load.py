"""Loading pages of FormRecords: the sync's hot path, and everything a sync writes.

Every function takes the caller's `Connection` and never commits: a sync calls `load_page` for
each page in a transaction that holds a few pages (`consult.sync.LoadTransaction`), so a page's
rows, its page-rule failures and its place in `suite_pending` commit together or not at all;
when the pass ends, one more
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

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Insert,
    MetaData,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    inspect,
    literal,
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
from consult.warehouse.database import (
    bulk_insert,
    refresh_stale_statistics,
    refresh_statistics,
    upsert_into,
)
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
                    columns: Sequence[str], instance_ids: Sequence[str] | None = None, *,
                    pending: bool = False) -> Iterator[Interview]:
    """`interviews`, one at a time: a whole form's are read as a stream (a server-side cursor on
    PostgreSQL), so keying them holds no more than a batch. `pending`: only those awaiting the
    duplicate recheck (`duplicate_pending`), joined in SQL."""
    table = Table(table_name, MetaData(), autoload_with=conn)
    query = interviews_query(table, project_id, form_id, columns, pending=pending)
    if instance_ids is None or len(instance_ids) > FULL_READ:
        wanted = None if instance_ids is None else set(instance_ids)
        found: Iterable[Any] = (row for row in conn.execute(query.execution_options(yield_per=KEY_BATCH))
                                if wanted is None or row[0] in wanted)
    else:
        found = (row for chunk in chunks(instance_ids) for row in conn.execute(query.where(
            table.c[INSTANCE].in_(chunk))))
    for instance_id, submitted, *values in found:
        yield instance_id, plain(submitted), tuple(plain(v) for v in values)


def interviews_query(table: Table, project_id: int, form_id: str, columns: Sequence[str], *,
                     pending: bool = False) -> Select[Any]:
    """What `iter_interviews` reads: the form's live submissions in `table`, with `columns`."""
    s = submissions.c
    query = (select(table.c[INSTANCE], s.submission_date, *(table.c[c] for c in columns))
             .join(submissions, s.instance_id == table.c[INSTANCE])
             .where(s.project_id == project_id, s.form_id == form_id, s.deleted_at.is_(None),
                    s.purged_at.is_(None))
             .order_by(table.c[INSTANCE]))
    if pending:
        p = duplicate_pending.c
        query = query.join(duplicate_pending, and_(p.instance_id == table.c[INSTANCE], p.project_id == project_id,
                                                   p.form_id == form_id))
    return query


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


def refresh_pending_statistics(conn: Connection) -> None:
    """`suite_pending`'s statistics brought within 2x of its rows before the suites join it with
    the tables (`refresh_stale_statistics`): a first sync fills it, and each pass empties it."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(select(func.count()).select_from(suite_pending)).scalar_one()
        refresh_stale_statistics(conn, suite_pending, rows, ("project_id", "form_id", "instance_id"))


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
    stray = {f.instance_id for f in failures if (f.project_id, f.form_id) != (project_id, form_id)}
    named = sorted({f.instance_id for f in failures} - stray)
    p = suite_pending.c
    for chunk in chunks(named):
        stray |= set(chunk) - set(conn.execute(_awaiting_suites(project_id, form_id).where(
            p.instance_id.in_(chunk))).scalars())
    if stray:
        raise ValueError(f"suite failures for submissions not awaiting them in {project_id}/{form_id}: "
                         f"{sorted(stray)[:5]}")
    insert_failures(conn, failures)
    s = submissions.c
    for chunk in chunks(sorted({f.instance_id for f in failures})):
        conn.execute(update(submissions).where(s.project_id == project_id, s.form_id == form_id,
                                               s.instance_id.in_(chunk)).values(validation_status=QUARANTINED))
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


def _pending_ids(project_id: int, form_id: str) -> Select[tuple[str]]:
    p = duplicate_pending.c
    return select(p.instance_id).where(p.project_id == project_id, p.form_id == form_id)


def form_count(conn: Connection, project_id: int, form_id: str) -> int:
    """Submissions of the form, deleted and purged included: counted on the index alone."""
    s = submissions.c
    return conn.execute(select(func.count()).select_from(submissions).where(
        s.project_id == project_id, s.form_id == form_id)).scalar_one()


def _count(conn: Connection, query: Select[Any]) -> int:
    return conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()


def _key_row(scope: _RuleScope, instance_id: str, submitted: Any, key: tuple[str, ...] | None) -> dict[str, Any]:
    return {"project_id": scope.project_id, "form_id": scope.form_id, "rule": scope.rule,
            "instance_id": instance_id, "key_hash": key_hash(key), "key": stored_key(key),
            "submission_date": submitted}


def _rekey(conn: Connection, scope: _RuleScope, rule: DuplicateRule, table_name: str,
           ids: set[str]) -> set[tuple[str, ...]]:
    """Store the current key of each of `ids` (None for a deleted or purged one) and return the
    keys they had and have now: the groups whose verdicts may have changed. For a few ids (the
    index finds them); `_rekey_pending` keys many."""
    k = duplicate_keys.c
    stale = sorted(ids)
    touched: set[tuple[str, ...]] = set()
    for chunk in chunks(stale):
        touched |= {key_of_stored(key) for key in conn.execute(select(k.key).where(
            scope.keys, k.instance_id.in_(chunk), k.key.is_not(None))).scalars()}
        conn.execute(delete(duplicate_keys).where(scope.keys, k.instance_id.in_(chunk)))
    rows: list[dict[str, Any]] = []
    for instance_id, submitted, values in iter_interviews(conn, scope.project_id, scope.form_id, table_name,
                                                          rule.columns, stale):
        key = rule.key(dict(zip(rule.columns, values, strict=True)))
        if key is not None:
            touched.add(key)
        rows.append(_key_row(scope, instance_id, submitted, key))
    live = {row["instance_id"] for row in rows}
    bulk_insert(conn, duplicate_keys, rows + [_key_row(scope, i, None, None) for i in stale if i not in live])
    return touched


def _rekey_pending(conn: Connection, scope: _RuleScope, rule: DuplicateRule, table_name: str) -> None:
    """Store the current key of every submission awaiting the recheck (None for a deleted or
    purged one), in SQL and batches: a first sync's whole form is pending, and holding its ids
    or keys in Python would grow with the form."""
    k = duplicate_keys.c
    pending = _pending_ids(scope.project_id, scope.form_id)
    conn.execute(delete(duplicate_keys).where(scope.keys, k.instance_id.in_(pending)))
    rows: list[dict[str, Any]] = []
    for instance_id, submitted, values in iter_interviews(conn, scope.project_id, scope.form_id, table_name,
                                                          rule.columns, pending=True):
        rows.append(_key_row(scope, instance_id, submitted, rule.key(dict(zip(rule.columns, values, strict=True)))))
        if len(rows) == KEY_BATCH:
            bulk_insert(conn, duplicate_keys, rows)
            rows = []
    bulk_insert(conn, duplicate_keys, rows)
    refresh_statistics(conn, duplicate_keys, duplicate_pending, validation_failures)
    conn.execute(_key_the_unkeyed(scope))


def _key_the_unkeyed(scope: _RuleScope) -> Insert:
    """Give every pending submission the rekey found no live row for (deleted, purged) its empty key."""
    k, p = duplicate_keys.c, duplicate_pending.c
    unkeyed = ~select(k.instance_id).where(scope.keys, k.instance_id == p.instance_id).exists()
    return insert(duplicate_keys).from_select(
        ["project_id", "form_id", "rule", "instance_id"],
        select(literal(scope.project_id), literal(scope.form_id), literal(scope.rule), p.instance_id)
        .where(p.project_id == scope.project_id, p.form_id == scope.form_id, unkeyed))


def _members(conn: Connection, scope: _RuleScope, keys: set[tuple[str, ...]]) -> list[KeyedInterview]:
    """Every live submission holding one of `keys`, through the key index."""
    k = duplicate_keys.c
    hashes = sorted({key_hash(key) for key in keys})
    found = [row for chunk in chunks(hashes)
             for row in conn.execute(select(k.instance_id, k.submission_date, k.key).where(
                 scope.keys, k.key_hash.in_(chunk)))]
    return [(i, plain(submitted), key) for i, submitted, text in found
            if (key := key_of_stored(text)) in keys]


def _judge_keys(conn: Connection, schema: FormSchema, scope: _RuleScope, rule: DuplicateRule,
                keys: set[tuple[str, ...]]) -> tuple[list[Failure], set[str]]:
    """The rule's verdicts on every live submission holding one of a few `keys`, and who those are."""
    members = _members(conn, scope, keys)
    member_ids = sorted(i for i, _, _ in members)
    f = validation_failures.c
    failing = {i for chunk in chunks(member_ids) for i in conn.execute(select(f.instance_id).distinct().where(
        f.project_id == scope.project_id, f.form_id == scope.form_id, f.rule != scope.rule,
        f.instance_id.in_(chunk))).scalars()}
    return rule.judge(schema, members, failing), set(member_ids)


def _judge_form(conn: Connection, schema: FormSchema, scope: _RuleScope, rule: DuplicateRule) -> list[Failure]:
    """The rule's verdicts on every key group of the form: the keys are read in key order, each
    with whether its submission fails another rule, and judged a batch of whole groups at a
    time (a key's verdict depends on its members only), so no more than a batch is held."""
    k, f = duplicate_keys.c, validation_failures.c
    fails_otherwise = select(f.instance_id).where(
        f.instance_id == k.instance_id, f.project_id == k.project_id, f.form_id == k.form_id,
        f.rule != scope.rule).exists()
    query = (select(k.instance_id, k.submission_date, k.key, k.key_hash, fails_otherwise)
             .where(scope.keys, k.key.is_not(None)).order_by(k.key_hash).execution_options(yield_per=KEY_BATCH))
    judged: list[Failure] = []
    batch: list[KeyedInterview] = []
    failing: set[str] = set()
    last = None
    for instance_id, submitted, text, digest, fails in conn.execute(query):
        if len(batch) >= KEY_BATCH and digest != last:
            judged += rule.judge(schema, batch, failing)
            batch, failing = [], set()
        last = digest
        batch.append((instance_id, plain(submitted), key_of_stored(text)))
        if fails:
            failing.add(instance_id)
    return judged + rule.judge(schema, batch, failing)


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
    (`duplicate_pending`) are keyed again (`duplicate_keys`). When they are a few, only the
    submissions sharing a key they had or have are judged again (a key's verdict depends on its
    members only); when they are many (a first sync), every key group is, in SQL and batches, so
    memory does not grow with the form. A warehouse whose stored keys do not cover its
    submissions (one loaded before this existed) is keyed again whole: it holds one row per
    submission of the form, live or not, so that two index-only counts tell."""
    form_id = schema.form_id
    p = duplicate_pending.c
    of_form = and_(p.project_id == project_id, p.form_id == form_id)
    rules = duplicate_rules(schema)
    if not rules:
        if inspect(conn).has_table(duplicate_pending.name):
            conn.execute(delete(duplicate_pending).where(of_form))
        return set()
    changed: set[str] = set()
    again: set[str] = set()
    for index, rule in enumerate(rules):
        scope = _RuleScope(project_id, form_id, rule.name)
        table_name = layout.table(rule.table_key).name
        mark_pending(conn, project_id, form_id, changed)
        held = form_count(conn, project_id, form_id)
        whole = dense(_count(conn, _pending_ids(project_id, form_id)), held)
        if not whole:
            ids = set(conn.execute(_pending_ids(project_id, form_id)).scalars())
            keys = _rekey(conn, scope, rule, table_name, ids)
        else:
            _rekey_pending(conn, scope, rule, table_name)
        stored = conn.execute(select(func.count()).select_from(duplicate_keys).where(scope.keys)).scalar_one()
        if stored != held:
            conn.execute(delete(duplicate_keys).where(scope.keys))
            s = submissions.c
            conn.execute(upsert_into(conn, duplicate_pending).from_select(
                ["project_id", "form_id", "instance_id"],
                select(s.project_id, s.form_id, s.instance_id).where(s.project_id == project_id,
                                                                     s.form_id == form_id),
            ).on_conflict_do_nothing())
            _rekey_pending(conn, scope, rule, table_name)
            whole = True
        if whole:
            rows = [FailureRow.of(project_id, form_id, f) for f in _judge_form(conn, schema, scope, rule)]
            rule_changed = replace_rule_failures(conn, project_id, form_id, scope.rule, rows)
        else:
            judged, member_ids = _judge_keys(conn, schema, scope, rule, keys)
            rows = [FailureRow.of(project_id, form_id, f) for f in judged]
            scoped = ids | member_ids
            rule_changed = replace_rule_failures(conn, project_id, form_id, scope.rule, rows, among=scoped,
                                                 scan=dense(len(scoped), held))
        refresh_statuses(conn, project_id, form_id, rule_changed)
        changed |= rule_changed
        if index:
            again |= rule_changed
    conn.execute(delete(duplicate_pending).where(of_form))
    mark_pending(conn, project_id, form_id, again)  # a later rule's failures change an earlier one's `failing`
    return changed
