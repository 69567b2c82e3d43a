"""Central OData → pages of submission rows, incremental, following nextLink to the end.

Pages are `Submissions?$expand=*`: repeats come inline with their parent, because paging
a repeat table on its own re-reads the whole form on every page on a real Central
(10 s instead of 2.2 s for 10k rows). pyodk's `get_table` stops at one page; this
follows `@odata.nextLink`, which Central builds from its own configured domain, so each
link is re-based on the URL we reach Central by.
"""

from __future__ import annotations

import hashlib
import math
import os
import queue
import re
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import requests

from consult.central.session import CentralError, CentralSession

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 1000
DEFAULT_OVERLAP = timedelta(seconds=60)


def odata_timestamp(moment: datetime) -> str:
    """Central's format, unquoted in filters: 2026-11-28T18:41:28.036Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass(frozen=True)
class SubmissionQuery:
    """Which rows of one form to pull."""

    project_id: int
    form_id: str
    since: datetime | None = None
    """Pull what was submitted or updated after this moment (minus `overlap`); None pulls everything."""
    overlap: timedelta = DEFAULT_OVERLAP
    deleted: bool = False
    """Pull the soft-deleted submissions instead, which Central hides unless the filter names deletedAt."""
    page_size: int = DEFAULT_PAGE_SIZE
    select: tuple[str, ...] = ()
    expand: bool = True

    def odata_filter(self) -> str | None:
        moment = odata_timestamp(self.since - self.overlap) if self.since else None
        if self.deleted:
            return f"__system/deletedAt gt {moment}" if moment else "__system/deletedAt ne null"
        if moment:
            return f"__system/submissionDate gt {moment} or __system/updatedAt gt {moment}"
        return None

    def params(self) -> dict[str, str]:
        params = {"$top": str(self.page_size), "$count": "true"}
        if self.expand:
            params["$expand"] = "*"
        if self.select:
            params["$select"] = ",".join(self.select)
        if (odata_filter := self.odata_filter()) is not None:
            params["$filter"] = odata_filter
        return params

    def path(self, central: CentralSession) -> str:
        return central.http.urlformat("projects/{pid}/forms/{fid}.svc/Submissions", pid=self.project_id,
                                      fid=self.form_id)


@dataclass(frozen=True)
class ODataPage:
    number: int
    rows: list[dict] = field(repr=False)
    count: int | None
    """Rows matching the query in all (Central repeats it on every page)."""
    etag: str | None
    not_modified: bool = False
    served_at: datetime | None = None
    """Central's clock when it answered (the Date header): changes after it belong to the next pull."""

    @property
    def last_change(self) -> datetime | None:
        """The latest submissionDate or updatedAt on this page: where the next incremental pull starts."""
        moments = [parse_timestamp(s.get(k)) for row in self.rows if (s := row.get("__system"))
                   for k in ("submissionDate", "updatedAt", "deletedAt")]
        return max((m for m in moments if m), default=None)


def _number_shape(byte: int) -> int:
    if 0x30 <= byte <= 0x39:
        return 0x30  # a digit: 0
    return byte if byte in b":-" else 0x3A if byte in b",[" else 0x78  # what precedes a number: ':'


_SHAPES = bytes(_number_shape(b) for b in range(256))
_LONG_NUMBERS = (b":" + b"0" * 19, b":-" + b"0" * 19)
"""A number of 19 digits or more (an integer maybe beyond 64 bits, which orjson reads as a
float), in the page mapped by `_SHAPES` with its whitespace dropped. A hex id holding 19 digits
in a row is inside quotes, so it does not match; one `translate` costs ~1 ms a page, a regex ~12."""


class NonFiniteNumber(float):
    """NaN, ±Infinity or a number too large for a float, as a page held them (Central never sends
    them; a hostile server may). Marked so that the raw JSON kept of the row writes them back as
    they came: orjson would write null, so `consult.warehouse.records.raw_json` leaves such rows
    to the standard library."""


def decode_page(response: requests.Response) -> Any:
    """An OData page as `response.json()` reads it, through orjson (several times faster on a
    page of 1000 submissions). Whatever orjson reads differently or refuses (integers beyond
    64 bits, which it turns into floats; NaN; a byte-order mark; lone surrogates; another
    encoding than UTF-8) goes to `response.json()`, NaN and ±Infinity as `NonFiniteNumber`."""
    content = response.content
    shape = content.translate(_SHAPES, b" \t\r\n")
    if not any(number in shape for number in _LONG_NUMBERS):
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass
    return response.json(parse_constant=NonFiniteNumber, parse_float=_float)


