"""`python -m consult.sync` runs that start in milliseconds, for tests that start, SIGKILL and rerun many.

Each run is a process of its own running `consult.sync.main`, as `python -m consult.sync` does, but forked
from a server process (multiprocessing's forkserver) that imported the sync, Great Expectations and pandas
once: a cold start spends 3–4 s importing them, which is most of a run on the tests' small Central. The
server never runs any of the sync itself, so every run starts from freshly imported modules, with its own
environment and working folder. `python -m consult.sync` itself is run by tests/hardening/test_secrets.py.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path

PRELOAD = ["consult.sync", "consult.validate", "consult.validate.gx_context", "great_expectations", "pandas",
           "psycopg", "sqlalchemy.dialects.postgresql.psycopg", "sqlalchemy.dialects.sqlite"]
"""What a sync imports on its way (the validation library on its first page), imported once by the server."""

_forkserver = multiprocessing.get_context("forkserver")


def start_server() -> None:
    """Start the forkserver (the imports, once) now, rather than in the first run a test times or kills."""
    _forkserver.set_forkserver_preload(PRELOAD)
    from multiprocessing import forkserver

    forkserver.ensure_running()


def _main(argv: list[str], env: dict[str, str], cwd: str, log: str) -> None:
    """In the forked process: the environment, folder and output of `python -m consult.sync`, then its main."""
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    from consult.sync import main

    raise SystemExit(main(argv))


@dataclass
class ForkedSync:
    """One run; `kill` may come from another thread (the fault proxy's) as soon as `start` returns."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    process: BaseProcess | None = None
    _started: threading.Event = field(default_factory=threading.Event)

    def start(self) -> ForkedSync:
        start_server()
        self.process = _forkserver.Process(target=_main, args=(self.argv, self.env, str(self.cwd), str(self.log)))
        self.process.start()
        self._started.set()
        return self

    def kill(self) -> None:
        """SIGKILL, as the kernel's OOM killer or a pulled plug would end it."""
        self._started.wait(30)
        assert self.process is not None and self.process.pid is not None
        os.kill(self.process.pid, signal.SIGKILL)

    def wait(self, timeout: float) -> tuple[int, str]:
        """The exit code (minus the signal number if a signal ended it) and everything the run printed."""
        assert self.process is not None
        self.process.join(timeout)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join(10)
            raise AssertionError(f"the sync did not end within {timeout} s:\n{self.output()[-3000:]}")
        return self.process.exitcode, self.output()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
