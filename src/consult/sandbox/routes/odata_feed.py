"""`/forms/{id}.svc`: the OData service document, `$metadata` and the feeds."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Awaitable, Callable
from functools import wraps

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import catalog, feed, problems
from ..odata import CentralProblem, odata_page_json
from ..responses import JSON_TYPE, XML_TYPE, body_response, event_etag, json_response, problem_response
from ..state import int_param, require_user, sandbox
from ..xform import XFormDefinition, metadata_edmx, service_document

ODATA_HEADERS = {"OData-Version": "4.0"}
ENTITY = re.compile(r"^Submissions\('((?:[^']|'')*)'\)(?:/([^/]+))?$")
Handler = Callable[[Request], Awaitable[Response]]


def odata(handler: Handler) -> Handler:
    """OData responses, errors included, carry `OData-Version: 4.0`."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            response = await handler(request)
        except CentralProblem as problem:
            return problem_response(problem, request.method, extra=ODATA_HEADERS)
        response.headers.update(ODATA_HEADERS)
        return response

    return endpoint


def _form(request: Request) -> sqlite3.Row:
    require_user(request)
    form = catalog.get_form(
        sandbox(request).store, int_param(request, "project_id"), request.path_params["xml_form_id"]
    )
    if form["current_def_id"] is None:
        raise problems.not_found()
    return form


def _definition(request: Request, form: sqlite3.Row) -> XFormDefinition:
    """The current published definition: OData columns follow it for every submission."""
    return catalog.definition(catalog.published_def(sandbox(request).store, form))


def _service_root(form: sqlite3.Row) -> str:
    return f"/v1/projects/{form['project_id']}/forms/{form['xml_form_id']}.svc"


@odata
async def get_service_document(request: Request) -> Response:
    box = sandbox(request)
    form = _form(request)
    body = service_document(_definition(request, form), f"{box.domain}{_service_root(form)}")
    return json_response(body, request.method, extra={"Content-Type": JSON_TYPE + "; odata.metadata=minimal"})


@odata
async def get_metadata(request: Request) -> Response:
    form = _form(request)
    return body_response(metadata_edmx(_definition(request, form)).encode(), XML_TYPE, request.method)


@odata
async def get_feed(request: Request) -> Response:
    box = sandbox(request)
    form = _form(request)
    resource = request.path_params["resource"]
    options = feed.Options.parse(dict(request.query_params))
    defn = _definition(request, form)
    root = _service_root(form)
    entity = ENTITY.match(resource)
    if entity is not None:
        instance_id, child = entity.group(1).replace("''", "'"), entity.group(2)
        if child is None:
            rows, name = (
                feed.single_submission(box.store, defn, form["id"], instance_id, options),
                "Submissions",
            )
        else:
            name = f"Submissions.{child}"
            if name not in defn.tables:
                raise problems.not_found()
            rows = feed.entity_repeat_rows(box.store, form["id"], instance_id, name)
        body = odata_page_json(rows, domain=box.domain, service_root=root, table=name)
        return body_response(body.encode(), JSON_TYPE, request.method)
    etag = event_etag("odata", form["id"], form["data_version"], resource, request.url.query)
    if resource == "Submissions":
        page = feed.submissions_page(box.store, defn, form["id"], options)
    elif resource in defn.tables:
        page = feed.repeat_page(box.store, defn, form["id"], resource, options)
    else:  # Central computes the event hash before it finds out the table does not exist
        return problem_response(problems.not_found(), request.method, extra=ODATA_HEADERS, etag=etag)
    body = feed.page_json(
        page,
        domain=box.domain,
        path=request.url.path,
        query=request.url.query,
        service_root=root,
        table=resource,
    )
    # An empty page has no events to hash: Central falls back to the plain body ETag.
    return body_response(body.encode(), JSON_TYPE, request.method, etag=etag if page.rows else None)


_SVC = "/v1/projects/{project_id}/forms/{xml_form_id}.svc"
routes = [
    Route(_SVC, get_service_document, methods=["GET"]),
    Route(f"{_SVC}/$metadata", get_metadata, methods=["GET"]),
    Route(f"{_SVC}/{{resource:path}}", get_feed, methods=["GET"]),
]