def _float(text: str) -> float:
    number = float(text)
    return number if math.isfinite(number) else NonFiniteNumber(text)


def pull_submissions(central: CentralSession, query: SubmissionQuery, etag: str | None = None) -> Iterator[ODataPage]:
    """Yield every page of the query. With the ETag of an earlier pull, a 304 yields one
    `not_modified` page and stops: nothing changed on the form since."""
    url: str | None = query.path(central)
    params: dict[str, str] | None = query.params()
    headers = {"If-None-Match": etag} if etag else {}
    number = 0
    while url:
        response = central.request("GET", url, params=params, headers=headers, ok=(200, 304))
        if response.status_code == 304:
            yield ODataPage(number, [], None, etag, not_modified=True)
            return
        try:
            body = decode_page(response)
        except ValueError:
            raise CentralError("GET", response.url, response.status_code,
                               "the OData page is not valid JSON (cut off?)") from None
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise CentralError("GET", response.url, response.status_code, "the OData page has no 'value' list")
        yield ODataPage(number, body["value"], body.get("@odata.count"), response.headers.get("ETag"),
                        served_at=_served_at(response.headers.get("Date")))
        url, params, headers = body.get("@odata.nextLink"), None, {}
        number += 1


def read_ahead(pages: Iterator[T], before_waiting: Callable[[], None] | None = None) -> Iterator[T]:
    """The same pages, the next one fetched in a thread while the caller works on this one.

    Central spends its time building a page and the sync its own validating and loading the
    previous one; on two cores they overlap. An error comes out where its page would have;
    leaving the loop early stops the reader once the page it is fetching arrives.
    `before_waiting` is called when the next page has not arrived yet, before waiting for it (the
    sync commits then, so that it never holds the database while Central is slow)."""
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for page in pages:
                if not put(("page", page)):
                    return
            put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(("error", exc))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name="odata-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            try:
                kind, value = handoff.get_nowait()
            except queue.Empty:
                if before_waiting is not None:
                    before_waiting()
                kind, value = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        reader.join()


def _served_at(header: str | None) -> datetime | None:
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(header) if header else None
    except (TypeError, ValueError):
        return None
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def count_submissions(central: CentralSession, query: SubmissionQuery) -> int:
    params = {"$top": "0", "$count": "true"}
    if (odata_filter := query.odata_filter()) is not None:
        params["$filter"] = odata_filter
    return int(central.json("GET", query.path(central), params=params)["@odata.count"])


def submission_ids(central: CentralSession, project_id: int, form_id: str, page_size: int = 10000) -> set[str]:
    """Every live submission's `__id`, for the reconciliation that finds purged submissions."""
    query = SubmissionQuery(project_id, form_id, page_size=page_size, select=("__id",), expand=False)
    return {row["__id"] for page in pull_submissions(central, query) for row in page.rows}


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def safe_filename(name: str) -> str:
    """A submission's attachment name as a plain file name: no folders, no `..`, no control characters."""
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip(" .")
    if not base:
        raise ValueError(f"attachment name {name!r} is not a usable file name")
    return base[:200]


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class AttachmentDownload:
    name: str
    path: Path
    downloaded: bool
    """False when the file was already here with the same content (Central answered 304)."""


def download_attachments(central: CentralSession, project_id: int, form_id: str, instance_id: str,
                         dest_dir: Path) -> list[AttachmentDownload]:
    """Fetch the attachments Central holds for a submission into `dest_dir`, skipping unchanged files."""
    base = central.http.urlformat("projects/{pid}/forms/{fid}/submissions/{iid}/attachments", pid=project_id,
                                  fid=form_id, iid=instance_id)
    dest_dir.mkdir(parents=True, exist_ok=True)
    root = dest_dir.resolve()
    results = []
    for attachment in central.json("GET", base):
        if not attachment.get("exists"):
            continue
        name = safe_filename(attachment["name"])
        target = (root / name).resolve()
        if target.parent != root:
            raise ValueError(f"attachment {attachment['name']!r} would leave {root}")
        headers = {"If-None-Match": f'"{_md5(target)}"'} if target.is_file() else {}
        response = central.request("GET", f"{base}/{central.http.urlquote(attachment['name'])}", headers=headers,
                                   ok=(200, 304), stream=True)
        if response.status_code == 304:
            results.append(AttachmentDownload(name, target, False))
            continue
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".part-")
        with os.fdopen(fd, "wb") as handle:
            for chunk in response.iter_content(1 << 16):
                handle.write(chunk)
        os.replace(tmp, target)
        results.append(AttachmentDownload(name, target, True))
    return results
