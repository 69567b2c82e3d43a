"""An entity list seeded from a spreadsheet, and read back out as a table or a file.

ISG's existing contact sheet becomes the focal-point registry: every row is checked before
anything is sent (a half-imported registry is worse than none), then rows go to Central's
bulk create, which is all or nothing per request. Each row's uuid is derived from the list
and a key column, so a rerun finds the rows it already created and creates no duplicates.
"""

from __future__ import annotations

import csv
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zipfile import BadZipFile

from openpyxl import Workbook, load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from consult.central.entities import create_entities, entity_pages, entity_uuids, remote_list
from consult.central.session import CentralError, CentralSession
from consult.exports.writers import inert_text
from consult.findings.workbook import FORMULA_START

LABEL = "label"
UUID_COLUMN = "uuid"
BATCH_SIZE = 200
_SEED_NAMESPACE = uuid.UUID("5f0b2f63-1f7e-4d54-9a55-0c0a6a4e1d18")


class ImportRefused(ValueError):
    """Rows that cannot be imported; nothing was created."""

    def __init__(self, source: Path, problems: list[str]):
        self.source, self.problems = source, problems
        super().__init__(f"{source.name}: {len(problems)} problem(s), nothing was created")


class EntityListMissing(ValueError):
    """The list is not on Central (yet)."""


@dataclass(frozen=True)
class SeedRow:
    """One spreadsheet row as the entity it becomes."""

    row: int
    uuid: str
    label: str
    data: dict[str, str]


def seed_uuid(project_id: int, list_name: str, key: str, value: str) -> str:
    """A stable uuid for a row: uuid5 of the project, list, key column and value (entity uuids are
    unique on the whole server, so the same sheet seeded into a training project must not collide),
    with the version bits of a v4, because Central refuses any other version in its URLs (400.11)."""
    derived = uuid.uuid5(_SEED_NAMESPACE, f"{project_id}\x1f{list_name}\x1f{key}\x1f{value}")
    return str(uuid.UUID(bytes=derived.bytes, version=4))


