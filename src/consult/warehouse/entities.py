"""Entity lists in the reporting database: one table per list, their versions, and what failed.

`entities__<list>` holds each entity's current state: uuid, label, one text column per property
(Central's values are strings), version, open conflict, created/updated/deleted times and creator.
`entity_versions` keeps every version with the submission that made it. `entity_submissions`
records, per submission of a form that fills a list, whether it made an entity or an
`entity.error` (Central accepts such a submission and only audits the failure): those are the
entity quarantine, reported by every sync until they are fixed in Central.

The sync is incremental: OData `$filter=__system/updatedAt gt … or __system/createdAt gt …` from a
watermark per list (the `watermarks` table, form_id `entity-list:<name>`); deletions come from the
deleted list (OData hides them), restores clear `deleted_at`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from consult.central.config import CentralSettings
from consult.central.entities import (
    dataset_json,
    deleted_entities,
    entity_json,
    entity_pages,
    entity_versions,
    submission_audits,
)
from consult.central.session import CentralError, CentralSession, call_pyodk, central_session
from consult.forms.schema import FormSchema
from consult.warehouse.database import create_engine_for, upsert_into
from consult.warehouse.failures import chunks
from consult.warehouse.records import INSTANCE, FormLayout, table_name
from consult.warehouse.state import advance_watermark, read_watermark
from consult.warehouse.tables import (
    SchemaConflict,
    UtcDateTime,
    _add_column,
    form_tables,
    submissions,
    watermarks,
)

TABLE_PREFIX = "entities"
WATERMARK_PREFIX = "entity-list:"
SETTLE_AFTER = timedelta(hours=1)
"""A submission with no entity audit this long after it arrived made none (an update form whose
`update_if` was false); Central's worker takes seconds."""
SYSTEM_COLUMNS = ("uuid", "project_id", "label", "version", "conflict", "created_at", "updated_at", "deleted_at",
                  "creator_id", "creator_name", "synced_at")

meta = MetaData()

