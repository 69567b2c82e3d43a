"""The files enumerators attached (photos, signatures, audio): Central → `attachments/<form>/<instance>/`.

Resumable and idempotent: a submission whose files are all recorded in the `attachments`
table and still on disk with the recorded size (and MD5, when the file changed since it was
checked) costs no request at all, nor a read of the file; any other
file is fetched with `If-None-Match: "<md5>"` when a copy is already here (Central's ETag
is the file's MD5, so an unchanged file answers 304), else downloaded to a `.part-` file that
replaces the target only once complete. The table is written per submission, so a killed
run resumes where it stopped. A file Central lists with `exists: false` (the phone never
sent it) is recorded and reported as missing, never an error.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    delete,
    inspect,
    select,
)
from sqlalchemy.engine import Connection, Engine

from consult.forms.schema import DataType, FormSchema
from consult.warehouse.records import INSTANCE, ROW, FormLayout
from consult.warehouse.tables import UtcDateTime, form_tables, submissions

if TYPE_CHECKING:
    from consult.central import CentralSession
    from consult.sync import SyncPlan

PRESENT = "present"
MISSING = "missing"

attachments = Table(
    "attachments", MetaData(),
    Column("project_id", Integer, nullable=False),
    Column("form_id", Text, nullable=False),
    Column("instance_id", Text, nullable=False),
    Column("file_name", Text, nullable=False),
    Column("question", Text),
    Column("row_id", Text),
    Column("size", BigInteger),
    Column("md5", Text),
    Column("stored_path", Text),
    Column("on_central", Text, nullable=False),
    Column("checked_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("instance_id", "project_id", "form_id", "file_name"),
)
"""One row per file a submission references: `file_name` as Central names it (the question's value),
`stored_path` relative to the attachments folder, `on_central` present or missing."""


@dataclass(frozen=True)
class MissingFile:
    instance_id: str
    question: str | None
    file_name: str

    def __str__(self) -> str:
        return f"{self.instance_id}: {self.question or 'file'} {self.file_name!r} is not on Central"


@dataclass
class AttachmentSummary:
    form_id: str
    submissions: int = 0
    """Submissions that reference at least one file."""
    downloaded: int = 0
    unchanged: int = 0
    """Files already here with the size and MD5 recorded (or that Central answered 304 for)."""
    missing: list[MissingFile] = field(default_factory=list)
    bytes: int = 0


@dataclass(frozen=True)
class _Expected:
    question: str
    row_id: str | None


def ensure_attachments_table(engine: Engine) -> None:
    """Create the `attachments` table; refuse one another program made with other columns."""
    attachments.create(engine, checkfirst=True)
    present = {c["name"] for c in inspect(engine).get_columns("attachments")}
    if lacking := [c.name for c in attachments.columns if c.name not in present]:
        raise ValueError(f"the table `attachments` lacks {', '.join(lacking)}: another program made it")


def safe_name(name: str) -> str:
    """A file or folder name that stays in its folder on every system (`uuid:…` → `uuid_…`)."""
    from consult.central.pull import safe_filename

    return safe_filename(name)


def expected_files(conn: Connection, project_id: int, schema: FormSchema) -> dict[str, dict[str, _Expected]]:
    """Instance → file name → the question that holds it, for the project's live submissions (any
    validation status)."""
    layout = FormLayout.of(schema)
    tables = form_tables(layout)
    existing = set(inspect(conn).get_table_names())
    out: dict[str, dict[str, _Expected]] = defaultdict(dict)
    s = submissions.c
    for table_layout in layout.tables:
        t = tables[table_layout.key]
        if table_layout.name not in existing:
            continue
        present = {c["name"] for c in inspect(conn).get_columns(table_layout.name)}
        for column in table_layout.columns:
            f = schema.field(column.field) if column.field else None
            if f is None or f.data_type is not DataType.BINARY or column.name not in present:
                continue
            row_id = t.c.get(ROW)
            query = (select(t.c[INSTANCE], t.c[column.name], *([row_id] if row_id is not None else []))
                     .join(submissions, (s.instance_id == t.c[INSTANCE]) & (s.form_id == schema.form_id)
                           & (s.project_id == project_id))
                     .where(t.c[column.name].is_not(None), s.deleted_at.is_(None), s.purged_at.is_(None)))
            for row in conn.execute(query):
                out[row[0]].setdefault(row[1], _Expected(f.key, row[2] if len(row) > 2 else None))
    return out


def _digest(path: Path) -> tuple[int, str]:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()


def _intact(root: Path, row: Any) -> bool:
    """The recorded copy is here with its size, and untouched since it was checked (else with its MD5):
    a run with nothing new reads no file, however many photos the round has."""
    path = root / row.stored_path if row.stored_path else None
    if path is None or not path.is_file() or (stat := path.stat()).st_size != row.size:
        return False
    return stat.st_mtime <= row.checked_at.timestamp() or _digest(path)[1] == row.md5


def sync_attachments(central: CentralSession, engine: Engine, project_id: int, schema: FormSchema, root: Path,
                     instance_ids: Iterable[str] | None = None) -> AttachmentSummary:
    """Bring the files of the form's loaded submissions (or `instance_ids`) into `root/<form>/<instance>/`."""
    ensure_attachments_table(engine)
    summary = AttachmentSummary(schema.form_id)
    a = attachments.c
    with engine.connect() as conn:
        expected = expected_files(conn, project_id, schema)
        known: dict[str, dict[str, object]] = defaultdict(dict)
        recorded = select(attachments).where(a.project_id == project_id, a.form_id == schema.form_id)
        for row in conn.execute(recorded):
            known[row.instance_id][row.file_name] = row
    wanted = set(instance_ids) if instance_ids is not None else None
    for instance_id in sorted(expected):
        if wanted is not None and instance_id not in wanted:
            continue
        summary.submissions += 1
        files, recorded = expected[instance_id], known.get(instance_id, {})
        if all(getattr(recorded.get(name), "on_central", None) == PRESENT and _intact(root, recorded[name])
               for name in files):
            summary.unchanged += len(files)
            continue
        rows = _fetch_submission(central, project_id, schema.form_id, instance_id, files, root, summary)
        with engine.begin() as conn:
            conn.execute(delete(attachments).where(a.project_id == project_id, a.form_id == schema.form_id,
                                                   a.instance_id == instance_id))
            conn.execute(attachments.insert(), rows)
    return summary


