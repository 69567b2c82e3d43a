"""Persistent state of the sandbox: one SQLite file in the data directory.

The tables mirror Central's model closely enough that every response can be built from one
or two indexed queries: actors (users and app users), sessions, projects, forms with their
definitions (published, draft and older versions), form attachments, submissions with their
versions (defs), attachments, comments and audits. Each current submission version keeps
its OData rows precomputed at ingest (`odata_json` plus one `repeat_rows` row per repeat
entry), so paging 100k submissions never re-parses XML.

The server is one process with one event loop; every query runs synchronously on one
connection, so a `transaction()` block never interleaves with another request.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS actors (
  id INTEGER PRIMARY KEY,
  type TEXT NOT NULL,                 -- 'user' | 'field_key'
  display_name TEXT NOT NULL,
  actee_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT,
  deleted_at TEXT
);
CREATE TABLE IF NOT EXISTS users (
  actor_id INTEGER PRIMARY KEY REFERENCES actors(id),
  email TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  last_login_at TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
  token TEXT PRIMARY KEY,
  actor_id INTEGER NOT NULL REFERENCES actors(id),
  csrf TEXT NOT NULL,
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS projects (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  description TEXT,
  archived INTEGER,
  actee_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT,
  deleted_at TEXT
);
CREATE TABLE IF NOT EXISTS field_keys (
  actor_id INTEGER PRIMARY KEY REFERENCES actors(id),
  project_id INTEGER NOT NULL REFERENCES projects(id),
  created_by INTEGER NOT NULL REFERENCES actors(id),
  token TEXT UNIQUE,
  last_used TEXT
);
CREATE TABLE IF NOT EXISTS forms (
  id INTEGER PRIMARY KEY,
  project_id INTEGER NOT NULL REFERENCES projects(id),
  xml_form_id TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'open',
  actee_id TEXT NOT NULL,
  current_def_id INTEGER,
  draft_def_id INTEGER,
  created_by INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT,
  deleted_at TEXT,
  data_version INTEGER NOT NULL DEFAULT 0, -- bumped on every change to its submissions
  UNIQUE (project_id, xml_form_id)
);
CREATE TABLE IF NOT EXISTS form_defs (
  id INTEGER PRIMARY KEY,
  form_id INTEGER NOT NULL REFERENCES forms(id),
  xml TEXT NOT NULL,
  name TEXT,
  version TEXT NOT NULL,
  hash TEXT NOT NULL,
  sha TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  draft_token TEXT,
  created_at TEXT NOT NULL,
  published_at TEXT
);
CREATE INDEX IF NOT EXISTS form_defs_form ON form_defs (form_id, published_at);
CREATE TABLE IF NOT EXISTS blobs (
  id INTEGER PRIMARY KEY,
  sha256 TEXT NOT NULL UNIQUE,
  md5 TEXT NOT NULL,
  size INTEGER NOT NULL,
  content_type TEXT
);
CREATE TABLE IF NOT EXISTS form_attachments (
  form_def_id INTEGER NOT NULL REFERENCES form_defs(id),
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  blob_id INTEGER REFERENCES blobs(id),
  updated_at TEXT,
  dataset_id INTEGER,                 -- an entity list served as this CSV (entities.py)
  PRIMARY KEY (form_def_id, name)
);
CREATE TABLE IF NOT EXISTS assignments (
  actor_id INTEGER NOT NULL REFERENCES actors(id),
  role_id INTEGER NOT NULL,
  form_id INTEGER NOT NULL REFERENCES forms(id),
  PRIMARY KEY (actor_id, role_id, form_id)
);
CREATE TABLE IF NOT EXISTS submissions (
  id INTEGER PRIMARY KEY,
  form_id INTEGER NOT NULL REFERENCES forms(id),
  instance_id TEXT NOT NULL,
  submitter_id INTEGER NOT NULL,
  device_id TEXT,
  user_agent TEXT,
  review_state TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT,
  deleted_at TEXT,
  edits INTEGER NOT NULL DEFAULT 0,
  UNIQUE (form_id, instance_id)
);
CREATE INDEX IF NOT EXISTS submissions_paging ON submissions (form_id, created_at, id);
CREATE TABLE IF NOT EXISTS submission_defs (
  id INTEGER PRIMARY KEY,
  submission_id INTEGER NOT NULL REFERENCES submissions(id),
  form_def_id INTEGER NOT NULL REFERENCES form_defs(id),
  instance_id TEXT NOT NULL,
  instance_name TEXT,
  xml TEXT NOT NULL,
  submitter_id INTEGER NOT NULL,
  device_id TEXT,
  user_agent TEXT,
  current INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  attachments_expected INTEGER NOT NULL DEFAULT 0,
  attachments_present INTEGER NOT NULL DEFAULT 0,
  row_head TEXT,                       -- the Submissions row's JSON up to "__system": (odata.split_row_json)
  row_tail TEXT,                       -- ... and after its value
  expanded_head TEXT,                  -- the same with every repeat inlined ($expand=*)
  expanded_tail TEXT,
  odata_def_id INTEGER                 -- the form def whose fields the rows follow
);
CREATE INDEX IF NOT EXISTS submission_defs_current ON submission_defs (submission_id, current);
CREATE INDEX IF NOT EXISTS submission_defs_instance ON submission_defs (instance_id);
CREATE TABLE IF NOT EXISTS repeat_rows (
  id INTEGER PRIMARY KEY,
  submission_id INTEGER NOT NULL REFERENCES submissions(id),
  table_name TEXT NOT NULL,            -- 'Submissions.commitments'
  position INTEGER NOT NULL,           -- document order within the submission
  row_id TEXT NOT NULL,                -- the row's __id
  parent_row_id TEXT,                  -- NULL when the parent is the submission
  row_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS repeat_rows_by_submission ON repeat_rows (submission_id, table_name, position);
CREATE INDEX IF NOT EXISTS repeat_rows_by_row_id ON repeat_rows (row_id);
CREATE TABLE IF NOT EXISTS submission_attachments (
  submission_def_id INTEGER NOT NULL REFERENCES submission_defs(id),
  name TEXT NOT NULL,
  blob_id INTEGER REFERENCES blobs(id),
  PRIMARY KEY (submission_def_id, name)
);
CREATE TABLE IF NOT EXISTS comments (
  id INTEGER PRIMARY KEY,
  submission_id INTEGER NOT NULL REFERENCES submissions(id),
  actor_id INTEGER NOT NULL,
  body TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audits (
  id INTEGER PRIMARY KEY,
  actor_id INTEGER,
  action TEXT NOT NULL,
  actee_id TEXT,
  details_json TEXT,
  logged_at TEXT NOT NULL,
  processed_at TEXT                   -- set by the worker (worker.py) once it has run the event's jobs
);
CREATE INDEX IF NOT EXISTS audits_actee ON audits (actee_id);
CREATE INDEX IF NOT EXISTS audits_unprocessed ON audits (id) WHERE processed_at IS NULL;  -- the worker's queue (worker.py)
CREATE TABLE IF NOT EXISTS form_field_values (  -- select_multiple values seen, filled by the worker
  form_id INTEGER NOT NULL REFERENCES forms(id),
  submission_def_id INTEGER NOT NULL REFERENCES submission_defs(id),
  path TEXT NOT NULL,
  value TEXT NOT NULL,
  ready INTEGER NOT NULL DEFAULT 0,   -- 1 once the worker has processed the version
  PRIMARY KEY (submission_def_id, path, value)
);
CREATE INDEX IF NOT EXISTS form_field_values_form ON form_field_values (form_id, path, value);
CREATE TABLE IF NOT EXISTS datasets (     -- entity lists (entities.py)
  id INTEGER PRIMARY KEY,
  project_id INTEGER NOT NULL REFERENCES projects(id),
  name TEXT NOT NULL,
  actee_id TEXT NOT NULL,
  approval_required INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  last_update TEXT,
  UNIQUE (project_id, name)
);
CREATE TABLE IF NOT EXISTS ds_properties (
  id INTEGER PRIMARY KEY,
  dataset_id INTEGER NOT NULL REFERENCES datasets(id),
  name TEXT NOT NULL,
  published_at TEXT,
  UNIQUE (dataset_id, name)
);
CREATE TABLE IF NOT EXISTS ds_property_fields (  -- which published form field saves to a property
  property_id INTEGER NOT NULL REFERENCES ds_properties(id),
  form_def_id INTEGER NOT NULL REFERENCES form_defs(id),
  path TEXT NOT NULL,
  position INTEGER NOT NULL,
  PRIMARY KEY (property_id, form_def_id)
);
CREATE TABLE IF NOT EXISTS dataset_sources (     -- form definitions that create or update entities
  dataset_id INTEGER NOT NULL REFERENCES datasets(id),
  form_def_id INTEGER NOT NULL REFERENCES form_defs(id),
  repeat_path TEXT,
  PRIMARY KEY (dataset_id, form_def_id)
);
CREATE TABLE IF NOT EXISTS entities (
  id INTEGER PRIMARY KEY,
  dataset_id INTEGER NOT NULL REFERENCES datasets(id),
  uuid TEXT NOT NULL UNIQUE,
  creator_id INTEGER NOT NULL,
  conflict TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT,
  deleted_at TEXT
);
CREATE INDEX IF NOT EXISTS entities_by_dataset ON entities (dataset_id, created_at, id);
CREATE TABLE IF NOT EXISTS entity_defs (
  id INTEGER PRIMARY KEY,
  entity_id INTEGER NOT NULL REFERENCES entities(id),
  version INTEGER NOT NULL,
  base_version INTEGER,
  current INTEGER NOT NULL,
  label TEXT NOT NULL,
  data_json TEXT NOT NULL,
  data_received_json TEXT NOT NULL,
  creator_id INTEGER NOT NULL,
  user_agent TEXT,
  conflict TEXT,
  conflicting_json TEXT,
  base_diff_json TEXT NOT NULL DEFAULT '[]',
  server_diff_json TEXT NOT NULL DEFAULT '[]',
  source_audit_id INTEGER,            -- the event that made it (submission.create/update, entity.create)
  submission_def_id INTEGER,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entity_defs_by_entity ON entity_defs (entity_id, version);
CREATE TABLE IF NOT EXISTS entity_submissions ( -- submission versions whose entity work is done
  submission_def_id INTEGER PRIMARY KEY  -- no foreign key: a purged submission leaves its entities
);
"""


