"""Forms and their definitions: create, draft, publish, versions, media attachments.

A form (`forms` row) has at most one published current definition and at most one draft;
every published definition stays as a version. Publishing with media missing succeeds, as
on Central: the attachment is listed with `exists:false` and left out of the manifest.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import uuid
from functools import lru_cache
from typing import Any

from . import directory, entities, problems
from .auth import Actor, new_token
from .blobs import BlobStore
from .roles import APP_USER_ROLE_ID
from .store import Store, now
from .xform import XFormDefinition, fields_json

# Form lookups --------------------------------------------------------------------------------


def get_form(store: Store, project_id: int, xml_form_id: str) -> sqlite3.Row:
    directory.get_project(store, project_id)
    row = store.one(
        "SELECT * FROM forms WHERE project_id = ? AND xml_form_id = ? AND deleted_at IS NULL",
        project_id,
        xml_form_id,
    )
    if row is None:
        raise problems.not_found()
    return row


def get_def(store: Store, def_id: int | None) -> sqlite3.Row:
    row = store.one("SELECT * FROM form_defs WHERE id = ?", def_id) if def_id is not None else None
    if row is None:
        raise problems.not_found()
    return row


def shown_def(store: Store, form: sqlite3.Row) -> sqlite3.Row:
    """The definition a form's metadata shows: the published one, else the draft."""
    return get_def(store, form["current_def_id"] or form["draft_def_id"])


def published_def(store: Store, form: sqlite3.Row) -> sqlite3.Row:
    return get_def(store, form["current_def_id"])


def draft_def(store: Store, form: sqlite3.Row) -> sqlite3.Row:
    return get_def(store, form["draft_def_id"])


def def_by_version(store: Store, form: sqlite3.Row, version: str) -> sqlite3.Row | None:
    """The published definition with this version string, if any."""
    return store.one(
        "SELECT * FROM form_defs WHERE form_id = ? AND version = ? AND published_at IS NOT NULL "
        "ORDER BY id DESC",
        form["id"],
        version,
    )


@lru_cache(maxsize=64)
def _parse(xml: str) -> XFormDefinition:
    return XFormDefinition.parse(xml.encode())


def definition(def_row: sqlite3.Row) -> XFormDefinition:
    """The parsed XForm of a stored definition (parsed once per process)."""
    return _parse(def_row["xml"])


def fields_of(def_row: sqlite3.Row, odata: bool = False) -> list[dict[str, Any]]:
    return fields_json(definition(def_row), odata)


def can_see(store: Store, actor: Actor, form: sqlite3.Row) -> bool:
    """Web users see every form; an app user only forms it is assigned with the app-user role."""
    if not actor.is_app_user:
        return True
    return (
        actor.project_id == form["project_id"]
        and store.one(
            "SELECT 1 FROM assignments WHERE actor_id = ? AND form_id = ? AND role_id = ?",
            actor.id,
            form["id"],
            APP_USER_ROLE_ID,
        )
        is not None
    )


# JSON shapes -------------------------------------------------------------------------------


def form_json(form: sqlite3.Row, def_row: sqlite3.Row) -> dict[str, Any]:
    return {
        "projectId": form["project_id"],
        "xmlFormId": form["xml_form_id"],
        "state": form["state"],
        "enketoId": None,
        "enketoOnceId": None,
        "createdAt": form["created_at"],
        "updatedAt": form["updated_at"],
        "webformsEnabled": True,
        "keyId": None,
        "version": def_row["version"],
        "hash": def_row["hash"],
        "sha": def_row["sha"],
        "sha256": def_row["sha256"],
        "draftToken": def_row["draft_token"],
        "publishedAt": def_row["published_at"],
        "name": def_row["name"],
    }


def form_extended_json(store: Store, form: sqlite3.Row, def_row: sqlite3.Row) -> dict[str, Any]:
    counts = store.one(
        "SELECT count(*) AS total, sum(review_state IS NULL) AS received, "
        "sum(review_state = 'hasIssues') AS has_issues, sum(review_state = 'edited') AS edited, "
        "max(created_at) AS last FROM submissions WHERE form_id = ? AND deleted_at IS NULL",
        form["id"],
    )
    assert counts is not None  # an aggregate always has a row
    creator = directory.get_actor(store, form["created_by"])
    return {
        **form_json(form, def_row),
        "submissions": counts["total"],
        "entityRelated": bool(entities.declarations(def_row["xml"])),
        "reviewStates": {
            "received": counts["received"] or 0,
            "hasIssues": counts["has_issues"] or 0,
            "edited": counts["edited"] or 0,
        },
        "lastSubmission": counts["last"],
        "excelContentType": None,
        "publicLinks": 0,
        "createdBy": directory.actor_json(creator) if creator is not None else None,
    }


