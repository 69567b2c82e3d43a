"""The recorded entity forms built once, and a sandbox whose worker runs when a test asks."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from consult.central import CentralSession, CentralSettings, built_forms
from consult.central.deploy import BuiltForm
from consult.forms import FormSources, build_forms
from consult.sandbox import SandboxServer

HERE = Path(__file__).resolve().parent
FORMS = FormSources(HERE / "forms")
PASSWORD = "entity-client-password"
_projects = itertools.count(1)


@pytest.fixture(scope="session")
def entity_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """focal_point_entity_test (creates focal_points), focal_point_update_test (updates and reads it),
    province_followup_test (reads it). The media's focal_points.csv is only there for the lint."""
    out = tmp_path_factory.mktemp("entity-build") / "forms"
    reports = build_forms(FORMS.xlsforms(), FORMS.media_dir, out)
    assert all(r.ok for r in reports), [str(i) for r in reports for i in r.issues]
    return out


@pytest.fixture(scope="session")
def entity_forms(entity_build: Path) -> list[BuiltForm]:
    return built_forms(entity_build)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    with SandboxServer(data_dir=tmp_path_factory.mktemp("entity-sandbox"), admin_password=PASSWORD,
                       worker_interval=0) as sandbox:
        yield sandbox


def settings_for(server: SandboxServer, project: str) -> CentralSettings:
    return CentralSettings(url=server.url, username=server.admin_email, password=SecretStr(PASSWORD),
                           project=project, retries=1, backoff=0.01, timeout=30)


@pytest.fixture
def central(server: SandboxServer) -> Iterator[CentralSession]:
    with CentralSession(settings_for(server, f"entities {next(_projects)}")) as session:
        yield session
