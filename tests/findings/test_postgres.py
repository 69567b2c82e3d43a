"""Production runs on PostgreSQL: the same fieldwork loaded there gives the very same findings."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from consult.findings import compute_findings
from consult.forms import FormSchema
from consult.warehouse.database import create_engine_for

from .conftest import Fieldwork, load_fieldwork
from .foreign import ForeignForms, load_foreign
from .test_figures import assert_rows


def test_postgres_gives_the_same_findings_as_sqlite(postgres_db_url: str, field_data: Fieldwork,
                                                    engine: Engine, schemas: dict[str, FormSchema]) -> None:
    postgres = create_engine_for(postgres_db_url)
    try:
        load_fieldwork(postgres, field_data)
        for lang in ("vi", "en"):
            got, want = compute_findings(postgres, schemas, lang), compute_findings(engine, schemas, lang)
            assert [t.key for t in got.tables] == [t.key for t in want.tables]
            for table, reference in zip(got.tables, want.tables, strict=True):
                assert [c.label for c in table.columns] == [c.label for c in reference.columns]
                assert_rows(table.rows(), reference.rows(), table.key)
            figures = [tuple(h.value for h in findings.headlines) for findings in (got, want)]
            assert_rows(figures[:1], figures[1:], "headlines")
    finally:
        postgres.dispose()


def test_postgres_gives_the_same_automatic_sections(postgres_db_url: str, foreign_forms: ForeignForms,
                                                    tmp_path: Path) -> None:
    """The summary's aggregates (GROUP BY, DISTINCT, outer joins) read alike on both databases."""
    sqlite = create_engine_for(f"sqlite:///{tmp_path / 'foreign.db'}")
    postgres = create_engine_for(postgres_db_url)
    try:
        schemas = {f: s for f, s in foreign_forms.schemas.items() if f != "unbuilt_form"}
        for engine in (sqlite, postgres):
            load_foreign(engine, foreign_forms)
        got, want = compute_findings(postgres, schemas, "vi"), compute_findings(sqlite, schemas, "vi")
        assert [t.title for t in got.tables] == [t.title for t in want.tables] and len(got.tables) > 15
        for table, reference in zip(got.tables, want.tables, strict=True):
            assert_rows(table.rows(), reference.rows(), table.key)
        assert [u.form_id for u in got.unsummarised] == ["unbuilt_form"]
    finally:
        sqlite.dispose()
        postgres.dispose()
