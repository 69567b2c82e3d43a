"""Pytest wiring for the headless ODK enumerator: one Node harness for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .engine import HERE, EnumeratorEngine


@pytest.fixture(scope="session")
def enumerator() -> Iterator[EnumeratorEngine]:
    """A running harness shared by all tests: starting Node and the engine costs ~1 s, a request ~0.1 s."""
    if not (HERE / "node_modules" / "@getodk" / "xforms-engine").is_dir():
        pytest.fail("tests/enumerator/node_modules is missing: run `npm ci --prefix tests/enumerator`")
    engine = EnumeratorEngine()
    try:
        yield engine
    finally:
        engine.close()
