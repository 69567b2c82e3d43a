"""Synthetic Central OData rows (`$expand=*` shape) for any FormSchema, for tests and benchmarks.

Shapes follow central-contract/README.md: groups nest, select_multiple is one space-separated
string, geopoints are GeoJSON, repeats are inline arrays whose entries carry a 40-hex `__id`.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from consult.forms.schema import DataType, Field, FormSchema

BASE_TIME = datetime(2004, 8, 10, 1, 30, tzinfo=UTC)
VIETNAM = timezone(timedelta(hours=7))
NAMES = ("Nguyễn Thị Hoà", "Trần Văn Đức", "Thạch Thị Sa Ra", "Lê Quang Vinh", "Phạm Thu Hương")


def instance_id(index: int) -> str:
    return f"uuid:{hashlib.md5(str(index).encode()).hexdigest()[:8]}-0000-4000-8000-{index:012d}"


def repeat_entry_id(instance: str, repeat: str, position: int) -> str:
    return hashlib.sha1(f"{instance}/{repeat}[{position}]".encode()).hexdigest()


def _value(schema: FormSchema, field: Field, rng: random.Random, index: int) -> Any:
    choices = schema.choices_for(field)
    names = choices.names() if choices else ["a", "b", "c"]
    match field.data_type:
        case DataType.SELECT_ONE:
            return rng.choice(names)
        case DataType.SELECT_MULTIPLE:
            return " ".join(rng.sample(names, min(2, len(names))))
        case DataType.INTEGER:
            return rng.randint(1, 400)
        case DataType.DECIMAL:
            return round(rng.uniform(0, 5000), 2)
        case DataType.DATE:
            return (BASE_TIME + timedelta(days=index % 60)).date().isoformat()
        case DataType.DATETIME:
            moment = (BASE_TIME + timedelta(minutes=index)).astimezone(VIETNAM)
            return moment.isoformat(timespec="milliseconds")
        case DataType.GEOPOINT:
            return {"type": "Point", "coordinates": [105.4 + rng.random(), 10.3 + rng.random(), 18.9],
                    "properties": {"accuracy": 8.3}}
        case DataType.BINARY:
            return "decision.jpg"
        case _:
            return f"{rng.choice(NAMES)} {field.name} {index}"


def _put(row: dict, path: list[str], value: Any) -> None:
    for key in path[:-1]:
        row = row.setdefault(key, {})
    row[path[-1]] = value


def odata_row(schema: FormSchema, index: int, entries: int = 2, seed: int | None = None,
              overrides: dict[str, Any] | None = None) -> dict:
    """Submission number `index` with `entries` entries in each top-level repeat."""
    rng = random.Random(index if seed is None else seed)
    iid = instance_id(index)
    row: dict = {}
    for field in schema.fields_in("Submissions"):
        if field.name not in ("instanceID", "instanceName"):
            _put(row, field.odata_path, _value(schema, field, rng, index))
    for repeat in schema.repeats:
        if repeat.parent_table != "Submissions":
            continue
        rows = []
        for position in range(1, entries + 1):
            entry: dict = {"__id": repeat_entry_id(iid, repeat.name, position)}
            for field in schema.fields_in(repeat.table):
                _put(entry, field.odata_path, _value(schema, field, rng, index))
            rows.append(entry)
        row[repeat.name] = rows
    for name, value in (overrides or {}).items():
        _put(row, schema.field(name).odata_path, value)
    submitted = BASE_TIME + timedelta(seconds=index)
    row["meta"] = {"instanceID": iid, "instanceName": f"{schema.form_id} {index}"}
    row["__id"] = iid
    row["__system"] = {
        "submissionDate": submitted.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "updatedAt": None, "submitterId": "7", "submitterName": "Collect device 01", "attachmentsPresent": 0,
        "attachmentsExpected": 0, "status": None, "reviewState": None, "deviceId": "collect:device01",
        "edits": 0, "formVersion": schema.version, "deletedAt": None,
    }
    return row
