"""A submission's history: versions, diffs between them, comments and audit log."""

from __future__ import annotations

import json
import sqlite3
from itertools import pairwise
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import directory, problems, submission_json
from ..responses import XML_TYPE, body_response, json_response
from ..state import is_extended, json_body, require_user, sandbox
from ..store import now
from ..xform import XmlElement, parse_submission
from .submissions import attachment_file, attachments_of, form_of, live_submission


def _versions(request: Request, submission: sqlite3.Row) -> list[sqlite3.Row]:
    return sandbox(request).store.all(
        "SELECT * FROM submission_defs WHERE submission_id = ? ORDER BY id DESC", submission["id"]
    )


def _version(request: Request) -> sqlite3.Row:
    submission = live_submission(request, form_of(request))
    wanted = request.path_params["version_id"]
    found = next((v for v in _versions(request, submission) if v["instance_id"] == wanted), None)
    if found is None:
        raise problems.not_found()
    return found


def _actor(request: Request, actor_id: int) -> dict[str, Any] | None:
    actor = directory.get_actor(sandbox(request).store, actor_id)
    return directory.actor_json(actor) if actor is not None else None


async def list_versions(request: Request) -> Response:
    submission = live_submission(request, form_of(request))
    extended = is_extended(request)
    body = [
        submission_json.version_json(
            v, bool(v["current"]), _actor(request, v["submitter_id"]) if extended else None
        )
        for v in _versions(request, submission)
    ]
    return json_response(body, request.method)


async def get_version(request: Request) -> Response:
    version = _version(request)
    return json_response(submission_json.version_json(version, bool(version["current"])), request.method)


async def version_xml(request: Request) -> Response:
    return body_response(_version(request)["xml"].encode(), XML_TYPE, request.method)


async def version_attachments(request: Request) -> Response:
    return attachments_of(request, _version(request)["id"])


async def version_attachment(request: Request) -> Response:
    return attachment_file(request, _version(request)["id"])


# Diffs -----------------------------------------------------------------------------------------


def _text(element: XmlElement) -> str:
    return "".join(c for c in element.children if isinstance(c, str))


def _as_values(element: XmlElement) -> Any:
    """An element as Central's diff shows it: text for leaves, objects for groups."""
    children = list(element.elements())
    return {c.local: _as_values(c) for c in children} if children else _text(element)


def _grouped(element: XmlElement | None) -> dict[str, list[XmlElement]]:
    found: dict[str, list[XmlElement]] = {}
    for child in element.elements() if element is not None else []:
        found.setdefault(child.local, []).append(child)
    return found


def _diff(old: XmlElement | None, new: XmlElement | None, path: list[Any], out: list[dict[str, Any]]) -> None:
    """Per-field changes between two versions; repeat entries are addressed as [name, index]."""
    old_children, new_children = _grouped(old), _grouped(new)
    for name in list(old_children) + [n for n in new_children if n not in old_children]:
        olds, news = old_children.get(name, []), new_children.get(name, [])
        repeated = len(olds) > 1 or len(news) > 1
        for index in range(max(len(olds), len(news))):
            before = olds[index] if index < len(olds) else None
            after = news[index] if index < len(news) else None
            where = path + ([[name, index]] if repeated else [name])
            if before is None or after is None:
                change = {"old": _as_values(before)} if before is not None else {}
                if after is not None:
                    change["new"] = _as_values(after)
                out.append({**change, "path": where})
            elif any(True for _ in before.elements()) or any(True for _ in after.elements()):
                _diff(before, after, where, out)
            elif _text(before) != _text(after):
                out.append({"old": _text(before), "new": _text(after), "path": where})


async def diffs(request: Request) -> Response:
    submission = live_submission(request, form_of(request))
    versions = list(reversed(_versions(request, submission)))
    body: dict[str, list[dict[str, Any]]] = {}
    for previous, current in pairwise(versions):
        changes: list[dict[str, Any]] = []
        _diff(parse_submission(previous["xml"]).root, parse_submission(current["xml"]).root, [], changes)
        body[current["instance_id"]] = changes
    return json_response(body, request.method)


# Comments and audits ---------------------------------------------------------------------------


async def create_comment(request: Request) -> Response:
    actor = require_user(request)
    store = sandbox(request).store
    submission = live_submission(request, form_of(request))
    text = (await json_body(request)).get("body")
    if not isinstance(text, str) or not text:
        raise problems.missing_parameter("body")
    stamp = now()
    with store.transaction():
        store.insert(
            "INSERT INTO comments (submission_id, actor_id, body, created_at) VALUES (?, ?, ?, ?)",
            submission["id"],
            actor.id,
            text,
            stamp,
        )
    return json_response({"body": text, "actorId": actor.id, "createdAt": stamp}, request.method)


async def list_comments(request: Request) -> Response:
    submission = live_submission(request, form_of(request))
    rows = sandbox(request).store.all(
        "SELECT * FROM comments WHERE submission_id = ? ORDER BY id DESC", submission["id"]
    )
    body = []
    for row in rows:
        item: dict[str, Any] = {
            "body": row["body"],
            "actorId": row["actor_id"],
            "createdAt": row["created_at"],
        }
        if is_extended(request):
            item["actor"] = _actor(request, row["actor_id"])
        body.append(item)
    return json_response(body, request.method)


async def list_audits(request: Request) -> Response:
    form = form_of(request)
    submission = live_submission(request, form)
    rows = sandbox(request).store.all(
        "SELECT * FROM audits WHERE (actee_id = ? OR action LIKE 'entity.%') "
        "AND json_extract(details_json, '$.submissionId') = ? "
        "ORDER BY id DESC",
        form["actee_id"],
        submission["id"],
    )
    body = []
    for row in rows:
        details = json.loads(row["details_json"])
        item: dict[str, Any] = {
            "actorId": row["actor_id"],
            "action": row["action"],
            "acteeId": row["actee_id"],
            "details": details,
            "loggedAt": row["logged_at"],
            "notes": None,
        }
        if is_extended(request):
            item["details"] = {**details, "entity": {"entityAvailable": False}}
            item["actor"] = _actor(request, row["actor_id"])
        body.append(item)
    return json_response(body, request.method)


_ONE = "/v1/projects/{project_id}/forms/{xml_form_id}/submissions/{instance_id}"
routes = [
    Route(f"{_ONE}/versions", list_versions, methods=["GET"]),
    Route(f"{_ONE}/versions/{{version_id}}.xml", version_xml, methods=["GET"]),
    Route(f"{_ONE}/versions/{{version_id}}", get_version, methods=["GET"]),
    Route(f"{_ONE}/versions/{{version_id}}/attachments", version_attachments, methods=["GET"]),
    Route(f"{_ONE}/versions/{{version_id}}/attachments/{{name}}", version_attachment, methods=["GET"]),
    Route(f"{_ONE}/diffs", diffs, methods=["GET"]),
    Route(f"{_ONE}/comments", create_comment, methods=["POST"]),
    Route(f"{_ONE}/comments", list_comments, methods=["GET"]),
    Route(f"{_ONE}/audits", list_audits, methods=["GET"]),
]
