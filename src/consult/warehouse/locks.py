"""One sync of a form at a time, whichever machine or Prefect worker runs it.

A slow scheduled run and a manual one must not both load the same form: each would be
correct alone (loads are upserts), but their watermarks and write-backs would interleave.
PostgreSQL has session advisory locks, which die with the connection, so a killed sync
frees its form at once. SQLite is one machine's file: a row in `sync_locks` names the
process holding the form, and a row whose process is gone is taken over.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import delete, select, text
from sqlalchemy.engine import Engine

from consult.warehouse.tables import sync_locks


class FormBusy(RuntimeError):
    """Another sync holds this form; this one leaves it alone."""


def _advisory_key(project_id: int, form_id: str) -> int:
    digest = hashlib.sha256(f"consult-sync/{project_id}/{form_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def form_lock(engine: Engine, project_id: int, form_id: str) -> Iterator[None]:
    """Hold the form for the duration of the block; FormBusy when another sync has it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            key = _advisory_key(project_id, form_id)
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one():
                raise FormBusy(f"another sync is loading {form_id} (project {project_id})")
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    host, pid = socket.gethostname(), os.getpid()
    with engine.begin() as conn:
        held = conn.execute(select(sync_locks.c.host, sync_locks.c.pid).where(
            sync_locks.c.project_id == project_id, sync_locks.c.form_id == form_id)).first()
        if held is not None and (held.host != host or _alive(held.pid)) and held.pid != pid:
            raise FormBusy(f"sync process {held.pid} on {held.host} is loading {form_id} (project {project_id})")
        conn.execute(delete(sync_locks).where(sync_locks.c.project_id == project_id,
                                              sync_locks.c.form_id == form_id))
        conn.execute(sync_locks.insert().values(project_id=project_id, form_id=form_id, host=host, pid=pid,
                                                acquired_at=datetime.now(UTC)))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(delete(sync_locks).where(sync_locks.c.project_id == project_id,
                                                  sync_locks.c.form_id == form_id, sync_locks.c.pid == pid))
