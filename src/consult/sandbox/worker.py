"""The sandbox's background worker, after Central's `lib/worker`: jobs that run after the request.

Central answers a submission at once and leaves some work to a worker that polls the audit log
(every 3 s while busy, backing off to 25 s when idle). What a client sees of it here: the values
of select_multiple questions, which `splitSelectMultiples` exports turn into columns, are only
known once the worker has processed the submission (`submission.create`,
`submission.update.version`); until then an export has no split columns (26-23, 26-37), and the
ETag does not change when they appear (26-38, 26-39). Ingest notes the values (`note_values`,
not yet counted); the worker's job makes them count.

The server runs `run_pending` every `interval` seconds; `POST /sandbox/worker/exhaust` runs it
now (as Central's own tests call `exhaust`), which a test uses where it needs the worker to have
run, rather than waiting.
"""

from __future__ import annotations

import json
import re

from . import catalog, entities
from .store import Store, now
from .xform import XFormDefinition, XmlElement, parse_submission

DEFAULT_INTERVAL = 3.0
"""Seconds between two runs of the worker loop: Central's worker polls every 3 s when busy."""
BATCH = 100
"""Events per turn of the loop, so that a bulk load's backlog never holds requests up for long."""
SPLIT_JOBS = ("submission.create", "submission.update.version")
JOBS = (*SPLIT_JOBS, "submission.update")
"""Events the worker handles: the split values of a version, and entities (entities.py) from a new
submission or from the review that approves it."""
_WHITESPACE = re.compile(r"\s+")


def select_multiple_values(defn: XFormDefinition, root: XmlElement) -> dict[str, set[str]]:
    """Central's `getSelectMultipleResponses`: the values chosen in each select_multiple, by path."""
    found: dict[str, set[str]] = {}

    def walk(element: XmlElement, path: str) -> None:
        for child in element.elements():
            child_path = f"{path}/{child.local}"
            f = defn.field(child_path)
            if f is None:
                continue
            if f.is_structural:
                walk(child, child_path)
            elif f.select_multiple:
                text = "".join(c for c in child.children if isinstance(c, str))
                found.setdefault(f.path, set()).update(v for v in _WHITESPACE.split(text) if v)

    walk(root, "")
    return found


def note_values(
    store: Store,
    form_id: int,
    submission_def_id: int,
    defn: XFormDefinition,
    root: XmlElement,
    ready: int = 0,
) -> None:
    """Keep a version's select_multiple values, not yet visible to exports (`ready` 0).

    Ingest calls this while it has the parsed XML at hand, so the worker's job is only to make
    them visible: parsing each XML again would cost the server ~1.5 ms a submission."""
    if not defn.has_select_multiple:
        return
    for path, values in select_multiple_values(defn, root).items():
        for value in sorted(values):
            store.execute(
                "INSERT OR IGNORE INTO form_field_values (form_id, submission_def_id, path, value, ready) "
                "VALUES (?, ?, ?, ?, ?)",
                form_id,
                submission_def_id,
                path,
                value,
                ready,
            )


def _process_submission(store: Store, form_id: int, submission_def_id: int) -> None:
    """The job of `submission.create`/`submission.update.version`: the version's values count now."""
    if store.execute("UPDATE form_field_values SET ready = 1 WHERE submission_def_id = ?", submission_def_id):
        return
    # Nothing noted at ingest: no value was chosen, or the data folder predates the noting.
    row = store.one("SELECT xml, form_def_id FROM submission_defs WHERE id = ?", submission_def_id)
    form_def = row and store.one("SELECT * FROM form_defs WHERE id = ?", row["form_def_id"])
    if row is not None and form_def is not None and catalog.definition(form_def).has_select_multiple:
        root = parse_submission(row["xml"]).root
        note_values(store, form_id, submission_def_id, catalog.definition(form_def), root, ready=1)


PENDING_EVENTS = (
    "SELECT a.id, a.action, a.actor_id, a.details_json, f.id AS form_id "
    "FROM audits a JOIN forms f ON f.actee_id = a.actee_id "
    f"WHERE a.processed_at IS NULL AND a.action IN ({', '.join('?' * len(JOBS))}) ORDER BY a.id LIMIT ?"
)
"""The oldest events awaiting the worker, through the partial index `audits_unprocessed`: a turn
costs its batch, not a scan of every audit (one per submission: 0.15 s a turn at 866k, which let
the worker's back-to-back turns starve a bulk load of the write lock)."""


def run_pending(store: Store, limit: int | None = None) -> int:
    """Run the jobs of the events not processed yet (the `limit` oldest, or all); return how many."""
    done = 0
    with store.transaction():
        events = store.all(PENDING_EVENTS, *JOBS, -1 if limit is None else limit)
        for event in events:
            details = json.loads(event["details_json"] or "{}")
            if "submissionDefId" in details and event["action"] in SPLIT_JOBS:
                _process_submission(store, event["form_id"], int(details["submissionDefId"]))
            entities.process_event(store, event["action"], details, event["actor_id"], event["id"])
            store.execute("UPDATE audits SET processed_at = ? WHERE id = ?", now(), event["id"])
            done += 1
    return done
