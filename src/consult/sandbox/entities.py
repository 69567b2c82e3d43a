"""Entity lists (Central's datasets) and their entities, as the recorded Central serves them.

A form that declares `<entity dataset=… create|update="1">` in a `meta` (the root's, or a repeat's
since entity spec 2025.1.0) and binds fields with `entities:saveto` makes the dataset and its
properties when it is published. Submissions become entities **asynchronously**: the worker
(worker.py) runs `process_event` for `submission.create` and, when the list requires approval,
for the review that approves it; what fails becomes an `entity.error` audit on the submission
(contract steps 21, 25). Entities made or changed by the REST API are made at once.

Every entity version is one `entity_defs` row; `data_json` holds all properties of that
version, `data_received_json` what the change sent. A form update whose `baseVersion` is stale is
applied anyway and flags the entity `conflict` (`hard` when it touched what changed meanwhile,
23-09/23-10), as Central does.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sqlite3
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import directory, problems
from .odata import CentralProblem
from .problems import Problem
from .store import Store, now
from .xform import XFormDefinition, XmlElement, _find_chain, _parse_xml, _strip_ns, parse_submission

UUID_V4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.IGNORECASE)
DATASET_NAME = re.compile(r"^(?!__)[\w][\w.-]*$", re.UNICODE)


# Errors Central gives for entities ------------------------------------------------------------


def invalid_uuid() -> Problem:
    return Problem(400.11, "Invalid input data type: expected (uuid) to be (valid version 4 UUID)",
                   {"field": "uuid", "expected": "valid version 4 UUID"})


def not_a_string(field: str) -> Problem:
    return Problem(400.11, f"Invalid input data type: expected ({field}) to be (string)",
                   {"field": field, "expected": "string"})


def unknown_property(name: str) -> Problem:
    reason = f"You specified the dataset property [{name}] which does not exist."
    return Problem(400.28, f"The entity is invalid. {reason}", {"reason": reason})


def pending_submissions(count: int) -> Problem:
    return Problem(400.29, f"There are {count} pending submissions", {"count": count})


def empty_entities() -> Problem:
    return Problem(400.31, "Expected parameters: (entities: [...]). Got (empty array).",
                   {"expected": ["entities: [...]"], "actual": ["empty array"]})


def stale_version(current: int, provided: str | None) -> Problem:
    shown = "undefined" if provided is None else provided
    details: dict[str, Any] = {"current": str(current)}
    if provided is not None:
        details["provided"] = provided
    return Problem(409.15, f"Current version of the Entity is '{current}' and you provided '{shown}'. "
                   "Please correct the version number or pass '?force=true' in the URL to forcefully "
                   "update the Entity.", details)


def duplicate_uuid(value: str, with_table: bool = True) -> Problem:
    details: dict[str, Any] = {"fields": ["uuid"], "values": [value]}
    if with_table:
        details["table"] = "entities"
    return Problem(409.3, f"A resource already exists with uuid value(s) of {value}.", details)


def unknown_entity(entity_uuid: str, dataset: str) -> Problem:
    return Problem(404.8, f"The entity with UUID ({entity_uuid}) specified in the submission does not exist "
                   f"in the dataset ({dataset}).", {"entityUuid": entity_uuid, "datasetName": dataset})


def dataset_in_use(forms: Mapping[str, list[dict[str, str]]]) -> Problem:
    return Problem(409.21, "You can't delete this dataset because there are Form(s) dependent on it",
                   dict(forms))


# What a form declares -------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityDeclaration:
    """One `<entity dataset=…>` of a form: where it sits and which fields save to which property."""

    dataset: str
    container: str                       # "" for the submission root, "/member" for a repeat
    creates: bool
    updates: bool
    properties: tuple[tuple[str, str], ...]  # (property, field path), in form order

    @property
    def repeat_path(self) -> str | None:
        return f"{self.container}/" if self.container else None


@lru_cache(maxsize=128)
def declarations(xml: str) -> tuple[EntityDeclaration, ...]:
    """The entity lists a form writes to, read from its primary instance and its `saveto` binds."""
    _, roots, _ = _parse_xml(xml.encode("utf-8"), "xforms xml")
    html = roots[0] if roots else None
    model = _find_chain(html, ["head", "model"]) if html is not None else None
    data = _find_chain(model, ["instance", None]) if model is not None else None
    if model is None or data is None:
        return ()
    found: list[tuple[str, XmlElement]] = []

    def walk(element: XmlElement, path: str) -> None:
        for child in element.elements():
            child_path = f"{path}/{_strip_ns(child.name)}"
            if child.local == "entity" and child.attr("dataset") and path.endswith("/meta"):
                found.append((path.removesuffix("/meta"), child))
            walk(child, child_path)

    walk(data, "")
    saves: list[tuple[str, str]] = []
    prefix = f"/{data.name}"
    for bind in model.elements():
        target = bind.attr("saveto") if bind.local == "bind" else None
        nodeset = bind.attr("nodeset") or ""
        if target and nodeset.startswith(prefix + "/"):
            saves.append((target.strip(), _strip_ns(nodeset[len(prefix):])))
    result: list[EntityDeclaration] = []
    seen_containers: set[str] = set()
    for container, element in found:
        if container in seen_containers:
            continue  # a repeat's template and its first instance declare it once
        seen_containers.add(container)
        others = [c for c, _ in found if c != container and c.startswith(container + "/")]
        props = tuple(
            (name, path) for name, path in saves
            if path.startswith(container + "/") and not any(path.startswith(o + "/") for o in others)
        )
        result.append(EntityDeclaration(
            dataset=element.attr("dataset") or "",
            container=container,
            creates=element.attr("create") is not None,
            updates=element.attr("update") is not None,
            properties=props,
        ))
    return tuple(result)


# Datasets -------------------------------------------------------------------------------------


def get_dataset(store: Store, project_id: int, name: str) -> sqlite3.Row:
    directory.get_project(store, project_id)
    row = store.one("SELECT * FROM datasets WHERE project_id = ? AND name = ?", project_id, name)
    if row is None:
        raise problems.not_found()
    return row


def touch_dataset(store: Store, dataset_id: int, stamp: str | None = None) -> None:
    store.execute("UPDATE datasets SET last_update = ? WHERE id = ?", stamp or now(), dataset_id)


def create_dataset(store: Store, project_id: int, name: str) -> sqlite3.Row:
    """`POST …/datasets`: an empty list made without a form (27-04 … 27-06)."""
    directory.get_project(store, project_id)
    if not isinstance(name, str) or not DATASET_NAME.match(name):
        raise problems.unexpected_value("name", name, "This is not a valid dataset name.")
    if store.one("SELECT 1 FROM datasets WHERE project_id = ? AND name = ?", project_id, name):
        raise Problem(409.3, f"A resource already exists with name,projectId value(s) of {name},{project_id}.",
                      {"table": "datasets", "fields": ["name", "projectId"], "values": [name, project_id]})
    with store.transaction():
        stamp = now()
        dataset_id = store.insert(
            "INSERT INTO datasets (project_id, name, actee_id, created_at, last_update) VALUES (?, ?, ?, ?, ?)",
            project_id, name, str(uuidlib.uuid4()), stamp, stamp)
    found = store.one("SELECT * FROM datasets WHERE id = ?", dataset_id)
    assert found is not None
    return found


def add_property(store: Store, dataset: sqlite3.Row, name: Any) -> None:
    """`POST …/datasets/{name}/properties` (27-07 … 27-09)."""
    if not isinstance(name, str) or not name:
        raise problems.missing_parameter("name")
    if store.one("SELECT 1 FROM ds_properties WHERE dataset_id = ? AND name = ?", dataset["id"], name):
        raise Problem(409.3, f"A resource already exists with name,datasetId value(s) of {name},{dataset['id']}.",
                      {"table": "ds_properties", "fields": ["name", "datasetId"], "values": [name, dataset["id"]]})
    with store.transaction():
        stamp = now()
        store.insert("INSERT INTO ds_properties (dataset_id, name, published_at) VALUES (?, ?, ?)",
                     dataset["id"], name, stamp)
        touch_dataset(store, dataset["id"], stamp)


def publish_form(store: Store, project_id: int, def_row: sqlite3.Row, defn: XFormDefinition) -> None:
    """Publishing a form that declares entity lists makes them and their properties (20-05)."""
    stamp = def_row["published_at"] or now()
    for declared in declarations(def_row["xml"]):
        dataset = store.one("SELECT * FROM datasets WHERE project_id = ? AND name = ?", project_id,
                            declared.dataset)
        if dataset is None:
            dataset_id = store.insert(
                "INSERT INTO datasets (project_id, name, actee_id, created_at) VALUES (?, ?, ?, ?)",
                project_id, declared.dataset, str(uuidlib.uuid4()), stamp)
        else:
            dataset_id = dataset["id"]
        store.execute("INSERT OR REPLACE INTO dataset_sources (dataset_id, form_def_id, repeat_path) "
                      "VALUES (?, ?, ?)", dataset_id, def_row["id"], declared.repeat_path)
        for name, path in declared.properties:
            prop = store.one("SELECT id FROM ds_properties WHERE dataset_id = ? AND name = ?", dataset_id, name)
            prop_id = prop["id"] if prop is not None else store.insert(
                "INSERT INTO ds_properties (dataset_id, name, published_at) VALUES (?, ?, ?)",
                dataset_id, name, stamp)
            field = defn.field(path)
            store.execute("INSERT OR REPLACE INTO ds_property_fields (property_id, form_def_id, path, position) "
                          "VALUES (?, ?, ?, ?)", prop_id, def_row["id"], path,
                          field.order if field is not None else 0)
        touch_dataset(store, dataset_id, stamp)
    link_attachments(store, project_id, def_row["id"])


def link_attachments(store: Store, project_id: int, def_id: int) -> None:
    """A declared `<list>.csv` is linked to the list of that name as the draft is made (23-02)."""
    store.execute(
        "UPDATE form_attachments SET dataset_id = (SELECT d.id FROM datasets d WHERE d.project_id = ? "
        "AND d.name || '.csv' = form_attachments.name) WHERE form_def_id = ? AND type = 'file' "
        "AND blob_id IS NULL AND dataset_id IS NULL",
        project_id, def_id)


def set_attachment_link(store: Store, project_id: int, def_id: int, name: str, linked: Any) -> sqlite3.Row:
    """`PATCH …/draft/attachments/{name} {"dataset": bool}` (24-02, 24-03)."""
    row = store.one("SELECT * FROM form_attachments WHERE form_def_id = ? AND name = ?", def_id, name)
    if row is None:
        raise problems.not_found()
    dataset = store.one("SELECT id FROM datasets WHERE project_id = ? AND name || '.csv' = ?", project_id, name)
    if linked is True and dataset is None:
        raise problems.not_found()
    with store.transaction():
        store.execute("UPDATE form_attachments SET dataset_id = ?, blob_id = NULL, updated_at = ? "
                      "WHERE form_def_id = ? AND name = ?",
                      dataset["id"] if linked is True and dataset is not None else None, now(), def_id, name)
    found = store.one("SELECT * FROM form_attachments WHERE form_def_id = ? AND name = ?", def_id, name)
    assert found is not None
    return found


def _form_ref(row: sqlite3.Row) -> dict[str, str]:
    return {"name": row["name"] or row["xml_form_id"], "xmlFormId": row["xml_form_id"]}


def _forms(store: Store, dataset_id: int, draft: bool) -> dict[str, list[dict[str, Any]]]:
    which = "draft_def_id" if draft else "current_def_id"
    sources = []
    for row in store.all(
        f"SELECT f.xml_form_id, fd.name, s.repeat_path FROM dataset_sources s JOIN forms f ON f.{which} = "
        "s.form_def_id JOIN form_defs fd ON fd.id = s.form_def_id WHERE s.dataset_id = ? AND f.deleted_at IS NULL "
        "ORDER BY f.id", dataset_id):
        item: dict[str, Any] = _form_ref(row)
        if row["repeat_path"]:
            item["repeatPath"] = row["repeat_path"]
        sources.append(item)
    linked = [_form_ref(row) for row in store.all(
        f"SELECT DISTINCT f.id, f.xml_form_id, fd.name FROM form_attachments a JOIN forms f ON f.{which} = "
        "a.form_def_id JOIN form_defs fd ON fd.id = a.form_def_id WHERE a.dataset_id = ? AND f.deleted_at IS NULL "
        "ORDER BY f.id", dataset_id)]
    return {"sourceForms": sources, "linkedForms": linked}


def properties(store: Store, dataset_id: int) -> list[sqlite3.Row]:
    """Published properties in Central's order: publication, then place in the latest form saving them."""
    return store.all(
        "SELECT p.* FROM ds_properties p WHERE p.dataset_id = ? AND p.published_at IS NOT NULL ORDER BY "
        "p.published_at, (SELECT pf.position FROM ds_property_fields pf JOIN forms f ON f.current_def_id = "
        "pf.form_def_id WHERE pf.property_id = p.id ORDER BY pf.form_def_id DESC LIMIT 1), p.id",
        dataset_id)