def _fetch_submission(central: CentralSession, project_id: int, form_id: str, instance_id: str,
                      files: dict[str, _Expected], root: Path, summary: AttachmentSummary) -> list[dict]:
    from consult.central import CentralError

    base = central.http.urlformat("projects/{pid}/forms/{fid}/submissions/{iid}/attachments", pid=project_id,
                                  fid=form_id, iid=instance_id)
    try:
        listed = {item["name"]: bool(item.get("exists")) for item in central.json("GET", base)}
    except CentralError as exc:
        if exc.status != 404:
            raise
        listed = {}  # deleted in Central since the sync: its files are reported missing
    folder = root / safe_name(form_id) / safe_name(instance_id)
    rows, used = [], set()
    for name in [*files, *(n for n in listed if n not in files)]:
        where = files.get(name)
        row = {"project_id": project_id, "form_id": form_id, "instance_id": instance_id, "file_name": name,
               "question": where.question if where else None, "row_id": where.row_id if where else None,
               "size": None, "md5": None, "stored_path": None, "on_central": MISSING}
        target_name = safe_name(name)
        stem, n = target_name, 2
        while target_name.lower() in used:
            target_name, n = f"{Path(stem).stem}-{n}{Path(stem).suffix}", n + 1
        used.add(target_name.lower())
        target = folder / target_name
        url = f"{base}/{central.http.urlquote(name)}"
        if not listed.get(name) or (downloaded := _download(central, url, target)) is None:
            summary.missing.append(MissingFile(instance_id, row["question"], name))
            rows.append(row)
            continue
        size, md5 = _digest(target)
        summary.downloaded += downloaded
        summary.unchanged += not downloaded
        summary.bytes += size if downloaded else 0
        rows.append(row | {"size": size, "md5": md5, "on_central": PRESENT,
                           "stored_path": str(PurePosixPath(target.relative_to(root)))})
    checked = datetime.now(UTC)  # after the files were written: a later change to one is seen by its mtime
    return [row | {"checked_at": checked} for row in rows]


def _download(central: CentralSession, url: str, target: Path) -> bool | None:
    """Fetch one file into `target`; False when the copy here already has Central's MD5 (304), None when
    Central no longer has it (404)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(".part-*"):
        stale.unlink(missing_ok=True)
    headers = {"If-None-Match": f'"{_digest(target)[1]}"'} if target.is_file() else {}
    response = central.request("GET", url, headers=headers, ok=(200, 304, 404), stream=True)
    if response.status_code in (304, 404):
        return None if response.status_code == 404 else False
    import requests

    from consult.central import CentralError

    fd, part = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as handle:
            try:
                for chunk in response.iter_content(1 << 16):
                    handle.write(chunk)
                    digest.update(chunk)
            except requests.RequestException as exc:  # the body was cut off mid-file
                raise CentralError("GET", response.url, None, f"the download of {target.name} was cut off "
                                   f"({type(exc).__name__}); run again") from None
        etag = (response.headers.get("ETag") or "").removeprefix("W/").strip('"')
        if etag and len(etag) == 32 and etag != digest.hexdigest():
            raise OSError(f"{target.name}: the download does not match Central's MD5 (cut off?); run again")
        os.replace(part, target)
    finally:
        Path(part).unlink(missing_ok=True)
    return True


def has_attachments(schema: FormSchema) -> bool:
    return any(f.data_type is DataType.BINARY for f in schema.fields)


def planned_form_attachments(plan: SyncPlan, form_id: str, root: Path) -> AttachmentSummary:
    """One form's files with the run's Central session (or one of its own outside a run) and its own
    database engine (safe in a worker thread), after the form's sync with the same plan."""
    from consult.central.session import central_session
    from consult.warehouse.database import create_engine_for

    engine = create_engine_for(plan.database_url)
    try:
        with central_session(plan.settings) as central:
            return sync_attachments(central, engine, plan.project_id, plan.schema(form_id), root)
    finally:
        engine.dispose()
