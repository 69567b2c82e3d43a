"""`submissions.csv.zip` and `submissions.csv`."""

from __future__ import annotations

import sqlite3

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import catalog, export
from ..responses import READ_HEADERS, content_disposition, event_etag
from ..state import int_param, is_false, is_true, require_user, sandbox
from ..xform import XFormDefinition


def _form_and_definition(request: Request) -> tuple[sqlite3.Row, XFormDefinition]:
    require_user(request)
    store = sandbox(request).store
    form = catalog.get_form(store, int_param(request, "project_id"), request.path_params["xml_form_id"])
    return form, catalog.definition(catalog.published_def(store, form))


def _response(request: Request, body: bytes, media_type: str, filename: str, form: sqlite3.Row) -> Response:
    headers = dict(READ_HEADERS)
    headers["ETag"] = event_etag("export", form["id"], form["data_version"], request.url.query)
    headers["Content-Disposition"] = content_disposition("attachment", filename)
    return Response(body, headers=headers, media_type=media_type)


def _split(request: Request) -> bool:
    return is_true(request.query_params.get("splitSelectMultiples"))


async def csv_zip(request: Request) -> Response:
    box = sandbox(request)
    form, defn = _form_and_definition(request)
    with_media = not is_false(request.query_params.get("attachments"))
    body = export.zip_export(box.store, box.blobs, form["id"], defn, with_media, _split(request))
    name = form["xml_form_id"] + (".zip" if with_media else ".csv.zip")
    return _response(request, body, "application/zip", name, form)


async def root_csv(request: Request) -> Response:
    form, defn = _form_and_definition(request)
    body = export.root_csv(sandbox(request).store, form["id"], defn, _split(request))
    return _response(request, body, "text/csv", form["xml_form_id"] + ".csv", form)


_SUBMISSIONS = "/v1/projects/{project_id}/forms/{xml_form_id}/submissions"
routes = [
    Route(f"{_SUBMISSIONS}.csv.zip", csv_zip, methods=["GET"]),
    Route(f"{_SUBMISSIONS}.csv", root_csv, methods=["GET"]),
]
