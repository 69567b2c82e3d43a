"""The tables derived from the five FormSchemas, and how they grow with new form versions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import inspect, select, text, types
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from consult.forms.schema import DataType, FormSchema
from consult.warehouse.database import create_engine_for
from consult.warehouse.load import load_page
from consult.warehouse.records import FormLayout, RecordBuilder
from consult.warehouse.tables import (
    SchemaConflict,
    defer_child_keys,
    ensure_schema,
    form_tables,
    key_index_name,
    submissions,
)

from ..conftest import FORM_IDS, BuiltForms
from .helpers import PROJECT, load_rows
from .odata_rows import instance_id, odata_row

SQL_KINDS = {DataType.INTEGER: types.Integer, DataType.DECIMAL: types.Float, DataType.DATE: types.Date,
             DataType.DATETIME: types.DateTime, DataType.STRING: types.Text}


def test_every_form_gets_its_tables_with_typed_columns(engine: Engine, built_forms: BuiltForms) -> None:
    layouts = [FormLayout.of(built_forms.schema(form_id)) for form_id in FORM_IDS]
    changes = ensure_schema(engine, layouts)
    inspector = inspect(engine)
    names = set(inspector.get_table_names())
    assert {"submissions", "validation_failures", "watermarks", "sync_runs", "write_backs"} <= names
    for layout in layouts:
        for table in layout.tables:
            assert table.name in names and table.name in changes.created_tables
            reflected = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
            assert set(table.key_columns) <= set(reflected)
            for column in table.columns:
                assert isinstance(reflected[column.name], SQL_KINDS[column.data_type]), (table.name, column)
    province = inspector.get_columns("province_consultation")
    geopoint = {"location_lon", "location_lat", "location_alt", "location_accuracy"}
    assert geopoint <= {c["name"] for c in province}
    assert ensure_schema(engine, layouts).created_tables == []


def test_values_come_back_typed_in_utc_and_in_vietnamese(engine: Engine, province: FormSchema) -> None:
    name = "Nguyễn Thị Hoà – Sở Kế hoạch và Đầu tư"
    row = odata_row(province, 1, overrides={"respondent_name": name, "staff_days": 12, "budget_mvnd": 150.5,
                                            "start_time": "2004-08-10T08:30:00.000+07:00"})
    load_rows(engine, province, [row])
    table = form_tables(FormLayout.of(province))[""]
    with engine.connect() as conn:
        stored = conn.execute(select(table).where(table.c._instance_id == instance_id(1))).one()
    assert stored.respondent_name == name
    assert stored.start_time.isoformat() == "2004-08-10T01:30:00+00:00"
    assert (stored.staff_days, stored.budget_mvnd) == (12, 150.5)
    assert stored.consultation_date.isoformat() == row["interview"]["consultation_date"]
    lon, lat, _ = row["interview"]["location"]["coordinates"]
    assert (stored.location_lon, stored.location_lat) == (lon, lat)
    assert stored.location_accuracy == 8.3


def _with_field(schema: FormSchema, name: str, data_type: DataType, version: str) -> FormSchema:
    """The schema of a next form version with one field more (a copy of `comments`, retyped)."""
    newer = schema.model_copy(deep=True)
    template = newer.field("comments")
    newer.fields.append(template.model_copy(update={
        "name": name, "key": name, "column": name, "xpath": f"/{schema.root}/{name}", "odata_path": [name], "data_type": data_type}))
    newer.version = version
    return newer


def test_a_new_form_version_adds_its_column_and_old_rows_keep_null(engine: Engine,
                                                                   province: FormSchema) -> None:
    load_rows(engine, province, [odata_row(province, 1)])
    v2 = _with_field(province, "follow_up_notes", DataType.STRING, "2026112901")
    changes = ensure_schema(engine, [FormLayout.of(v2)])
    assert changes.added_columns == ["province_consultation.follow_up_notes"]
    assert ensure_schema(engine, [FormLayout.of(v2)]).added_columns == []
    load_rows(engine, v2, [odata_row(v2, 2, overrides={"follow_up_notes": "Gọi lại tuần sau"})])
    table = form_tables(FormLayout.of(v2))[""]
    with engine.connect() as conn:
        notes = dict(conn.execute(select(table.c._instance_id, table.c.follow_up_notes)).all())
    assert notes == {instance_id(1): None, instance_id(2): "Gọi lại tuần sau"}
    load_rows(engine, province, [odata_row(province, 3)])  # an old-version submission still loads
    assert ensure_schema(engine, [FormLayout.of(province)]).added_columns == []  # and nothing is dropped
    assert "follow_up_notes" in {c["name"] for c in inspect(engine).get_columns("province_consultation")}


def test_a_warehouse_made_by_an_older_consult_gets_the_indexes_declared_since(engine: Engine,
                                                                              province: FormSchema) -> None:
    """A warehouse made before `ix_submissions_loaded` existed keeps its rows and gets the index at
    the next sync's `ensure_schema`, once."""
    load_rows(engine, province, [odata_row(province, 1)])
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_submissions_loaded"))
    assert "ix_submissions_loaded" not in {i["name"] for i in inspect(engine).get_indexes("submissions")}
    assert ensure_schema(engine, [FormLayout.of(province)]).created_indexes == ["ix_submissions_loaded"]
    indexes = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("submissions")}
    assert indexes["ix_submissions_loaded"] == ["project_id", "form_id", "loaded_at"]
    assert ensure_schema(engine, [FormLayout.of(province)]).created_indexes == []
    with engine.connect() as conn:
        assert conn.execute(select(submissions.c.instance_id)).scalars().all() == [instance_id(1)]


