"""Exports of forms that are not ISG's: built with the odk profile, filled by ODK's engine, sent over
OpenRosa to a sandbox, synced, then exported in every format and read back.

The forms come from the collection (tests/forms): long names, SQL words, Vietnamese names, nested
repeats, a select_multiple inside a repeat, numeric-looking and duplicated choice codes, forms
with one language or three, emoji in labels.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pyreadstat
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from consult.central import (
    BuiltForm,
    CentralSession,
    CentralSettings,
    FieldTeam,
    collect_session,
    deploy_forms,
    ensure_teams,
    resolve_project,
    submit,
)
from consult.exports import Format, export_forms, variable_names, write_codebooks
from consult.exports.tables import text_in
from consult.forms import DataType, FormSchema, build_forms
from consult.sandbox import SandboxServer
from consult.sync import FormSync, SyncOptions
from consult.warehouse.database import create_engine_for
from consult.warehouse.records import INSTANCE, ROW, VALUE, FormLayout, TableKind
from consult.warehouse.tables import form_tables, submissions

from ..enumerator.engine import EnumeratorEngine
from ..enumerator.filler import fill_any
from ..forms.make_forms import HERE, MEDIA

FORMS = ("name_long", "name_reserved_words", "name_vietnamese", "nested_repeats", "repeat_in_group_in_repeat",
         "repeat_of_types", "select_numeric_choices", "allow_choice_duplicates", "single_language",
         "several_languages", "label_vietnamese_emoji", "name_select_repeat_clash")


@dataclass
class Synced:
    build_dir: Path
    db_url: str
    engine: Engine
    schemas: dict[str, FormSchema]


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory, enumerator: EnumeratorEngine) -> Iterator[Synced]:
    root = tmp_path_factory.mktemp("any_form")
    build_dir = root / "build"
    reports = build_forms([HERE / f"{name}.xlsx" for name in FORMS], MEDIA, build_dir, profile="odk")
    assert all(r.ok for r in reports), [str(i) for r in reports for i in r.issues]
    form_ids = [r.compiled.schema.form_id for r in reports]
    schemas = {f: FormSchema.read(build_dir / f"{f}.schema.json") for f in form_ids}
    db_url = f"sqlite:///{root / 'reporting.db'}"
    engine = create_engine_for(db_url)
    with SandboxServer() as server:
        settings = CentralSettings(url=server.url, username=server.admin_email,
                                   password=server.admin_password, project="Xuất dữ liệu", backoff=0.05)
        with CentralSession(settings) as central:
            project_id = resolve_project(central, settings.project)
            deploy_forms(central, project_id, [BuiltForm.load(build_dir, f) for f in schemas])
            team_of_all = FieldTeam(name="Điều tra viên", forms=list(schemas))
            (team,) = ensure_teams(central, project_id, [team_of_all])
            with collect_session() as session:
                for form_id in schemas:
                    for instances in (3, 1, 2):
                        filled = fill_any(enumerator, build_dir / f"{form_id}.xml", build_dir / "media",
                                          instances=instances)
                        submit(session, settings.base_url, project_id, team.token, filled.xml.encode("utf-8"),
                               filled.attachments)
                        assert ET.fromstring(filled.xml).findtext("meta/instanceID")
            for schema in schemas.values():
                assert FormSync(central, engine, project_id, schema, SyncOptions()).run().valid == 3
    yield Synced(build_dir, db_url, engine, schemas)
    engine.dispose()


def _stored(engine: Engine, schema: FormSchema) -> dict[str, list[dict]]:
    """Table name → its rows as the loader typed them, for valid live submissions."""
    layout = FormLayout.of(schema)
    tables = form_tables(layout)
    out = {}
    with engine.connect() as conn:
        for t in layout.tables:
            table = tables[t.key]
            query = select(table).join(submissions, (submissions.c.instance_id == table.c[INSTANCE])
                                       & (submissions.c.validation_status == "valid"))
            out[t.name] = [dict(r) for r in conn.execute(query).mappings()]
    return out


@pytest.mark.parametrize("form_id", FORMS)
def test_every_format_reads_back_what_the_database_holds(synced: Synced, form_id: str, tmp_path: Path):
    schema = synced.schemas[form_id]
    layout = FormLayout.of(schema)
    stored = _stored(synced.engine, schema)
    folders = {fmt: export_forms(synced.db_url, synced.build_dir, fmt, "vi", tmp_path, forms=[form_id])[0]
               for fmt in Format}
    assert all(p.is_file() for e in folders.values() for p in e.files)
    for t in layout.tables:
        if t.kind is TableKind.CHOICES:
            continue
        rows = {(r[INSTANCE], r.get(ROW) or ""): r for r in stored[t.name]}
        assert rows, f"{t.name}: the engine filled every table"
        exported = pq.read_table(tmp_path / "parquet-vi" / f"{t.name}.parquet").to_pylist()
        got = {(r[INSTANCE], r.get(ROW) or ""): r for r in exported}
        assert set(got) == set(rows), t.name
        for key, row in rows.items():
            for column, value in row.items():
                assert got[key][column] == value, (t.name, column)

        for child in layout.tables:
            if child.kind is not TableKind.CHOICES or child.parent != t.key:
                continue
            field = schema.field(child.fields[0])
            chosen = Counter(v[VALUE] for v in stored[child.name])
            for choice in dict.fromkeys(c.name for c in schema.choices_for(field).choices):
                indicator = next(c for c in exported[0] if c in (f"{field.column}_{choice}",
                                                                  f"{field.column}__{choice}"))
                assert sum(r[indicator] or 0 for r in exported) == chosen[choice], (t.name, indicator)

        columns = list(exported[0])
        for fmt, read, suffix, limit in ((Format.STATA, pyreadstat.read_dta, ".dta", 28),
                                         (Format.SPSS, pyreadstat.read_sav, ".sav", 64)):
            frame, meta = read(str(tmp_path / f"{fmt}-vi" / f"{t.name}{suffix}"))
            names = variable_names(columns, fmt)
            assert list(frame.columns) == [names[c].name for c in columns]
            assert len(frame) == len(rows) and all(len(c.encode()) <= limit for c in frame.columns)
            table = "Submissions" if not t.key else next(r.table for r in schema.repeats if r.key == t.key)
            for f in schema.fields_in(table):
                choices = schema.choices_for(f)
                if f.data_type is not DataType.SELECT_ONE or not choices:
                    continue
                name = names[f.column].name
                for number, row in zip(frame[name], exported, strict=True):
                    if row[f.column] is None:
                        assert math.isnan(number)
                        continue
                    choice = next(c for c in choices.choices if c.name == row[f.column])
                    label = text_in(choice.labels, "vi", choice.name)
                    assert meta.variable_value_labels[name][number] == label


@pytest.mark.parametrize("form_id", FORMS)
def test_the_codebook_has_every_exported_column(synced: Synced, form_id: str, tmp_path: Path):
    (book,) = write_codebooks(synced.db_url, synced.build_dir, tmp_path / "codebook", "en", forms=[form_id])
    markdown = book.markdown.read_text(encoding="utf-8")
    export_forms(synced.db_url, synced.build_dir, Format.PARQUET, "en", tmp_path / "exports", forms=[form_id])
    for path in (tmp_path / "exports" / "parquet-en").glob("*.parquet"):
        for column in pq.read_schema(path).names:
            assert f"### `{column}`" in markdown, (path.name, column)
    assert book.html.is_file() and book.workbook.is_file()
