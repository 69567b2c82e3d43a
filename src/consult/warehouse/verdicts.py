"""What validation concluded, read back from the database: for run summaries and write-back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from consult.warehouse.failures import chunks
from consult.warehouse.load import dense, form_count
from consult.warehouse.tables import QUARANTINED, VALID, submissions, validation_failures


@dataclass(frozen=True)
class Verdicts:
    valid: int = 0
    quarantined: int = 0
    failures_by_rule: dict[str, int] = field(default_factory=dict)


def _live(project_id: int, form_id: str):
    s = submissions.c
    return and_(s.project_id == project_id, s.form_id == form_id, s.deleted_at.is_(None), s.purged_at.is_(None))


def verdicts_of(conn: Connection, project_id: int, form_id: str, instance_ids: Iterable[str]) -> Verdicts:
    """Statuses and failures (by rule) of these submissions, as they stand now. Asked about most of
    the form (a first sync), it reads the form's rows once instead of IN lists: 200 lists of 500
    ids cost PostgreSQL seconds on tables it has no statistics for yet."""
    s, f = submissions.c, validation_failures.c
    ids = sorted(set(instance_ids))
    if dense(len(ids), form_count(conn, project_id, form_id)):
        wanted = set(ids)
        statuses = Counter(status for i, status in conn.execute(
            select(s.instance_id, s.validation_status).where(_live(project_id, form_id))) if i in wanted)
        rules = Counter(rule for i, rule in conn.execute(
            select(f.instance_id, f.rule).where(f.project_id == project_id, f.form_id == form_id)) if i in wanted)
        return Verdicts(statuses[VALID], statuses[QUARANTINED], dict(sorted(rules.items())))
    statuses = Counter()
    rules = Counter()
    for chunk in chunks(ids):
        statuses.update(dict(conn.execute(
            select(s.validation_status, func.count()).where(_live(project_id, form_id), s.instance_id.in_(chunk))
            .group_by(s.validation_status)).all()))
        rules.update(dict(conn.execute(
            select(f.rule, func.count()).where(f.project_id == project_id, f.form_id == form_id,
                                               f.instance_id.in_(chunk)).group_by(f.rule)).all()))
    return Verdicts(statuses[VALID], statuses[QUARANTINED], dict(sorted(rules.items())))


def quarantined_ids(conn: Connection, project_id: int, form_id: str) -> set[str]:
    """Live submissions of a form that failed validation: the candidates for write-back."""
    s = submissions.c
    return set(conn.execute(select(s.instance_id).where(_live(project_id, form_id),
                                                       s.validation_status == QUARANTINED)).scalars())
