"""Running the sandbox: in this process (`serve`) or as a child process (`SandboxServer`).

The child-process form is what tests and the demo use: a real server on a free port of
127.0.0.1 with its own data directory, started, health-checked and stopped. The admin
password goes to the child through the environment, not the command line, so it shows up
in neither `ps` nor a log.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from .worker import DEFAULT_INTERVAL as DEFAULT_WORKER_INTERVAL

PASSWORD_ENV = "CONSULT_SANDBOX_ADMIN_PASSWORD"
DEFAULT_ADMIN_EMAIL = "admin@example.org"
DEFAULT_ADMIN_PASSWORD = "sandbox-admin-password"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(
    host: str, port: int, data_dir: Path, domain: str | None, admin_email: str, admin_password: str,
    worker_interval: float = DEFAULT_WORKER_INTERVAL,
) -> None:
    """Serve the sandbox until interrupted. Only loopback addresses are allowed."""
    import uvicorn

    from .app import create_app
    from .directory import ensure_admin
    from .state import Sandbox

    if host not in LOOPBACK:
        raise ValueError(f"the sandbox only listens on loopback, not {host}")
    box = Sandbox.open(Path(data_dir), domain or f"http://{host}:{port}")
    ensure_admin(box.store, admin_email, admin_password)
    logging.getLogger("uvicorn.access").disabled = True  # paths carry app-user tokens
    uvicorn.run(
        create_app(box, worker_interval),
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=True,
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class SandboxServer:
    """A sandbox in a child process; use as a context manager or call start()/stop()."""

    data_dir: Path | None = None
    port: int | None = None
    admin_email: str = DEFAULT_ADMIN_EMAIL
    admin_password: str = DEFAULT_ADMIN_PASSWORD
    domain: str | None = None
    host: str = "127.0.0.1"
    startup_timeout: float = 20.0
    worker_interval: float = DEFAULT_WORKER_INTERVAL  # 0: the worker runs only on /sandbox/worker/exhaust
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def exhaust_worker(self) -> int:
        """Run the worker's pending jobs now; how many events it processed."""
        request = urllib.request.Request(f"{self.url}/sandbox/worker/exhaust", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(json.loads(response.read())["processed"])

    @property
    def log_path(self) -> Path:
        """Where the child's warnings and tracebacks go (never tokens or passwords)."""
        assert self.data_dir is not None
        return self.data_dir / "sandbox.log"

    def start(self) -> SandboxServer:
        if self.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="consult-sandbox-")
            self.data_dir = Path(self._tmp.name)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.host)
        command = [
            sys.executable,
            "-m",
            "consult.sandbox",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--domain",
            self.domain or self.url,
            "--admin-email",
            self.admin_email,
            "--worker-interval",
            str(self.worker_interval),
        ]
        env = {**os.environ, PASSWORD_ENV: self.admin_password}
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"sandbox exited with {self._process.returncode}: {error}")
            try:
                with urllib.request.urlopen(f"{self.url}/sandbox/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"sandbox did not answer on {self.url} within {self.startup_timeout} s")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def run_sandbox(data_dir: Path | None = None, port: int | None = None, admin_email: str = DEFAULT_ADMIN_EMAIL,
                admin_password: str = DEFAULT_ADMIN_PASSWORD, domain: str | None = None) -> SandboxServer:
    """Start a sandbox child process and return it once healthy (stop it, or use `with`)."""
    return SandboxServer(data_dir=data_dir, port=port, admin_email=admin_email, admin_password=admin_password,
                         domain=domain).start()
