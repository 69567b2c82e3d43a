"""REST submissions: list, get, XML, create, edit, review, delete/restore, attachments."""

from __future__ import annotations

import sqlite3
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .. import catalog, ingest, problems, submission_json
from ..responses import XML_TYPE, binary_response, body_response, event_etag, json_response, success
from ..state import int_param, is_extended, is_true, json_body, require_user, sandbox
from ..store import Store, now

REVIEW_STATES = ("hasIssues", "edited", "approved", "rejected")


def form_of(request: Request) -> sqlite3.Row:
    require_user(request)
    return catalog.get_form(
        sandbox(request).store, int_param(request, "project_id"), request.path_params["xml_form_id"]
    )


def live_submission(request: Request, form: sqlite3.Row) -> sqlite3.Row:
    return submission_json.get_live(sandbox(request).store, form["id"], request.path_params["instance_id"])


async def list_submissions(request: Request) -> Response:
    store = sandbox(request).store
    form = form_of(request)
    deleted = is_true(request.query_params.get("deleted"))
    sql = (
        submission_json.SELECT_WITH_CURRENT
        + "WHERE s.form_id = ? AND s.deleted_at IS "
        + ("NOT NULL" if deleted else "NULL")
        + " ORDER BY s.created_at DESC, s.id DESC"
    )
    args: list[object] = [form["id"]]
    limit, offset = request.query_params.get("limit"), request.query_params.get("offset")
    if limit is not None or offset is not None:
        sql += " LIMIT ? OFFSET ?"
        args += [_non_negative(limit, "limit", -1), _non_negative(offset, "offset", 0)]
    rows = store.all(sql, *args)
    body = [submission_json.submission_json(store, row, is_extended(request)) for row in rows]
    etag = event_etag(
        "submissions", form["id"], form["data_version"], request.url.query, is_extended(request)
    )
    return json_response(body, request.method, etag=etag)


