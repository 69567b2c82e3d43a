"""Taking submissions in: OpenRosa posts, REST creates and edits (new versions).

The rules are Central's: the logical key of a submission is the instanceID it was first
sent with; resending identical XML is accepted again (that is how Collect completes a
partial upload of attachments); the same instanceID with different XML is a conflict; a
deleted submission cannot be resent; an edit names the current version in `deprecatedID`.
Every accepted version gets its OData rows computed here, against the form's current
field list, so reads never parse XML.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from . import catalog, problems, worker
from .auth import Actor
from .odata import to_json
from .state import Sandbox
from .store import Store, now
from .xform import ParsedSubmission, odata_entities, parse_submission, split_row_json, system_metadata

# `__system` is spliced in at read time from the submission's columns; rows are stored without it.
NO_SYSTEM = system_metadata(
    submission_date="",
    updated_at=None,
    submitter_id=None,
    submitter_name=None,
    attachments_present=0,
    attachments_expected=0,
    review_state=None,
    device_id=None,
    edits=0,
    form_version="",
    deleted_at=None,
)


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart submission."""

    name: str
    data: bytes
    content_type: str | None


def audit(
    store: Store, actor_id: int | None, action: str, actee_id: str | None, details: dict[str, Any]
) -> None:
    store.insert(
        "INSERT INTO audits (actor_id, action, actee_id, details_json, logged_at) VALUES (?, ?, ?, ?, ?)",
        actor_id,
        action,
        actee_id,
        json.dumps(details),
        now(),
    )


def touch(store: Store, form_id: int) -> None:
    """Mark the form's submission set as changed (new event-hash ETags)."""
    store.execute("UPDATE forms SET data_version = data_version + 1 WHERE id = ?", form_id)


def parse(xml_bytes: bytes) -> ParsedSubmission:
    """The submission's identity; Central's 400s for what cannot be a submission."""
    parsed = parse_submission(xml_bytes)
    if not parsed.instance_id:
        raise problems.missing_parameter("instanceID")
    return parsed


def version_def(store: Store, form: sqlite3.Row, version: str | None) -> sqlite3.Row:
    """The published definition a submission was made with (old versions keep accepting data)."""
    if form["current_def_id"] is None:
        raise problems.not_found()
    found = catalog.def_by_version(store, form, version or "")
    if found is None:
        raise problems.form_version_not_found(version or "")
    return found


def find_submission(store: Store, form_id: int, instance_id: str) -> sqlite3.Row | None:
    return store.one("SELECT * FROM submissions WHERE form_id = ? AND instance_id = ?", form_id, instance_id)


def current_def(store: Store, submission_id: int) -> sqlite3.Row:
    row = store.one("SELECT * FROM submission_defs WHERE submission_id = ? AND current = 1", submission_id)
    assert row is not None
    return row


# Storing a version -----------------------------------------------------------------------------