def attachment_json(row: sqlite3.Row) -> dict[str, Any]:
    if row["dataset_id"] is not None:  # an entity list served as this CSV: no blob, no hash (23-02, 24-05)
        linked: dict[str, Any] = {"name": row["name"], "type": row["type"], "hash": None, "exists": True,
                                  "blobExists": False, "datasetExists": True}
        if row["updated_at"] is not None:
            linked["updatedAt"] = row["updated_at"]
        return linked
    item: dict[str, Any] = {
        "name": row["name"],
        "type": row["type"],
        "hash": row["md5"],
        "exists": row["blob_id"] is not None,
        "blobExists": row["blob_id"] is not None,
        "datasetExists": False,
    }
    if row["blob_id"] is not None:
        item["updatedAt"] = row["updated_at"]
        item["size"] = row["size"]
    return item


def attachments(store: Store, def_id: int) -> list[sqlite3.Row]:
    return store.all(
        "SELECT fa.*, b.md5, b.size FROM form_attachments fa LEFT JOIN blobs b ON b.id = fa.blob_id "
        "WHERE fa.form_def_id = ? ORDER BY fa.name",
        def_id,
    )


# Creating and publishing ---------------------------------------------------------------------


def _insert_def(store: Store, form_id: int, defn: XFormDefinition, draft: bool) -> int:
    def_id = store.insert(
        "INSERT INTO form_defs (form_id, xml, name, version, hash, sha, sha256, draft_token, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        form_id,
        defn.xml,
        defn.title,
        defn.central_version,
        defn.md5,
        defn.sha,
        defn.sha256,
        new_token() if draft else None,
        now(),
    )
    for media in defn.media:
        store.insert(
            "INSERT INTO form_attachments (form_def_id, name, type) VALUES (?, ?, ?)",
            def_id,
            media.name,
            media.type,
        )
    project_id = store.scalar("SELECT project_id FROM forms WHERE id = ?", form_id)
    entities.link_attachments(store, project_id, def_id)
    return def_id


def _carry_attachments(store: Store, from_def_id: int | None, to_def_id: int) -> None:
    """Files uploaded for the previous definition stay attached when the name is still declared."""
    if from_def_id is None:
        return
    store.execute(
        "UPDATE form_attachments AS fa SET blob_id = old.blob_id, updated_at = old.updated_at, dataset_id = NULL "
        "FROM form_attachments AS old WHERE old.form_def_id = ? AND old.name = fa.name "
        "AND fa.form_def_id = ? AND old.blob_id IS NOT NULL",
        from_def_id,
        to_def_id,
    )


def create_form(store: Store, project_id: int, xml_bytes: bytes, publish: bool, actor: Actor) -> sqlite3.Row:
    directory.get_project(store, project_id)
    defn = XFormDefinition.parse(xml_bytes)
    existing = store.one(
        "SELECT id FROM forms WHERE project_id = ? AND xml_form_id = ? AND deleted_at IS NULL",
        project_id,
        defn.form_id,
    )
    if existing is not None:
        raise problems.uniqueness_violation(
            ["projectId", "xmlFormId"], [str(project_id), defn.form_id], "forms"
        )
    _check_fields(store, defn)
    with store.transaction():
        form_id = store.insert(
            "INSERT INTO forms (project_id, xml_form_id, actee_id, created_by, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            project_id,
            defn.form_id,
            str(uuid.uuid4()),
            actor.id,
            now(),
        )
        def_id = _insert_def(store, form_id, defn, draft=True)
        store.execute("UPDATE forms SET draft_def_id = ? WHERE id = ?", def_id, form_id)
        form = store.one("SELECT * FROM forms WHERE id = ?", form_id)
        assert form is not None
        if publish:
            publish_draft(store, form, None, on_create=True)
    return get_form(store, project_id, defn.form_id)


def _check_fields(store: Store, defn: XFormDefinition) -> None:
    """Central's unique (schemaId, path) index rejects a form whose field walk repeats a path."""
    conflict = defn.field_conflict(store.scalar("SELECT coalesce(max(id), 0) + 1 FROM form_defs"))
    if conflict is not None:
        raise conflict


