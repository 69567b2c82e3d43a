"""Forms: upload, list, get, XML, fields, versions, drafts, publishing and media."""

from __future__ import annotations

import hashlib
import sqlite3

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import catalog, directory, entities, ingest, problems
from ..responses import XML_TYPE, binary_response, body_response, json_response, success
from ..state import current_actor, int_param, is_extended, is_true, json_body, require_user, sandbox
from .datasets import csv_response


def _form(request: Request) -> sqlite3.Row:
    return catalog.get_form(
        sandbox(request).store, int_param(request, "project_id"), request.path_params["xml_form_id"]
    )


def _visible_form(request: Request) -> sqlite3.Row:
    """A form the caller may read: app users only see what they are assigned."""
    actor = current_actor(request)
    form = _form(request)
    if not catalog.can_see(sandbox(request).store, actor, form):
        raise problems.insufficient_rights() if not actor.is_app_user else problems.not_found()
    return form


def _version_def(request: Request, form: sqlite3.Row) -> sqlite3.Row:
    found = catalog.def_by_version(sandbox(request).store, form, request.path_params["version"])
    if found is None:
        raise problems.not_found()
    return found


def _form_response(request: Request, form: sqlite3.Row, def_row: sqlite3.Row, single: bool) -> Response:
    store = sandbox(request).store
    if is_extended(request):
        body = catalog.form_extended_json(store, form, def_row)
        if single:
            body["publishNotes"] = None
    else:
        body = catalog.form_json(form, def_row)
    return json_response(body, request.method)


async def list_forms(request: Request) -> Response:
    require_user(request)
    store = sandbox(request).store
    project_id = int_param(request, "project_id")
    directory.get_project(store, project_id)
    rows = store.all(
        "SELECT * FROM forms WHERE project_id = ? AND deleted_at IS NULL ORDER BY xml_form_id", project_id
    )
    body = []
    for row in rows:
        def_row = catalog.shown_def(store, row)
        body.append(
            catalog.form_extended_json(store, row, def_row)
            if is_extended(request)
            else catalog.form_json(row, def_row)
        )
    return json_response(body, request.method)


async def create_form(request: Request) -> Response:
    actor = require_user(request)
    store = sandbox(request).store
    publish = is_true(request.query_params.get("publish"))
    form = catalog.create_form(store, int_param(request, "project_id"), await request.body(), publish, actor)
    return json_response(catalog.form_json(form, catalog.shown_def(store, form)), request.method)


async def get_form(request: Request) -> Response:
    require_user(request)
    form = _form(request)
    return _form_response(request, form, catalog.shown_def(sandbox(request).store, form), single=True)


async def delete_form(request: Request) -> Response:
    require_user(request)
    catalog.delete_form(sandbox(request).store, _form(request))
    return success(request.method)


async def form_xml(request: Request) -> Response:
    form = _visible_form(request)
    def_row = catalog.shown_def(sandbox(request).store, form)
    return body_response(def_row["xml"].encode(), XML_TYPE, request.method)


def _odata(request: Request) -> bool:
    """`?odata=true`: the field list with the names Central's OData uses (`q-hyphen` → `q_hyphen`)."""
    return is_true(request.query_params.get("odata"))


async def form_fields(request: Request) -> Response:
    require_user(request)
    form = _form(request)
    fields = catalog.fields_of(catalog.shown_def(sandbox(request).store, form), _odata(request))
    return json_response(fields, request.method)


async def list_versions(request: Request) -> Response:
    require_user(request)
    store = sandbox(request).store
    form = _form(request)
    body = [catalog.form_json(form, row) for row in catalog.versions(store, form)]
    return json_response(body, request.method)


async def get_version(request: Request) -> Response:
    require_user(request)
    form = _form(request)
    return _form_response(request, form, _version_def(request, form), single=True)


async def version_xml(request: Request) -> Response:
    require_user(request)
    form = _form(request)
    return body_response(_version_def(request, form)["xml"].encode(), XML_TYPE, request.method)


async def version_fields(request: Request) -> Response:
    require_user(request)
    form = _form(request)
    return json_response(catalog.fields_of(_version_def(request, form), _odata(request)), request.method)


async def get_draft(request: Request) -> Response:
    require_user(request)
    form = _form(request)
    return _form_response(request, form, catalog.draft_def(sandbox(request).store, form), single=True)


async def create_draft(request: Request) -> Response:
    require_user(request)
    catalog.create_draft(sandbox(request).store, _form(request), await request.body())
    return success(request.method)


async def delete_draft(request: Request) -> Response:
    require_user(request)
    catalog.delete_draft(sandbox(request).store, _form(request))
    return success(request.method)


async def publish_draft(request: Request) -> Response:
    require_user(request)
    box = sandbox(request)
    form = _form(request)
    if catalog.publish_draft(box.store, form, request.query_params.get("version")):
        ingest.reproject_form(box, form["id"])  # OData rows follow the new current version
    return success(request.method)


async def draft_xml(request: Request) -> Response:
    require_user(request)
    def_row = catalog.draft_def(sandbox(request).store, _form(request))
    return body_response(def_row["xml"].encode(), XML_TYPE, request.method)