def now() -> str:
    """The current time as Central writes it: ISO-8601 UTC, milliseconds, `Z`."""
    return iso(datetime.now(UTC))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def later(hours: float) -> str:
    return iso(datetime.now(UTC) + timedelta(hours=hours))


class Store:
    """The SQLite database of one sandbox: schema, connection and transactions."""

    def __init__(self, path: Path):
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._add_missing_columns()
        self.conn.executescript(SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0

    def _add_missing_columns(self) -> None:
        """A data directory made by an older sandbox gets the columns added since."""
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(audits)")}
        if columns and "processed_at" not in columns:
            self.conn.execute("ALTER TABLE audits ADD COLUMN processed_at TEXT")
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(form_attachments)")}
        if columns and "dataset_id" not in columns:
            self.conn.execute("ALTER TABLE form_attachments ADD COLUMN dataset_id INTEGER")

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work; nested blocks join the outer one."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self.conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self.conn
            except BaseException:
                self._depth -= 1
                if outer:
                    self.conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self.conn.execute("COMMIT")

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, args).fetchone()
        return row

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self.conn.execute(sql, args).fetchall()

    def scalar(self, sql: str, *args: Any) -> Any:
        row = self.conn.execute(sql, args).fetchone()
        return None if row is None else row[0]

    def insert(self, sql: str, *args: Any) -> int:
        cursor = self.conn.execute(sql, args)
        return int(cursor.lastrowid or 0)

    def execute(self, sql: str, *args: Any) -> int:
        return self.conn.execute(sql, args).rowcount
