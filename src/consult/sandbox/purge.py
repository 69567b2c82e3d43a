"""Purging, as Central does it: only what was soft-deleted first goes, for good.

Central has no API call for it: its `purge` task (`node lib/bin/purge.js`, run daily by cron)
removes submissions that have been in the trash for 30 days, or every trashed one with
`--force`, optionally one project, form or instanceId. A live submission is never purged.
The sandbox offers the same as `POST /sandbox/purge` (a web user's session, like any admin
call) with the query `force`, `projectId`, `xmlFormId`, `instanceId`; it answers
`{"submissions": <how many were purged>}` and audits `submission.purge` as Central does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from . import ingest
from .responses import json_response
from .state import is_true, require_user, sandbox
from .store import iso

TRASH_DAYS = 30


async def purge_submissions(request: Request) -> Response:
    actor = require_user(request)
    store = sandbox(request).store
    query = request.query_params
    clauses, args = ["s.deleted_at IS NOT NULL"], []
    if not is_true(query.get("force")):
        clauses.append("s.deleted_at < ?")
        args.append(iso(datetime.now(UTC) - timedelta(days=TRASH_DAYS)))
    for name, column in (("projectId", "f.project_id"), ("xmlFormId", "f.xml_form_id"),
                         ("instanceId", "s.instance_id")):
        if query.get(name):
            clauses.append(f"{column} = ?")
            args.append(query[name])
    with store.transaction():
        rows = store.all("SELECT s.id, s.form_id FROM submissions s JOIN forms f ON f.id = s.form_id "
                         f"WHERE {' AND '.join(clauses)}", *args)
        for row in rows:
            defs = "SELECT id FROM submission_defs WHERE submission_id = ?"
            for table in ("submission_attachments", "form_field_values"):
                store.execute(f"DELETE FROM {table} WHERE submission_def_id IN ({defs})", row["id"])
            for table in ("repeat_rows", "submission_defs", "comments"):
                store.execute(f"DELETE FROM {table} WHERE submission_id = ?", row["id"])
            store.execute("DELETE FROM submissions WHERE id = ?", row["id"])
        for form_id in {row["form_id"] for row in rows}:
            ingest.touch(store, form_id)
        ingest.audit(store, actor.id, "submission.purge", None, {"submissionsDeleted": len(rows)})
    return json_response({"submissions": len(rows)}, request.method)
