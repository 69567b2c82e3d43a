"""Who is calling: web-user sessions (Bearer tokens) and app users (keys in the URL).

Central authenticates a web user with `Authorization: Bearer <session token>` and an app
user (a "field key") with `/v1/key/<token>/...` in the path. Tokens are 64 characters
from `[A-Za-z0-9!$]`, sessions last 24 hours. A wrong password, a missing header and an
unknown token are all the same 401.2, so nothing tells a caller which part was wrong.
Passwords are kept as salted PBKDF2 hashes; tokens and passwords are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

from . import problems
from .store import Store, later, now

TOKEN_ALPHABET = string.ascii_letters + string.digits + "!$"
SESSION_HOURS = 24
PBKDF2_ROUNDS = 60_000


def new_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(64))


def hash_password(password: str) -> str:
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), PBKDF2_ROUNDS)
    return f"pbkdf2${salt}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    _, salt, expected = stored.split("$")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), PBKDF2_ROUNDS)
    return hmac.compare_digest(digest.hex(), expected)


@dataclass(frozen=True)
class Actor:
    """An authenticated caller: a web user or an app user bound to one project."""

    id: int
    type: str  # 'user' | 'field_key'
    display_name: str
    project_id: int | None = None  # app users only

    @property
    def is_app_user(self) -> bool:
        return self.type == "field_key"


def log_in(store: Store, email: str, password: str) -> dict[str, str]:
    """Open a session; the same 401.2 for an unknown email and a wrong password."""
    row = store.one(
        "SELECT u.actor_id, u.password_hash FROM users u JOIN actors a ON a.id = u.actor_id "
        "WHERE lower(u.email) = lower(?) AND a.deleted_at IS NULL",
        email,
    )
    if row is None or not check_password(password, row["password_hash"]):
        raise problems.authentication_failed()
    token, csrf, created = new_token(), new_token(), now()
    expires = later(SESSION_HOURS)
    with store.transaction():
        store.insert(
            "INSERT INTO sessions (token, actor_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            token,
            row["actor_id"],
            csrf,
            created,
            expires,
        )
        store.execute("UPDATE users SET last_login_at = ? WHERE actor_id = ?", created, row["actor_id"])
    return {"token": token, "csrf": csrf, "expiresAt": expires, "createdAt": created}


def log_out(store: Store, token: str) -> bool:
    with store.transaction():
        return store.execute("DELETE FROM sessions WHERE token = ?", token) > 0


def session_actor(store: Store, token: str) -> Actor:
    row = store.one(
        "SELECT a.id, a.type, a.display_name FROM sessions s JOIN actors a ON a.id = s.actor_id "
        "WHERE s.token = ? AND s.expires_at > ? AND a.deleted_at IS NULL",
        token,
        now(),
    )
    if row is None:
        raise problems.authentication_failed()
    return Actor(row["id"], row["type"], row["display_name"])


def app_user_actor(store: Store, token: str) -> Actor:
    row = store.one(
        "SELECT a.id, a.type, a.display_name, f.project_id FROM field_keys f "
        "JOIN actors a ON a.id = f.actor_id WHERE f.token = ? AND a.deleted_at IS NULL",
        token,
    )
    if row is None:
        raise problems.authentication_failed()
    store.execute("UPDATE field_keys SET last_used = ? WHERE actor_id = ?", now(), row["id"])
    return Actor(row["id"], row["type"], row["display_name"], row["project_id"])


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise problems.authentication_failed()
    return value.strip()
