"""Actors and projects: web users, app users and the projects they work in.

Central numbers users, app users and its internal actors in one `actors` sequence and
gives every actor and project an `acteeId` (a uuid) that audits point at.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from . import auth, problems
from .store import Store, now


def actor_json(row: sqlite3.Row) -> dict[str, Any]:
    """The `{id, type, displayName, createdAt, updatedAt, deletedAt}` Central nests everywhere."""
    return {
        "id": row["id"],
        "type": row["type"],
        "displayName": row["display_name"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "deletedAt": row["deleted_at"],
    }


def get_actor(store: Store, actor_id: int) -> sqlite3.Row | None:
    return store.one("SELECT * FROM actors WHERE id = ?", actor_id)


def create_actor(store: Store, kind: str, display_name: str) -> int:
    return store.insert(
        "INSERT INTO actors (type, display_name, actee_id, created_at) VALUES (?, ?, ?, ?)",
        kind,
        display_name,
        str(uuid.uuid4()),
        now(),
    )


def ensure_admin(store: Store, email: str, password: str) -> int:
    """Create the administrator on first start; later starts keep the stored password."""
    row = store.one("SELECT actor_id FROM users WHERE lower(email) = lower(?)", email)
    if row is not None:
        return int(row["actor_id"])
    with store.transaction():
        actor_id = create_actor(store, "user", email)
        store.insert(
            "INSERT INTO users (actor_id, email, password_hash) VALUES (?, ?, ?)",
            actor_id,
            email,
            auth.hash_password(password),
        )
    return actor_id


def user_json(store: Store, actor_id: int) -> dict[str, Any]:
    row = store.one(
        "SELECT a.*, u.email, u.last_login_at FROM actors a JOIN users u ON u.actor_id = a.id WHERE a.id = ?",
        actor_id,
    )
    if row is None:
        raise problems.not_found()
    return {"email": row["email"], "lastLoginAt": row["last_login_at"], **actor_json(row)}


# Projects ---------------------------------------------------------------------------------


def get_project(store: Store, project_id: int) -> sqlite3.Row:
    row = store.one("SELECT * FROM projects WHERE id = ? AND deleted_at IS NULL", project_id)
    if row is None:
        raise problems.not_found()
    return row


def project_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "archived": bool(row["archived"]) if row["archived"] is not None else None,
        "keyId": None,
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "deletedAt": row["deleted_at"],
    }


def project_created_json(row: sqlite3.Row) -> dict[str, Any]:
    """The creation response has a different key order and the acteeId."""
    full = project_json(row)
    return {
        "id": row["id"],
        "name": row["name"],
        "acteeId": row["actee_id"],
        "createdAt": row["created_at"],
        "updatedAt": None,
        "deletedAt": None,
        "archived": full["archived"],
        "keyId": None,
        "description": row["description"],
    }


def project_counts(store: Store, project_id: int) -> dict[str, Any]:
    forms = store.scalar("SELECT count(*) FROM forms WHERE project_id = ? AND deleted_at IS NULL", project_id)
    app_users = store.scalar(
        "SELECT count(*) FROM field_keys f JOIN actors a ON a.id = f.actor_id "
        "WHERE f.project_id = ? AND a.deleted_at IS NULL",
        project_id,
    )
    last = store.scalar(
        "SELECT max(s.created_at) FROM submissions s JOIN forms f ON f.id = s.form_id "
        "WHERE f.project_id = ? AND s.deleted_at IS NULL",
        project_id,
    )
    return {"forms": forms, "appUsers": app_users, "datasets": 0, "lastSubmission": last, "lastEntity": None}


def create_project(store: Store, name: str, description: str | None) -> sqlite3.Row:
    with store.transaction():
        project_id = store.insert(
            "INSERT INTO projects (name, description, actee_id, created_at) VALUES (?, ?, ?, ?)",
            name,
            description,
            str(uuid.uuid4()),
            now(),
        )
    return get_project(store, project_id)


def delete_project(store: Store, project_id: int) -> None:
    get_project(store, project_id)
    with store.transaction():
        store.execute("UPDATE projects SET deleted_at = ? WHERE id = ?", now(), project_id)


# App users ("field keys") ------------------------------------------------------------------


def create_app_user(store: Store, project_id: int, display_name: str, created_by: int) -> dict[str, Any]:
    get_project(store, project_id)
    token = auth.new_token()
    with store.transaction():
        actor_id = create_actor(store, "field_key", display_name)
        store.insert(
            "INSERT INTO field_keys (actor_id, project_id, created_by, token) VALUES (?, ?, ?, ?)",
            actor_id,
            project_id,
            created_by,
            token,
        )
    actor = get_actor(store, actor_id)
    assert actor is not None
    return {
        "projectId": project_id,
        **actor_json(actor),
        "token": token,
        "csrf": auth.new_token(),
        "expiresAt": "9999-12-31T23:59:59.000Z",
    }


def list_app_users(store: Store, project_id: int, extended: bool) -> list[dict[str, Any]]:
    get_project(store, project_id)
    rows = store.all(
        "SELECT a.*, f.token, f.created_by, f.last_used FROM field_keys f "
        "JOIN actors a ON a.id = f.actor_id WHERE f.project_id = ? AND a.deleted_at IS NULL "
        "ORDER BY a.created_at DESC, a.id DESC",
        project_id,
    )
    result = []
    for row in rows:
        item = {"projectId": project_id, **actor_json(row), "token": row["token"]}
        if extended:
            creator = get_actor(store, row["created_by"])
            item["createdBy"] = actor_json(creator) if creator is not None else None
            item["lastUsed"] = row["last_used"]
            item["properties"] = None
        result.append(item)
    return result
