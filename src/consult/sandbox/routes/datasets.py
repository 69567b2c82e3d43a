"""Entity lists: datasets, properties, entities (REST, CSV, integrity) and their OData service."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import directory, entities, problems
from ..odata import (
    ODataError,
    compile_filter,
    compile_orderby,
    decode_skiptoken,
    next_link,
    odata_page_json,
    to_json,
)
from ..responses import (
    JSON_TYPE,
    OPENROSA_HEADERS,
    READ_HEADERS,
    TEXT_XML_TYPE,
    XML_TYPE,
    body_response,
    content_disposition,
    json_response,
    success,
)
from ..state import current_actor, int_param, is_extended, is_true, json_body, require_user, sandbox
from ..xform import _EDMX_PRIMARY_ANNOTATIONS_A, _EDMX_PRIMARY_ANNOTATIONS_B
from .odata_feed import odata

CSV_TYPE = "text/csv; charset=utf-8"
SYSTEM_COLUMNS = {"createdAt": "e.created_at", "updatedAt": "e.updated_at", "deletedAt": "e.deleted_at",
                  "creatorId": "e.creator_id", "conflict": "e.conflict"}
"""The entity `__system` fields a `$filter`/`$orderby` may use, and their columns."""
SELECTABLE_SYSTEM = ("createdAt", "creatorId", "creatorName", "updatedAt", "deletedAt", "conflict")


def _dataset(request: Request) -> sqlite3.Row:
    return entities.get_dataset(sandbox(request).store, int_param(request, "project_id"),
                                request.path_params["name"])


def _entity(request: Request, dataset: sqlite3.Row, deleted: bool = False) -> sqlite3.Row:
    return entities.get_entity(sandbox(request).store, dataset, request.path_params["uuid"], deleted)


# Datasets ------------------------------------------------------------------------------------


async def list_datasets(request: Request) -> Response:
    require_user(request)
    store = sandbox(request).store
    project_id = int_param(request, "project_id")
    directory.get_project(store, project_id)
    rows = store.all("SELECT * FROM datasets WHERE project_id = ? ORDER BY name", project_id)
    extended = is_extended(request)
    body = [entities.dataset_summary_json(r) | (entities.dataset_stats(store, r["id"]) if extended else {})
            for r in rows]
    return json_response(body, request.method)


async def create_dataset(request: Request) -> Response:
    require_user(request)
    store = sandbox(request).store
    body = await json_body(request)
    row = entities.create_dataset(store, int_param(request, "project_id"), body.get("name"))
    return json_response(entities.dataset_json(store, row, False), request.method)


async def get_dataset(request: Request) -> Response:
    require_user(request)
    store = sandbox(request).store
    return json_response(entities.dataset_json(store, _dataset(request), is_extended(request)), request.method)


async def patch_dataset(request: Request) -> Response:
    actor = require_user(request)
    store = sandbox(request).store
    dataset = _dataset(request)
    body = await json_body(request)
    convert_param = request.query_params.get("convert")
    convert = None if convert_param is None else is_true(convert_param)
    if "approvalRequired" in body:
        entities.set_approval_required(store, dataset, body["approvalRequired"], convert, actor.id)
    return json_response(entities.dataset_json(store, _dataset(request), False), request.method)


async def delete_dataset(request: Request) -> Response:
    require_user(request)
    entities.delete_dataset(sandbox(request).store, _dataset(request))
    return success(request.method)


async def add_property(request: Request) -> Response:
    require_user(request)
    body = await json_body(request)
    entities.add_property(sandbox(request).store, _dataset(request), body.get("name"))
    return success(request.method)


# Entities ------------------------------------------------------------------------------------


async def list_entities(request: Request) -> Response:
    require_user(request)
    store = sandbox(request).store
    dataset = _dataset(request)
    deleted = is_true(request.query_params.get("deleted"))
    rows = entities.live_entities(store, dataset["id"], f"e.deleted_at IS {'NOT ' if deleted else ''}NULL")
    extended = is_extended(request)
    return json_response([entities.entity_json(store, r, False, extended) for r in rows], request.method)


async def create_entities(request: Request) -> Response:
    """One entity (`{uuid?, label, data}` → the entity) or a bulk (`{entities, source}` → success)."""
    actor = require_user(request)
    store = sandbox(request).store
    dataset = _dataset(request)
    body = await json_body(request)
    agent = request.headers.get("user-agent")
    if "entities" in body:
        entities.bulk_create(store, dataset, body, actor.id, agent)
        return success(request.method)
    row = entities.create_entity(store, dataset, body, actor.id, agent)
    return json_response(entities.entity_json(store, row, True), request.method)


async def get_entity(request: Request) -> Response:
    require_user(request)
    store = sandbox(request).store
    row = _entity(request, _dataset(request))
    return json_response(entities.entity_json(store, row, True, is_extended(request)), request.method)


async def entity_versions(request: Request) -> Response:
    require_user(request)
    store = sandbox(request).store
    return json_response(entities.versions_json(store, _entity(request, _dataset(request))), request.method)


async def entity_audits(request: Request) -> Response:
    require_user(request)
    store = sandbox(request).store
    return json_response(entities.entity_audits_json(store, _entity(request, _dataset(request))),
                         request.method)


async def patch_entity(request: Request) -> Response:
    actor = require_user(request)
    store = sandbox(request).store
    dataset = _dataset(request)
    entity = _entity(request, dataset)
    body = await json_body(request)
    row = entities.update_entity(store, dataset, entity, body, dict(request.query_params), actor.id,
                                 request.headers.get("user-agent"))
    return json_response(entities.entity_json(store, row, True), request.method)


async def delete_entity(request: Request) -> Response:
    actor = require_user(request)
    dataset = _dataset(request)
    entities.delete_entity(sandbox(request).store, dataset, _entity(request, dataset), actor.id)
    return success(request.method)


async def restore_entity(request: Request) -> Response:
    actor = require_user(request)
    dataset = _dataset(request)
    entities.restore_entity(sandbox(request).store, dataset, _entity(request, dataset, deleted=True), actor.id)
    return success(request.method)


async def bulk_delete(request: Request) -> Response:
    actor = require_user(request)
    body = await json_body(request)
    count = entities.bulk_set_deleted(sandbox(request).store, _dataset(request), body.get("ids"), True, actor.id)
    return json_response({"count": count}, request.method)


async def bulk_restore(request: Request) -> Response:
    actor = require_user(request)
    body = await json_body(request)
    count = entities.bulk_set_deleted(sandbox(request).store, _dataset(request), body.get("ids"), False, actor.id)
    return json_response({"count": count}, request.method)


def csv_response(body: bytes, filename: str, etag: str | None, extra: dict[str, str] | None = None) -> Response:
    headers = dict(READ_HEADERS) | (extra or {})
    if etag is not None:
        headers["ETag"] = etag
    headers["Content-Disposition"] = content_disposition("attachment", filename)
    return Response(body, headers=headers, media_type=CSV_TYPE)


async def entities_csv(request: Request) -> Response:
    """The REST export: a strong ETag of its content, none when filtered (22-14, 27-29)."""
    require_user(request)
    store = sandbox(request).store
    dataset = _dataset(request)
    text = request.query_params.get("$filter")
    where, params = compile_filter(text, SYSTEM_COLUMNS)
    body = entities.export_csv(store, dataset, where, params)
    etag = None if text is not None else f'"{hashlib.md5(body).hexdigest()}"'
    return csv_response(body, f"{dataset['name']}.csv", etag)


async def integrity(request: Request) -> Response:
    """What Collect asks, with its app-user key, to drop entities deleted since its last download."""
    actor = current_actor(request)
    store = sandbox(request).store
    dataset = _dataset(request)
    if actor.is_app_user and actor.project_id != dataset["project_id"]:
        raise problems.insufficient_rights()
    ids = request.query_params.get("id")
    body = entities.integrity_xml(store, dataset, ids.split(",") if ids is not None else None)
    return body_response(body.encode(), TEXT_XML_TYPE, request.method, extra=dict(OPENROSA_HEADERS))


# OData ---------------------------------------------------------------------------------------


def _service_root(dataset: sqlite3.Row) -> str:
    return f"/v1/projects/{dataset['project_id']}/datasets/{dataset['name']}.svc"


@odata
async def service_document(request: Request) -> Response:
    require_user(request)
    dataset = _dataset(request)
    body = {"@odata.context": f"{sandbox(request).domain}{_service_root(dataset)}/$metadata",
            "value": [{"name": "Entities", "kind": "EntitySet", "url": "Entities"}]}
    return json_response(body, request.method, extra={"Content-Type": JSON_TYPE + "; odata.metadata=minimal"})


_EDMX_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
              '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">\n'
              '  <edmx:DataServices>\n'
              '    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="org.opendatakit.entit'
              'y">\n'
              '      <ComplexType Name="metadata">\n'
              '        <Property Name="createdAt" Type="Edm.DateTimeOffset"/>\n'
              '        <Property Name="creatorId" Type="Edm.String"/>\n'
              '        <Property Name="creatorName" Type="Edm.String"/>        \n'
              '        <Property Name="updates" Type="Edm.Int64"/>\n'
              '        <Property Name="updatedAt" Type="Edm.DateTimeOffset"/>\n'
              '        <Property Name="deletedAt" Type="Edm.DateTimeOffset"/>\n'
              '        <Property Name="version" Type="Edm.Int64"/>\n'
              '        <Property Name="conflict" Type="Edm.String"/>\n'
              '      </ComplexType>\n'
              '    </Schema>\n'
              '    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="org.opendatakit.user.'
              '{name}">    \n'
              '      <EntityType Name="Entities">\n'
              '        <Key><PropertyRef Name="__id"/></Key>\n'
              '        <Property Name="__id" Type="Edm.String"/>\n'
              '        <Property Name="__system" Type="org.opendatakit.entity.metadata"/>\n'
              '        <Property Name="label" Type="Edm.String"/>\n'
              '{properties}      </EntityType>    \n'
              '      <EntityContainer Name="{name}">      \n'
              '        <EntitySet Name="Entities" EntityType="org.opendatakit.user.{name}.Entities">       '
              '   \n'
              + _EDMX_PRIMARY_ANNOTATIONS_A + "{paths}" + _EDMX_PRIMARY_ANNOTATIONS_B
              + '          <Annotation Term="Org.OData.Capabilities.V1.SearchRestrictions">\n'
                '            <Record>\n'
                '              <PropertyValue Property="Searchable" Bool="true" />\n'
                '              <PropertyValue Property="UnsupportedExpressions">\n'
                '              <Collection>\n'
                '                <EnumMember>Org.OData.Capabilities.V1.SearchExpressions/And</EnumMember>\n'
                '                <EnumMember>Org.OData.Capabilities.V1.SearchExpressions/Not</EnumMember>\n'
                '                <EnumMember>Org.OData.Capabilities.V1.SearchExpressions/Group</EnumMember>'
                '\n'
                '              </Collection>\n'
                '            </PropertyValue>\n'
                '            </Record>\n'
                '          </Annotation>\n'
                '        </EntitySet>\n'
                '      </EntityContainer>\n'
                '    </Schema>\n'
                '  </edmx:DataServices>\n'
                '</edmx:Edmx>')
"""The entity list's `$metadata` (22-23), with the capability annotations of a form's (`xform.py`)."""


@odata
async def metadata(request: Request) -> Response:
    require_user(request)
    dataset = _dataset(request)
    names = entities.property_names(sandbox(request).store, dataset["id"])
    body = (_EDMX_HEAD.replace("{name}", dataset["name"])
            .replace("{properties}", "".join(f'        <Property Name="{n}" Type="Edm.String"/>\n' for n in names))
            .replace("{paths}", "".join(f"                  <PropertyPath>{n}</PropertyPath>\n" for n in names)))
    return body_response(body.encode(), XML_TYPE, request.method)


def _not_found_property(name: str) -> ODataError:
    return ODataError(400, 400.23, f"Could not find a property named '{name}'", {"property": name})


def _selection(select: str | None, names: list[str]) -> tuple[bool, set[str], set[str] | None] | None:
    """`$select` → (with __id, properties, __system fields or None for all); None selects everything."""
    if select is None or select.strip() == "*":
        return None
    with_id, props, system = False, set(), set()
    whole_system = False
    for part in (p.strip() for p in select.split(",")):
        if part == "__id":
            with_id = True
        elif part == "__system":
            whole_system = True
        elif part.startswith("__system/") and part.removeprefix("__system/") in SELECTABLE_SYSTEM:
            system.add(part.removeprefix("__system/"))
        elif part in names:
            props.add(part)
        else:
            raise _not_found_property(part)
    return with_id, props, (None if whole_system else system)


def _row(entity: sqlite3.Row, names: list[str], selection: tuple[bool, set[str], set[str] | None] | None) -> str:
    data = json.loads(entity["data_json"])
    system = {"createdAt": entity["created_at"], "creatorId": str(entity["creator_id"]),
              "creatorName": entity["creator_name"], "updates": entity["version"] - 1,
              "updatedAt": entity["updated_at"], "version": entity["version"], "conflict": entity["conflict"]}
    if selection is None:
        row: dict[str, Any] = {"__id": entity["uuid"], "label": entity["label"], "__system": system}
        row |= {n: data.get(n, "") for n in names}
        return to_json(row)
    with_id, props, fields = selection
    row = {"__id": entity["uuid"]} if with_id else {}
    if fields is None:
        row["__system"] = system
    elif fields:
        row["__system"] = {k: v for k, v in system.items() if k in fields}
    row |= {n: data.get(n, "") for n in names if n in props}
    return to_json(row)


@odata
async def entities_feed(request: Request) -> Response:
    """`Entities`: newest first, `$filter`/`$orderby` on `__system`, paging by skiptoken, no ETag (22-24)."""
    require_user(request)
    box = sandbox(request)
    dataset = _dataset(request)
    query = request.query_params
    names = entities.property_names(box.store, dataset["id"])
    where, params = compile_filter(query.get("$filter"), SYSTEM_COLUMNS)
    order = query.get("$orderby")
    order_sql = compile_orderby(order, SYSTEM_COLUMNS, "e.id") if order else "ORDER BY e.created_at DESC, e.id DESC"
    selection = _selection(query.get("$select"), names)
    rows = box.store.all(
        "SELECT e.*, d.label, d.data_json, d.version, a.display_name AS creator_name FROM entities e "
        "JOIN entity_defs d ON d.entity_id = e.id AND d.current = 1 LEFT JOIN actors a ON a.id = e.creator_id "
        f"WHERE e.dataset_id = ? AND ({where}) {order_sql}", dataset["id"], *params)
    total = len(rows)
    token = query.get("$skiptoken")
    if token is not None:
        wanted = decode_skiptoken(token).get("uuid")
        index = next((i for i, r in enumerate(rows) if r["uuid"] == wanted), None)
        rows = rows[index + 1:] if index is not None else []
    else:
        skip = query.get("$skip")
        rows = rows[int(skip):] if skip and skip.isdigit() else rows
    top = query.get("$top")
    link = None
    if top is not None and top.isdigit() and len(rows) > int(top):
        rows = rows[: int(top)]
        link = next_link(box.domain, request.url.path, request.url.query, {"uuid": rows[-1]["uuid"]})
    count = total if query.get("$count", "").lower() == "true" else None
    body = odata_page_json([_row(r, names, selection) for r in rows], domain=box.domain,
                           service_root=_service_root(dataset), table="Entities", next_url=link, count=count)
    headers = dict(READ_HEADERS)
    return Response(body.encode(), headers=headers, media_type=JSON_TYPE)


_DATASETS = "/v1/projects/{project_id}/datasets"
_DATASET = _DATASETS + "/{name}"
_SVC = _DATASETS + "/{name}.svc"
_ENTITY = _DATASET + "/entities/{uuid}"
routes = [
    Route(_SVC, service_document, methods=["GET"]),
    Route(f"{_SVC}/$metadata", metadata, methods=["GET"]),
    Route(f"{_SVC}/Entities", entities_feed, methods=["GET"]),
    Route(_DATASETS, list_datasets, methods=["GET"]),
    Route(_DATASETS, create_dataset, methods=["POST"]),
    Route(_DATASET, get_dataset, methods=["GET"]),
    Route(_DATASET, patch_dataset, methods=["PATCH"]),
    Route(_DATASET, delete_dataset, methods=["DELETE"]),
    Route(f"{_DATASET}/properties", add_property, methods=["POST"]),
    Route(f"{_DATASET}/integrity", integrity, methods=["GET"]),
    Route(f"{_DATASET}/entities.csv", entities_csv, methods=["GET"]),
    Route(f"{_DATASET}/entities", list_entities, methods=["GET"]),
    Route(f"{_DATASET}/entities", create_entities, methods=["POST"]),
    Route(f"{_DATASET}/entities/bulk-delete", bulk_delete, methods=["POST"]),
    Route(f"{_DATASET}/entities/bulk-restore", bulk_restore, methods=["POST"]),
    Route(_ENTITY, get_entity, methods=["GET"]),
    Route(_ENTITY, patch_entity, methods=["PATCH"]),
    Route(_ENTITY, delete_entity, methods=["DELETE"]),
    Route(f"{_ENTITY}/versions", entity_versions, methods=["GET"]),
    Route(f"{_ENTITY}/audits", entity_audits, methods=["GET"]),
    Route(f"{_ENTITY}/restore", restore_entity, methods=["POST"]),
]