def _store_rows(
    store: Store,
    form: sqlite3.Row,
    submission_id: int,
    def_id: int,
    instance_id: str,
    parsed: ParsedSubmission,
) -> None:
    """Precompute the version's OData rows under the form's current published definition."""
    schema = catalog.published_def(store, form)
    entities = odata_entities(catalog.definition(schema), parsed, NO_SYSTEM, instance_id)
    head, tail = split_row_json(entities.root)
    expanded_head, expanded_tail = split_row_json(entities.expanded)
    store.execute(
        "UPDATE submission_defs SET row_head = ?, row_tail = ?, expanded_head = ?, expanded_tail = ?, "
        "odata_def_id = ? WHERE id = ?",
        head,
        tail,
        expanded_head,
        expanded_tail,
        schema["id"],
        def_id,
    )
    store.execute("DELETE FROM repeat_rows WHERE submission_id = ?", submission_id)
    rows = []
    for table, table_rows in entities.tables.items():
        for position, row in enumerate(table_rows):
            parent = next(v for k, v in row.items() if k.startswith("__") and k.endswith("-id"))
            rows.append(
                (
                    submission_id,
                    table,
                    position,
                    row["__id"],
                    None if parent == instance_id else parent,
                    to_json(row),
                )
            )
    store.conn.executemany(
        "INSERT INTO repeat_rows (submission_id, table_name, position, row_id, parent_row_id, "
        "row_json) VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


def _insert_version(
    box: Sandbox,
    form: sqlite3.Row,
    def_row: sqlite3.Row,
    submission_id: int,
    parsed: ParsedSubmission,
    actor: Actor,
    device_id: str | None,
    user_agent: str | None,
    logical_id: str,
    files: list[Upload],
    carried: dict[str, int | None],
) -> int:
    store = box.store
    stamp = now()
    store.execute("UPDATE submission_defs SET current = 0 WHERE submission_id = ?", submission_id)
    def_id = store.insert(
        "INSERT INTO submission_defs (submission_id, form_def_id, instance_id, instance_name, xml, "
        "submitter_id, device_id, user_agent, current, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
        submission_id,
        def_row["id"],
        parsed.instance_id,
        parsed.instance_name,
        parsed.xml,
        actor.id,
        device_id,
        user_agent,
        stamp,
    )
    for name in parsed.attachment_names(catalog.definition(def_row)):
        store.insert(
            "INSERT INTO submission_attachments (submission_def_id, name, blob_id) VALUES (?, ?, ?)",
            def_id,
            name,
            carried.get(name),
        )
    attach_files(box, def_id, files)
    _store_rows(store, form, submission_id, def_id, logical_id, parsed)
    worker.note_values(store, form["id"], def_id, catalog.definition(def_row), parsed.root)
    return def_id


def attach_files(box: Sandbox, def_id: int, files: list[Upload]) -> None:
    """Store the posted files the version expects; others are ignored, as on Central."""
    store = box.store
    for upload in files:
        if (
            store.one(
                "SELECT 1 FROM submission_attachments WHERE submission_def_id = ? AND name = ?",
                def_id,
                upload.name,
            )
            is not None
        ):
            blob_id = box.blobs.put(upload.data, upload.content_type)
            store.execute(
                "UPDATE submission_attachments SET blob_id = ? WHERE submission_def_id = ? AND name = ?",
                blob_id,
                def_id,
                upload.name,
            )
    store.execute(
        "UPDATE submission_defs SET "
        "attachments_expected = (SELECT count(*) FROM submission_attachments WHERE submission_def_id = ?), "
        "attachments_present = (SELECT count(blob_id) FROM submission_attachments "
        "WHERE submission_def_id = ?) WHERE id = ?",
        def_id,
        def_id,
        def_id,
    )


# Entry points ----------------------------------------------------------------------------------


def create(
    box: Sandbox,
    form: sqlite3.Row,
    parsed: ParsedSubmission,
    actor: Actor,
    device_id: str | None,
    user_agent: str | None,
    files: list[Upload],
) -> sqlite3.Row:
    """A brand-new submission."""
    store = box.store
    def_row = version_def(store, form, parsed.version)
    instance_id = parsed.instance_id or ""
    with store.transaction():
        submission_id = store.insert(
            "INSERT INTO submissions (form_id, instance_id, submitter_id, device_id, user_agent, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            form["id"],
            instance_id,
            actor.id,
            device_id,
            user_agent,
            now(),
        )
        def_id = _insert_version(
            box, form, def_row, submission_id, parsed, actor, device_id, user_agent, instance_id, files, {}
        )
        audit(
            store,
            actor.id,
            "submission.create",
            form["actee_id"],
            {"instanceId": instance_id, "submissionId": submission_id, "submissionDefId": def_id},
        )
        touch(store, form["id"])
    found = store.one("SELECT * FROM submissions WHERE id = ?", submission_id)
    assert found is not None
    return found


def receive_openrosa(
    box: Sandbox,
    actor: Actor,
    project_id: int,
    xml_bytes: bytes,
    files: list[Upload],
    device_id: str | None,
    user_agent: str | None,
) -> None:
    """`POST /submission`: create, complete attachments of an identical resend, or edit."""
    store = box.store
    parsed = parse(xml_bytes)
    form = catalog.get_form(store, project_id, parsed.form_id)
    if not catalog.can_see(store, actor, form):
        raise problems.authentication_failed()
    if form["state"] == "closed":
        raise problems.not_accepting_submissions()
    existing = find_submission(store, form["id"], parsed.instance_id or "")
    if existing is not None:
        if existing["deleted_at"] is not None:
            raise problems.deleted_submission()
        extant = current_def(store, existing["id"])
        if extant["xml"] != parsed.xml:
            raise problems.xml_conflict()
        with store.transaction():
            attach_files(box, extant["id"], files)
            touch(store, form["id"])
        return
    if parsed.deprecated_id:
        target = store.one(
            "SELECT s.* FROM submissions s JOIN submission_defs d ON d.submission_id = s.id "
            "WHERE s.form_id = ? AND d.instance_id = ?",
            form["id"],
            parsed.deprecated_id,
        )
        if target is None:
            raise problems.deprecated_id_not_found(parsed.deprecated_id)
        edit(box, actor, form, target, xml_bytes, user_agent, device_id, files)
        return
    create(box, form, parsed, actor, device_id, user_agent, files)


def create_rest(
    box: Sandbox,
    actor: Actor,
    form: sqlite3.Row,
    xml_bytes: bytes,
    device_id: str | None,
    user_agent: str | None,
) -> sqlite3.Row:
    """`POST /forms/{id}/submissions` with the XML as the body."""
    parsed = parse(xml_bytes)
    if parsed.form_id != form["xml_form_id"]:
        raise problems.unexpected_value("form id", parsed.form_id, "did not match the form ID in the URL")
    if find_submission(box.store, form["id"], parsed.instance_id or "") is not None:
        raise problems.uniqueness_violation(
            ["xmlFormId", "instanceId"], [form["xml_form_id"], parsed.instance_id or ""], "submissions"
        )
    return create(box, form, parsed, actor, device_id, user_agent, [])


def edit(
    box: Sandbox,
    actor: Actor,
    form: sqlite3.Row,
    submission: sqlite3.Row,
    xml_bytes: bytes,
    user_agent: str | None,
    device_id: str | None = None,
    files: list[Upload] | None = None,
) -> None:
    """A new version of `submission`; its deprecatedID must name the current version."""
    store = box.store
    parsed = parse(xml_bytes)
    if parsed.form_id != form["xml_form_id"]:
        raise problems.unexpected_value("form id", parsed.form_id, "did not match the form ID in the URL")
    if not parsed.deprecated_id:
        raise problems.expected_deprecation()
    current = current_def(store, submission["id"])
    if current["instance_id"] != parsed.deprecated_id:
        known = store.one(
            "SELECT 1 FROM submission_defs WHERE submission_id = ? AND instance_id = ?",
            submission["id"],
            parsed.deprecated_id,
        )
        if known is None:
            raise problems.deprecated_id_not_found(parsed.deprecated_id)
        raise problems.stale_deprecation(parsed.deprecated_id)
    if (
        store.one(
            "SELECT 1 FROM submission_defs d JOIN submissions s ON s.id = d.submission_id "
            "WHERE s.form_id = ? AND d.instance_id = ?",
            form["id"],
            parsed.instance_id,
        )
        is not None
    ):
        raise problems.instance_id_conflict()
    def_row = version_def(store, form, parsed.version)
    carried = {
        r["name"]: r["blob_id"]
        for r in store.all(
            "SELECT name, blob_id FROM submission_attachments WHERE submission_def_id = ?", current["id"]
        )
    }
    with store.transaction():
        def_id = _insert_version(
            box,
            form,
            def_row,
            submission["id"],
            parsed,
            actor,
            device_id,
            user_agent,
            submission["instance_id"],
            files or [],
            carried,
        )
        store.execute(
            "UPDATE submissions SET review_state = 'edited', updated_at = ?, edits = edits + 1 WHERE id = ?",
            now(),
            submission["id"],
        )
        audit(
            store,
            actor.id,
            "submission.update.version",
            form["actee_id"],
            {"instanceId": parsed.instance_id, "submissionId": submission["id"], "submissionDefId": def_id},
        )
        touch(store, form["id"])


def reproject_form(box: Sandbox, form_id: int) -> None:
    """Recompute every current version's OData rows after a new form version is published."""
    store = box.store
    form = store.one("SELECT * FROM forms WHERE id = ?", form_id)
    assert form is not None
    with store.transaction():
        for row in store.all(
            "SELECT d.id, d.xml, d.submission_id, s.instance_id FROM submission_defs d "
            "JOIN submissions s ON s.id = d.submission_id WHERE s.form_id = ? AND d.current = 1",
            form_id,
        ):
            _store_rows(
                store, form, row["submission_id"], row["id"], row["instance_id"], parse_submission(row["xml"])
            )
        touch(store, form_id)
