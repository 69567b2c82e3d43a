"""The running sandbox as route handlers see it, plus the request helpers they share."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request

from . import auth, problems
from .auth import Actor
from .blobs import BlobStore
from .store import Store

EXTENDED = "x-extended-metadata"


@dataclass
class Sandbox:
    """Everything a request needs: the database, the files and the public base URL."""

    store: Store
    blobs: BlobStore
    domain: str  # e.g. http://127.0.0.1:8383, used for absolute links (nextLink, downloadUrl)

    @classmethod
    def open(cls, data_dir: Path, domain: str) -> Sandbox:
        data_dir.mkdir(parents=True, exist_ok=True)
        store = Store(data_dir / "sandbox.sqlite3")
        return cls(store, BlobStore(store, data_dir / "blobs"), domain.rstrip("/"))


def sandbox(request: Request) -> Sandbox:
    box: Sandbox = request.app.state.sandbox
    return box


def app_user_key(request: Request) -> str | None:
    """The app-user token taken out of `/v1/key/<token>/...` by the key middleware."""
    return request.scope.get("sandbox.key")


def key_prefix(request: Request) -> str:
    """`/key/<token>` when the caller used an app-user URL, so links we hand out keep it."""
    key = app_user_key(request)
    return f"/key/{key}" if key is not None else ""


def current_actor(request: Request) -> Actor:
    """The authenticated caller, or 401.2."""
    cached: Actor | None = request.scope.get("sandbox.actor")
    if cached is not None:
        return cached
    box = sandbox(request)
    key = app_user_key(request)
    if key is not None:
        actor = auth.app_user_actor(box.store, key)
    else:
        token = auth.bearer_token(request.headers.get("authorization"))
        if token is None:
            raise problems.authentication_failed()
        actor = auth.session_actor(box.store, token)
    request.scope["sandbox.actor"] = actor
    return actor


def require_user(request: Request) -> Actor:
    """A web user: the only kind of caller allowed to manage anything."""
    actor = current_actor(request)
    if actor.is_app_user:
        raise problems.insufficient_rights()
    return actor


def is_extended(request: Request) -> bool:
    return request.headers.get(EXTENDED, "").lower() == "true"


def int_param(request: Request, name: str) -> int:
    """A numeric path parameter; anything else cannot name a resource."""
    try:
        return int(request.path_params[name])
    except (KeyError, ValueError):
        raise problems.not_found() from None


async def json_body(request: Request) -> dict[str, Any]:
    """The JSON object in the body, or Central's 400.1 with the raw length."""
    raw = await request.body()
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        raise problems.unparseable("json", len(text)) from None
    if not isinstance(data, dict):
        raise problems.unparseable("json", len(text))
    return data


def is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"


def is_false(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "false"
