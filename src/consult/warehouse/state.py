"""What the syncs remember between runs: watermarks, runs and the write-backs already made.

Each write takes the caller's connection, so it commits together with the data it is
about (a watermark with the page it covers): that is what makes a killed sync safe to re-run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.engine import Connection

from consult.warehouse.database import upsert_into
from consult.warehouse.failures import FailureRow, failures_hash, failures_of
from consult.warehouse.tables import sync_runs, watermarks, write_backs

RUNNING = "running"


@dataclass(frozen=True)
class Watermark:
    """Where the next incremental pull of one form starts, and the ETag of its last quiet answer."""

    project_id: int
    form_id: str
    last_change: datetime | None
    etag: str | None
    etag_since: datetime | None = None
    """The `since` of the query that answered `etag`: Central's ETag covers the rows a query
    returns, so only that same query can answer 304."""


def read_watermark(conn: Connection, project_id: int, form_id: str) -> Watermark | None:
    w = watermarks.c
    row = conn.execute(select(w.last_change, w.etag, w.etag_since)
                       .where(w.project_id == project_id, w.form_id == form_id)).first()
    return None if row is None else Watermark(project_id, form_id, row.last_change, row.etag, row.etag_since)


def remember_etag(conn: Connection, project_id: int, form_id: str, etag: str, since: datetime | None) -> None:
    """Keep the ETag of a pull that changed nothing, with the `since` it was asked with."""
    w = watermarks.c
    stmt = upsert_into(conn, watermarks).values(project_id=project_id, form_id=form_id, etag=etag,
                                                 etag_since=since, updated_at=datetime.now(UTC))
    conn.execute(stmt.on_conflict_do_update(index_elements=[w.project_id, w.form_id], set_={
        "etag": stmt.excluded.etag, "etag_since": stmt.excluded.etag_since, "updated_at": stmt.excluded.updated_at}))


def advance_watermark(conn: Connection, project_id: int, form_id: str, last_change: datetime | None,
                      etag: str | None) -> None:
    """Move the watermark forward, never back: an older `last_change` leaves it (and its ETag)
    alone; None keeps the stored value, so `(None, etag)` only records an ETag."""
    w = watermarks.c
    row = {"project_id": project_id, "form_id": form_id, "last_change": last_change, "etag": etag,
           "updated_at": datetime.now(UTC)}
    stmt = upsert_into(conn, watermarks).values(row)
    new = stmt.excluded
    older = and_(new.last_change.is_not(None), w.last_change.is_not(None), new.last_change < w.last_change)
    conn.execute(stmt.on_conflict_do_update(index_elements=[w.project_id, w.form_id], set_={
        "last_change": case((or_(new.last_change.is_(None), older), w.last_change), else_=new.last_change),
        "etag": case((or_(new.etag.is_(None), older), w.etag), else_=new.etag),
        "updated_at": new.updated_at,
    }))


def record_run_start(conn: Connection) -> int:
    """A `running` row, committed before the work, so a run that died shows as never finished."""
    result = conn.execute(sync_runs.insert().values(started_at=datetime.now(UTC), status=RUNNING))
    return int(result.inserted_primary_key[0])


def record_run_finish(conn: Connection, run_id: int, status: str,
                      summary: Mapping[str, Any] | None = None, error: str | None = None) -> None:
    """The run's end: its status, its counts (totals and per form, as JSON) and, when it failed, why."""
    text = None if summary is None else json.dumps(summary, ensure_ascii=False, sort_keys=True, default=str)
    conn.execute(update(sync_runs).where(sync_runs.c.id == run_id)
                 .values(finished_at=datetime.now(UTC), status=status, summary=text, error=error))


def written_back(conn: Connection, project_id: int, form_id: str,
                 instance_id: str) -> list[FailureRow] | None:
    """The submission's failures when they still have to be written back to Central; None when
    it has none or exactly these failures were written back already."""
    failures = failures_of(conn, project_id, form_id, instance_id)
    if not failures:
        return None
    b = write_backs.c
    done = conn.execute(select(b.review_state).where(
        b.project_id == project_id, b.form_id == form_id, b.instance_id == instance_id,
        b.failures_hash == failures_hash(failures))).first()
    return None if done else failures


def record_write_back(conn: Connection, project_id: int, form_id: str, instance_id: str, failures_hash: str,
                      review_state: str) -> None:
    """Remember a write-back (idempotent: recording it twice keeps the first)."""
    conn.execute(upsert_into(conn, write_backs).values(
        project_id=project_id, form_id=form_id, instance_id=instance_id, failures_hash=failures_hash,
        review_state=review_state, written_at=datetime.now(UTC)).on_conflict_do_nothing())
