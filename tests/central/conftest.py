"""A real sandbox server process per test (or per session), on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consult.sandbox import SandboxServer

ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "sandbox-test-password"


def _start(tmp_path_factory: pytest.TempPathFactory) -> SandboxServer:
    data_dir = tmp_path_factory.mktemp("sandbox")
    return SandboxServer(data_dir=data_dir, admin_email=ADMIN_EMAIL, admin_password=ADMIN_PASSWORD).start()


@pytest.fixture
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """A fresh, empty sandbox (`.url`, `.admin_email`, `.admin_password`, `.data_dir`)."""
    server = _start(tmp_path_factory)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """One sandbox for the whole session, for tests that only add their own projects."""
    server = _start(tmp_path_factory)
    yield server
    server.stop()
