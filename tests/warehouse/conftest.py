"""Warehouse fixtures: an engine on each database of `db_url` (SQLite and a real PostgreSQL 15)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.engine import Engine

from consult.forms.schema import FormSchema
from consult.warehouse.database import create_engine_for

if TYPE_CHECKING:
    from ..conftest import BuiltForms

@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine_for(db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def province(built_forms: BuiltForms) -> FormSchema:
    """province_consultation: a repeat (members), four select_multiple fields, a geopoint."""
    return built_forms.schema("province_consultation")
