"""CSV exports: `submissions.csv` (root table) and `submissions.csv.zip` (all tables + media).

Columns follow Central's briefcase layout: `SubmissionDate`, the fields with groups joined
by `-` and geopoints split into Latitude/Longitude/Altitude/Accuracy, then `KEY`,
`SubmitterID`, `SubmitterName`, `AttachmentsPresent`, `AttachmentsExpected`, `Status`,
`ReviewState`, `DeviceID`, `Edits`, `FormVersion`. Repeat tables end with `PARENT_KEY`,
`KEY` (`uuid:…/commitments[1]`). Media go flat into `media/`, as on Central.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
import zipfile
from typing import Any

from .blobs import BlobStore
from .odata import to_json
from .store import Store
from .xform import XFormDefinition, join_row_json

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


def _columns(defn: XFormDefinition, path: str = "", prefix: str = "") -> list[tuple[str, list[str], str]]:
    """(header, keys into the OData row, type) for every leaf outside repeats."""
    found = []
    for field in defn.children(path):
        if field.type == "structure":
            found += [
                (h, [field.odata_name, *keys], t)
                for h, keys, t in _columns(defn, field.path, f"{prefix}{field.name}-")
            ]
        elif field.type != "repeat":
            found.append((prefix + field.name, [field.odata_name], field.type))
    return found


def _repeats(defn: XFormDefinition) -> list[tuple[str, str]]:
    """(CSV file suffix, OData table) for every repeat: `commitments`, `Submissions.commitments`."""
    return [(table.removeprefix("Submissions.").replace(".", "-"), table) for table in defn.tables[1:]]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else to_json(value)


def _leaf_cells(row: dict[str, Any], columns: list[tuple[str, list[str], str]]) -> list[str]:
    cells = []
    for _, path, kind in columns:
        value: Any = row
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if kind == "geopoint":
            coords = value["coordinates"] if isinstance(value, dict) else []
            accuracy = value.get("properties", {}).get("accuracy") if isinstance(value, dict) else None
            parts = [
                coords[1] if len(coords) > 1 else None,
                coords[0] if coords else None,
                coords[2] if len(coords) > 2 else None,
                accuracy,
            ]
            cells += [_cell(p) for p in parts]
        else:
            cells.append(_cell(value))
    return cells


def _headers(columns: list[tuple[str, list[str], str]]) -> list[str]:
    headers = []
    for header, _, kind in columns:
        headers += [f"{header}-{part}" for part in GEO_PARTS] if kind == "geopoint" else [header]
    return headers


def _write(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def root_csv(store: Store, form_id: int, defn: XFormDefinition) -> bytes:
    columns = _columns(defn)
    lines = [["SubmissionDate", *_headers(columns), *SYSTEM_COLUMNS]]
    for row in _submissions(store, form_id):
        data = json.loads(join_row_json(row["row_head"], {}, row["row_tail"]))
        lines.append(
            [
                row["created_at"],
                *_leaf_cells(data, columns),
                row["instance_id"],
                str(row["submitter_id"]),
                row["submitter_name"] or "",
                str(row["attachments_present"]),
                str(row["attachments_expected"]),
                "",
                row["review_state"] or "",
                row["device_id"] or "",
                str(row["edits"]),
                row["version"],
            ]
        )
    return _write(lines)


def _submissions(store: Store, form_id: int) -> list[Any]:
    return store.all(
        "SELECT s.id, s.instance_id, s.created_at, s.submitter_id, a.display_name AS submitter_name, "
        "d.id AS def_id, d.attachments_present, d.attachments_expected, s.review_state, s.device_id, "
        "s.edits, fd.version, d.row_head, d.row_tail "
        "FROM submissions s JOIN submission_defs d ON d.submission_id = s.id AND d.current = 1 "
        "JOIN form_defs fd ON fd.id = d.form_def_id LEFT JOIN actors a ON a.id = s.submitter_id "
        "WHERE s.form_id = ? AND s.deleted_at IS NULL ORDER BY s.created_at DESC, s.id DESC",
        form_id,
    )


def zip_export(
    store: Store, blobs: BlobStore, form_id: int, defn: XFormDefinition, with_media: bool
) -> bytes:
    buffer = io.BytesIO()
    submissions = _submissions(store, form_id)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{defn.form_id}.csv", root_csv(store, form_id, defn))
        for suffix, table in _repeats(defn):
            columns = _columns(defn, defn.table_path(table) or "")
            lines = [[*_headers(columns), "PARENT_KEY", "KEY"]]
            for submission in submissions:
                keys: dict[str, str] = {}
                counters: dict[tuple[str, str], int] = {}
                for row in store.all(
                    "SELECT table_name, row_id, parent_row_id, row_json FROM repeat_rows "
                    "WHERE submission_id = ? ORDER BY position",
                    submission["id"],
                ):
                    parent = keys[row["parent_row_id"]] if row["parent_row_id"] else submission["instance_id"]
                    name = row["table_name"].rsplit(".", 1)[-1]
                    counters[parent, name] = counters.get((parent, name), 0) + 1
                    keys[row["row_id"]] = key = f"{parent}/{name}[{counters[parent, name]}]"
                    if row["table_name"] == table:
                        lines.append([*_leaf_cells(json.loads(row["row_json"]), columns), parent, key])
            archive.writestr(f"{defn.form_id}-{suffix}.csv", _write(lines))
        if with_media:
            warnings.filterwarnings("ignore", "Duplicate name", UserWarning)  # Central's media folder is flat
            for submission in submissions:
                for attachment in store.all(
                    "SELECT name, blob_id FROM submission_attachments WHERE "
                    "submission_def_id = ? AND blob_id IS NOT NULL ORDER BY name",
                    submission["def_id"],
                ):
                    archive.writestr(f"media/{attachment['name']}", blobs.read(attachment["blob_id"])[0])
    return buffer.getvalue()