entity_versions_table = Table(
    "entity_versions", meta,
    Column("project_id", Integer, nullable=False),
    Column("list_name", Text, nullable=False),
    Column("uuid", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("label", Text),
    Column("data", Text, nullable=False),
    Column("base_version", Integer),
    Column("conflict", Text),
    Column("resolved", Integer),
    Column("source_form_id", Text),
    Column("source_instance_id", Text),
    Column("creator_id", Text),
    Column("created_at", UtcDateTime),
    PrimaryKeyConstraint("uuid", "version"),
    Index("ix_entity_versions_list", "project_id", "list_name"),
)

entity_submissions = Table(
    "entity_submissions", meta,
    Column("project_id", Integer, nullable=False),
    Column("list_name", Text, nullable=False),
    Column("form_id", Text, nullable=False),
    Column("instance_id", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("problem_code", Text),
    Column("message", Text),
    Column("checked_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("project_id", "list_name", "form_id", "instance_id"),
)
ENTITY = "entity"
ERROR = "error"
NONE = "none"


def list_table_name(list_name: str) -> str:
    """`entities__focal_points`: form tables are `<form_id>[__<repeat>]`, so a form would need the id
    `entities` to meet it, and `ensure_list_table` refuses a table that is not an entity table."""
    return table_name(TABLE_PREFIX, list_name)


def property_column(prop: str) -> str:
    """A property named like a system column (`version`, `uuid`…) gets a `property_` prefix."""
    return f"property_{prop}" if prop in SYSTEM_COLUMNS else prop


def list_table(list_name: str, properties: Iterable[str]) -> Table:
    return Table(
        list_table_name(list_name), MetaData(),
        Column("uuid", Text, primary_key=True),
        Column("project_id", Integer, nullable=False),
        Column("label", Text, nullable=False),
        Column("version", Integer, nullable=False),
        Column("conflict", Text),
        Column("created_at", UtcDateTime),
        Column("updated_at", UtcDateTime),
        Column("deleted_at", UtcDateTime),
        Column("creator_id", Text),
        Column("creator_name", Text),
        Column("synced_at", UtcDateTime, nullable=False),
        *(Column(property_column(p), Text) for p in properties),
    )


def ensure_list_table(conn: Connection, list_name: str, properties: Iterable[str]) -> Table:
    """Create the list's tables, or add a column per new property (never drop one)."""
    table = list_table(list_name, properties)
    inspector = inspect(conn)
    existing = set(inspector.get_table_names())
    for shared in (watermarks, entity_versions_table, entity_submissions):
        if shared.name not in existing:
            shared.create(conn)
    if table.name not in existing:
        table.create(conn)
        return table
    present = {c["name"] for c in inspector.get_columns(table.name)}
    if not {"uuid", "label", "version"} <= present:
        raise SchemaConflict(f"table {table.name} exists and is not the entity table of {list_name}: a form "
                             "table has that name; rename the form or the list")
    for column in table.columns:
        if column.name not in present:
            _add_column(conn, table, column)
    return table


@dataclass(frozen=True)
class EntityError:
    """A submission Central accepted but could not make (or update) an entity from."""

    form_id: str
    instance_id: str
    problem_code: str
    message: str

    def __str__(self) -> str:
        return f"{self.form_id} {self.instance_id}: {self.message} (code {self.problem_code})"


@dataclass
class EntitySyncSummary:
    list_name: str
    pulled: int = 0
    new: int = 0
    updated: int = 0
    deleted: int = 0
    restored: int = 0
    versions: int = 0
    conflicts: int = 0
    """Entities with an open conflict after the sync."""
    errors: list[EntityError] = field(default_factory=list)
    """Every submission whose entity failed (the quarantine), new or not."""
    seconds: float = 0.0


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _odata_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _row(project_id: int, record: dict[str, Any], properties: Iterable[str], now: datetime) -> dict[str, Any]:
    system = record.get("__system") or {}
    row = {"uuid": record["__id"], "project_id": project_id, "label": record.get("label") or "",
           "version": int(system.get("version") or 1), "conflict": system.get("conflict"),
           "created_at": _moment(system.get("createdAt")), "updated_at": _moment(system.get("updatedAt")),
           "deleted_at": None, "creator_id": None if system.get("creatorId") is None else str(system["creatorId"]),
           "creator_name": system.get("creatorName"), "synced_at": now}
    row.update({property_column(p): record.get(p) for p in properties})
    return row


def sync_entity_list(central: CentralSession, engine: Engine, project_id: int, list_name: str,
                     schemas: Mapping[str, FormSchema] | None = None) -> EntitySyncSummary:
    """Bring one list's table, versions and entity errors up to date with Central. `schemas` (form id
    → its built FormSchema) spare Central a question per submission whose answers asked for no entity."""
    started = time.perf_counter()
    summary = EntitySyncSummary(list_name)
    dataset = dataset_json(central, project_id, list_name)
    properties = [p["name"] for p in dataset.get("properties") or ()]
    watermark_id = WATERMARK_PREFIX + list_name
    with engine.begin() as conn:
        table = ensure_list_table(conn, list_name, properties)
        mark = read_watermark(conn, project_id, watermark_id)
        known = {r.uuid: r for r in conn.execute(select(table.c.uuid, table.c.deleted_at, table.c.conflict)
                                                 .where(table.c.project_id == project_id))}
    since = mark.last_change if mark else None
    query = None if since is None else (f"__system/updatedAt gt {_odata_time(since)} or "
                                         f"__system/createdAt gt {_odata_time(since)}")
    now = datetime.now(UTC)
    rows = [_row(project_id, r, properties, now) for page in entity_pages(central, project_id, list_name, query)
            for r in page]
    changed = {r["uuid"] for r in rows}
    deleted = {e["uuid"]: e for e in deleted_entities(central, project_id, list_name)}
    unseen_deleted = [u for u in deleted if u not in known and u not in changed]
    if unseen_deleted:  # created and deleted between two syncs: OData still has their properties
        rows += [_row(project_id, r, properties, now) for page in entity_pages(
            central, project_id, list_name, "__system/deletedAt ne null") for r in page if r["__id"] in unseen_deleted]
    for row in rows:
        if row["uuid"] in deleted:
            row["deleted_at"] = _moment(deleted[row["uuid"]].get("deletedAt"))
    # A resolved conflict makes no new version: refresh the open ones the feed did not bring.
    for uuid, state in known.items():
        if state.conflict and uuid not in changed and uuid not in deleted:
            entity = entity_json(central, project_id, list_name, uuid)
            if entity is not None and entity.get("conflict") != state.conflict:
                rows.append({"uuid": uuid, "conflict": entity.get("conflict"), "synced_at": now})
    # Central keeps no readable versions of a deleted entity (404.1): those of one deleted after an
    # earlier sync are stored already; one a warehouse first meets deleted keeps its row only.
    live = sorted({r["uuid"] for r in rows if "label" in r and r["deleted_at"] is None})
    versions = [v for found in _concurrently(lambda uuid: _versions(central, project_id, list_name, uuid), live)
                for v in found]
    outcomes = _submission_outcomes(central, engine, project_id, list_name, dataset, versions, now, schemas or {})
    last_change = max((m for r in rows for m in (r.get("updated_at"), r.get("created_at")) if m), default=None)
    entities = [row for row in rows if "label" in row]
    with engine.begin() as conn:
        for row in rows:
            state = known.get(row["uuid"])
            if "label" not in row:
                conn.execute(update(table).where(table.c.uuid == row["uuid"]).values(
                    conflict=row["conflict"], synced_at=now))
                continue
            summary.pulled += row["deleted_at"] is None
            summary.new += state is None
            live, was_live = row["deleted_at"] is None, state is not None and state.deleted_at is None
            summary.updated += was_live and live
            summary.restored += state is not None and not was_live and live
        if entities:
            stmt = upsert_into(conn, table)
            conn.execute(stmt.on_conflict_do_update(index_elements=[table.c.uuid], set_={
                k: stmt.excluded[k] for k in entities[0] if k != "uuid"}), entities)
        for uuid, entity in deleted.items():
            state = known.get(uuid)
            if state is not None and state.deleted_at is None and uuid not in changed:
                conn.execute(update(table).where(table.c.uuid == uuid).values(
                    deleted_at=_moment(entity.get("deletedAt")), synced_at=now))
        summary.deleted = sum(1 for u in deleted if (u not in known or known[u].deleted_at is None))
        for uuid, state in known.items():
            if state.deleted_at is not None and uuid not in deleted and uuid not in changed:
                conn.execute(update(table).where(table.c.uuid == uuid).values(deleted_at=None, synced_at=now))
                summary.restored += 1
        if versions:
            stmt = upsert_into(conn, entity_versions_table)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=[entity_versions_table.c.uuid, entity_versions_table.c.version],
                set_={"conflict": stmt.excluded.conflict, "resolved": stmt.excluded.resolved}), versions)
        if outcomes:
            conn.execute(upsert_into(conn, entity_submissions).on_conflict_do_nothing(), outcomes)
        if last_change is not None:
            advance_watermark(conn, project_id, watermark_id, last_change, None)
        summary.conflicts = len(conn.execute(select(table.c.uuid).where(
            table.c.project_id == project_id, table.c.conflict.is_not(None), table.c.deleted_at.is_(None))).all())
        e = entity_submissions.c
        summary.errors = [EntityError(r.form_id, r.instance_id, r.problem_code or "", r.message or "")
                          for r in conn.execute(select(e.form_id, e.instance_id, e.problem_code, e.message).where(
                              e.project_id == project_id, e.list_name == list_name, e.outcome == ERROR)
                              .order_by(e.form_id, e.instance_id))]
    summary.versions = len(versions)
    summary.seconds = time.perf_counter() - started
    return summary


def _versions(central: CentralSession, project_id: int, list_name: str, uuid: str) -> list[dict[str, Any]]:
    rows = []
    for v in entity_versions(central, project_id, list_name, uuid):
        submission = (v.get("source") or {}).get("submission") or {}
        rows.append({
            "project_id": project_id, "list_name": list_name, "uuid": uuid, "version": int(v["version"]),
            "label": v.get("label"), "data": json.dumps(v.get("data") or {}, ensure_ascii=False, sort_keys=True),
            "base_version": v.get("baseVersion"), "conflict": v.get("conflict"),
            "resolved": int(bool(v.get("resolved"))), "source_form_id": submission.get("xmlFormId"),
            "source_instance_id": submission.get("instanceId"),
            "creator_id": None if v.get("creatorId") is None else str(v["creatorId"]),
            "created_at": _moment(v.get("createdAt"))})
    return rows


def _submission_outcomes(central: CentralSession, engine: Engine, project_id: int, list_name: str,
                         dataset: dict[str, Any], versions: list[dict[str, Any]],
                         now: datetime, schemas: Mapping[str, FormSchema]) -> list[dict[str, Any]]:
    """What became of each submission of the list's source forms not settled by an earlier sync: an
    entity (named by a version's source, else by an `entity.*` audit), an `entity.error`, or nothing:
    at once when its answers asked for no entity (`_asked_nothing`), else from its audits."""
    e, v = entity_submissions.c, entity_versions_table.c
    with engine.connect() as conn:
        settled = {(r.form_id, r.instance_id) for r in conn.execute(select(e.form_id, e.instance_id).where(
            e.project_id == project_id, e.list_name == list_name))}
        made = {r.source_instance_id for r in conn.execute(select(v.source_instance_id).where(
            v.project_id == project_id, v.list_name == list_name, v.source_instance_id.is_not(None)))}
    made |= {version["source_instance_id"] for version in versions if version["source_instance_id"]}
    unsettled = [(form_id, submission)
                 for form_id in sorted({f["xmlFormId"] for f in dataset.get("sourceForms") or ()})
                 for submission in _source_submissions(central, engine, project_id, form_id)
                 if (form_id, submission.instance_id) not in settled]
    quiet = {form_id: _asked_nothing(engine, schemas[form_id], project_id, list_name,
                                     [s.instance_id for f, s in unsettled if f == form_id and s.instance_id not in made])
             for form_id in {f for f, _ in unsettled} if form_id in schemas}
    asked = [(form_id, submission) for form_id, submission in unsettled
             if submission.instance_id not in made and submission.instance_id not in quiet.get(form_id, ())]
    audits_of = dict(zip([(form_id, s.instance_id) for form_id, s in asked], _concurrently(
        lambda pair: _audits(central, project_id, pair[0], pair[1].instance_id), asked), strict=True))
    outcomes: list[dict[str, Any]] = []
    for form_id, submission in unsettled:
        instance_id = submission.instance_id
        outcome = {"project_id": project_id, "list_name": list_name, "form_id": form_id,
                   "instance_id": instance_id, "outcome": ENTITY, "problem_code": None, "message": None,
                   "checked_at": now}
        if instance_id in quiet.get(form_id, ()):
            outcome["outcome"] = NONE
        elif instance_id not in made:
            audits = audits_of[(form_id, instance_id)]
            if audits is None:
                continue
            failure = next((a for a in audits if a.get("action") == "entity.error"), None)
            if failure is not None:
                details = failure.get("details") or {}
                outcome.update(outcome=ERROR, message=details.get("errorMessage"),
                               problem_code=str((details.get("problem") or {}).get("problemCode", "")))
            elif not any(str(a.get("action", "")).startswith("entity.") for a in audits):
                waits = dataset.get("approvalRequired") and submission.review_state not in ("approved", "rejected")
                if waits or now - submission.created_at < SETTLE_AFTER:
                    continue  # the worker (or a reviewer) has not got to it yet
                outcome["outcome"] = NONE
        outcomes.append(outcome)
    return outcomes


def _asked_nothing(engine: Engine, schema: FormSchema, project_id: int, list_name: str,
                   instance_ids: Sequence[str]) -> set[str]:
    """Those of these submissions whose stored answers make the form's `create_if` and `update_if`
    false: Central did no entity work for them, so their audits can hold no entity error, and a
    first sync need not ask for them (one request each). Only for submissions of the version
    built here whose answers the database holds, and a list declared once per submission in
    expressions `consult.validate.expressions` reads; otherwise none, and the audits decide."""
    from consult.validate.expressions import Unsupported, columns_by_name, holds_for, parse, refs

    declared = [d for d in schema.entities if d.list_name == list_name]
    if not instance_ids or len(declared) != 1 or declared[0].repeat is not None:
        return set()
    conditions = [c for wanted, c in ((declared[0].creates, declared[0].create_if),
                                      (declared[0].updates, declared[0].update_if)) if wanted]
    if not conditions or None in conditions:
        return set()  # an unconditional create or update always asks
    try:
        expressions = [parse(c) for c in conditions]
    except Unsupported:
        return set()
    columns = columns_by_name(schema)
    table = form_tables(FormLayout.of(schema))[""]
    read = {columns.get(name, name) for e in expressions for name in refs(e)}
    if not read <= set(table.c.keys()):
        return set()  # a name outside the form table (a repeat's, a metadata field's)
    s = submissions.c
    quiet: set[str] = set()
    with engine.connect() as conn:
        found = inspect(conn)
        if not found.has_table(table.name) or not read <= {c["name"] for c in found.get_columns(table.name)}:
            return set()  # the form was never synced here, or not since it gained the question
        for chunk in chunks(instance_ids):
            for row in conn.execute(select(table.c[INSTANCE], *(table.c[c] for c in read)).join(
                    submissions, s.instance_id == table.c[INSTANCE]).where(
                    s.project_id == project_id, s.form_id == schema.form_id, s.form_version == schema.version,
                    s.instance_id.in_(chunk))):
                answer = partial(_answer, row._mapping, columns)
                if not any(holds_for(e, answer) for e in expressions):
                    quiet.add(row[0])
    return quiet


def _answer(values: Mapping[str, Any], columns: Mapping[str, str], name: str) -> Any:
    return values[columns.get(name, name)]


@dataclass(frozen=True)
class SourceSubmission:
    """A live submission of a form that feeds an entity list: what deciding its outcome needs."""

    instance_id: str
    review_state: str | None
    created_at: datetime


def _audits(central: CentralSession, project_id: int, form_id: str, instance_id: str) -> list[dict] | None:
    """A submission's audits; None when Central no longer has it (purged since the warehouse saw it)."""
    try:
        return submission_audits(central, project_id, form_id, instance_id)
    except CentralError as error:
        if error.status == 404:
            return None
        raise


def _source_submissions(central: CentralSession, engine: Engine, project_id: int,
                        form_id: str) -> list[SourceSubmission]:
    """The form's live submissions: from the warehouse when it holds the form (a sync run loads its
    forms before their entity lists), so a sync with nothing new does not list every submission
    from Central again; from Central's submission list otherwise."""
    s = submissions.c
    with engine.connect() as conn:
        stored = [SourceSubmission(r.instance_id, r.review_state, r.submission_date) for r in conn.execute(
            select(s.instance_id, s.review_state, s.submission_date).where(
                s.project_id == project_id, s.form_id == form_id, s.deleted_at.is_(None), s.purged_at.is_(None),
                s.submission_date.is_not(None)))] if inspect(conn).has_table(submissions.name) else []
    if stored:
        return stored
    return [SourceSubmission(r.instanceId, r.reviewState, r.createdAt)
            for r in call_pyodk(central.client.submissions.list, form_id=form_id, project_id=project_id)]


T = TypeVar("T")
R = TypeVar("R")
CONCURRENT_REQUESTS = 8
"""GETs in flight at once for the per-entity versions and per-submission audits, on the run's one
session: a first sync of a list asks for one of them per entity and per submission."""


def _concurrently(fetch: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`[fetch(i) for i in items]`, `CONCURRENT_REQUESTS` at a time: each is one round trip to Central."""
    if len(items) < 2:
        return [fetch(i) for i in items]
    with ThreadPoolExecutor(max_workers=CONCURRENT_REQUESTS, thread_name_prefix="central-get") as pool:
        return list(pool.map(fetch, items))


def sync_entity_lists(central: CentralSession, engine: Engine, project_id: int, lists: Iterable[str] | None = None,
                      schemas: Mapping[str, FormSchema] | None = None) -> list[EntitySyncSummary]:
    """Every entity list of the project (or those named) into the reporting database."""
    names = list(lists) if lists else sorted(
        d.name for d in call_pyodk(central.client.entity_lists.list, project_id=project_id))
    return [sync_entity_list(central, engine, project_id, name, schemas) for name in names]


def sync_project_entity_lists(settings: CentralSettings, project_id: int, database_url: str,
                              lists: Iterable[str] | None = None,
                              schemas: Mapping[str, FormSchema] | None = None) -> list[EntitySyncSummary]:
    """`sync_entity_lists` with its own engine, on the run's shared Central session: what a sync run
    calls after its forms (`plan.settings, plan.project_id, plan.database_url`)."""
    engine = create_engine_for(database_url)
    try:
        with central_session(settings) as central:
            return sync_entity_lists(central, engine, project_id, lists, schemas)
    finally:
        engine.dispose()
