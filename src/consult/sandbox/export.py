"""CSV exports: `submissions.csv` (root table) and `submissions.csv.zip` (all tables + media).

Built as Central's `briefcase.js` builds them, from each submission's XML under the form's
current fields: `SubmissionDate`, the fields with the XML names and groups joined by `-`,
geopoints split into Latitude/Longitude/Altitude/Accuracy, every other value as sent (geotrace
and geoshape keep the raw ODK string, latitude first), then `KEY`, `SubmitterID`,
`SubmitterName`, `AttachmentsPresent`, `AttachmentsExpected`, `Status`, `ReviewState`,
`DeviceID`, `Edits`, `FormVersion`. Each repeat, at any depth, is its own file named after the
repeat's XML name only (`<form>-<repeat>.csv`, `~1`, `~2` when two repeats share a name)
ending with `PARENT_KEY`, `KEY` (`uuid:…/household[1]/hh_group/asset[1]`). Media go flat into
`media/`, as on Central.

`splitSelectMultiples` adds a `<column>/<value>` column after each select_multiple for every
value the worker has seen in the data (not every choice), in value order: `1` when selected,
`0` otherwise. Until the worker has processed a submission its values are unknown, so a
fresh export has no split columns, as on Central (26-23, 26-37).
"""

from __future__ import annotations

import csv
import io
import re
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .blobs import BlobStore
from .store import Store
from .xform import XFormDefinition, XFormField, XmlElement, parse_submission

GEO_PARTS = ("Latitude", "Longitude", "Altitude", "Accuracy")
SYSTEM_COLUMNS = [
    "KEY",
    "SubmitterID",
    "SubmitterName",
    "AttachmentsPresent",
    "AttachmentsExpected",
    "Status",
    "ReviewState",
    "DeviceID",
    "Edits",
    "FormVersion",
]
_UNSAFE_IN_FILENAME = re.compile(r'[/?<>\\:*|"\x00-\x1f\x80-\x9f]')
_WHITESPACE = re.compile(r"\s+")

SelectValues = Mapping[str, list[str]]
"""Field path → the values seen in the data, sorted (`{"/q_select_multiple": ["blue", "red"]}`)."""


@dataclass
class _Table:
    """One CSV: its header and, per field path, the column its value goes to."""

    repeat: XFormField | None
    header: list[str]
    columns: dict[str, int] = field(default_factory=dict)
    split: dict[str, list[str]] = field(default_factory=dict)
    rows: list[list[Any]] = field(default_factory=list)

    def blank(self) -> list[Any]:
        """A new row: split columns start at 0 (Central's `generateDataFrame`), the rest empty."""
        return [0 if "/" in name else None for name in self.header]


def _layout(defn: XFormDefinition, values: SelectValues, root_only: bool) -> list[_Table]:
    """The root table then each repeat's, in form order (depth first)."""
    root = _Table(None, ["SubmissionDate"])
    tables = [root]

    def visit(path: str, table: _Table, prefix: str) -> None:
        for f in defn.children(path):
            if f.type == "structure":
                visit(f.path, table, f"{prefix}{f.name}-")
            elif f.type == "repeat":
                if not root_only:
                    sub = _Table(f, [])
                    tables.append(sub)
                    visit(f.path, sub, "")
                    sub.header += ["PARENT_KEY", "KEY"]
            else:
                table.columns[f.path] = len(table.header)
                name = prefix + f.name
                if f.type == "geopoint":
                    table.header += [f"{name}-{part}" for part in GEO_PARTS]
                elif f.select_multiple and f.path in values:
                    table.split[f.path] = list(values[f.path])
                    table.header += [name, *(f"{name}/{value}" for value in values[f.path])]
                else:
                    table.header.append(name)

    visit("", root, "")
    root.header += SYSTEM_COLUMNS
    return tables


def _text(element: XmlElement) -> str:
    return "".join(c for c in element.children if isinstance(c, str))


def _fill(
    defn: XFormDefinition, tables: dict[str, _Table], root: _Table, instance_id: str, xml_root: XmlElement
) -> list[Any]:
    """Walk one submission's XML: the root row is returned, repeat rows go to their tables."""
    top = root.blank()

    def walk(element: XmlElement, path: str, table: _Table, row: list[Any], key: str, parent_key: str,
             counts: dict[str, int]) -> None:
        for child in element.elements():
            child_path = f"{path}/{child.local}"
            f = defn.field(child_path)
            if f is None:
                continue
            if f.type == "structure":
                walk(child, child_path, table, row, f"{key}/{f.name}", parent_key, counts)
            elif f.type == "repeat":
                sub = tables.get(f.path)
                if sub is None:
                    continue
                counts[f.path] = counts.get(f.path, 0) + 1
                own_key = f"{key}/{f.name}[{counts[f.path]}]"
                sub_row = sub.blank()
                sub_row[-2:] = [parent_key, own_key]
                walk(child, child_path, sub, sub_row, own_key, own_key, {})
                sub.rows.append(sub_row)
            elif f.path in table.columns:
                _put(table, row, f, _text(child))

    walk(xml_root, "", root, top, instance_id, instance_id, {})
    return top


