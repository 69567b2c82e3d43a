"""Filling a sandbox with many submissions at once, for benchmarks and large demos.

Posting 100k submissions over OpenRosa costs 100k HTTP requests (minutes). This takes the
same XML through the same ingest code (`ingest.receive_openrosa`: parse, checks, OData rows
precomputed under the form's published definition, audit, data version bumped), in this
process, on the sandbox's SQLite file, committing a few thousand submissions per
transaction. What the server serves afterwards is what it would serve had each one been
posted by the app user named here; only ids and timestamps differ.

The data directory may belong to a running `SandboxServer` (SQLite in WAL mode lets both
processes use it; the server answers from the database on every request, so it serves the
new submissions at once) or to one not yet started.

    loaded = load_submissions(server.data_dir, project_id, token, (i.xml for i in interviews))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from itertools import islice
from pathlib import Path

from . import auth, ingest
from .state import Sandbox
from .store import iso

DEFAULT_BATCH = 2000
BUSY_TIMEOUT_MS = 600_000
"""How long a batch waits for the server's worker to let go of the write lock: the worker runs its
turns back to back while it has a backlog, and a 1M fill once outwaited 30 s."""
BULK_DOMAIN = "http://127.0.0.1"
"""Only used for absolute links, which ingest never writes."""


def load_submissions(data_dir: Path, project_id: int, app_user_token: str, xmls: Iterable[bytes], *,
                     device_id: str | None = "collect:bulk", user_agent: str | None = "consult bulk loader",
                     submitted_at: Callable[[int], datetime] | None = None,
                     batch: int = DEFAULT_BATCH) -> int:
    """Ingest each submission XML as if the app user with `app_user_token` had posted it over
    OpenRosa (`POST /v1/key/<token>/projects/<id>/submission?deviceID=...`); return how many.

    `submitted_at(i)`, when given, is the submissionDate of the i-th submission loaded (from 0)
    instead of the moment it was ingested: thousands a second all within one minute is not how
    fieldwork arrives, and an incremental pull's overlap window would then re-read most of them.
    Each batch of `batch` submissions is one transaction: a rejected submission (the 4xx
    Central would answer, as `CentralProblem`) rolls its batch back and propagates."""
    box = Sandbox.open(Path(data_dir), BULK_DOMAIN)
    store = box.store
    store.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    try:
        actor = auth.app_user_actor(store, app_user_token)
        loaded = dated = 0
        items = iter(xmls)
        while chunk := list(islice(items, batch)):
            with store.transaction():
                first = store.scalar("SELECT coalesce(max(id), 0) FROM submissions")
                for xml in chunk:
                    ingest.receive_openrosa(box, actor, project_id, xml, [], device_id, user_agent)
                if submitted_at is not None:
                    dated += _redate(box, first, dated, submitted_at)
            loaded += len(chunk)
        return loaded
    finally:
        store.close()


def _redate(box: Sandbox, after_id: int, offset: int, submitted_at: Callable[[int], datetime]) -> int:
    """Give the submissions just created (ids above `after_id`, in ingest order) their dates;
    an identical resend creates none."""
    ids = [row[0] for row in box.store.conn.execute(
        "SELECT id FROM submissions WHERE id > ? ORDER BY id", (after_id,))]
    dates = [(iso(submitted_at(offset + i)), submission_id) for i, submission_id in enumerate(ids)]
    box.store.conn.executemany("UPDATE submissions SET created_at = ? WHERE id = ?", dates)
    box.store.conn.executemany("UPDATE submission_defs SET created_at = ? WHERE submission_id = ?", dates)
    return len(dates)
