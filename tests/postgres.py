"""A throwaway PostgreSQL 15 cluster on 127.0.0.1, for tests and benchmarks (~1 s to start).

initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` OS user
(created when missing, as on a fresh CI machine). Durability is switched off: the cluster
lives for one test session.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Self

BIN_DIR = Path(os.environ.get("CONSULT_PG_BIN", "/usr/local/bin"))
OS_USER = "postgres"
SERVER_SETTINGS = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=50 -c shared_buffers=64MB")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ensure_os_user() -> None:
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", OS_USER], check=True, capture_output=True)


class ThrowawayPostgres:
    """`with ThrowawayPostgres() as pg:` gives `pg.url`, `postgresql+psycopg://postgres@127.0.0.1:PORT/postgres`."""

    def __init__(self, settings: str = SERVER_SETTINGS) -> None:
        self.settings = settings
        """Server options (`-c name=value ...`); the default trades durability for speed."""
        self.as_root = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="consult-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(BIN_DIR / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", OS_USER, "--", *command]
        result = subprocess.run(command, cwd=self.dir, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.dir / "server.log"
            raise RuntimeError(f"{args[0]} failed: {result.stderr.strip()}\n"
                               f"{log.read_text()[-2000:] if log.exists() else ''}")

    def start(self) -> Self:
        if self.as_root:
            _ensure_os_user()
            shutil.chown(self.dir, OS_USER, OS_USER)
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--no-locale", "--no-sync", "--no-instructions")
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "-t", "30",
                      "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} {self.settings}",
                      "start")
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