def _text(value: Any) -> str:
    return unicodedata.normalize("NFC", str(value)).strip()


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[Any]]]]:
    """The header and the non-blank rows with their spreadsheet row numbers (header = row 1)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                table = [list(row) for row in csv.reader(handle)]
        except UnicodeDecodeError:
            raise ValueError(f"{path.name} is not UTF-8 text: save it from Excel as \"CSV UTF-8\", or give the "
                             ".xlsx") from None
    elif suffix in (".xlsx", ".xlsm"):
        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except (BadZipFile, InvalidFileException, KeyError):
            raise ValueError(f"{path.name} is not an Excel workbook (.xlsx): open it in Excel and save it as "
                             "one") from None
        try:
            table = [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
        finally:
            book.close()
    else:
        raise ValueError(f"{path.name}: give a .csv or .xlsx file")
    if not table:
        raise ValueError(f"{path.name} is empty: its first row must name the columns (label, properties…)")
    header = [_text(c) if c is not None else "" for c in table[0]]
    rows = [(number, row) for number, row in enumerate(table[1:], start=2)
            if any(c is not None and _text(c) for c in row)]
    return header, rows


def plan_seed(path: Path, project_id: int, list_name: str, properties: tuple[str, ...],
              key: str | None) -> list[SeedRow]:
    """Every row checked (label, known columns, text values, a unique key); ImportRefused lists every
    problem with its row number."""
    header, rows = read_rows(path)
    key = key or (UUID_COLUMN if UUID_COLUMN in header else None)
    if key is None:
        raise ValueError(f"{path.name}: give --key COLUMN (a column that tells people apart, e.g. phone) or "
                         "add a uuid column, so that a rerun finds the rows already imported")
    problems: list[str] = []
    known = {LABEL, UUID_COLUMN, *properties}
    for name in (LABEL, key):
        if name not in header:
            problems.append(f"row 1: no {name!r} column")
    for position, name in enumerate(header, start=1):
        if name and name not in known:
            problems.append(f"row 1: column {name!r} is not a property of {list_name} "
                            f"(its properties: {', '.join(sorted(properties)) or 'none'})")
        elif not name and any(position <= len(r) and r[position - 1] not in (None, "") for _, r in rows):
            problems.append(f"row 1: column {position} has values but no name")
    if problems:
        raise ImportRefused(path, problems)
    planned: list[SeedRow] = []
    seen: dict[str, int] = {}
    for number, cells in rows:
        values: dict[str, str] = {}
        mistyped: set[str] = set()
        for name, cell in zip(header, cells, strict=False):
            if not name or cell is None:
                continue
            if not isinstance(cell, str):
                mistyped.add(name)
                kind = ("date" if isinstance(cell, (date, datetime, time)) else "true/false"
                        if isinstance(cell, bool) else "number")
                problems.append(f"row {number}: {name} is a {kind} cell in the spreadsheet ({cell!r}): format the "
                                "column as Text so it is kept exactly as typed")
                continue
            values[name] = _text(cell)
        label, key_value = values.get(LABEL, ""), values.get(key, "")
        if not label:
            problems.append(f"row {number}: the label is empty")
        if not key_value and key not in mistyped:
            problems.append(f"row {number}: {key} is empty, and it tells the rows apart")
        elif key_value and key_value in seen:
            problems.append(f"row {number}: same {key} as row {seen[key_value]} ({key_value})")
        else:
            seen[key_value] = number
        entity_id = values.get(UUID_COLUMN) or (seed_uuid(project_id, list_name, key, key_value) if key_value else "")
        if values.get(UUID_COLUMN) and not _is_v4(entity_id):
            problems.append(f"row {number}: uuid {entity_id!r} is not a version 4 UUID, which Central requires")
        data = {k: v for k, v in values.items() if k in properties and v}
        planned.append(SeedRow(number, entity_id, label, data))
    if problems:
        raise ImportRefused(path, problems)
    return planned


def _is_v4(text: str) -> bool:
    try:
        return uuid.UUID(text).version == 4
    except ValueError:
        return False


@dataclass
class SeedResult:
    rows: int
    created: int = 0
    skipped: int = 0
    """Rows whose entity already exists (a rerun, or created by someone else meanwhile)."""


def list_properties(central: CentralSession, project_id: int, list_name: str) -> tuple[str, ...]:
    try:
        return remote_list(central, project_id, list_name).properties
    except CentralError as exc:
        if exc.status == 404:
            raise EntityListMissing(f"no entity list {list_name!r} in project {project_id}: deploy the form that "
                                    "registers it first (`consult deploy`)") from None
        raise


def import_entities(central: CentralSession, project_id: int, list_name: str, path: Path, key: str | None,
                    batch_size: int = BATCH_SIZE,
                    progress: Callable[[int, int], None] | None = None) -> SeedResult:
    """Check every row, then create the ones Central does not have, `batch_size` per request."""
    rows = plan_seed(path, project_id, list_name, list_properties(central, project_id, list_name), key)
    existing = entity_uuids(central, project_id, list_name)
    todo = [r for r in rows if r.uuid not in existing]
    result = SeedResult(len(rows))
    if progress:
        progress(0, len(todo))
    for start in range(0, len(todo), batch_size):
        result.created += _create_batch(central, project_id, list_name, todo[start:start + batch_size], path.name)
        if progress:
            progress(min(start + batch_size, len(todo)), len(todo))
    result.skipped = len(rows) - result.created
    return result


def _create_batch(central: CentralSession, project_id: int, list_name: str, batch: list[SeedRow],
                  source: str) -> int:
    """Create a batch; when someone created some of its uuids meanwhile (409.3, nothing of the batch
    was created), create the rest once more."""
    body = [{"uuid": r.uuid, "label": r.label, "data": r.data} for r in batch]
    try:
        create_entities(central, project_id, list_name, body, source)
        return len(body)
    except CentralError as exc:
        if exc.code != 409.3:
            raise
    existing = entity_uuids(central, project_id, list_name)
    rest = [item for item in body if item["uuid"] not in existing]
    if rest:
        create_entities(central, project_id, list_name, rest, source)
    return len(rest)


# --- reading the list back ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityRecord:
    """An entity as OData shows it: Central's values are all strings."""

    uuid: str
    label: str
    data: dict[str, str | None]
    version: int
    conflict: str | None
    created_at: str
    updated_at: str | None
    creator: str | None = None

    @classmethod
    def from_odata(cls, row: dict[str, Any]) -> EntityRecord:
        system = row.get("__system") or {}
        data = {k: v for k, v in row.items() if k not in ("__id", "label", "__system") and not k.startswith("@")}
        return cls(row["__id"], row.get("label") or "", data, int(system.get("version") or 1),
                   system.get("conflict"), system.get("createdAt") or "", system.get("updatedAt"),
                   system.get("creatorName"))


def read_entities(central: CentralSession, project_id: int, list_name: str) -> Iterator[EntityRecord]:
    list_properties(central, project_id, list_name)
    for page in entity_pages(central, project_id, list_name):
        yield from (EntityRecord.from_odata(row) for row in page)


EXPORT_TAIL = ("__version", "__conflict", "__createdAt", "__updatedAt", "__creatorName")


def export_entities(records: list[EntityRecord], properties: tuple[str, ...], out: Path) -> Path:
    """CSV (UTF-8 with BOM, so Excel reads Vietnamese right) or XLSX; text that would start a formula
    stays text."""
    header = ["uuid", LABEL, *properties, *EXPORT_TAIL]
    table = [[r.uuid, r.label, *(r.data.get(p) or "" for p in properties), str(r.version), r.conflict or "",
              r.created_at, r.updated_at or "", r.creator or ""] for r in records]
    suffix = out.suffix.lower()
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        with out.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows([[inert_text(v) for v in row] for row in table])
    elif suffix == ".xlsx":
        book = Workbook()
        sheet = book.active
        sheet.title = "entities"
        sheet.append(header)
        for number, row in enumerate(table, start=2):
            for column, value in enumerate(row, start=1):
                cell = sheet.cell(number, column, value)
                if value.startswith(FORMULA_START):
                    cell.data_type = "s"
                    cell.quotePrefix = True
        book.save(out)
    else:
        raise ValueError(f"{out.name}: --out must end in .csv or .xlsx")
    return out

