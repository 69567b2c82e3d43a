"""Entity lists on ODK Central: what the forms declare, the lists' settings, and the entity calls.

The forms say which lists they fill (`<entity dataset=…>`, `entities:saveto` on binds) and
which they read (a `jr://file-csv/<list>.csv` instance, then `instance('<list>')/root/item…`):
deploy orders and checks forms by that. The calls go through pyodk's `entities` and
`entity_lists` where it has a method; where it has none the raw request says so.
"""

from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consult.central.session import CentralError, CentralSession, call_pyodk

ENTITIES_NS = "http://www.opendatakit.org/xforms/entities"
XFORMS_NS = "http://www.w3.org/2002/xforms"
BUILT_IN_COLUMNS = frozenset({"name", "label"})
"""Columns every entity CSV has besides the properties (and the `__version`-like ones)."""
_CSV_INSTANCE = re.compile(r"^jr://file-csv/(?P<file>.+\.csv)$")
_ITEM_PATH = re.compile(r"instance\(\s*'(?P<list>[^']+)'\s*\)/root/item(?P<rest>(?:\[[^\]]*\])*(?:/[\w.:-]+)?)")
_PULLDATA = re.compile(r"pulldata\(\s*'(?P<list>[^']+)'\s*,\s*'(?P<prop>[^']+)'\s*,\s*'(?P<key>[^']+)'")
_PREDICATE_NAME = re.compile(r"(?<![\w/$@.:'\"-])([A-Za-z_][\w.-]*)(?![\w.-]*\s*\()")
_XPATH_WORDS = frozenset({"and", "or", "div", "mod"})


class EntityListError(ValueError):
    """The forms and the entity lists do not fit together; the message names the form and field."""


# --- configuration (forms/consult.toml) -------------------------------------------------------------


@dataclass(frozen=True)
class EntityListSettings:
    """`[entity_lists.<name>]` in forms/consult.toml."""

    name: str
    approval_required: bool = False
    """Central's default: an entity is made as soon as the submission arrives."""
    convert_pending: bool = False
    """When turning approval off, make entities of the submissions still waiting (Central's `?convert=true`)."""


def read_entity_list_settings(path: Path) -> dict[str, EntityListSettings]:
    """The lists configured in `path` (a missing file configures none)."""
    if not path.is_file():
        return {}
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8")).get("entity_lists", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EntityListError(f"{path}: not valid TOML: {exc}") from None
    settings: dict[str, EntityListSettings] = {}
    for name, table in tables.items():
        values = table if isinstance(table, dict) else {}
        unknown = set(values) - {"approval_required", "convert_pending"}
        flags = [values.get(k, False) for k in ("approval_required", "convert_pending")]
        if not isinstance(table, dict) or unknown or not all(isinstance(f, bool) for f in flags):
            raise EntityListError(f"{path}: [entity_lists.{name}] takes approval_required = true|false and "
                                  "convert_pending = true|false only")
        settings[name] = EntityListSettings(name, *flags)
    return settings


# --- what a form declares ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ListRead:
    """A field of a form that reads a property of an entity list."""

    list_name: str
    field: str
    prop: str


@dataclass(frozen=True)
class FormEntities:
    """The entity lists one XForm fills and reads."""

    form_id: str
    creates: frozenset[str] = frozenset()
    updates: frozenset[str] = frozenset()
    saves: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """List → the properties its `save_to` fields write."""
    csv_files: frozenset[str] = frozenset()
    """Every `<name>.csv` the form reads as a secondary instance: an entity list when a list has that name."""
    reads: tuple[ListRead, ...] = ()

    @property
    def sources(self) -> frozenset[str]:
        return self.creates | self.updates


