"""A sandbox full of fieldwork for the hardening tests, and the tally the docs table is filled from."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..conftest import BuiltForms
from ..fieldwork_central import Field, field_sandbox


@pytest.fixture(scope="package")
def field(built_forms: BuiltForms) -> Iterator[Field]:
    with field_sandbox(built_forms) as sandbox:
        yield sandbox


@pytest.fixture(scope="package")
def _tally(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    rows: dict[str, list[int]] = {}
    yield rows
    lines = ["| kind | cases | lost | duplicated | leaked |", "|---|---|---|---|---|"]
    lines += [f"| {kind} | {c} | {lo} | {d} | {le} |" for kind, (c, lo, d, le) in sorted(rows.items())]
    (tmp_path_factory.getbasetemp() / "hardening_tally.md").write_text("\n".join(lines) + "\n")


@pytest.fixture
def hardening_tally(_tally: dict):
    """Count one case of a kind, with what it lost, duplicated and leaked (the table in docs/hardening.md)."""

    def count(kind: str, *, lost: int = 0, duplicated: int = 0, leaked: int = 0, cases: int = 1) -> None:
        row = _tally.setdefault(kind, [0, 0, 0, 0])
        for i, n in enumerate((cases, lost, duplicated, leaked)):
            row[i] += n

    return count
