"""Choosing and opening the reporting database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from consult.warehouse.database import (
    DEFAULT_URL,
    ENV_VAR,
    WAL_CHECKPOINT_BYTES,
    create_engine_for,
    database_url,
    safe_url,
)


def test_url_comes_from_the_argument_then_the_environment_then_the_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert database_url(None) == DEFAULT_URL == "sqlite:///reporting.db"
    monkeypatch.setenv(ENV_VAR, "postgresql+psycopg://isg@db/reporting")
    assert database_url(None) == "postgresql+psycopg://isg@db/reporting"
    assert database_url("sqlite:///other.db") == "sqlite:///other.db"


def test_messages_never_show_the_password() -> None:
    url = "postgresql+psycopg://isg:s3cret-pw@db.example.org/reporting"
    assert "s3cret-pw" not in safe_url(url)
    with pytest.raises(ValueError) as error:
        create_engine_for("mysql://isg:s3cret-pw@db/reporting")
    assert "s3cret-pw" not in str(error.value)


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    engine = create_engine_for("postgresql://isg@127.0.0.1:1/reporting")
    assert engine.dialect.driver == "psycopg"
    with pytest.raises(ValueError, match="psycopg 3"):
        create_engine_for("postgresql+psycopg2://isg:s3cret-pw@127.0.0.1:1/reporting")


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'r.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    engine.dispose()


def _pages(url: str) -> tuple[int, int]:
    engine = create_engine_for(url)
    with engine.connect() as conn:
        pages = (conn.execute(text("PRAGMA page_size")).scalar_one(),
                 conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one())
    engine.dispose()
    return pages


def test_a_new_sqlite_warehouse_has_16_kb_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    """A submission's JSON (~2.5 kB) fills a 4 KB page alone; the checkpoint comes after the same
    number of bytes whatever the file's page size."""
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as made_before:
        made_before.execute("CREATE TABLE t (x)")
    assert _pages(f"sqlite:///{tmp_path / 'new.db'}") == (16384, WAL_CHECKPOINT_BYTES // 16384)
    assert _pages(f"sqlite:///{old}") == (4096, WAL_CHECKPOINT_BYTES // 4096)


def test_sqlite_copies_the_wal_into_the_file_rarely_and_fully_when_closed(tmp_path: Path) -> None:
    """A page of a sync writes more than SQLite's default 1000-page WAL: with that default every
    commit checkpointed. The file gets the rows once the last connection closes, with no WAL left."""
    path = tmp_path / "r.db"
    engine = create_engine_for(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE page (body TEXT)"))
        conn.execute(text("INSERT INTO page VALUES (:body)"), [{"body": f"{i:06d}" + "ồ" * 2000} for i in range(1500)])
    wal = path.with_name("r.db-wal")
    assert wal.stat().st_size > 1000 * 4096 > path.stat().st_size
    engine.dispose()
    assert not wal.exists() and path.stat().st_size > 1000 * 4096
    reopened = create_engine_for(f"sqlite:///{path}")
    with reopened.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM page")).scalar() == 1500
    reopened.dispose()