def _non_negative(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit():
        raise problems.unexpected_value(name, value, "not a non-negative integer")
    return int(value)


async def create_submission(request: Request) -> Response:
    actor = require_user(request)
    box = sandbox(request)
    form = form_of(request)
    row = ingest.create_rest(
        box,
        actor,
        form,
        await request.body(),
        request.query_params.get("deviceID"),
        request.headers.get("user-agent"),
    )
    created = submission_json.get_live(box.store, form["id"], row["instance_id"])
    return json_response(submission_json.created_json(created), request.method)


async def get_submission(request: Request) -> Response:
    store = sandbox(request).store
    form = form_of(request)
    instance_id = request.path_params["instance_id"]
    try:
        row = live_submission(request, form)
    except problems.Problem:
        return _redirect_to_version(request, form, instance_id)
    return json_response(submission_json.submission_json(store, row, is_extended(request)), request.method)


def _redirect_to_version(request: Request, form: sqlite3.Row, instance_id: str) -> Response:
    """A version's instanceID is not a submission id; Central points at the version instead."""
    owner = sandbox(request).store.one(
        "SELECT s.instance_id FROM submission_defs d JOIN submissions s ON s.id = d.submission_id "
        "WHERE s.form_id = ? AND d.instance_id = ? AND s.deleted_at IS NULL",
        form["id"],
        instance_id,
    )
    if owner is None:
        raise problems.not_found()
    location = (
        f"/v1/projects/{form['project_id']}/forms/{form['xml_form_id']}/submissions/"
        f"{quote(owner['instance_id'], safe='')}/versions/{instance_id}"
    )
    return PlainTextResponse(
        f"Moved Permanently. Redirecting to {location}",
        status_code=301,
        headers={
            "Location": location,
            "Cache-Control": "private, no-cache",
            "Vary": "Accept-Encoding, Origin, Accept",
        },
    )


async def submission_xml(request: Request) -> Response:
    form = form_of(request)
    row = live_submission(request, form)
    xml = ingest.current_def(sandbox(request).store, row["id"])["xml"]
    return body_response(xml.encode(), XML_TYPE, request.method)


async def edit_submission(request: Request) -> Response:
    actor = require_user(request)
    box = sandbox(request)
    form = form_of(request)
    row = live_submission(request, form)
    ingest.edit(box, actor, form, row, await request.body(), request.headers.get("user-agent"))
    return json_response(
        submission_json.submission_json(box.store, live_submission(request, form), False), request.method
    )


async def review_submission(request: Request) -> Response:
    actor = require_user(request)
    store = sandbox(request).store
    form = form_of(request)
    row = live_submission(request, form)
    state = (await json_body(request)).get("reviewState")
    if state not in REVIEW_STATES:
        raise problems.unexpected_value("state", state, "not a recognized state name")
    with store.transaction():
        store.execute(
            "UPDATE submissions SET review_state = ?, updated_at = ? WHERE id = ?", state, now(), row["id"]
        )
        ingest.audit(
            store,
            actor.id,
            "submission.update",
            form["actee_id"],
            {"reviewState": state, "submissionId": row["id"], "submissionDefId": row["def_id"]},
        )
        ingest.touch(store, form["id"])
    return json_response(submission_json.reviewed_json(live_submission(request, form)), request.method)


async def delete_submission(request: Request) -> Response:
    actor = require_user(request)
    store = sandbox(request).store
    form = form_of(request)
    _set_deleted_at(store, actor.id, form, live_submission(request, form), now(), "submission.delete")
    return success(request.method)


async def restore_submission(request: Request) -> Response:
    actor = require_user(request)
    store = sandbox(request).store
    form = form_of(request)
    row = store.one(
        "SELECT * FROM submissions WHERE form_id = ? AND instance_id = ? AND deleted_at IS NOT NULL",
        form["id"],
        request.path_params["instance_id"],
    )
    if row is None:
        raise problems.not_found()
    _set_deleted_at(store, actor.id, form, row, None, "submission.restore")
    return success(request.method)


def _set_deleted_at(store: Store, actor_id: int, form: sqlite3.Row, row: sqlite3.Row, deleted_at: str | None,
                    action: str) -> None:
    """Soft-delete or restore a submission, audited as Central audits it."""
    with store.transaction():
        store.execute("UPDATE submissions SET deleted_at = ? WHERE id = ?", deleted_at, row["id"])
        ingest.audit(store, actor_id, action, form["actee_id"],
                     {"instanceId": row["instance_id"], "submissionId": row["id"]})
        ingest.touch(store, form["id"])


def attachments_of(request: Request, def_id: int) -> Response:
    rows = sandbox(request).store.all(
        "SELECT name, blob_id FROM submission_attachments WHERE submission_def_id = ? ORDER BY name", def_id
    )
    return json_response(
        [{"name": r["name"], "exists": r["blob_id"] is not None} for r in rows], request.method
    )


def attachment_file(request: Request, def_id: int) -> Response:
    box = sandbox(request)
    name = request.path_params["name"]
    row = box.store.one(
        "SELECT blob_id FROM submission_attachments WHERE submission_def_id = ? AND name = ?", def_id, name
    )
    if row is None or row["blob_id"] is None:
        raise problems.not_found()
    data, md5, content_type = box.blobs.read(row["blob_id"])
    return binary_response(data, content_type, name, md5, "inline")


async def list_attachments(request: Request) -> Response:
    return attachments_of(request, live_submission(request, form_of(request))["def_id"])


async def get_attachment(request: Request) -> Response:
    return attachment_file(request, live_submission(request, form_of(request))["def_id"])


async def upload_attachment(request: Request) -> Response:
    """Attach a file the current version references (pyodk's attachment upload)."""
    box = sandbox(request)
    form = form_of(request)
    row = live_submission(request, form)
    name = request.path_params["name"]
    if (
        box.store.one(
            "SELECT 1 FROM submission_attachments WHERE submission_def_id = ? AND name = ?",
            row["def_id"],
            name,
        )
        is None
    ):
        raise problems.not_found()
    upload = ingest.Upload(name, await request.body(), request.headers.get("content-type"))
    with box.store.transaction():
        ingest.attach_files(box, row["def_id"], [upload])
        ingest.touch(box.store, form["id"])
    return success(request.method)


_SUBMISSIONS = "/v1/projects/{project_id}/forms/{xml_form_id}/submissions"
_ONE = _SUBMISSIONS + "/{instance_id}"
routes = [
    Route(_SUBMISSIONS, list_submissions, methods=["GET"]),
    Route(_SUBMISSIONS, create_submission, methods=["POST"]),
    Route(f"{_ONE}.xml", submission_xml, methods=["GET"]),
    Route(_ONE, get_submission, methods=["GET"]),
    Route(_ONE, edit_submission, methods=["PUT"]),
    Route(_ONE, review_submission, methods=["PATCH"]),
    Route(_ONE, delete_submission, methods=["DELETE"]),
    Route(f"{_ONE}/restore", restore_submission, methods=["POST"]),
    Route(f"{_ONE}/attachments", list_attachments, methods=["GET"]),
    # `name:path`: a client-chosen file name may contain an (encoded) slash; it only ever names a
    # database row, never a file on disk
    Route(f"{_ONE}/attachments/{{name:path}}", get_attachment, methods=["GET"]),
    Route(f"{_ONE}/attachments/{{name:path}}", upload_attachment, methods=["POST"]),
]
