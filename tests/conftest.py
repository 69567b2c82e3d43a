"""Fixtures shared by the whole suite."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from consult.forms import FormSchema, FormSources, build_forms
from consult.warehouse.database import create_engine_for

from .enumerator.engine import HERE as ENGINE_DIR
from .enumerator.engine import EnumeratorEngine
from .postgres import ThrowawayPostgres

_database_numbers = itertools.count()
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # else a harmless telemetry traceback

REPO = Path(__file__).resolve().parents[1]
FORMS = FormSources(REPO / "forms")
FORM_IDS = ("province_consultation", "ministry_consultation", "donor_consultation",
            "focal_point_registration", "workshop_evaluation", "focal_point_update")


class BuiltForms:
    """The six forms built once per test session: XForms, FormSchemas and media."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.media_dir = out_dir / "media"

    def xform(self, form_id: str) -> Path:
        return self.out_dir / f"{form_id}.xml"

    def schema(self, form_id: str) -> FormSchema:
        return FormSchema.read(self.out_dir / f"{form_id}.schema.json")


@pytest.fixture(scope="session")
def built_forms(tmp_path_factory: pytest.TempPathFactory) -> BuiltForms:
    out_dir = tmp_path_factory.mktemp("build") / "forms"
    reports = build_forms(FORMS.xlsforms(), FORMS.media_dir, out_dir)
    problems = [str(i) for r in reports for i in r.issues if not r.ok]
    assert all(r.ok for r in reports), problems
    assert {FormSchema.read(out_dir / f"{f}.schema.json").profile for f in FORM_IDS} == {"isg"}, \
        "ISG's forms opt into the isg profile in forms/consult.toml"
    return BuiltForms(out_dir)


@pytest.fixture(scope="session")
def enumerator() -> Iterator[EnumeratorEngine]:
    """ODK's XForms engine in one Node process for the session: starting it costs ~1 s, an interview ~0.1 s."""
    if not (ENGINE_DIR / "node_modules" / "@getodk" / "xforms-engine").is_dir():
        pytest.fail("tests/enumerator/node_modules is missing: run `npm ci --prefix tests/enumerator`")
    with EnumeratorEngine() as engine:
        yield engine


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL 15 cluster for the session: `postgresql+psycopg://postgres@127.0.0.1:PORT/postgres`."""
    with ThrowawayPostgres() as cluster:
        yield cluster.url


@pytest.fixture(scope="session")
def _postgres_admin(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine_for(postgres_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_db_url(request: pytest.FixtureRequest, postgres_url: str) -> Iterator[str]:
    """A fresh, empty database in the session's cluster, dropped after the test."""
    admin: Engine = request.getfixturevalue("_postgres_admin")
    name = f"reporting_{next(_database_numbers)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" STRATEGY = FILE_COPY'))  # 20 ms, WAL_LOG takes 100
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty reporting database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'reporting.db'}"
    return request.getfixturevalue("postgres_db_url")


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """One temporary Prefect API for the session: starting it costs ~15 s, a flow run then ~1 s."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
