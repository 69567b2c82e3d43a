"""Submissions as Central's REST API shows them (lists, single, versions, review results)."""

from __future__ import annotations

import sqlite3
from typing import Any

from . import directory, problems
from .store import Store

SELECT_WITH_CURRENT = (
    "SELECT s.*, d.id AS def_id, d.instance_id AS def_instance_id, d.instance_name, "
    "d.submitter_id AS def_submitter_id, d.device_id AS def_device_id, d.user_agent AS def_user_agent, "
    "d.created_at AS def_created_at "
    "FROM submissions s JOIN submission_defs d ON d.submission_id = s.id AND d.current = 1 "
)


def get_live(store: Store, form_id: int, instance_id: str) -> sqlite3.Row:
    """A submission that is not deleted, or 404.1."""
    row = store.one(
        SELECT_WITH_CURRENT + "WHERE s.form_id = ? AND s.instance_id = ? AND s.deleted_at IS NULL",
        form_id,
        instance_id,
    )
    if row is None:
        raise problems.not_found()
    return row


def version_json(row: sqlite3.Row, current: bool, submitter: dict[str, Any] | None = None,
                 prefix: str = "") -> dict[str, Any]:
    """One version (`submission_defs` row) as in `currentVersion` and `/versions`; `prefix` names the
    columns when the version is joined to its submission (`def_submitter_id`, ...)."""
    body = {
        "submitterId": row[prefix + "submitter_id"],
        "createdAt": row[prefix + "created_at"],
        "instanceName": row["instance_name"],
        "instanceId": row[prefix + "instance_id"],
        "current": current,
        "deviceId": row[prefix + "device_id"],
        "userAgent": row[prefix + "user_agent"],
    }
    if submitter is not None:
        body["submitter"] = submitter
    return body


def _current_version(row: sqlite3.Row, submitter: dict[str, Any] | None) -> dict[str, Any]:
    return version_json(row, True, submitter, prefix="def_")


_SUBMISSION_COLUMNS = {"instanceId": "instance_id", "submitterId": "submitter_id", "deviceId": "device_id",
                       "createdAt": "created_at", "updatedAt": "updated_at", "reviewState": "review_state",
                       "userAgent": "user_agent", "deletedAt": "deleted_at"}
"""Central's key → the `submissions` column, in the order Central writes them."""


def _submission_fields(row: sqlite3.Row, *keys: str) -> dict[str, Any]:
    return {key: row[_SUBMISSION_COLUMNS[key]] for key in keys}


def submission_json(store: Store, row: sqlite3.Row, extended: bool) -> dict[str, Any]:
    body = _submission_fields(row, *_SUBMISSION_COLUMNS)
    version_submitter = None
    if extended:
        body["submitter"] = _actor(store, row["submitter_id"])
        version_submitter = _actor(store, row["def_submitter_id"])
    body["currentVersion"] = _current_version(row, version_submitter)
    return body


def created_json(row: sqlite3.Row) -> dict[str, Any]:
    """The REST create response: no reviewState or deletedAt yet."""
    return {**_submission_fields(row, "instanceId", "submitterId", "deviceId", "createdAt", "updatedAt",
                                 "userAgent"),
            "currentVersion": _current_version(row, None)}


def reviewed_json(row: sqlite3.Row) -> dict[str, Any]:
    """The PATCH response: the submission without versions."""
    return _submission_fields(row, "instanceId", "submitterId", "deviceId", "createdAt", "updatedAt",
                              "reviewState", "deletedAt")


def _actor(store: Store, actor_id: int) -> dict[str, Any] | None:
    actor = directory.get_actor(store, actor_id)
    return directory.actor_json(actor) if actor is not None else None