def _put(table: _Table, row: list[Any], f: XFormField, text: str) -> None:
    at = table.columns[f.path]
    if f.type == "geopoint":
        parts = _WHITESPACE.split(text)
        for i in range(len(GEO_PARTS)):
            row[at + i] = parts[i] if i < len(parts) else None
        return
    row[at] = (row[at] or "") + text
    known = table.split.get(f.path)
    if known:
        for value in _WHITESPACE.split(row[at]):
            if value in known:
                row[at + 1 + known.index(value)] = 1


def _submissions(store: Store, form_id: int) -> list[Any]:
    return store.all(
        "SELECT s.id, s.instance_id, s.created_at, s.submitter_id, a.display_name AS submitter_name, "
        "d.id AS def_id, d.xml, d.attachments_present, d.attachments_expected, s.review_state, s.device_id, "
        "s.edits, fd.version "
        "FROM submissions s JOIN submission_defs d ON d.submission_id = s.id AND d.current = 1 "
        "JOIN form_defs fd ON fd.id = d.form_def_id LEFT JOIN actors a ON a.id = s.submitter_id "
        "WHERE s.form_id = ? AND s.deleted_at IS NULL ORDER BY s.created_at DESC, s.id DESC",
        form_id,
    )


def select_values(store: Store, form_id: int) -> dict[str, list[str]]:
    """What the worker has recorded for the live submissions' current versions, per field path."""
    found: dict[str, list[str]] = {}
    for row in store.all(
        "SELECT DISTINCT v.path, v.value FROM form_field_values v "
        "JOIN submission_defs d ON d.id = v.submission_def_id AND d.current = 1 "
        "JOIN submissions s ON s.id = d.submission_id AND s.deleted_at IS NULL "
        "WHERE v.form_id = ? AND v.ready = 1 ORDER BY v.path, v.value",
        form_id,
    ):
        found.setdefault(row["path"], []).append(row["value"])
    return found


def _tables(store: Store, form_id: int, defn: XFormDefinition, split: bool, root_only: bool) -> list[_Table]:
    values = select_values(store, form_id) if split else {}
    tables = _layout(defn, values, root_only)
    root, by_path = tables[0], {t.repeat.path: t for t in tables[1:] if t.repeat is not None}
    for s in _submissions(store, form_id):
        row = _fill(defn, by_path, root, s["instance_id"], parse_submission(s["xml"]).root)
        row[0] = s["created_at"]
        row[-len(SYSTEM_COLUMNS):] = [
            s["instance_id"],
            s["submitter_id"],
            s["submitter_name"],
            s["attachments_present"],
            s["attachments_expected"],
            None,
            s["review_state"],
            s["device_id"],
            s["edits"],
            s["version"],
        ]
        root.rows.append(row)
    return tables


def _write(table: _Table) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows([["" if cell is None else cell for cell in row] for row in table.rows])
    return buffer.getvalue().encode()


def safe_filename(name: str) -> str:
    """`sanitize-filename` as Central uses it: no path or reserved characters, at most 255 bytes."""
    cleaned = _UNSAFE_IN_FILENAME.sub("", name)
    cleaned = re.sub(r"^\.+$", "", cleaned)
    cleaned = re.sub(r"[. ]+$", "", cleaned)
    return cleaned.encode()[:255].decode(errors="ignore")


def _repeat_files(form_id: str, repeats: list[_Table]) -> Iterator[tuple[str, _Table]]:
    """`<form>-<repeat>.csv` by the repeat's XML name; `~1`, `~2`… when a name is used twice."""
    totals: dict[str, int] = {}
    for table in repeats:
        assert table.repeat is not None
        totals[table.repeat.name] = totals.get(table.repeat.name, 0) + 1
    counts: dict[str, int] = {}
    for table in repeats:
        assert table.repeat is not None
        name = table.repeat.name
        if totals[name] > 1:
            counts[name] = counts.get(name, 0) + 1
            yield safe_filename(f"{form_id}-{name}~{counts[name]}.csv"), table
        else:
            yield safe_filename(f"{form_id}-{name}.csv"), table


def root_csv(store: Store, form_id: int, defn: XFormDefinition, split: bool = False) -> bytes:
    return _write(_tables(store, form_id, defn, split, root_only=True)[0])


def zip_export(
    store: Store, blobs: BlobStore, form_id: int, defn: XFormDefinition, with_media: bool, split: bool = False
) -> bytes:
    buffer = io.BytesIO()
    root, *repeats = _tables(store, form_id, defn, split, root_only=False)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(safe_filename(f"{defn.form_id}.csv"), _write(root))
        for name, table in _repeat_files(defn.form_id, repeats):
            archive.writestr(name, _write(table))
        if with_media:
            warnings.filterwarnings("ignore", "Duplicate name", UserWarning)  # Central's media folder is flat
            for submission in _submissions(store, form_id):
                for attachment in store.all(
                    "SELECT name, blob_id FROM submission_attachments WHERE "
                    "submission_def_id = ? AND blob_id IS NOT NULL ORDER BY name",
                    submission["def_id"],
                ):
                    archive.writestr(f"media/{attachment['name']}", blobs.read(attachment["blob_id"])[0])
    return buffer.getvalue()