async def draft_fields(request: Request) -> Response:
    require_user(request)
    return json_response(
        catalog.fields_of(catalog.draft_def(sandbox(request).store, _form(request)), _odata(request)),
        request.method,
    )


def _attachment_list(request: Request, def_row: sqlite3.Row) -> Response:
    rows = catalog.attachments(sandbox(request).store, def_row["id"])
    return json_response([catalog.attachment_json(r) for r in rows], request.method)


def _attachment_file(request: Request, def_row: sqlite3.Row) -> Response:
    box = sandbox(request)
    name = request.path_params["name"]
    row = next((r for r in catalog.attachments(box.store, def_row["id"]) if r["name"] == name), None)
    if row is not None and row["dataset_id"] is not None:  # the entity list's CSV for Collect (23-05)
        body = entities.attachment_csv(box.store, row["dataset_id"])
        return csv_response(body, name, f'"{hashlib.md5(body).hexdigest()}"')
    if row is None or row["blob_id"] is None:
        raise problems.not_found()
    data, md5, content_type = box.blobs.read(row["blob_id"])
    return binary_response(data, content_type, name, md5, "attachment")


async def draft_attachments(request: Request) -> Response:
    require_user(request)
    return _attachment_list(request, catalog.draft_def(sandbox(request).store, _form(request)))


async def draft_attachment(request: Request) -> Response:
    require_user(request)
    return _attachment_file(request, catalog.draft_def(sandbox(request).store, _form(request)))


async def upload_draft_attachment(request: Request) -> Response:
    require_user(request)
    box = sandbox(request)
    def_row = catalog.draft_def(box.store, _form(request))
    content_type = request.headers.get("content-type")
    row = catalog.upload_attachment(
        box.store, box.blobs, def_row["id"], request.path_params["name"], await request.body(), content_type
    )
    return json_response(catalog.attachment_json(row), request.method)


async def link_draft_attachment(request: Request) -> Response:
    """`PATCH …/draft/attachments/{name} {"dataset": true|false}`: link or unlink an entity list."""
    require_user(request)
    box = sandbox(request)
    form = _form(request)
    linked = (await json_body(request)).get("dataset")
    row = entities.set_attachment_link(box.store, form["project_id"], catalog.draft_def(box.store, form)["id"],
                                       request.path_params["name"], linked)
    body = {"name": row["name"], "type": row["type"], "exists": row["dataset_id"] is not None,
            "blobExists": False, "datasetExists": row["dataset_id"] is not None, "updatedAt": row["updated_at"]}
    return json_response(body, request.method)


async def dataset_diff(request: Request) -> Response:
    require_user(request)
    box = sandbox(request)
    form = _form(request)
    return json_response(entities.dataset_diff(box.store, form["project_id"], catalog.draft_def(box.store, form)),
                         request.method)


async def form_attachments(request: Request) -> Response:
    require_user(request)
    return _attachment_list(request, catalog.published_def(sandbox(request).store, _form(request)))


async def form_attachment(request: Request) -> Response:
    form = _visible_form(request)
    return _attachment_file(request, catalog.published_def(sandbox(request).store, form))


_FORMS = "/v1/projects/{project_id}/forms"
_FORM = _FORMS + "/{xml_form_id}"
routes = [
    Route(_FORMS, list_forms, methods=["GET"]),
    Route(_FORMS, create_form, methods=["POST"]),
    Route(f"{_FORM}.xml", form_xml, methods=["GET"]),
    Route(_FORM, get_form, methods=["GET"]),
    Route(_FORM, delete_form, methods=["DELETE"]),
    Route(f"{_FORM}/fields", form_fields, methods=["GET"]),
    Route(f"{_FORM}/versions", list_versions, methods=["GET"]),
    Route(f"{_FORM}/versions/{{version}}.xml", version_xml, methods=["GET"]),
    Route(f"{_FORM}/versions/{{version}}", get_version, methods=["GET"]),
    Route(f"{_FORM}/versions/{{version}}/fields", version_fields, methods=["GET"]),
    Route(f"{_FORM}/draft.xml", draft_xml, methods=["GET"]),
    Route(f"{_FORM}/draft", get_draft, methods=["GET"]),
    Route(f"{_FORM}/draft", create_draft, methods=["POST"]),
    Route(f"{_FORM}/draft", delete_draft, methods=["DELETE"]),
    Route(f"{_FORM}/draft/publish", publish_draft, methods=["POST"]),
    Route(f"{_FORM}/draft/fields", draft_fields, methods=["GET"]),
    Route(f"{_FORM}/draft/attachments", draft_attachments, methods=["GET"]),
    Route(f"{_FORM}/draft/attachments/{{name}}", draft_attachment, methods=["GET"]),
    Route(f"{_FORM}/draft/attachments/{{name}}", upload_draft_attachment, methods=["POST"]),
    Route(f"{_FORM}/draft/attachments/{{name}}", link_draft_attachment, methods=["PATCH"]),
    Route(f"{_FORM}/draft/dataset-diff", dataset_diff, methods=["GET"]),
    Route(f"{_FORM}/attachments", form_attachments, methods=["GET"]),
    Route(f"{_FORM}/attachments/{{name}}", form_attachment, methods=["GET"]),
]
