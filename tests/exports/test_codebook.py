"""The codebook says, for every exported column, what was asked in both languages and what the data holds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from consult.cli import app

from ..conftest import BuiltForms

FORM = "province_consultation"


def _valid_codes(engine: Engine, column: str) -> Counter:
    with engine.connect() as conn:
        rows = conn.execute(text(
            f"SELECT t.{column} FROM {FORM} t JOIN submissions s ON s.instance_id = t._instance_id "
            "WHERE s.validation_status = 'valid' AND s.deleted_at IS NULL"))
        return Counter(r[0] for r in rows)


def test_codebook_in_three_formats_with_both_languages_counts_and_versions(
        export_db: str, export_engine: Engine, built_forms: BuiltForms, tmp_path: Path):
    out = tmp_path / "codebook"
    result = CliRunner().invoke(app, ["codebook", "--db", export_db, "--build-dir", str(built_forms.out_dir),
                                      "--out", str(out), "--form", FORM, "--lang", "en"])
    assert result.exit_code == 0, result.output
    schema = built_forms.schema(FORM)
    agency = _valid_codes(export_engine, "agency")

    book = load_workbook(out / f"{FORM}-codebook.xlsx")
    head, *rows = [[c.value for c in r] for r in book["columns"].iter_rows()]
    columns = {(r[0], r[1]): dict(zip(head, r, strict=True)) for r in rows}
    entry = columns[(FORM, "agency")]
    assert entry["Question (vi)"] == "Cơ quan"
    assert entry["Question (en)"] == schema.field("agency").labels["en"]
    assert entry["Answered"] == sum(n for code, n in agency.items() if code is not None)
    assert entry["Missing"] == agency[None]
    assert entry["Versions with the column"] == schema.version
    assert columns[(FORM, "staff_days")]["Constraint"] == schema.field("staff_days").constraint
    staff_days = schema.field("staff_days")
    assert columns[(FORM, "staff_days")]["Constraint (vi)"] == staff_days.constraint_messages["vi"]
    assert columns[(FORM, "reasons_other")]["Asked when"]
    assert columns[(FORM + "__members", "member_role")]["Group"] == "members"
    shortened = [e for e in columns.values() if e["stata"] != e["column"]]
    assert shortened and all(len(e["stata"]) <= 28 and "SHA-1" in e["stata/spss: why"] for e in shortened
                             if len(e["column"]) > 28)
    codes = {(r[1], r[2]): r for r in ([c.value for c in x] for x in book["codes"].iter_rows(min_row=2))}
    for choice in schema.choice_lists["agency"].choices:
        *_, number, vi, en, count = codes[("agency", choice.name)]
        assert (vi, en, count) == (choice.labels["vi"], choice.labels["en"], agency[choice.name])
        assert number is not None

    markdown = (out / f"{FORM}-codebook.md").read_text(encoding="utf-8")
    for said in ("### `agency`", "Uỷ ban nhân dân tỉnh", "Versions with the column"):
        assert said in markdown
    html = (out / f"{FORM}-codebook.html").read_text(encoding="utf-8")
    assert "<h3><code>priority_topics_cprgs_ard</code></h3>" in html and "Thái Nguyên" in html
    assert "<script>" not in html.split("<style>")[1], "question text and codes are escaped"
