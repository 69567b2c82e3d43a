"""Each format read back by a reader that is not ours equals the reporting database, labels included.

The database holds the ISG fieldwork: province consultations with a repeat (`members`) and four
select_multiples, a deleted and some quarantined submissions, and a valid one whose respondent
typed a formula.
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyreadstat
import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from consult.cli import app
from consult.exports import Format, export_forms, variable_names
from consult.output_dirs import MARKER
from consult.forms import FormSchema

from ..conftest import BuiltForms
from ..findings.conftest import FORMULA, Fieldwork

FORM = "province_consultation"
MEMBERS = "province_consultation__members"


def _db_rows(engine: Engine, table: str, status: str = "= 'valid'") -> dict[str, dict]:
    """The live rows of a table straight from SQL, keyed by `_row_id` (repeat) or `_instance_id`."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            f"SELECT t.* FROM {table} t JOIN submissions s ON s.instance_id = t._instance_id "
            f"AND s.form_id = :f WHERE s.deleted_at IS NULL AND s.validation_status {status}"),
            {"f": FORM}).mappings().all()
    return {r.get("_row_id") or r["_instance_id"]: dict(r) for r in rows}


def _chosen(engine: Engine, question: str) -> set[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT _instance_id, value FROM {FORM}__{question}"))
        return {(r[0], r[1]) for r in rows}


def _export(db: str, built: BuiltForms, fmt: Format, lang: str, out: Path, **options) -> Path:
    (item,) = export_forms(db, built.out_dir, fmt, lang, out, forms=[FORM], **options)
    return item.files[0].parent


def _blank(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


@pytest.mark.parametrize(("fmt", "lang"), [(Format.STATA, "vi"), (Format.SPSS, "en")])
def test_stata_and_spss_read_back_equal_the_database_with_labels_in_the_language(
        fmt: Format, lang: str, export_db: str, export_engine: Engine, built_forms: BuiltForms,
        tmp_path: Path):
    schema = built_forms.schema(FORM)
    folder = _export(export_db, built_forms, fmt, lang, tmp_path / "exports")
    read = pyreadstat.read_dta if fmt is Format.STATA else pyreadstat.read_sav
    frame, meta = read(str(folder / f"{FORM}{'.dta' if fmt is Format.STATA else '.sav'}"))
    names = variable_names(list(frame.columns), fmt)  # already legal: unchanged
    assert all(r.name == c for c, r in names.items())
    key = "_instance_id" if fmt is Format.STATA else "v_instance_id"
    db = _db_rows(export_engine, FORM)
    assert sorted(frame[key]) == sorted(db), "valid, live submissions only"
    labels = meta.column_names_to_labels
    values = meta.variable_value_labels

    assert labels["agency"] == schema.field("agency").labels[lang]
    assert labels["start_time"] == {"vi": "Thời điểm bắt đầu phỏng vấn", "en": "Interview started"}[lang]
    limit = 80 if fmt is Format.STATA else 256
    for column in ("interest_level", "cprgs_awareness", "mpi_2215_used", "staff_days"):
        question = schema.field(column).labels[lang]
        size = len(question.encode()) if fmt is Format.SPSS else len(question)
        assert labels[column] == (question if size <= limit else labels[column][:-1] + "…"), column
        assert question.startswith(labels[column].removesuffix("…"))
    agency = schema.choice_lists["agency"]
    for _, row in frame.iterrows():
        stored = db[row[key]]
        assert row["respondent_name"] == (stored["respondent_name"] or "")
        if stored["staff_days"] is None:
            assert _blank(row["staff_days"])
        else:
            assert row["staff_days"] == stored["staff_days"]
        assert _blank(row["budget_mvnd"]) if stored["budget_mvnd"] is None else math.isclose(
            row["budget_mvnd"], stored["budget_mvnd"])
        assert row["consultation_date"] == date.fromisoformat(str(stored["consultation_date"])[:10])
        code = stored["agency"]
        assert values["agency"][row["agency"]] == agency.label(code, lang), "code → number → label"
    province_labels = set(values["province"].values())
    assert ("Thái Nguyên" if lang == "vi" else "Thai Nguyen") in province_labels

    chosen = _chosen(export_engine, "priority_topics")
    indicator = "priority_topics_cprgs_ard"
    topic = schema.choice_lists["topic"].label("cprgs_ard", lang)
    assert labels[indicator].endswith(": " + topic), "the choice survives a cut"
    assert schema.field("priority_topics").labels[lang].startswith(
        labels[indicator].removesuffix(": " + topic).removesuffix("…"))
    for _, row in frame.iterrows():
        stored = db[row[key]]
        if stored["priority_topics"] is None:
            assert _blank(row[indicator])
        else:
            assert row[indicator] == ((row[key], "cprgs_ard") in chosen)

    limit = 28 if fmt is Format.STATA else 64
    assert all(len(c.encode()) <= limit for c in frame.columns)
    assert any(c.startswith("preferred_activities_") and len(c) == 28 for c in frame.columns) == (
        fmt is Format.STATA), "a 38-character indicator name shortened for Stata only"

    members, member_meta = read(str(folder / f"{MEMBERS}{'.dta' if fmt is Format.STATA else '.sav'}"))
    stored_members = _db_rows(export_engine, MEMBERS)
    row_key = "_row_id" if fmt is Format.STATA else "v_row_id"
    assert sorted(members[row_key]) == sorted(stored_members)
    assert set(members[key]) <= set(frame[key]), "every member belongs to an exported submission"
    roles = schema.choice_lists["role"]
    for _, row in members.iterrows():
        assert member_meta.variable_value_labels["member_role"][row["member_role"]] == roles.label(
            stored_members[row[row_key]]["member_role"], lang)


def test_pandas_reads_the_stata_file_with_vietnamese_value_labels(export_db: str, export_engine: Engine,
                                                                  built_forms: BuiltForms, tmp_path: Path):
    folder = _export(export_db, built_forms, Format.STATA, "vi", tmp_path / "exports")
    frame = pd.read_stata(folder / f"{FORM}.dta", convert_categoricals=True)
    db = _db_rows(export_engine, FORM)
    provinces = built_forms.schema(FORM).choice_lists["provinces.csv"]
    for _, row in frame.iterrows():
        assert row["province"] == provinces.label(db[row["_instance_id"]]["province"], "vi")
    assert "Thái Nguyên" in set(frame["province"])
    with pd.io.stata.StataReader(folder / f"{FORM}.dta") as reader:
        assert reader.variable_labels()["province"] == "Tỉnh"
    assert pd.api.types.is_datetime64_any_dtype(frame["consultation_date"]), "dates are Stata dates"


def test_parquet_has_typed_columns_and_labels_in_its_metadata(export_db: str, export_engine: Engine,
                                                              built_forms: BuiltForms, tmp_path: Path):
    folder = _export(export_db, built_forms, Format.PARQUET, "vi", tmp_path / "exports")
    table = pq.read_table(folder / f"{FORM}.parquet")
    schema = table.schema
    assert schema.field("consultation_date").type == pa.date32()
    assert schema.field("start_time").type == pa.timestamp("us", tz="UTC")
    assert schema.field("staff_days").type == pa.int64()
    assert schema.field("budget_mvnd").type == pa.float64()
    assert schema.field("priority_topics_cprgs_ard").type == pa.int8()
    assert schema.field("agency").metadata[b"label"].decode() == "Cơ quan"
    import json
    consult = json.loads(schema.metadata[b"consult"])
    assert consult["columns"]["agency"]["values"]["ppc"] == "Uỷ ban nhân dân tỉnh"
    db = _db_rows(export_engine, FORM)
    for row in table.to_pylist():
        stored = db[row["_instance_id"]]
        for column in ("agency", "staff_days", "budget_mvnd", "constraints", "priority_topics"):
            assert row[column] == stored[column], column
        assert row["consultation_date"].isoformat() == str(stored["consultation_date"])[:10]
        started = stored["start_time"]
        assert row["start_time"] == (started.replace(tzinfo=UTC) if isinstance(started, datetime) else
                                     datetime.fromisoformat(str(started)).replace(tzinfo=UTC))
    members = pq.read_table(folder / f"{MEMBERS}.parquet").to_pylist()
    assert {m["_row_id"] for m in members} == set(_db_rows(export_engine, MEMBERS))


def test_csv_is_utf8_with_bom_labelled_and_formulas_stay_text(export_db: str, export_engine: Engine,
                                                              built_forms: BuiltForms, field_data: Fieldwork,
                                                              tmp_path: Path):
    folder = _export(export_db, built_forms, Format.CSV, "vi", tmp_path / "exports")
    raw = (folder / f"{FORM}.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with (folder / f"{FORM}.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = {r["_instance_id"]: r for r in csv.DictReader(handle)}
    db = _db_rows(export_engine, FORM)
    assert set(rows) == set(db)
    formula_id = next(i for i, answer in field_data.hostile.items() if answer == FORMULA)
    assert rows[formula_id]["constraints"] == "'" + FORMULA, "a formula is written as text"
    for instance_id, row in rows.items():
        stored = db[instance_id]
        assert row["respondent_name"].removeprefix("'") == (stored["respondent_name"] or "")
        assert row["staff_days"] == ("" if stored["staff_days"] is None else str(stored["staff_days"]))
    with (folder / f"{FORM}_labels.csv").open(encoding="utf-8-sig", newline="") as handle:
        labels = list(csv.DictReader(handle))
    assert {"variable": "agency", "label": "Cơ quan", "value": "", "value_label": ""} in labels
    assert {"variable": "agency", "label": "", "value": "ppc", "value_label": "Uỷ ban nhân dân tỉnh"} in \
        labels


def test_excel_workbook_has_a_sheet_per_table_labels_and_inert_formulas(
        export_db: str, built_forms: BuiltForms, field_data: Fieldwork, tmp_path: Path):
    folder = _export(export_db, built_forms, Format.XLSX, "en", tmp_path / "exports")
    book = load_workbook(folder / f"{FORM}.xlsx")
    assert book.sheetnames == [FORM, "members", "labels"]
    sheet = book[FORM]
    header = [c.value for c in sheet[1]]
    constraints = header.index("constraints") + 1
    formula_id = next(i for i, answer in field_data.hostile.items() if answer == FORMULA)
    row = next(r for r in sheet.iter_rows(min_row=2) if r[0].value == formula_id)
    cell = row[constraints - 1]
    assert cell.value == FORMULA and cell.data_type == "s" and cell.quotePrefix, "shown as typed, never run"
    labels = [[c.value for c in r] for r in book["labels"].iter_rows(min_row=2)]
    assert [FORM, "agency", "Agency", None, None] in labels


def test_quarantined_submissions_come_with_their_status_when_asked(export_db: str, export_engine: Engine,
                                                                   built_forms: BuiltForms, tmp_path: Path):
    folder = _export(export_db, built_forms, Format.PARQUET, "vi", tmp_path / "exports",
                     include_quarantined=True)
    rows = pq.read_table(folder / f"{FORM}.parquet").to_pylist()
    everything = _db_rows(export_engine, FORM, "IN ('valid', 'quarantined')")
    quarantined = _db_rows(export_engine, FORM, "= 'quarantined'")
    assert quarantined and {r["_instance_id"] for r in rows} == set(everything)
    assert {r["_instance_id"] for r in rows if r["validation_status"] == "quarantined"} == set(quarantined)


def test_long_names_are_shortened_uniquely_and_the_same_on_every_run():
    columns = ["preferred_activities_dialogue_meetings", "preferred_activities_dialogue_meetingz",
               "_instance_id", "in", "with", "2x"]
    stata = variable_names(columns, Format.STATA)
    spss = variable_names(columns, Format.SPSS)
    assert len({r.name for r in stata.values()}) == len(columns)
    assert all(len(r.name) <= 28 for r in stata.values())
    assert stata["preferred_activities_dialogue_meetings"].why.startswith("longer than 28")
    assert stata == variable_names(columns, Format.STATA)
    assert stata["in"].name == "in_" and spss["with"].name == "with_"
    assert spss["_instance_id"].name == "v_instance_id" and stata["_instance_id"].name == "_instance_id"
    assert spss["preferred_activities_dialogue_meetings"].name == "preferred_activities_dialogue_meetings"


def test_export_refuses_a_folder_it_did_not_make_and_reuses_its_own(export_db: str, built_forms: BuiltForms,
                                                                    tmp_path: Path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.docx").write_text("keep me")
    runner = CliRunner()
    common = ["--db", export_db, "--build-dir", str(built_forms.out_dir), "--form", FORM]
    refused = runner.invoke(app, ["export", "--out", str(theirs), *common])
    assert refused.exit_code == 1 and "not empty" in refused.output and "Traceback" not in refused.output
    assert sorted(p.name for p in theirs.iterdir()) == ["thesis.docx"]
    ours = tmp_path / "ours"
    for fmt in ("stata", "spss"):
        result = runner.invoke(app, ["export", "--out", str(ours), "--format", fmt, *common])
        assert result.exit_code == 0, result.output
    assert (ours / MARKER).is_file()
    assert (ours / "stata-vi" / f"{FORM}.dta").is_file() and (ours / "spss-vi" / f"{FORM}.sav").is_file()
    wrong = runner.invoke(app, ["export", "--out", str(ours), "--format", "sas", *common])
    assert wrong.exit_code == 1 and "--format" in wrong.output


def test_importing_the_cli_loads_neither_pyreadstat_nor_pyarrow():
    import subprocess
    import sys
    code = "import sys, consult.cli; print(sorted(m for m in ('pyreadstat', 'pyarrow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_form_exports_in_every_format(export_db: str, built_forms: BuiltForms, tmp_path: Path):
    for fmt in Format:
        exports = export_forms(export_db, built_forms.out_dir, fmt, "vi", tmp_path / "all")
        assert {e.form_id for e in exports} == {s.name.removesuffix(".schema.json")
                                                for s in built_forms.out_dir.glob("*.schema.json")}
        assert all(p.is_file() and p.stat().st_size > 0 for e in exports for p in e.files)
    ministry = FormSchema.read(built_forms.out_dir / "ministry_consultation.schema.json")
    assert ministry.field("contributions_other")  # beside the choice `other` of `contributions`:
    frame, _ = pyreadstat.read_dta(str(tmp_path / "all" / "stata-vi" / "ministry_consultation.dta"))
    assert {"contributions_other", "contributions__other"} <= set(frame.columns)


def test_a_column_an_earlier_form_version_added_is_exported_not_dropped(
        export_db: str, built_forms: BuiltForms, tmp_path: Path):
    import shutil

    from sqlalchemy import create_engine

    copy = tmp_path / "older.db"
    shutil.copy(export_db.removeprefix("sqlite:///"), copy)
    engine = create_engine(f"sqlite:///{copy}")
    with engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {FORM} ADD COLUMN old_score FLOAT"))
        first = conn.execute(text(
            f"SELECT t._instance_id FROM {FORM} t JOIN submissions s ON s.instance_id = t._instance_id "
            "WHERE s.validation_status = 'valid' AND s.deleted_at IS NULL LIMIT 1")).scalar_one()
        conn.execute(text(f"UPDATE {FORM} SET old_score = 2.5 WHERE _instance_id = :i"), {"i": first})
        conn.execute(text("UPDATE submissions SET form_version = '2004010101' WHERE instance_id = :i"),
                     {"i": first})
    engine.dispose()
    folder = _export(f"sqlite:///{copy}", built_forms, Format.STATA, "en", tmp_path / "exports")
    frame, meta = pyreadstat.read_dta(str(folder / f"{FORM}.dta"))
    scores = dict(zip(frame["_instance_id"], frame["old_score"], strict=True))
    assert scores.pop(first) == 2.5 and all(math.isnan(v) for v in scores.values())
    assert meta.column_names_to_labels["old_score"] == "old_score (not in the current form version)"
    assert set(frame["_form_version"]) == {"2004010101", built_forms.schema(FORM).version}

    from consult.exports import write_codebooks

    (book,) = write_codebooks(f"sqlite:///{copy}", built_forms.out_dir, tmp_path / "codebook", "en",
                              forms=[FORM])
    sheet = load_workbook(book.workbook)["columns"]
    head, *rows = [[c.value for c in r] for r in sheet.iter_rows()]
    entry = next(dict(zip(head, r, strict=True)) for r in rows if r[1] == "old_score")
    assert (entry["Versions with the column"], entry["Answered"]) == ("2004010101", 1)
