"""One authenticated session with ODK Central, on pyodk's Client.

pyodk gives the login, the bearer token and its endpoint services; this adds what a
pipeline needs around them: retries with backoff on http and https alike (pyodk mounts
them on https only), TLS options, Central's error JSON turned into one exception type,
URLs with their keys and tokens masked before they reach a message, a session renewed
when Central's expires (24 h), and one session shared by every form of a run
(`shared_sessions`, `central_session`): a login costs Central ~0.2 s of bcrypt.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from pyodk._utils.config import CentralConfig, Config
from pyodk._utils.session import Adapter, Session
from pyodk.client import Client
from pyodk.errors import PyODKError
from urllib3.util.retry import Retry

from consult.central.config import CentralSettings

log = logging.getLogger(__name__)

_SECRET_PATH = re.compile(r"/(key|test)/[^/?#]+")


def redact(url: str) -> str:
    """Mask app-user keys and draft tokens, which Central puts in URL paths."""
    return _SECRET_PATH.sub(lambda m: f"/{m.group(1)}/***", url)


class RedactedPaths(logging.Filter):
    """urllib3 logs every request line at DEBUG, URL path included: app-user keys are masked there too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def mask_keys_in_http_logs() -> None:
    """Install `RedactedPaths` on urllib3's request logger, once per process."""
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, RedactedPaths) for f in logger.filters):
        logger.addFilter(RedactedPaths())


NOT_JSON = ("the answer is not Central's JSON (an HTML page from a proxy or a login portal?): check that "
            "CONSULT_CENTRAL_URL is ODK Central's own address")


NO_TOKEN = ("the login was answered without a session token, which Central always sends: check that "
            "CONSULT_CENTRAL_URL is ODK Central's own address")


class CentralError(RuntimeError):
    """A call to Central failed: what was asked (URL without secrets), the status and Central's reason."""

    def __init__(self, method: str, url: str, status: int | None, message: str, code: float | None = None,
                 details: dict | None = None):
        self.method, self.url, self.status, self.code, self.details = method, redact(url), status, code, details
        self.reason = message
        where = f"{method} {self.url}"
        what = f"HTTP {status}" + (f" (code {code})" if code is not None else "") if status else "no response"
        super().__init__(f"{where}: {what}: {message}")


def central_error(response: requests.Response) -> CentralError:
    """Central's error JSON is `{"message", "code", "details"}`; OpenRosa errors are XML."""
    message, code, details = response.reason or "", None, None
    try:
        body = response.json()
        message, code, details = body.get("message", message), body.get("code"), body.get("details")
    except ValueError:
        match = re.search(r"<message[^>]*>(.*?)</message>", response.text or "", re.S)
        if match:
            message = match.group(1).strip()
    return CentralError(response.request.method or "?", response.url, response.status_code, message, code, details)


def read_environment_once(session: requests.Session, base_url: str) -> None:
    """Take the proxy (`HTTPS_PROXY`, `NO_PROXY`, ...) and CA bundle (`REQUESTS_CA_BUNDLE`,
    `CURL_CA_BUNDLE`) variables for Central's host now, instead of on every request: requests
    scans the whole environment twice per request, a sixth of its cost per request, and a first
    sync of an entity list asks once per entity. Settings given to consult win over the
    environment's CA bundle (requests lets the variable override even `verify=False`)."""
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    if session.verify is True:
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.trust_env = False