def form_entities(form_id: str, xform: str) -> FormEntities:
    """Read the entity declarations and the list reads of an XForm."""
    root = ET.fromstring(xform)
    creates: set[str] = set()
    updates: set[str] = set()
    for entity in root.iter(f"{{{XFORMS_NS}}}entity"):
        dataset = entity.get("dataset")
        if dataset and entity.get("create") is not None:
            creates.add(dataset)
        if dataset and entity.get("update") is not None:
            updates.add(dataset)
    saved = frozenset(b.get(f"{{{ENTITIES_NS}}}saveto") for b in root.iter(f"{{{XFORMS_NS}}}bind")
                      if b.get(f"{{{ENTITIES_NS}}}saveto"))
    csv_files = frozenset(match["file"] for i in root.iter(f"{{{XFORMS_NS}}}instance")
                          if (match := _CSV_INSTANCE.match(i.get("src") or "")))
    return FormEntities(form_id, frozenset(creates), frozenset(updates),
                        {name: saved for name in creates | updates}, csv_files, tuple(_reads(root)))


def _reads(root: ET.Element) -> Iterator[ListRead]:
    """Properties read by binds (calculate, relevant, constraint…) and by choice lists (itemsets)."""
    for bind in root.iter(f"{{{XFORMS_NS}}}bind"):
        name = (bind.get("nodeset") or "").rstrip("/").rsplit("/", 1)[-1]
        for attribute, value in bind.attrib.items():
            if attribute != "nodeset":
                yield from _props_in(name, value)
    for control in root.iter():
        itemset = control.find(f"{{{XFORMS_NS}}}itemset")
        if itemset is None:
            continue
        name = (control.get("ref") or "").rsplit("/", 1)[-1]
        nodeset = itemset.get("nodeset") or ""
        yield from _props_in(name, nodeset)
        match = _ITEM_PATH.search(nodeset)
        if match:
            for child in itemset:
                ref = child.get("ref") or ""
                if re.fullmatch(r"[A-Za-z_][\w.-]*", ref):
                    yield ListRead(match["list"], name, ref)


def _props_in(field_name: str, expression: str) -> Iterator[ListRead]:
    for match in _ITEM_PATH.finditer(expression):
        rest = match["rest"]
        for predicate in re.findall(r"\[([^\]]*)\]", rest):
            predicate = re.sub(r"'[^']*'|\"[^\"]*\"", "''", predicate)
            for name in _PREDICATE_NAME.findall(predicate):
                if name not in _XPATH_WORDS:
                    yield ListRead(match["list"], field_name, name)
        if "/" in rest.rsplit("]", 1)[-1]:
            yield ListRead(match["list"], field_name, rest.rsplit("/", 1)[-1])
    for match in _PULLDATA.finditer(expression):
        yield ListRead(match["list"], field_name, match["prop"])
        yield ListRead(match["list"], field_name, match["key"])


def is_property(name: str) -> bool:
    """False for the columns Central adds to every entity CSV (`name`, `label`, `__version`…)."""
    return name not in BUILT_IN_COLUMNS and not name.startswith("__")


# --- entity lists on Central ------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteList:
    """An entity list as Central holds it."""

    name: str
    approval_required: bool
    properties: tuple[str, ...]


def remote_lists(central: CentralSession, project_id: int) -> dict[str, RemoteList]:
    lists = call_pyodk(central.client.entity_lists.list, project_id=project_id)
    return {item.name: remote_list(central, project_id, item.name) for item in lists}


def remote_list(central: CentralSession, project_id: int, name: str) -> RemoteList:
    """pyodk's `entity_lists.get` models a property's `forms` as strings, and Central sends objects
    (`{xmlFormId, name}`), so its parse fails: the dataset is read raw."""
    item = dataset_json(central, project_id, name)
    return RemoteList(item["name"], item.get("approvalRequired") is True,
                      tuple(p["name"] for p in item.get("properties") or ()))


def dataset_json(central: CentralSession, project_id: int, name: str) -> dict[str, Any]:
    """The full dataset JSON: pyodk's EntityList drops `sourceForms`, so this is a raw GET."""
    return central.json("GET", central.http.urlformat("projects/{pid}/datasets/{name}", pid=project_id,
                                                      name=name))


@dataclass(frozen=True)
class ApprovalChange:
    list_name: str
    approval_required: bool
    converted: bool = False


