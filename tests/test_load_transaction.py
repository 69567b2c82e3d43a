"""A pass's pages go in transactions of `commit_pages`: what a failure (or a kill) between two commits
loses is the pages since the last one, and nothing before them."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert

from consult.sync import LoadTransaction
from consult.warehouse.database import create_engine_for

pages_table = Table("pages", MetaData(), Column("page", Integer, primary_key=True))


def _committed(path: Path) -> list[int]:
    """What another reader sees (a plain sqlite3 reader: the engine's connections begin IMMEDIATE)."""
    with closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT page FROM pages ORDER BY page")]


def test_pages_commit_every_commit_pages_and_a_failure_loses_only_the_uncommitted(tmp_path: Path) -> None:
    path = tmp_path / "pages.db"
    engine = create_engine_for(f"sqlite:///{path}")
    pages_table.create(engine)
    seen: list[list[int]] = []
    with pytest.raises(RuntimeError, match="page 5"), LoadTransaction(engine, pages=2) as transaction:
        for page in range(1, 8):
            if page == 5:
                raise RuntimeError("page 5 could not be read")
            transaction.connection().execute(insert(pages_table), {"page": page})
            transaction.loaded(1)
            seen.append(_committed(path))
    assert seen == [[], [1, 2], [1, 2], [1, 2, 3, 4]]
    assert _committed(path) == [1, 2, 3, 4]
    with LoadTransaction(engine, pages=3) as transaction:
        transaction.connection().execute(insert(pages_table), {"page": 5})
        transaction.loaded(1)
        transaction.commit()  # what the sync does before it waits for a page
        assert _committed(path) == [1, 2, 3, 4, 5]
        transaction.connection().execute(insert(pages_table), {"page": 6})
        transaction.loaded(1)
    assert _committed(path) == [1, 2, 3, 4, 5, 6]  # the last, incomplete group commits at the end
    engine.dispose()
