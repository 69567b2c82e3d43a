"""The proxy and CA bundle variables reach Central's session, read once when the session is made
(requests re-reads them on every request, and an entity list's first sync makes one per entity)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from consult.central import CentralSession, CentralSettings


class _Recorder(BaseHTTPRequestHandler):
    """Answers like Central's login and any GET, and keeps each request line: a forward proxy
    receives absolute URLs (`GET http://host/v1/...`), a server its path only."""

    lines: list[str]

    def _answer(self, body: object) -> None:
        self.lines.append(self.requestline)
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer({"token": "t" * 64, "expiresAt": "2099-01-01T00:00:00.000Z"})

    def do_GET(self) -> None:
        self._answer([])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[str]]]:
    lines: list[str] = []
    handler = type("Handler", (_Recorder,), {"lines": lines})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", lines
    finally:
        server.shutdown()
        server.server_close()


def _settings(url: str, **extra: object) -> CentralSettings:
    return CentralSettings(url=url, username="a@example.org", password="p", retries=0, timeout=5, **extra)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def test_requests_go_through_the_proxy_the_environment_named_when_the_session_was_made(
        recorder: tuple[str, list[str]], clean_environment: pytest.MonkeyPatch) -> None:
    proxy, lines = recorder
    clean_environment.setenv("HTTP_PROXY", proxy)
    with CentralSession(_settings("http://central.invalid")) as central:
        clean_environment.delenv("HTTP_PROXY")  # read once: a later change does not reach this session
        assert central.json("GET", "projects") == []
    assert lines == ["POST http://central.invalid/v1/sessions HTTP/1.1",
                     "GET http://central.invalid/v1/projects HTTP/1.1"]


def test_no_proxy_sends_central_requests_direct(recorder: tuple[str, list[str]],
                                                clean_environment: pytest.MonkeyPatch) -> None:
    server, lines = recorder
    clean_environment.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # discard port: nothing answers there
    clean_environment.setenv("NO_PROXY", "127.0.0.1")
    with CentralSession(_settings(server)) as central:
        assert central.json("GET", "projects") == []
    assert lines == ["POST /v1/sessions HTTP/1.1", "GET /v1/projects HTTP/1.1"]


def test_the_ca_bundle_variable_applies_unless_consult_was_told_otherwise(
        tmp_path: Path, clean_environment: pytest.MonkeyPatch) -> None:
    env_bundle, own_bundle = tmp_path / "env.pem", tmp_path / "own.pem"
    clean_environment.setenv("REQUESTS_CA_BUNDLE", str(env_bundle))
    with CentralSession(_settings("https://central.example.org")) as central:
        assert central.http.verify == str(env_bundle)
    with CentralSession(_settings("https://central.example.org", ca_bundle=own_bundle)) as central:
        assert central.http.verify == str(own_bundle)
    with (pytest.warns(UserWarning, match="TLS certificate verification is OFF"),
          CentralSession(_settings("https://central.example.org", verify_tls=False)) as central):
        assert central.http.verify is False
