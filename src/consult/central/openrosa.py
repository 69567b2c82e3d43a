"""Submitting as ODK Collect does: multipart POST to an app user's key URL.

Used by the demo and the tests to play enumerators. An identical re-send is harmless
(Central answers 201 again, and that is how missing attachments are completed), so the
POST is retried on network errors and 5xx like any idempotent call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import requests
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from consult.central.session import CentralError, central_error, mask_keys_in_http_logs

OPENROSA_HEADERS = {"X-OpenRosa-Version": "1.0"}


@dataclass(frozen=True)
class SubmissionReceipt:
    status: int
    message: str


def collect_session(retries: int = 3, backoff: float = 0.5) -> requests.Session:
    """A session that posts like ODK Collect: the app-user key is in every URL, so it is masked in logs."""
    mask_keys_in_http_logs()
    session = requests.Session()
    retry = Retry(total=retries, backoff_factor=backoff, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=None, raise_on_status=False)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.headers.update({"User-Agent": "consult (imitates ODK Collect)", **OPENROSA_HEADERS})
    return session


def submission_url(base_url: str, project_id: int, token: SecretStr) -> str:
    return f"{base_url.rstrip('/')}/v1/key/{token.get_secret_value()}/projects/{project_id}/submission"


def submit(session: requests.Session, base_url: str, project_id: int, token: SecretStr, xml: bytes,
           attachments: Mapping[str, bytes] | None = None, device_id: str = "collect:consult",
           timeout: float = 60) -> SubmissionReceipt:
    """POST one submission; raise CentralError (URL without the key) unless Central answers 201."""
    url = submission_url(base_url, project_id, token)
    files = [("xml_submission_file", ("submission.xml", xml, "text/xml"))]
    files += [(name, (name, content, "application/octet-stream")) for name, content in (attachments or {}).items()]
    try:
        response = session.post(url, params={"deviceID": device_id}, files=files, timeout=timeout)
    except requests.RequestException as exc:
        raise CentralError("POST", url, None, exc.__class__.__name__) from None
    if response.status_code != 201:
        raise central_error(response)
    match = re.search(r"<message[^>]*>(.*?)</message>", response.text, re.S)
    return SubmissionReceipt(response.status_code, match.group(1).strip() if match else "")