def property_names(store: Store, dataset_id: int) -> list[str]:
    return [p["name"] for p in properties(store, dataset_id)]


def dataset_summary_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "name": row["name"],
        "createdAt": row["created_at"],
        "projectId": row["project_id"],
        "approvalRequired": bool(row["approval_required"]),
        "ownerOnly": False,
        "deletedAt": None,
    }


def dataset_stats(store: Store, dataset_id: int) -> dict[str, Any]:
    """What `X-Extended-Metadata` adds: live entities, the newest one's time, open conflicts (25-13)."""
    stats = store.one(
        "SELECT count(*) AS live, max(created_at) AS last, sum(conflict IS NOT NULL) AS conflicts "
        "FROM entities WHERE dataset_id = ? AND deleted_at IS NULL", dataset_id)
    assert stats is not None
    return {"entities": stats["live"], "lastEntity": stats["last"], "conflicts": stats["conflicts"] or 0}


def dataset_json(store: Store, row: sqlite3.Row, extended: bool) -> dict[str, Any]:
    body = dataset_summary_json(row)
    if extended:
        body |= dataset_stats(store, row["id"])
    published, drafts = _forms(store, row["id"], False), _forms(store, row["id"], True)
    props = []
    for p in properties(store, row["id"]):
        forms = [{"xmlFormId": f["xml_form_id"], "name": f["name"] or f["xml_form_id"]} for f in store.all(
            "SELECT f.xml_form_id, fd.name FROM ds_property_fields pf JOIN forms f ON f.current_def_id = "
            "pf.form_def_id JOIN form_defs fd ON fd.id = pf.form_def_id WHERE pf.property_id = ? "
            "ORDER BY f.id DESC", p["id"])]
        props.append({"name": p["name"], "publishedAt": p["published_at"], "odataName": p["name"], "forms": forms})
    return body | {
        "lastUpdate": row["last_update"] or row["created_at"],
        "linkedForms": published["linkedForms"],
        "sourceForms": published["sourceForms"],
        "draftLinkedForms": drafts["linkedForms"],
        "draftSourceForms": drafts["sourceForms"],
        "properties": props,
    }