def create_draft(store: Store, form: sqlite3.Row, xml_bytes: bytes | None) -> None:
    """A new draft from the uploaded XML, or a copy of the published definition."""
    defn = XFormDefinition.parse(xml_bytes) if xml_bytes else definition(published_def(store, form))
    if defn.form_id != form["xml_form_id"]:
        raise problems.unexpected_value("xmlFormId", defn.form_id, "did not match the form ID in the URL")
    _check_fields(store, defn)
    with store.transaction():
        def_id = _insert_def(store, form["id"], defn, draft=True)
        _carry_attachments(store, form["draft_def_id"] or form["current_def_id"], def_id)
        store.execute("UPDATE forms SET draft_def_id = ? WHERE id = ?", def_id, form["id"])


def publish_draft(store: Store, form: sqlite3.Row, version: str | None, on_create: bool = False) -> bool:
    """Publish the draft, optionally renaming its version; True when it replaces a published one.

    Publishing right at upload (`?publish=true`) leaves the form's `updatedAt` null, as on Central.
    """
    draft = draft_def(store, form)
    xml = draft["xml"]
    if version is not None and version != draft["version"]:
        xml = set_form_version(xml, version)
    version = version if version is not None else draft["version"]
    if def_by_version(store, form, version) is not None:
        raise problems.version_conflict(form["xml_form_id"], version)
    data, stamp = xml.encode(), now()
    with store.transaction():
        store.execute(
            "UPDATE form_defs SET xml = ?, version = ?, hash = ?, sha = ?, sha256 = ?, "
            "published_at = ?, draft_token = NULL WHERE id = ?",
            xml,
            version,
            hashlib.md5(data).hexdigest(),
            hashlib.sha1(data).hexdigest(),
            hashlib.sha256(data).hexdigest(),
            stamp,
            draft["id"],
        )
        store.execute(
            "UPDATE forms SET current_def_id = ?, draft_def_id = NULL, updated_at = ?, "
            "data_version = data_version + 1 WHERE id = ?",
            draft["id"],
            None if on_create else stamp,
            form["id"],
        )
        published = get_def(store, draft["id"])
        entities.publish_form(store, form["project_id"], published, definition(published))
    return form["current_def_id"] is not None


def delete_draft(store: Store, form: sqlite3.Row) -> None:
    if form["draft_def_id"] is None:
        raise problems.not_found()
    if form["current_def_id"] is None:
        raise problems.no_published_version()
    with store.transaction():
        store.execute("UPDATE forms SET draft_def_id = NULL WHERE id = ?", form["id"])


def delete_form(store: Store, form: sqlite3.Row) -> None:
    with store.transaction():
        store.execute("UPDATE forms SET deleted_at = ? WHERE id = ?", now(), form["id"])


def versions(store: Store, form: sqlite3.Row) -> list[sqlite3.Row]:
    return store.all(
        "SELECT * FROM form_defs WHERE form_id = ? AND published_at IS NOT NULL "
        "ORDER BY published_at DESC, id DESC",
        form["id"],
    )


def set_form_version(xml: str, version: str) -> str:
    """Rewrite the primary instance's `version` attribute, as `publish?version=` does."""
    match = re.search(r"<instance>\s*<([\w.:-]+)([^>]*?)(/?)>", xml)
    if match is None:
        return xml
    escaped = version.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    attributes, count = re.subn(r'\sversion="[^"]*"', f' version="{escaped}"', match.group(2), count=1)
    if not count:
        attributes += f' version="{escaped}"'
    return xml[: match.start(2)] + attributes + xml[match.end(2) :]


def upload_attachment(
    store: Store, blobs: BlobStore, def_id: int, name: str, data: bytes, content_type: str | None
) -> sqlite3.Row:
    """Attach a file the definition declares; any other name is 404.1, as on Central."""
    row = store.one("SELECT * FROM form_attachments WHERE form_def_id = ? AND name = ?", def_id, name)
    if row is None:
        raise problems.not_found()
    with store.transaction():
        blob_id = blobs.put(data, content_type)
        store.execute(
            "UPDATE form_attachments SET blob_id = ?, updated_at = ?, dataset_id = NULL "
            "WHERE form_def_id = ? AND name = ?",
            blob_id,
            now(),
            def_id,
            name,
        )
    found = next(r for r in attachments(store, def_id) if r["name"] == name)
    return found
