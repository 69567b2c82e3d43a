"""A loopback HTTP proxy that injects network faults between the Central client and the sandbox.

Threaded, stdlib only. Each request whose path contains `Fault.match` (and whose method is
`Fault.method`, when given) counts; the first `skip` of them pass untouched, the next `times`
get the fault (times=None: for ever). Kinds: delay (hold the request, then forward it), drop
(close without forwarding or answering), lose (forward, so Central applies it, then close
without answering: the reply is lost), late (forward, then answer after `seconds`), pass
(forward and answer untouched; only `then` runs), status (500/502/503/429 with Central's
error JSON), truncate (half the body, honest Content-Length: invalid JSON), cut (half the
body, then the connection closes: IncompleteRead), duplicate (the next matching request
is answered with the body of the previous one: a page sent twice).

`then`, when given, runs where the fault happens: before a drop or a lost reply closes the
connection, after a passed answer went out (`seconds` later). The kill test SIGKILLs the sync there.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
              "proxy-authenticate", "content-length", "accept-encoding", "host"}


@dataclass
class Fault:
    kind: str
    status: int = 503
    seconds: float = 0.0
    times: int | None = 1
    skip: int = 0
    match: str = ".svc/Submissions"
    method: str | None = None
    then: Callable[[], None] | None = None
    hits: int = field(default=0, init=False)
    applied: int = field(default=0, init=False)

    def due(self, method: str, path: str) -> bool:
        if self.match not in path or (self.method is not None and method != self.method):
            return False
        self.hits += 1
        if self.hits <= self.skip or (self.times is not None and self.applied >= self.times):
            return False
        self.applied += 1
        return True


class FaultProxy:
    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        self.fault: Fault | None = None
        self.lock = threading.Lock()
        self.last_body: bytes | None = None
        self.replay: bytes | None = None
        self.busy = 0
        self.idle = threading.Condition(self.lock)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                with proxy.lock:
                    proxy.busy += 1
                try:
                    proxy.handle(self)
                finally:
                    with proxy.lock:
                        proxy.busy -= 1
                        proxy.idle.notify_all()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def set(self, fault: Fault | None) -> None:
        with self.lock:
            self.fault, self.replay, self.last_body = fault, None, None

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait for requests still held or in flight (a delayed one still reaches Central after its client gave up)."""
        with self.idle:
            if not self.idle.wait_for(lambda: self.busy == 0, timeout):
                raise TimeoutError(f"{self.busy} requests still in the proxy after {timeout} s")

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _forward(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Host"] = f"{self.upstream_host}:{self.upstream_port}"
            conn.request(h.command, h.path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            return response.status, response.reason, kept, data
        finally:
            conn.close()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self.lock:
            fault = self.fault if self.fault and self.fault.due(h.command, h.path) else None
            replay = self.replay if self.fault and self.fault.kind == "duplicate" and fault else None
        kind = fault.kind if fault else None
        if kind == "delay":
            time.sleep(fault.seconds)
        if kind == "drop":
            self._close(h, fault)
            return
        if kind == "status":
            payload = json.dumps({"message": f"injected {fault.status}", "code": fault.status * 1000 + 1}).encode()
            h.send_response(fault.status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            if fault.status in (429, 503):
                h.send_header("Retry-After", "0")
            h.end_headers()
            h.wfile.write(payload)
            return
        status, reason, headers, data = self._forward(h, body)
        if kind == "lose":
            self._close(h, fault)
            return
        if kind == "late":
            time.sleep(fault.seconds)
        if kind == "duplicate" and replay is not None:
            data = replay
        if ".svc/Submissions" in h.path and status == 200:
            with self.lock:
                if self.fault and self.fault.kind == "duplicate":
                    self.replay = data
        sent = data
        if kind in ("truncate", "cut") and data:
            sent = data[: len(data) // 2]
        h.send_response_only(status, reason)  # upstream's own Date and Server, not a second copy
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data) if kind == "cut" else len(sent)))
        if kind == "cut":
            h.send_header("Connection", "close")
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(sent)
        if kind == "cut":
            h.close_connection = True
        if kind == "pass" and fault.then:
            h.wfile.flush()
            time.sleep(fault.seconds)
            fault.then()

    @staticmethod
    def _close(h: BaseHTTPRequestHandler, fault: Fault) -> None:
        """End the exchange without an answer (after `then`, so a killed client never sees the close)."""
        if fault.then:
            fault.then()
        h.close_connection = True