def dataset_diff(store: Store, project_id: int, def_row: sqlite3.Row) -> list[dict[str, Any]]:
    """`…/draft/dataset-diff`: what publishing the draft adds to each list (20-03, 28-03)."""
    result = []
    for declared in declarations(def_row["xml"]):
        dataset = store.one("SELECT * FROM datasets WHERE project_id = ? AND name = ?", project_id,
                            declared.dataset)
        existing = property_names(store, dataset["id"]) if dataset is not None else []
        in_form = [name for name, _ in declared.properties]
        props = [{"name": n, "isNew": n not in existing, "inForm": True} for n in in_form]
        props += [{"name": n, "isNew": False, "inForm": False} for n in existing if n not in in_form]
        result.append({"name": declared.dataset, "isNew": dataset is None, "properties": props})
    return result


def dependent_forms(store: Store, dataset_id: int) -> dict[str, list[dict[str, Any]]] | None:
    published, drafts = _forms(store, dataset_id, False), _forms(store, dataset_id, True)
    forms = {"sourceForms": published["sourceForms"], "linkedForms": published["linkedForms"],
             "draftSourceForms": drafts["sourceForms"], "draftLinkedForms": drafts["linkedForms"]}
    return forms if any(forms.values()) else None


def delete_dataset(store: Store, dataset: sqlite3.Row) -> None:
    """Central refuses while forms use the list (409.21, 25-11)."""
    forms = dependent_forms(store, dataset["id"])
    if forms is not None:
        raise dataset_in_use(forms)
    with store.transaction():
        ids = [r["id"] for r in store.all("SELECT id FROM entities WHERE dataset_id = ?", dataset["id"])]
        for entity_id in ids:
            store.execute("DELETE FROM entity_defs WHERE entity_id = ?", entity_id)
        store.execute("DELETE FROM entities WHERE dataset_id = ?", dataset["id"])
        store.execute("DELETE FROM ds_property_fields WHERE property_id IN "
                      "(SELECT id FROM ds_properties WHERE dataset_id = ?)", dataset["id"])
        store.execute("DELETE FROM ds_properties WHERE dataset_id = ?", dataset["id"])
        store.execute("DELETE FROM dataset_sources WHERE dataset_id = ?", dataset["id"])
        store.execute("UPDATE form_attachments SET dataset_id = NULL WHERE dataset_id = ?", dataset["id"])
        store.execute("DELETE FROM datasets WHERE id = ?", dataset["id"])


