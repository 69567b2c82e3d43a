"""The exports read PostgreSQL (production's reporting database) as they read SQLite."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pyreadstat

from consult.exports import Format, export_forms, write_codebooks
from consult.warehouse.database import create_engine_for

from ..conftest import BuiltForms
from ..findings.conftest import Fieldwork, load_fieldwork

FORM = "province_consultation"


def test_exports_from_postgres_equal_those_from_sqlite(postgres_db_url: str, export_db: str,
                                                       field_data: Fieldwork, built_forms: BuiltForms,
                                                       tmp_path: Path):
    engine = create_engine_for(postgres_db_url)
    load_fieldwork(engine, field_data)
    engine.dispose()
    tables = {}
    for name, url in (("postgres", postgres_db_url), ("sqlite", export_db)):
        for fmt in (Format.PARQUET, Format.STATA):
            export_forms(url, built_forms.out_dir, fmt, "vi", tmp_path / name, forms=[FORM])
        tables[name] = pq.read_table(tmp_path / name / "parquet-vi" / f"{FORM}.parquet")
    assert tables["postgres"].schema == tables["sqlite"].schema
    key = "_instance_id"
    assert (tables["postgres"].sort_by(key).to_pylist() == tables["sqlite"].sort_by(key).to_pylist())
    frame, meta = pyreadstat.read_dta(str(tmp_path / "postgres" / "stata-vi" / f"{FORM}.dta"))
    assert len(frame) == tables["sqlite"].num_rows and meta.column_names_to_labels["province"] == "Tỉnh"
    (book,) = write_codebooks(postgres_db_url, built_forms.out_dir, tmp_path / "codebook", forms=[FORM])
    assert "Thái Nguyên" in book.markdown.read_text(encoding="utf-8")