def _key_indexes(engine: Engine, table: str) -> dict[str, list[str]]:
    return {i["name"]: i["column_names"] for i in inspect(engine).get_indexes(table) if i["unique"]}


def test_a_first_load_builds_the_child_tables_keys_after_its_rows(engine: Engine, province: FormSchema) -> None:
    """The child tables' keys are unique indexes: dropped before a form's first load, built once its
    rows are in, and they refuse a duplicate row once built."""
    layout = FormLayout.of(province)
    ensure_schema(engine, [layout])
    members = form_tables(layout)["members"]
    assert inspect(engine).get_pk_constraint(members.name)["constrained_columns"] == []
    assert _key_indexes(engine, members.name) == {key_index_name(members.name): ["_instance_id", "_row_id"]}
    dropped = defer_child_keys(engine, layout)
    child_tables = [t.name for t in layout.tables if t.key]
    assert sorted(dropped) == sorted(key_index_name(name) for name in child_tables)
    assert all(_key_indexes(engine, name) == {} for name in child_tables)
    with engine.begin() as conn:  # as a sync loads: without `load_rows`' own `ensure_schema`
        load_page(conn, PROJECT, RecordBuilder(province).build([odata_row(province, n) for n in (1, 2)]), {}, [])
    assert all(_key_indexes(engine, name) == {} for name in child_tables)
    assert defer_child_keys(engine, layout) == []  # the form holds rows now: nothing is dropped
    assert sorted(ensure_schema(engine, [layout]).created_indexes) == sorted(dropped)
    assert _key_indexes(engine, members.name) == {key_index_name(members.name): ["_instance_id", "_row_id"]}
    with engine.connect() as conn:
        assert conn.execute(select(members.c._instance_id).distinct()).scalars().all() != []
        row = conn.execute(select(members).limit(1)).mappings().one()
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(members.insert().values(dict(row)))


def test_child_tables_made_with_a_primary_key_get_no_second_key(engine: Engine, province: FormSchema) -> None:
    """A warehouse made when the child tables' key was their primary key keeps it: `ensure_schema`
    does not add a unique index on the same columns, and a first load drops nothing."""
    layout = FormLayout.of(province)
    ensure_schema(engine, [layout])
    members = form_tables(layout)["members"].name
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {members}"))
        conn.execute(text(f"CREATE TABLE {members} (_instance_id TEXT NOT NULL REFERENCES province_consultation "
                          "(_instance_id) ON DELETE CASCADE, _row_id TEXT NOT NULL, _parent_row_id TEXT, "
                          "_position INTEGER NOT NULL, PRIMARY KEY (_instance_id, _row_id))"))
    changes = ensure_schema(engine, [layout])
    assert key_index_name(members) not in changes.created_indexes
    assert inspect(engine).get_pk_constraint(members)["constrained_columns"] == ["_instance_id", "_row_id"]
    assert key_index_name(members) not in defer_child_keys(engine, layout)
    load_rows(engine, province, [odata_row(province, 1)])
    with engine.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {members}")).scalar() > 0


def test_a_field_that_changes_type_between_versions_is_refused(engine: Engine, province: FormSchema) -> None:
    v2 = _with_field(province, "follow_up_notes", DataType.STRING, "2")
    v3 = _with_field(province, "follow_up_notes", DataType.INTEGER, "3")
    with pytest.raises(SchemaConflict, match="follow_up_notes"):
        ensure_schema(engine, [FormLayout.of(v2), FormLayout.of(v3)])


def test_layouts_of_two_versions_merge_into_one_table(engine: Engine, province: FormSchema) -> None:
    v2 = _with_field(province, "follow_up_notes", DataType.STRING, "2")
    ensure_schema(engine, [FormLayout.of(v2), FormLayout.of(province)])
    assert "follow_up_notes" in {c["name"] for c in inspect(engine).get_columns("province_consultation")}


def test_syncs_starting_together_create_the_schema_once(db_url: str, built_forms: BuiltForms) -> None:
    layouts = [FormLayout.of(built_forms.schema(form_id)) for form_id in FORM_IDS]
    engines = [create_engine_for(db_url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            changes = list(pool.map(lambda engine: ensure_schema(engine, layouts), engines))
    finally:
        for engine in engines:
            engine.dispose()
    created = [name for change in changes for name in change.created_tables]
    assert sorted(created) == sorted(set(created)) and "submissions" in created


@pytest.mark.parametrize("form_id", ["submissions", "attachments", "entity_versions", "entity_submissions",
                                     "entities__focal_points"])
def test_a_form_named_like_a_table_another_step_owns_is_refused(engine: Engine, province: FormSchema,
                                                                form_id: str) -> None:
    from consult.attachments import attachments
    from consult.warehouse.entities import entity_submissions, entity_versions_table, list_table_name

    owned = {attachments.name, entity_versions_table.name, entity_submissions.name, list_table_name("focal_points")}
    assert form_id in owned | {"submissions"}
    with pytest.raises(SchemaConflict, match=f"would reuse the system table '{form_id}'"):
        ensure_schema(engine, [FormLayout.of(province.model_copy(update={"form_id": form_id}))])
    assert form_id not in inspect(engine).get_table_names()