def set_approval(central: CentralSession, project_id: int, setting: EntityListSettings) -> ApprovalChange | None:
    """Make the list's `approvalRequired` what the configuration says; None when it already is.

    pyodk's `entity_lists` has no update method, so the PATCH is a raw request."""
    current = remote_list(central, project_id, setting.name)
    if current.approval_required == setting.approval_required:
        return None
    path = central.http.urlformat("projects/{pid}/datasets/{name}", pid=project_id, name=setting.name)
    params = {"convert": "true"} if setting.convert_pending and not setting.approval_required else None
    try:
        central.json("PATCH", path, params=params, json={"approvalRequired": setting.approval_required})
    except CentralError as exc:
        if exc.code == 400.29:
            count = (exc.details or {}).get("count", "some")
            raise EntityListError(
                f"entity list {setting.name}: {count} submission(s) still wait for approval, so approval cannot be "
                f"turned off: approve or reject them in Central, or set convert_pending = true under "
                f"[entity_lists.{setting.name}] in forms/consult.toml to make entities of them") from None
        raise
    return ApprovalChange(setting.name, setting.approval_required, params is not None)


# --- entities ---------------------------------------------------------------------------------------


def entity_uuids(central: CentralSession, project_id: int, list_name: str) -> set[str]:
    """Every uuid the list holds, deleted ones too (a new entity with a deleted one's uuid is a 409.3)."""
    live = call_pyodk(central.client.entities.list, entity_list_name=list_name, project_id=project_id)
    return {e.uuid for e in live} | {e["uuid"] for e in deleted_entities(central, project_id, list_name)}


def deleted_entities(central: CentralSession, project_id: int, list_name: str) -> list[dict[str, Any]]:
    """The deleted entities with their `deletedAt` (pyodk's `entities.list` has no `deleted` flag: raw GET)."""
    path = central.http.urlformat("projects/{pid}/datasets/{name}/entities", pid=project_id, name=list_name)
    return central.json("GET", path, params={"deleted": "true"})


def create_entities(central: CentralSession, project_id: int, list_name: str, entities: list[dict[str, Any]],
                    source: str) -> None:
    """One bulk create (all or nothing). pyodk's `create_many` cannot send uuids, which make a rerun
    idempotent, so this is a raw POST of Central's bulk body."""
    path = central.http.urlformat("projects/{pid}/datasets/{name}/entities", pid=project_id, name=list_name)
    central.json("POST", path, json={"entities": entities, "source": {"name": source, "size": len(entities)}})


def entity_pages(central: CentralSession, project_id: int, list_name: str, filter: str | None = None,
                 page_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
    """OData rows of the list, page by page. pyodk's `get_table` gives the first page; it does not
    follow `@odata.nextLink`, so the next pages are raw GETs of that link."""
    page = call_pyodk(central.client.entities.get_table, entity_list_name=list_name, project_id=project_id,
                      top=page_size, filter=filter)
    while True:
        yield page["value"]
        link = page.get("@odata.nextLink")
        if not link:
            return
        page = central.json("GET", link)


def entity_versions(central: CentralSession, project_id: int, list_name: str, uuid: str) -> list[dict[str, Any]]:
    """Every version of an entity, oldest first (pyodk has no versions method: raw GET)."""
    path = central.http.urlformat("projects/{pid}/datasets/{name}/entities/{uuid}/versions", pid=project_id,
                                  name=list_name, uuid=uuid)
    return central.json("GET", path)


def entity_json(central: CentralSession, project_id: int, list_name: str, uuid: str) -> dict[str, Any] | None:
    """One entity with its current data; None when gone (pyodk has no get method: raw GET)."""
    path = central.http.urlformat("projects/{pid}/datasets/{name}/entities/{uuid}", pid=project_id,
                                  name=list_name, uuid=uuid)
    try:
        return central.json("GET", path)
    except CentralError as exc:
        if exc.status == 404:
            return None
        raise


def submission_audits(central: CentralSession, project_id: int, form_id: str, instance_id: str) -> list[dict]:
    """A submission's audit log, where `entity.error` shows (pyodk has no audits method: raw GET)."""
    path = central.http.urlformat("projects/{pid}/forms/{fid}/submissions/{iid}/audits", pid=project_id,
                                  fid=form_id, iid=instance_id)
    return central.json("GET", path)