def pending_submission_defs(store: Store, dataset: sqlite3.Row) -> list[sqlite3.Row]:
    """Current submission versions of the list's source forms not turned into entities yet."""
    return store.all(
        "SELECT d.id AS def_id, s.id AS submission_id, s.instance_id, s.form_id FROM submissions s "
        "JOIN submission_defs d ON d.submission_id = s.id AND d.current = 1 "
        "JOIN dataset_sources src ON src.form_def_id = d.form_def_id AND src.dataset_id = ? "
        "WHERE s.deleted_at IS NULL AND (s.review_state IS NULL OR s.review_state NOT IN ('approved', 'rejected')) "
        "AND d.id NOT IN (SELECT submission_def_id FROM entity_submissions) ORDER BY d.id",
        dataset["id"])


def set_approval_required(store: Store, dataset: sqlite3.Row, value: Any, convert: bool | None,
                          actor_id: int) -> None:
    """PATCH `approvalRequired`: not type-checked (`"yes"` is true, 25-10); turning it off with
    submissions pending needs `?convert=true|false` (400.29, 21-09/21-10)."""
    required = bool(value)
    if not required and dataset["approval_required"]:
        pending = pending_submission_defs(store, dataset)
        if pending and convert is None:
            raise pending_submissions(len(pending))
        if pending and convert:
            with store.transaction():
                for sub in pending:
                    event = store.one(
                        "SELECT * FROM audits WHERE action = 'submission.create' AND "
                        "json_extract(details_json, '$.submissionId') = ? ORDER BY id LIMIT 1",
                        sub["submission_id"])
                    process_submission(store, sub["def_id"], actor_id, event["id"] if event else None,
                                       force=True)
    with store.transaction():
        store.execute("UPDATE datasets SET approval_required = ? WHERE id = ?", int(required), dataset["id"])
        touch_dataset(store, dataset["id"])


# Entities: JSON shapes -----------------------------------------------------------------------


def get_entity(store: Store, dataset: sqlite3.Row, entity_uuid: str, deleted: bool = False) -> sqlite3.Row:
    if not UUID_V4.match(entity_uuid):
        raise invalid_uuid()
    row = store.one(
        f"SELECT * FROM entities WHERE dataset_id = ? AND uuid = ? AND deleted_at IS {'NOT ' if deleted else ''}NULL",
        dataset["id"], entity_uuid.lower())
    if row is None:
        raise problems.not_found()
    return row


def current_def(store: Store, entity_id: int) -> sqlite3.Row:
    row = store.one("SELECT * FROM entity_defs WHERE entity_id = ? AND current = 1", entity_id)
    assert row is not None
    return row


def _actor(store: Store, actor_id: int) -> dict[str, Any] | None:
    actor = directory.get_actor(store, actor_id)
    return directory.actor_json(actor) if actor is not None else None


def version_json(store: Store, version: sqlite3.Row, with_data: bool, extended: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "current": bool(version["current"]),
        "label": version["label"],
        "creatorId": version["creator_id"],
        "userAgent": version["user_agent"],
    }
    if with_data:
        body["data"] = json.loads(version["data_json"])
    body |= {"version": version["version"], "baseVersion": version["base_version"]}
    if with_data:
        body["dataReceived"] = json.loads(version["data_received_json"])
    body |= {
        "conflictingProperties": json.loads(version["conflicting_json"]) if version["conflicting_json"] else None,
        "createdAt": version["created_at"],
        "branchId": None,
        "trunkVersion": None,
        "branchBaseVersion": None,
    }
    if extended:
        body["creator"] = _actor(store, version["creator_id"])
    return body


