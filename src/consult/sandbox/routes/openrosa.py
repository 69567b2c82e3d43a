"""OpenRosa: what ODK Collect calls (formList, manifest, HEAD/POST submission).

Form XML and media downloads are the ordinary form routes, reached through the app-user
key URL. Every OpenRosa call needs `X-OpenRosa-Version`; errors are `<OpenRosaResponse>`
XML. As on Central, failures before the endpoint runs (authentication, the version
header) lack the OpenRosa response headers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import catalog, directory, entities, ingest, problems
from ..odata import CentralProblem
from ..responses import (
    OPENROSA_HEADERS,
    cache_headers,
    express_etag,
    openrosa_document,
    openrosa_message,
    openrosa_problem,
    xml_escape,
)
from ..state import current_actor, int_param, key_prefix, sandbox

Handler = Callable[[Request], Awaitable[Response]]
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
SUBMISSION_FIELD = "xml_submission_file"


def openrosa(handler: Handler) -> Handler:
    """Authenticate, require the OpenRosa header, and answer problems as OpenRosa XML."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            current_actor(request)
            if request.headers.get("x-openrosa-version") != "1.0":
                raise problems.invalid_header("X-OpenRosa-Version")
        except CentralProblem as problem:
            return openrosa_problem(problem, request.method, with_openrosa_headers=False)
        try:
            return await handler(request)
        except CentralProblem as problem:
            return openrosa_problem(problem, request.method)

    return endpoint


def _base(request: Request, project_id: int) -> str:
    return f"{sandbox(request).domain}/v1{key_prefix(request)}/projects/{project_id}"


@openrosa
async def form_list(request: Request) -> Response:
    box = sandbox(request)
    actor = current_actor(request)
    project_id = int_param(request, "project_id")
    directory.get_project(box.store, project_id)
    wanted = request.query_params.get("formID")
    rows = box.store.all(
        "SELECT * FROM forms WHERE project_id = ? AND deleted_at IS NULL AND state != 'closed' "
        "AND current_def_id IS NOT NULL ORDER BY (SELECT coalesce(d.name, forms.xml_form_id) FROM form_defs d "
        "WHERE d.id = forms.current_def_id), xml_form_id",
        project_id,
    )
    base = _base(request, project_id)
    entries = []
    for form in rows:
        if (wanted and form["xml_form_id"] != wanted) or not catalog.can_see(box.store, actor, form):
            continue
        def_row = catalog.published_def(box.store, form)
        form_url = f"{base}/forms/{quote(form['xml_form_id'], safe='')}"
        lines = [
            f"      <formID>{xml_escape(form['xml_form_id'])}</formID>",
            f"      <name>{xml_escape(def_row['name'] or form['xml_form_id'])}</name>",
            f"      <version>{xml_escape(def_row['version'])}</version>",
            f"      <hash>md5:{def_row['hash']}</hash>",
            f"      <downloadUrl>{xml_escape(form_url)}.xml</downloadUrl>",
        ]
        if catalog.attachments(box.store, def_row["id"]):
            lines.append(f"      <manifestUrl>{xml_escape(form_url)}/manifest</manifestUrl>")
        entries.append("    <xform>\n" + "\n".join(lines) + "\n    </xform>\n")
    return openrosa_document(_listing("xforms", "http://openrosa.org/xforms/xformsList", entries), request.method)


@openrosa
async def manifest(request: Request) -> Response:
    box = sandbox(request)
    actor = current_actor(request)
    project_id = int_param(request, "project_id")
    form = catalog.get_form(box.store, project_id, request.path_params["xml_form_id"])
    if not catalog.can_see(box.store, actor, form):
        raise problems.not_found()
    def_row = catalog.published_def(box.store, form)
    base = f"{_base(request, project_id)}/forms/{quote(form['xml_form_id'], safe='')}/attachments"
    datasets = f"{_base(request, project_id)}/datasets"
    entries = []
    for row in catalog.attachments(box.store, def_row["id"]):
        url = f"{xml_escape(base)}/{xml_escape(quote(row['name'], safe=''))}"
        if row["dataset_id"] is not None:  # an entity list (23-04): its CSV's hash and an integrity URL
            name = box.store.scalar("SELECT name FROM datasets WHERE id = ?", row["dataset_id"])
            entries.append(
                '    <mediaFile type="entityList">\n'
                f"      <filename>{xml_escape(row['name'])}</filename>\n"
                f"      <hash>md5:{entities.attachment_md5(box.store, row['dataset_id'])}</hash>\n"
                f"      <downloadUrl>{url}</downloadUrl>\n"
                f"      <integrityUrl>{xml_escape(datasets)}/{xml_escape(quote(name, safe=''))}/integrity</integrityUrl>\n"
                "    </mediaFile>\n"
            )
        elif row["blob_id"] is not None:
            entries.append(
                "    <mediaFile>\n"
                f"      <filename>{xml_escape(row['name'])}</filename>\n"
                f"      <hash>md5:{row['md5']}</hash>\n"
                f"      <downloadUrl>{url}</downloadUrl>\n"
                "    </mediaFile>\n"
            )
    return openrosa_document(_listing("manifest", "http://openrosa.org/xforms/xformsManifest", entries),
                             request.method)


def _listing(tag: str, namespace: str, entries: list[str]) -> str:
    """An OpenRosa form list or manifest, laid out as Central lays it out."""
    return f'{XML_DECLARATION}\n  <{tag} xmlns="{namespace}">\n' + "".join(entries) + f"  </{tag}>"


@openrosa
async def submission_probe(request: Request) -> Response:
    """HEAD (and GET) /submission: 204, as the OpenRosa spec requires."""
    directory.get_project(sandbox(request).store, int_param(request, "project_id"))
    headers = {**cache_headers(request.method), **OPENROSA_HEADERS, "ETag": express_etag(b"")}
    return Response(status_code=204, headers=headers)


@openrosa
async def submit(request: Request) -> Response:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise problems.missing_multipart_field(SUBMISSION_FIELD)
    form = await request.form(max_files=10_000, max_fields=10_000)
    xml_part = form.get(SUBMISSION_FIELD)
    if xml_part is None:
        raise problems.missing_multipart_field(SUBMISSION_FIELD)
    xml = await xml_part.read() if isinstance(xml_part, UploadFile) else xml_part.encode()
    files = [
        ingest.Upload(name, await part.read(), part.content_type)
        for name, part in form.multi_items()
        if name != SUBMISSION_FIELD and isinstance(part, UploadFile)
    ]
    ingest.receive_openrosa(
        sandbox(request),
        current_actor(request),
        int_param(request, "project_id"),
        xml,
        files,
        request.query_params.get("deviceID"),
        request.headers.get("user-agent"),
    )
    return openrosa_message("full submission upload was successful!", 201, request.method, error=False)


_PROJECT = "/v1/projects/{project_id}"
routes = [
    Route(f"{_PROJECT}/formList", form_list, methods=["GET"]),
    Route(f"{_PROJECT}/forms/{{xml_form_id}}/manifest", manifest, methods=["GET"]),
    Route(f"{_PROJECT}/submission", submission_probe, methods=["HEAD", "GET"]),
    Route(f"{_PROJECT}/submission", submit, methods=["POST"]),
]
