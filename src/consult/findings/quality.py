"""Data quality: what came in, what passed, what was held back and why, and what the field
supervisor was told in Central (review state `hasIssues`). Findings count only what passed."""

from __future__ import annotations

import re

import pandas as pd
from sqlalchemy import select

from consult.warehouse.tables import QUARANTINED, VALID, submissions, validation_failures

from .frames import FORMS, frame
from .model import Chart, ChartKind, Kind, Section, Table
from .source import Source
from .words import Words

HAS_ISSUES = "hasIssues"
INSTANCE_ID = re.compile(r"uuid:([0-9a-f]{8})[0-9a-f-]{28}", re.IGNORECASE)


def short_ids(text: str) -> str:
    """`uuid:3f2a…` instead of 41 characters no reader needs whole (Central shows the same prefix)."""
    return INSTANCE_ID.sub(lambda m: f"{m.group(1)}…", text)


def quality(src: Source, w: Words) -> Section:
    return Section("quality", w("section.quality"), (by_form(src, w), by_rule(src, w)))


def by_form(src: Source, w: Words) -> Table:
    s = submissions.c
    rows = []
    for form_id in FORMS:
        stored = pd.read_sql(select(s.validation_status, s.review_state, s.deleted_at, s.purged_at)
                             .where(s.form_id == form_id), src.conn)
        current = stored[stored["deleted_at"].isna() & stored["purged_at"].isna()]
        rows.append({"group": w.group(form_id), "received": len(current),
                     "valid": int((current["validation_status"] == VALID).sum()),
                     "quarantined": int((current["validation_status"] == QUARANTINED).sum()),
                     "written_back": int((current["review_state"] == HAS_ISSUES).sum()),
                     "deleted": int(stored["deleted_at"].notna().sum())})
    columns = (w.column("group", Kind.TEXT), w.column("received"), w.column("valid"), w.column("quarantined"),
               w.column("written_back"), w.column("deleted"))
    chart = Chart(ChartKind.BARS, ("group",), ("valid", "quarantined"))
    return w.table("quality_by_form", columns, frame(rows, [c.key for c in columns]), chart,
                   note=w("quality_by_form.note"))


def by_rule(src: Source, w: Words) -> Table:
    """Failed checks of live submissions per form and rule, with the most frequent message as example."""
    f, s = validation_failures.c, submissions.c
    message = f.message_vi if w.lang == "vi" else f.message_en
    query = (select(f.form_id, f.rule, f.instance_id, message.label("message"))
             .join(submissions, (s.instance_id == f.instance_id) & (s.form_id == f.form_id)
                   & (s.project_id == f.project_id))
             .where(s.deleted_at.is_(None), s.purged_at.is_(None)))
    failures = pd.read_sql(query, src.conn)
    rows = []
    for form_id in FORMS:
        mine = failures[failures["form_id"] == form_id]
        for rule in sorted(mine["rule"].unique()):
            of_rule = mine[mine["rule"] == rule]
            messages = of_rule["message"].value_counts()
            example = min(messages.items(), key=lambda item: (-item[1], item[0]))[0]
            rows.append({"group": w.group(form_id), "rule": w.rule(rule), "failures": len(of_rule),
                         "submissions": int(of_rule["instance_id"].nunique()), "example": short_ids(example)})
    columns = (w.column("group", Kind.TEXT), w.column("rule", Kind.TEXT), w.column("submissions"),
               w.column("failures"), w.column("example", Kind.TEXT))
    return w.table("quarantine_by_rule", columns, frame(rows, [c.key for c in columns]))