def entity_json(store: Store, row: sqlite3.Row, with_data: bool, extended: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uuid": row["uuid"],
        "creatorId": row["creator_id"],
        "conflict": row["conflict"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "deletedAt": row["deleted_at"],
        "currentVersion": version_json(store, current_def(store, row["id"]), with_data, extended),
    }
    if extended:
        body["creator"] = _actor(store, row["creator_id"])
    return body


def audit_json(store: Store, audit: sqlite3.Row) -> dict[str, Any]:
    return {
        "actorId": audit["actor_id"],
        "action": audit["action"],
        "acteeId": audit["actee_id"],
        "details": json.loads(audit["details_json"] or "{}"),
        "loggedAt": audit["logged_at"],
        "notes": None,
        "actor": _actor(store, audit["actor_id"]) if audit["actor_id"] is not None else None,
    }


def source_json(store: Store, version: sqlite3.Row) -> dict[str, Any] | None:
    """What made a version: the event (with its actor) and, for a form, the submission (22-03, 28-10)."""
    audit = store.one("SELECT * FROM audits WHERE id = ?", version["source_audit_id"]) \
        if version["source_audit_id"] is not None else None
    event = audit_json(store, audit) if audit is not None else None
    submission = None
    if version["submission_def_id"] is not None:
        row = store.one(
            "SELECT s.*, f.xml_form_id, d.id AS def_id, d.instance_id AS def_instance_id, d.instance_name, "
            "d.submitter_id AS def_submitter_id, d.device_id AS def_device_id, d.user_agent AS def_user_agent, "
            "d.created_at AS def_created_at FROM submission_defs d JOIN submissions s ON s.id = d.submission_id "
            "JOIN forms f ON f.id = s.form_id WHERE d.id = ?", version["submission_def_id"])
        if row is not None:
            submission = {
                "xmlFormId": row["xml_form_id"], "instanceId": row["instance_id"],
                "submitterId": row["submitter_id"], "deviceId": row["device_id"], "createdAt": row["created_at"],
                "updatedAt": row["updated_at"], "reviewState": row["review_state"],
                "userAgent": row["user_agent"], "deletedAt": row["deleted_at"],
                "submitter": _actor(store, row["submitter_id"]),
                "currentVersion": {
                    "submitterId": row["def_submitter_id"], "createdAt": row["def_created_at"],
                    "instanceName": row["instance_name"], "instanceId": row["def_instance_id"], "current": True,
                    "deviceId": row["def_device_id"], "userAgent": row["def_user_agent"],
                    "submitter": _actor(store, row["def_submitter_id"]),
                },
            }
    if event is None and submission is None:
        return None
    return {"event": event, "submission": submission}


def versions_json(store: Store, entity: sqlite3.Row) -> list[dict[str, Any]]:
    """`/versions`, oldest first, with the conflict bookkeeping of each version (22-03, 23-08)."""
    rows = store.all("SELECT * FROM entity_defs WHERE entity_id = ? ORDER BY version", entity["id"])
    good = max((r["version"] for r in rows if r["conflict"] is None), default=None)
    conflict_from = min((r["base_version"] for r in rows if r["conflict"] is not None and
                         r["base_version"] is not None), default=None)
    out = []
    for r in rows:
        relevant = entity["conflict"] is not None and conflict_from is not None and r["version"] >= conflict_from
        out.append({
            "conflict": r["conflict"],
            "resolved": r["conflict"] is not None and entity["conflict"] is None,
            "baseDiff": json.loads(r["base_diff_json"]),
            "serverDiff": json.loads(r["server_diff_json"]),
            "lastGoodVersion": r["version"] == good,
            **version_json(store, r, with_data=True),
            "source": source_json(store, r),
            "relevantToConflict": relevant,
        })
    return out


def entity_audits_json(store: Store, entity: sqlite3.Row) -> list[dict[str, Any]]:
    """`…/entities/{uuid}/audits`: newest first, each with its actor and the source (28-11)."""
    rows = store.all(
        "SELECT * FROM audits WHERE action LIKE 'entity.%' AND json_extract(details_json, '$.entity.uuid') = ? "
        "ORDER BY id DESC", entity["uuid"])
    out = []
    for audit in rows:
        item = audit_json(store, audit)
        details = item["details"]
        version = store.one("SELECT * FROM entity_defs WHERE id = ?", details.get("entityDefId")) \
            if details.get("entityDefId") is not None else None
        if version is not None and version["submission_def_id"] is not None:
            item["details"] = {"source": source_json(store, version), **details}
        out.append(item)
    return out


# Entities: writing ----------------------------------------------------------------------------


def _check_values(data: Any, known: Iterable[str]) -> dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise not_a_string("data")
    known = set(known)
    for key, value in data.items():
        if not isinstance(value, str):
            raise not_a_string(key)
    for key in data:
        if key not in known:
            raise unknown_property(key)
    return dict(data)


def _received(label: str | None, data: Mapping[str, str]) -> dict[str, str]:
    return ({"label": label} if label is not None else {}) | dict(data)


def _insert_entity(store: Store, dataset: sqlite3.Row, entity_uuid: str, label: str, data: Mapping[str, str],
                   creator_id: int, user_agent: str | None, stamp: str, source_audit_id: int | None = None,
                   submission_def_id: int | None = None) -> tuple[int, int]:
    if store.one("SELECT 1 FROM entities WHERE uuid = ?", entity_uuid):
        raise duplicate_uuid(entity_uuid)
    entity_id = store.insert(
        "INSERT INTO entities (dataset_id, uuid, creator_id, created_at) VALUES (?, ?, ?, ?)",
        dataset["id"], entity_uuid, creator_id, stamp)
    def_id = store.insert(
        "INSERT INTO entity_defs (entity_id, version, current, label, data_json, data_received_json, creator_id, "
        "user_agent, source_audit_id, submission_def_id, created_at) VALUES (?, 1, 1, ?, ?, ?, ?, ?, ?, ?, ?)",
        entity_id, label, json.dumps(dict(data), ensure_ascii=False),
        json.dumps(_received(label, data), ensure_ascii=False), creator_id, user_agent, source_audit_id,
        submission_def_id, stamp)
    touch_dataset(store, dataset["id"], stamp)
    return entity_id, def_id


def _new_uuid(given: Any) -> str:
    if given is None:
        return str(uuidlib.uuid4())
    if not isinstance(given, str) or not UUID_V4.match(given):
        raise invalid_uuid()
    return given.lower()


def create_entity(store: Store, dataset: sqlite3.Row, body: Mapping[str, Any], actor_id: int,
                  user_agent: str | None) -> sqlite3.Row:
    """`POST …/entities {uuid?, label, data}` → the entity; 400.2, 400.11, 400.28, 409.3 (22-04 … 22-09)."""
    label = body.get("label")
    if not isinstance(label, str) or not label:
        raise problems.missing_parameter("label")
    data = _check_values(body.get("data"), property_names(store, dataset["id"]))
    entity_uuid = _new_uuid(body.get("uuid"))
    with store.transaction():
        stamp = now()
        entity_id, def_id = _insert_entity(store, dataset, entity_uuid, label, data, actor_id, user_agent, stamp)
        _entity_audit(store, actor_id, "entity.create", dataset, entity_uuid, entity_id, def_id, {})
    found = store.one("SELECT * FROM entities WHERE id = ?", entity_id)
    assert found is not None
    return found


def bulk_create(store: Store, dataset: sqlite3.Row, body: Mapping[str, Any], actor_id: int,
                user_agent: str | None) -> None:
    """`POST …/entities {entities:[…], source}`: all or nothing (27-11 … 27-17)."""
    items = body.get("entities")
    if not isinstance(items, list):
        raise problems.missing_parameter("entities")
    if not items:
        raise empty_entities()
    if not isinstance(body.get("source"), dict):
        raise problems.missing_parameter("source")
    known = property_names(store, dataset["id"])
    checked = []
    for item in items:
        item = item if isinstance(item, dict) else {}
        label = item.get("label")
        if not isinstance(label, str) or not label:
            raise problems.missing_parameter("label")
        checked.append((_new_uuid(item.get("uuid")), label, _check_values(item.get("data"), known)))
    with store.transaction():
        stamp = now()
        for entity_uuid, label, data in checked:
            _insert_entity(store, dataset, entity_uuid, label, data, actor_id, user_agent, stamp)
        _audit(store, actor_id, "entity.bulk.create", dataset["actee_id"],
               {"sourceId": None, "count": len(checked), "source": body.get("source")})


def update_entity(store: Store, dataset: sqlite3.Row, entity: sqlite3.Row, body: Mapping[str, Any],
                  query: Mapping[str, str], actor_id: int, user_agent: str | None) -> sqlite3.Row:
    """`PATCH …/entities/{uuid}?baseVersion=|force=|resolve=` (22-10 … 22-13, 23-11)."""
    current = current_def(store, entity["id"])
    force = query.get("force", "").lower() == "true"
    resolve = query.get("resolve", "").lower() == "true"
    provided = query.get("baseVersion")
    if not force and provided != str(current["version"]):
        raise stale_version(current["version"], provided)
    label = body.get("label")
    if label is not None and (not isinstance(label, str) or not label):
        raise problems.missing_parameter("label")
    data = _check_values(body.get("data"), property_names(store, dataset["id"]))
    stamp = now()
    with store.transaction():
        if resolve:
            store.execute("UPDATE entities SET conflict = NULL, updated_at = ? WHERE id = ?", stamp, entity["id"])
        if label is not None or data or not resolve:
            _new_version(store, dataset, entity, current, label, data, actor_id, user_agent, stamp,
                         base_version=current["version"])
        touch_dataset(store, dataset["id"], stamp)
    found = store.one("SELECT * FROM entities WHERE id = ?", entity["id"])
    assert found is not None
    return found


def _diff(before: Mapping[str, str], after: Mapping[str, str], label_before: str, label_after: str) -> list[str]:
    keys = [k for k in after if before.get(k) != after.get(k)]
    return keys + (["label"] if label_before != label_after else [])


def _new_version(store: Store, dataset: sqlite3.Row, entity: sqlite3.Row, current: sqlite3.Row, label: str | None,
                 data: Mapping[str, str], actor_id: int, user_agent: str | None, stamp: str, base_version: int,
                 source_audit_id: int | None = None, submission_def_id: int | None = None) -> int:
    """A new current version on top of the current one; a stale `base_version` flags a conflict."""
    old = json.loads(current["data_json"])
    merged = old | dict(data)
    new_label = label if label is not None else current["label"]
    conflict = conflicting = None
    base_diff = server_diff = []
    if submission_def_id is not None:
        base = store.one("SELECT * FROM entity_defs WHERE entity_id = ? AND version = ?", entity["id"], base_version)
        base_data = json.loads(base["data_json"]) if base is not None else old
        base_label = base["label"] if base is not None else current["label"]
        received = _received(label, data)
        base_diff = [k for k in received if (base_label if k == "label" else base_data.get(k)) != received[k]]
        server_diff = _diff(old, merged, current["label"], new_label)
        if base_version < current["version"]:
            changed_since: set[str] = set()
            for later in store.all("SELECT * FROM entity_defs WHERE entity_id = ? AND version > ?", entity["id"],
                                   base_version):
                changed_since.update(json.loads(later["data_received_json"]))
            conflicting = [k for k in received if k in changed_since]
            conflict = "hard" if conflicting else "soft"
    store.execute("UPDATE entity_defs SET current = 0 WHERE entity_id = ?", entity["id"])
    def_id = store.insert(
        "INSERT INTO entity_defs (entity_id, version, base_version, current, label, data_json, data_received_json, "
        "creator_id, user_agent, conflict, conflicting_json, base_diff_json, server_diff_json, source_audit_id, "
        "submission_def_id, created_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        entity["id"], current["version"] + 1, base_version, new_label, json.dumps(merged, ensure_ascii=False),
        json.dumps(_received(label, data), ensure_ascii=False), actor_id, user_agent, conflict,
        json.dumps(conflicting) if conflicting else None, json.dumps(base_diff), json.dumps(server_diff),
        source_audit_id, submission_def_id, stamp)
    store.execute("UPDATE entities SET updated_at = ?, conflict = coalesce(?, conflict) WHERE id = ?",
                  stamp, conflict, entity["id"])
    if submission_def_id is None:
        _entity_audit(store, actor_id, "entity.update.version", dataset, entity["uuid"], entity["id"], def_id, {})
    return def_id


def delete_entity(store: Store, dataset: sqlite3.Row, entity: sqlite3.Row, actor_id: int) -> None:
    with store.transaction():
        stamp = now()
        store.execute("UPDATE entities SET deleted_at = ? WHERE id = ?", stamp, entity["id"])
        touch_dataset(store, dataset["id"], stamp)
        _audit(store, actor_id, "entity.delete", dataset["actee_id"],
               {"entity": {"uuid": entity["uuid"], "dataset": dataset["name"]}})


def restore_entity(store: Store, dataset: sqlite3.Row, entity: sqlite3.Row, actor_id: int) -> None:
    """A single restore marks the entity updated (22-30), a bulk one does not (27-29)."""
    with store.transaction():
        stamp = now()
        store.execute("UPDATE entities SET deleted_at = NULL, updated_at = ? WHERE id = ?", stamp, entity["id"])
        touch_dataset(store, dataset["id"], stamp)
        _audit(store, actor_id, "entity.restore", dataset["actee_id"],
               {"entity": {"uuid": entity["uuid"], "dataset": dataset["name"]}})


def bulk_set_deleted(store: Store, dataset: sqlite3.Row, ids: Any, delete: bool, actor_id: int) -> int:
    """`bulk-delete` / `bulk-restore {"ids"}` → how many changed; unknown ids count 0 (27-24 … 27-28)."""
    if not isinstance(ids, list) or not ids:
        raise problems.missing_parameter("ids")
    wanted = [i.lower() for i in ids if isinstance(i, str)]
    with store.transaction():
        stamp = now()
        marks = ",".join("?" * len(wanted)) or "NULL"
        count = store.execute(
            f"UPDATE entities SET deleted_at = ? WHERE dataset_id = ? AND uuid IN ({marks}) "
            f"AND deleted_at IS {'' if delete else 'NOT '}NULL", stamp if delete else None, dataset["id"], *wanted)
        if count:
            touch_dataset(store, dataset["id"], stamp)
            _audit(store, actor_id, "entity.bulk.delete" if delete else "entity.bulk.restore",
                   dataset["actee_id"], {"count": count})
    return count


def _audit(store: Store, actor_id: int | None, action: str, actee_id: str | None, details: dict[str, Any]) -> int:
    return store.insert(
        "INSERT INTO audits (actor_id, action, actee_id, details_json, logged_at, processed_at) "
        "VALUES (?, ?, ?, ?, ?, ?)", actor_id, action, actee_id, json.dumps(details, ensure_ascii=False), now(), now())


def _entity_audit(store: Store, actor_id: int | None, action: str, dataset: sqlite3.Row, entity_uuid: str,
                  entity_id: int, def_id: int, extra: dict[str, Any]) -> int:
    details = {"entity": {"uuid": entity_uuid, "dataset": dataset["name"]}, "entityId": entity_id,
               "entityDefId": def_id, **extra}
    return _audit(store, actor_id, action, dataset["actee_id"], details)


# Entities from submissions (the worker's job) ------------------------------------------------


def _text(element: XmlElement | None) -> str | None:
    if element is None:
        return None
    return "".join(c for c in element.children if isinstance(c, str))


def _find(element: XmlElement, relative: str) -> XmlElement | None:
    found: XmlElement | None = element
    for part in relative.strip("/").split("/"):
        found = found.child(part) if found is not None else None
    return found


def _containers(root: XmlElement, container: str) -> list[XmlElement]:
    """The submission's elements at a declaration's container path (each repeat row)."""
    level = [root]
    for part in [p for p in container.split("/") if p]:
        level = [c for el in level for c in el.elements() if c.local == part]
    return level


def process_submission(store: Store, submission_def_id: int, actor_id: int | None, event_id: int | None,
                       force: bool = False) -> None:
    """Make or update the entities a submission version declares, once; failures are `entity.error`.

    The caller decides whether approval allows it (`force` skips the check, for `?convert=true`)."""
    if store.one(
        "SELECT 1 FROM submission_defs d WHERE d.id = ? AND EXISTS (SELECT 1 FROM dataset_sources s WHERE "
        "s.form_def_id = d.form_def_id) AND NOT EXISTS (SELECT 1 FROM entity_submissions e WHERE "
        "e.submission_def_id = d.id)", submission_def_id) is None:
        return  # its form version declares no entity list, or the work is done
    row = store.one(
        "SELECT d.*, s.review_state, s.form_id, s.id AS sub_id, f.project_id, fd.xml AS form_xml "
        "FROM submission_defs d JOIN submissions s ON s.id = d.submission_id JOIN forms f ON f.id = s.form_id "
        "JOIN form_defs fd ON fd.id = d.form_def_id WHERE d.id = ?", submission_def_id)
    if row is None:
        return
    declared = declarations(row["form_xml"])
    if not declared:
        return
    work = []
    for declaration in declared:
        dataset = store.one("SELECT * FROM datasets WHERE project_id = ? AND name = ?", row["project_id"],
                            declaration.dataset)
        if dataset is None:
            continue
        if dataset["approval_required"] and not force and row["review_state"] != "approved":
            return  # waits for approval (21-03)
        work.append((declaration, dataset))
    store.execute("INSERT INTO entity_submissions (submission_def_id) VALUES (?)", submission_def_id)
    root = parse_submission(row["xml"]).root
    stamp = now()
    for declaration, dataset in work:
        for container in _containers(root, declaration.container):
            entity_el = _find(container, "meta/entity")
            if entity_el is None or (entity_el.attr("dataset") or "") != declaration.dataset:
                continue
            try:
                _apply(store, dataset, declaration, container, entity_el, row, actor_id, event_id, stamp)
            except CentralProblem as problem:  # the submission stays; the failure is an audit (25-02)
                _audit(store, row["submitter_id"], "entity.error", None, {
                    "problem": {"problemCode": problem.code, "problemDetails": problem.details},
                    "errorMessage": problem.message, "submissionId": row["sub_id"],
                    "submissionDefId": submission_def_id})


def _flag(value: str | None) -> bool:
    return (value or "").strip() in ("1", "true")


def _apply(store: Store, dataset: sqlite3.Row, declaration: EntityDeclaration, container: XmlElement,
           entity_el: XmlElement, row: sqlite3.Row, actor_id: int | None, event_id: int | None, stamp: str) -> None:
    entity_uuid = (entity_el.attr("id") or "").strip().removeprefix("uuid:").lower()
    label_el = entity_el.child("label")
    label = _text(label_el)
    data: dict[str, str] = {}
    for prop, path in declaration.properties:
        relative = path[len(declaration.container):]
        value = _text(_find(container, relative))
        if value is not None:
            data[prop] = value
    audit_actor = actor_id if actor_id is not None else row["submitter_id"]
    link = {"submissionId": row["sub_id"], "submissionDefId": row["id"]}
    if _flag(entity_el.attr("update")):
        entity = store.one("SELECT * FROM entities WHERE dataset_id = ? AND uuid = ? AND deleted_at IS NULL",
                           dataset["id"], entity_uuid)
        if entity is None and not _flag(entity_el.attr("create")):
            raise unknown_entity(entity_uuid, dataset["name"])
        if entity is not None:
            current = current_def(store, entity["id"])
            base = (entity_el.attr("baseVersion") or "").strip()
            base_version = int(base) if base.isdigit() else current["version"]
            def_id = _new_version(store, dataset, entity, current, label or None, data, row["submitter_id"],
                                  row["user_agent"], stamp, base_version, event_id, row["id"])
            _entity_audit(store, audit_actor, "entity.update.version", dataset, entity_uuid, entity["id"], def_id, link)
            touch_dataset(store, dataset["id"], stamp)
            return
    if not _flag(entity_el.attr("create")):
        return
    if not label:
        raise problems.missing_parameter("label")
    if not UUID_V4.match(entity_uuid):
        raise invalid_uuid()
    if store.one("SELECT 1 FROM entities WHERE uuid = ?", entity_uuid):
        raise duplicate_uuid(entity_uuid, with_table=False)
    entity_id, def_id = _insert_entity(store, dataset, entity_uuid, label, data, row["submitter_id"],
                                       row["user_agent"], stamp, event_id, row["id"])
    _entity_audit(store, audit_actor, "entity.create", dataset, entity_uuid, entity_id, def_id, link)


def process_event(store: Store, action: str, details: Mapping[str, Any], actor_id: int | None,
                  event_id: int) -> None:
    """The worker's entity job for one audit event (Central's `lib/worker/entity.js`)."""
    def_id = details.get("submissionDefId")
    if def_id is None or action not in ("submission.create", "submission.update"):
        return
    if action == "submission.update" and details.get("reviewState") != "approved":
        return
    process_submission(store, int(def_id), actor_id, event_id)


# CSVs and OpenRosa ---------------------------------------------------------------------------


def live_entities(store: Store, dataset_id: int, where: str = "1", params: Iterable[Any] = ()) -> list[sqlite3.Row]:
    """Entities with their current version and creator, newest first (lists, CSVs, OData)."""
    return store.all(
        "SELECT e.*, d.label, d.data_json, d.version, a.display_name AS creator_name FROM entities e "
        "JOIN entity_defs d ON d.entity_id = e.id AND d.current = 1 LEFT JOIN actors a ON a.id = e.creator_id "
        f"WHERE e.dataset_id = ? AND ({where}) ORDER BY e.created_at DESC, e.id DESC", dataset_id, *params)


def _csv(header: list[str], rows: Iterable[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in r] for r in rows)
    return out.getvalue().encode("utf-8")


def export_csv(store: Store, dataset: sqlite3.Row, where: str = "e.deleted_at IS NULL",
               params: Iterable[Any] = ()) -> bytes:
    """`…/entities.csv`: the REST export (22-14)."""
    names = property_names(store, dataset["id"])
    header = ["__id", "label", *names, "__createdAt", "__creatorId", "__creatorName", "__updates", "__updatedAt",
              "__version"]
    rows = []
    for e in live_entities(store, dataset["id"], where, params):
        data = json.loads(e["data_json"])
        rows.append([e["uuid"], e["label"], *(data.get(n, "") for n in names), e["created_at"], e["creator_id"],
                     e["creator_name"], e["version"] - 1, e["updated_at"], e["version"]])
    return _csv(header, rows)


def attachment_csv(store: Store, dataset_id: int) -> bytes:
    """The CSV Collect downloads for an entity-list attachment (23-05): `name,label,__version,…`."""
    names = property_names(store, dataset_id)
    rows = []
    for e in live_entities(store, dataset_id, "e.deleted_at IS NULL"):
        data = json.loads(e["data_json"])
        rows.append([e["uuid"], e["label"], e["version"], *(data.get(n, "") for n in names)])
    return _csv(["name", "label", "__version", *names], rows)


def attachment_md5(store: Store, dataset_id: int) -> str:
    """The manifest hash and download ETag of a linked list: it changes whenever the CSV does."""
    return hashlib.md5(attachment_csv(store, dataset_id)).hexdigest()


def integrity_xml(store: Store, dataset: sqlite3.Row, ids: list[str] | None) -> str:
    """`…/datasets/{name}/integrity[?id=a,b]`: every entity, deleted ones too (24-14, 24-15)."""
    rows = store.all("SELECT uuid, deleted_at FROM entities WHERE dataset_id = ? ORDER BY uuid", dataset["id"])
    wanted = {i.strip().lower() for i in ids} if ids is not None else None
    parts = [
        f'      <entity id="{r["uuid"]}">\n        <deleted>{"true" if r["deleted_at"] else "false"}</deleted>\n'
        "      </entity>\n"
        for r in rows if wanted is None or r["uuid"] in wanted
    ]
    return ('<?xml version="1.0" encoding="UTF-8"?>\n  <data>\n    <entities>\n' + "".join(parts)
            + "    </entities>\n  </data>")
