"""A reporting database holding the ISG fieldwork (the findings tests' data: two repeats, select_multiples,
Vietnamese labels, quarantined and deleted submissions and a respondent's formula), built once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from consult.warehouse.database import create_engine_for

from ..findings.conftest import Fieldwork, field_data, load_fieldwork  # noqa: F401  (field_data: a fixture)


@pytest.fixture(scope="session")
def export_db(field_data: Fieldwork, tmp_path_factory: pytest.TempPathFactory) -> str:  # noqa: F811
    url = f"sqlite:///{tmp_path_factory.mktemp('exports') / 'reporting.db'}"
    engine = create_engine_for(url)
    load_fieldwork(engine, field_data)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def export_engine(export_db: str) -> Iterator[Engine]:
    engine = create_engine_for(export_db)
    yield engine
    engine.dispose()
