"""Response builders with Central's headers, bodies and ETags.

Central runs on Express: every body gets a weak ETag `W/"<hex length>-<base64 sha1>"`, reads
are `Cache-Control: private, no-cache`, writes are `no-store`. Submission lists and exports
carry `W/"eventhash:<md5>"` instead, which changes only when the form's data changes. OpenRosa
bodies are Central's hand-written XML templates, whitespace included.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from .odata import CentralProblem

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "application/xml; charset=utf-8"
TEXT_XML_TYPE = "text/xml; charset=utf-8"
OPENROSA_HEADERS = {
    "Content-Language": "en",
    "X-OpenRosa-Version": "1.0",
    "X-OpenRosa-Accept-Content-Length": "100000000",
}
READ_HEADERS = {"Cache-Control": "private, no-cache", "Vary": "Accept-Encoding, Origin"}
WRITE_HEADERS = {"Cache-Control": "no-store", "Vary": "*"}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def express_etag(body: bytes) -> str:
    """The weak ETag Express puts on every response body."""
    digest = base64.b64encode(hashlib.sha1(body).digest()).decode()[:27]
    return f'W/"{len(body):x}-{digest}"'


def event_etag(*parts: object) -> str:
    """The ETag of a submission set: a hash of what changed it plus what was asked."""
    digest = hashlib.md5("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return f'W/"eventhash:{digest}"'


def dumps(data: Any) -> bytes:
    """JSON as Express writes it: compact, UTF-8, no ASCII escaping."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def cache_headers(method: str) -> dict[str, str]:
    return dict(WRITE_HEADERS if method in WRITE_METHODS else READ_HEADERS)


def body_response(
    body: bytes,
    content_type: str,
    method: str,
    status: int = 200,
    etag: str | None = None,
    extra: dict[str, str] | None = None,
) -> Response:
    headers = cache_headers(method)
    headers.update(extra or {})
    headers["ETag"] = etag or express_etag(body)
    return Response(body, status_code=status, headers=headers, media_type=content_type)


def json_response(
    data: Any, method: str, status: int = 200, etag: str | None = None, extra: dict[str, str] | None = None
) -> Response:
    return body_response(dumps(data), JSON_TYPE, method, status, etag, extra)


def success(method: str) -> Response:
    return json_response({"success": True}, method)


def problem_response(
    problem: CentralProblem, method: str, extra: dict[str, str] | None = None, etag: str | None = None
) -> Response:
    return json_response(problem.to_json(), method, problem.status, etag=etag, extra=extra)


def xml_escape(text: str) -> str:
    """Escape as Central's templates do (single quote as `&#39;`)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def openrosa_message(
    message: str, status: int, method: str, error: bool, with_openrosa_headers: bool = True
) -> Response:
    """Central's `<OpenRosaResponse>`: a leading newline, no XML declaration."""
    nature = "error" if error else ""
    body = (
        '\n  <OpenRosaResponse xmlns="http://openrosa.org/http/response" items="0">\n'
        f'    <message nature="{nature}">{xml_escape(message)}</message>\n'
        "  </OpenRosaResponse>"
    ).encode()
    extra = dict(OPENROSA_HEADERS) if with_openrosa_headers else None
    return body_response(body, TEXT_XML_TYPE, method, status, extra=extra)


def openrosa_problem(problem: CentralProblem, method: str, with_openrosa_headers: bool = True) -> Response:
    return openrosa_message(problem.message, problem.status, method, True, with_openrosa_headers)


def openrosa_document(body: str, method: str) -> Response:
    return body_response(body.encode(), TEXT_XML_TYPE, method, extra=dict(OPENROSA_HEADERS))


def content_disposition(kind: str, filename: str) -> str:
    """`attachment; filename="x"; filename*=UTF-8''x`, as Express's `res.attachment` writes it."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def binary_response(data: bytes, content_type: str, filename: str, md5: str, disposition: str) -> Response:
    headers = dict(READ_HEADERS)
    headers["ETag"] = f'"{md5}"'
    headers["Content-Disposition"] = content_disposition(disposition, filename)
    return Response(data, headers=headers, media_type=content_type)
