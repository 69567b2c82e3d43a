"""What validation concluded, read back from the database: for run summaries and write-back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from consult.warehouse.tables import QUARANTINED, VALID, submissions, validation_failures


@dataclass(frozen=True)
class Verdicts:
    valid: int = 0
    quarantined: int = 0
    failures_by_rule: dict[str, int] = field(default_factory=dict)


def _live(project_id: int, form_id: str):
    s = submissions.c
    return and_(s.project_id == project_id, s.form_id == form_id, s.deleted_at.is_(None), s.purged_at.is_(None))


def verdicts_of(conn: Connection, project_id: int, form_id: str, loaded_since: datetime) -> Verdicts:
    """Statuses and failures (by rule) of the submissions loaded since `loaded_since`, as they
    stand now: what one sync pulled (every submission it pulls is written again, with the moment of
    its page), found through `ix_submissions_loaded` rather than a list of ids the sync would have
    to hold. A clock stepped back during a run would leave the submissions loaded before the step
    out of its summary, never those of another run (runs of a form do not overlap)."""
    s, f = submissions.c, validation_failures.c
    statuses = dict(conn.execute(select(s.validation_status, func.count()).where(
        _live(project_id, form_id), s.loaded_at >= loaded_since).group_by(s.validation_status)).all())
    rules = dict(conn.execute(select(f.rule, func.count()).join(submissions, and_(
        s.instance_id == f.instance_id, s.project_id == f.project_id, s.form_id == f.form_id)).where(
        _loaded(project_id, form_id, loaded_since)).group_by(f.rule)).all())
    return Verdicts(statuses.get(VALID, 0), statuses.get(QUARANTINED, 0), dict(sorted(rules.items())))


def loaded_count(conn: Connection, project_id: int, form_id: str, loaded_since: datetime) -> int:
    """Distinct submissions loaded since `loaded_since`, deleted ones included: what one sync pulled."""
    return conn.execute(select(func.count()).select_from(submissions).where(
        _loaded(project_id, form_id, loaded_since))).scalar_one()


def _loaded(project_id: int, form_id: str, since: datetime):
    s = submissions.c
    return and_(s.project_id == project_id, s.form_id == form_id, s.loaded_at >= since)


def quarantined_ids(conn: Connection, project_id: int, form_id: str) -> set[str]:
    """Live submissions of a form that failed validation: the candidates for write-back."""
    s = submissions.c
    return set(conn.execute(select(s.instance_id).where(_live(project_id, form_id),
                                                       s.validation_status == QUARANTINED)).scalars())