class CentralSession:
    """What every Central call goes through; one per command or flow run."""

    def __init__(self, settings: CentralSettings):
        mask_keys_in_http_logs()
        self.settings = settings
        password = settings.password.get_secret_value()
        session = Session(base_url=settings.base_url, api_version="v1", username=settings.username,
                          password=password, cache_path=None)
        retry = Retry(total=settings.retries, backoff_factor=settings.backoff,
                      status_forcelist=(429, 500, 502, 503, 504), respect_retry_after_header=True,
                      raise_on_status=False)
        for prefix in ("http://", "https://"):
            session.mount(prefix, Adapter(timeout=settings.timeout, max_retries=retry, blocksize=session.blocksize))
        if not settings.verify_tls:
            warnings.warn("TLS certificate verification is OFF for ODK Central: use only on a trusted network",
                          stacklevel=2)
            session.verify = False
        elif settings.ca_bundle:
            session.verify = str(settings.ca_bundle)
        read_environment_once(session, settings.base_url)
        config = Config(central=CentralConfig(base_url=settings.base_url, username=settings.username,
                                              password=password))
        self.client = Client(config=config, session=session)
        self.http = session
        self._login_lock = threading.Lock()
        session.hooks["response"].append(self._renew_expired)

    def _renew_expired(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        """A 401 to a request that carried our token: the session expired (or was ended) on Central.
        Log in again, once for all the threads sharing this session, and send the request again, once."""
        request = response.request
        sent = request.headers.get("Authorization", "")
        if response.status_code != 401 or not sent.startswith("Bearer ") or getattr(request, "renewed", False):
            return response
        with self._login_lock:
            if self.http.headers.get("Authorization") == sent:
                del self.http.headers["Authorization"]
            token = self.http.auth.login()
        response.close()
        again = request.copy()
        again.headers["Authorization"] = token
        again.renewed = True  # type: ignore[attr-defined]  # read above: a second 401 is an answer, not a loop
        return self.http.send(again, **kwargs)

    def __repr__(self) -> str:
        return f"CentralSession({self.settings.base_url!r}, user={self.settings.username!r})"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> CentralSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        """An absolute URL under /v1 for `path`; Central's own absolute links are re-based on our URL,
        because Central builds them from its configured domain, which may not be the one we reach."""
        if path.startswith(("http://", "https://")):
            parts = urlsplit(path)
            path = parts.path.removeprefix("/v1/") + (f"?{parts.query}" if parts.query else "")
        return self.http.urljoin(path)

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
        """Send one request (retried on connection errors, 429 and 5xx); raise CentralError unless status in `ok`."""
        url = self.url(path)
        try:
            response = self.http.request(method, url, **kwargs)
        except PyODKError as exc:
            raise _login_error(exc, method, url) from None
        except requests.JSONDecodeError:  # pyodk reads the login's answer only when it is a 200
            raise CentralError("POST", self.url("sessions"), 200, NOT_JSON) from None
        except requests.RequestException as exc:
            raise CentralError(method, url, None, f"{exc.__class__.__name__} after {self.settings.retries} "
                                                  "retries") from None
        if response.status_code not in ok:
            raise central_error(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            html = "html" in response.headers.get("Content-Type", "")
            raise CentralError(method, response.url, response.status_code,
                               NOT_JSON if html else "the response is not valid JSON (cut off?)") from None


class _SharedSessions:
    """The sessions of the runs open in this process, one per Central account (see `shared_sessions`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.sessions: dict[tuple, CentralSession] = {}

    @staticmethod
    def key(settings: CentralSettings) -> tuple:
        password = hashlib.sha256(settings.password.get_secret_value().encode()).hexdigest()
        return (settings.base_url, settings.username, password, settings.verify_tls, str(settings.ca_bundle),
                settings.timeout, settings.retries, settings.backoff)

    def get(self, settings: CentralSettings) -> CentralSession:
        with self.lock:
            key = self.key(settings)
            if key not in self.sessions:
                self.sessions[key] = CentralSession(settings)
            return self.sessions[key]


_shared = _SharedSessions()


@contextmanager
def shared_sessions() -> Iterator[None]:
    """A run's scope: inside it `central_session` hands every caller (tasks in other threads
    included) the same logged-in session per account; the last scope to end closes them."""
    with _shared.lock:
        _shared.depth += 1
    try:
        yield
    finally:
        with _shared.lock:
            _shared.depth -= 1
            ended = list(_shared.sessions.values()) if _shared.depth == 0 else []
            if ended:
                _shared.sessions.clear()
        for session in ended:
            session.close()


@contextmanager
def central_session(settings: CentralSettings) -> Iterator[CentralSession]:
    """The run's shared session inside `shared_sessions`, else a session of its own closed on exit."""
    if _shared.depth:
        yield _shared.get(settings)
        return
    with CentralSession(settings) as central:
        yield central


def call_pyodk(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a pyodk endpoint call; its PyODKError carries the response, which becomes a CentralError.

    pyodk lets a connection error or timeout through as it came from requests (a PATCH or POST is
    not retried by urllib3, so it ends here at once): it becomes a CentralError without a status."""
    try:
        return call(*args, **kwargs)
    except PyODKError as exc:
        response = exc.args[1] if len(exc.args) > 1 else None
        if isinstance(response, requests.Response):
            raise central_error(response) from None
        raise CentralError("?", "", None, str(exc.args[0]) if exc.args else "pyodk call failed") from None
    except requests.JSONDecodeError:
        raise CentralError("?", "", None, NOT_JSON) from None
    except requests.RequestException as exc:
        request = exc.request
        method, url = (request.method or "?", request.url or "") if request is not None else ("?", "")
        raise CentralError(method, url, None, f"{exc.__class__.__name__}: no answer") from None


def _login_error(exc: PyODKError, method: str, url: str) -> CentralError:
    """pyodk logs in on the first request; its failure is the login's own error (a 401 stays a 401)."""
    response = exc.args[1] if len(exc.args) > 1 else None
    if isinstance(response, requests.Response):
        return central_error(response)
    if exc.args and "no token" in str(exc.args[0]):
        return CentralError("POST", url.split("/v1/")[0] + "/v1/sessions", 200, NO_TOKEN)
    return CentralError(method, url, None, f"login failed: {exc.args[0] if exc.args else 'could not authenticate'}")
