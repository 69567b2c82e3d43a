"""Forms of every type and naming trap, against what a real ODK Central served for them.

The fixtures are exchanges recorded from a real ODK Central (tests/central/contract, steps
26-11 … 26-35): its field lists, entity sets and `$expand=*` rows
for `names_types_test` (every question type and alias, `q-hyphen`, `q.dot`, `dup` in two
groups, `Name` beside `name`, `tên`, nested repeats, a repeat in a group in a repeat) and
`names_unicode_test` (`đường`, `a-.b`, `x-y.z`, a repeat `nhóm/hộ-gia.đình`). The build
must name every field and table as Central does and store every value Central served.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from consult.forms.schema import DataType, FormSchema, odata_name
from consult.forms.xlsform import compile_xlsform
from consult.warehouse.records import INSTANCE, FormLayout, RecordBuilder, TableKind, geo_shape
from consult.warehouse.tables import form_tables

from .helpers import load_rows

CONTRACT = Path(__file__).parents[1] / "central" / "contract"
FORMS = CONTRACT / "forms"
EXCHANGES = {
    "names_types_test.fields-odata.json": "26-11-fields-odata-true.json",
    "names_types_test.fields-xml.json": "26-12-fields-odata-false.json",
    "names_types_test.service.json": "26-13-odata-service-document.json",
    "names_types_test.submissions-expand.json": "26-17-odata-submissions-expand.json",
    "names_unicode_test.fields-odata.json": "26-30-unicode-fields-odata-true.json",
    "names_unicode_test.fields-xml.json": "26-31-unicode-fields-odata-false.json",
    "names_unicode_test.service.json": "26-32-unicode-odata-service-document.json",
    "names_unicode_test.submissions.json": "26-34-unicode-odata-submissions.json",
    "names_unicode_test.repeat.json": "26-35-unicode-odata-repeat.json",
}


def recorded(name: str) -> Any:
    """The body Central answered in the exchange recorded for `name`."""
    exchange = json.loads((CONTRACT / "exchanges" / EXCHANGES[name]).read_text(encoding="utf-8"))
    return json.loads(exchange["response"]["body"])


@pytest.fixture(scope="module")
def names_types() -> FormSchema:
    return compile_xlsform(FORMS / "names_types_test.xlsx", FORMS, validate=False).schema


@pytest.fixture(scope="module")
def names_unicode() -> FormSchema:
    return compile_xlsform(FORMS / "names_unicode_test.xlsx", FORMS, validate=False).schema


@pytest.mark.parametrize("name, expected", [
    ("q-hyphen", "q_hyphen"), ("q.dot", "q_dot"), ("tên", "t_n"), ("người", "ng_i"), ("a-.b", "a_b"),
    ("x-y.z", "x_y_z"), ("đường", "__ng"), ("tên-hộ", "t_n_h_"), ("_1x", "_1x"), ("_under", "_under"),
    ("Name", "Name"), ("nhóm", "nh_m"), ("hộ-gia.đình", "h_gia_nh"), ("1abc", "_1abc"),
])
def test_odata_names_follow_central(name: str, expected: str) -> None:
    assert odata_name(name) == expected


@pytest.mark.parametrize("form", ["names_types_test", "names_unicode_test"])
def test_every_path_and_table_is_named_as_central_names_it(form: str, request: pytest.FixtureRequest) -> None:
    schema: FormSchema = request.getfixturevalue(form.removesuffix("_test"))
    xml_paths = [f["path"] for f in recorded(f"{form}.fields-xml.json")]
    odata_paths = [f["path"] for f in recorded(f"{form}.fields-odata.json")]
    central = dict(zip(xml_paths, odata_paths, strict=True))
    for f in schema.fields:
        ours = "/" + "/".join(odata_name(part) for part in f.xpath.split("/")[2:])
        assert central[f.xpath.removeprefix(f"/{schema.root}")] == ours
    entity_sets = {s["name"] for s in recorded(f"{form}.service.json")["value"]}
    assert entity_sets == set(schema.tables)


def test_columns_and_table_keys_never_collide(names_types: FormSchema, names_unicode: FormSchema) -> None:
    for schema in (names_types, names_unicode):
        layout = FormLayout.of(schema)
        names = [t.name.lower() for t in layout.tables]
        assert len(names) == len(set(names))
        for table in layout.tables:
            columns = [c.lower() for c in (*table.key_columns, *(c.name for c in table.columns))]
            assert len(columns) == len(set(columns)), table.name
        assert len({f.key for f in schema.fields}) == len(schema.fields)
    by_key = {f.key: f for f in names_types.fields}
    assert (by_key["g1/dup"].column, by_key["g2/dup"].column) == ("g1_dup", "g2_dup")
    assert {by_key["Name"].column, by_key["name"].column} == {"name", "name_2"}
    assert by_key["q-hyphen"].column == "q_hyphen"
    assert {t.key for t in FormLayout.of(names_types).tables} >= {"household", "member", "asset"}


def test_types_come_from_the_bind_type_not_the_spelling(names_types: FormSchema) -> None:
    types = {f.name: f.data_type for f in names_types.fields}
    assert types["q_int"] is types["q_integer"] is types["q_range"] is DataType.INTEGER
    assert types["q_datetime_alias"] is types["q_datetime"] is DataType.DATETIME
    assert types["q_gps"] is types["q_geopoint"] is DataType.GEOPOINT
    assert (types["q_geotrace"], types["q_geoshape"]) == (DataType.GEOTRACE, DataType.GEOSHAPE)
    assert types["q_note"] is DataType.NONE


def _leaves(row: Any, path: str = "") -> dict[str, Any]:
    """Every value Central served in an `$expand=*` row, by path (repeat entries by their __id)."""
    out: dict[str, Any] = {}
    if isinstance(row, dict):
        if row.get("type") in ("Point", "LineString", "Polygon"):
            return {path: row}
        for key, value in row.items():
            if "@odata" in key or key in ("__system", "__id") or key.startswith("__Submissions"):
                continue
            if isinstance(value, list):
                for entry in value:
                    out |= _leaves(entry, f"{path}/{key}[{entry['__id']}]")
            else:
                out |= _leaves(value, f"{path}/{key}")
    elif row is not None:
        out[path] = row
    return out


def test_every_value_central_served_is_stored_typed(names_types: FormSchema) -> None:
    rows = recorded("names_types_test.submissions-expand.json")["value"]
    builder = RecordBuilder(names_types)
    records = builder.build(rows)
    assert records.problems == []
    served = [leaf for row in rows for leaf in _leaves(row).values()]
    stored = [value for table in records.rows.values() for out in table for value in out.values()]
    texts = {str(v) for v in stored} | {token for v in stored if isinstance(v, str) for token in v.split()}
    assert sum(isinstance(v, dict) for v in served) == 4 * len(rows)  # two points, a line, a polygon
    for value in served:
        if isinstance(value, dict):
            continue
        if isinstance(value, str) and "T" in value and ":" in value:
            assert datetime.fromisoformat(value) in stored, value
        else:
            assert str(value) in texts, value
    first = next(r for r in records.rows[""] if r[INSTANCE] == rows[0]["__id"])
    raw = rows[0]
    assert first["q_integer"] == raw["q_integer"] and isinstance(first["q_int"], int)
    assert first["q_calculate"] == raw["q_calculate"]
    assert first["q_date"] == date.fromisoformat(raw["q_date"])
    assert isinstance(first["q_datetime_alias"], datetime)
    assert first["g1_dup"] == raw["g1"]["dup"] and first["g2_dup"] == raw["g2"]["dup"]
    assert first["t_n"] == raw["t_n"] and first["q_hyphen"] == raw["q_hyphen"]
    assert {first["name"], first["name_2"]} == {raw["Name"], raw["name"]}
    assert first["q_geotrace"].startswith("LINESTRING (105.8 21 0, 105.81 21.01 12.5")
    assert first["q_geotrace_points"] == len(raw["q_geotrace"]["coordinates"])
    assert first["q_geoshape"].startswith("POLYGON ((") and first["q_geoshape_points"] == 4
    assert (first["q_gps_lon"], first["q_gps_lat"]) == tuple(raw["q_gps"]["coordinates"][:2])
    counts = {key: len(out) for key, out in records.rows.items()}
    assert counts["household"] == sum(len(r["household"]) for r in rows)
    assert counts["member"] == sum(len(h["member"]) for r in rows for h in r["household"])
    assert counts["asset"] == sum(len(h["hh_group"]["asset"]) for r in rows for h in r["household"])
    choices = next(t for t in builder.layout.tables if t.kind is TableKind.CHOICES)
    assert sorted(o["value"] for o in records.rows[choices.key] if o[INSTANCE] == raw["__id"]) \
        == sorted(raw["q_select_multiple"].split())


def test_a_form_of_every_trap_loads_into_the_database(names_types: FormSchema, engine: Engine) -> None:
    rows = recorded("names_types_test.submissions-expand.json")["value"]
    load_rows(engine, names_types, rows)
    tables = form_tables(FormLayout.of(names_types))
    with engine.connect() as conn:
        stored = conn.execute(select(tables[""].c.g2_dup, tables[""].c.q_geoshape)).all()
        members = conn.execute(select(tables["member"].c.member_name)).scalars().all()
    assert sorted(g2 for g2, _ in stored) == sorted(r["g2"]["dup"] for r in rows)
    assert all(shape.startswith("POLYGON") for _, shape in stored)
    assert "Thành viên 0-0" in members


def test_a_repeat_in_a_group_named_in_vietnamese(names_unicode: FormSchema) -> None:
    submission = recorded("names_unicode_test.submissions.json")["value"][0]
    entries = [{k: v for k, v in e.items() if not k.startswith("__Submissions")}
               for e in recorded("names_unicode_test.repeat.json")["value"]]
    submission["nh_m"]["h_gia_nh"] = entries
    records = RecordBuilder(names_unicode).build([submission])
    assert records.problems == []
    row = records.rows[""][0]
    assert (row["t_n"], row["__ng"], row["x_y_z"]) == (submission["t_n"], submission["__ng"], submission["x_y_z"])
    repeat = names_unicode.repeats[0]
    assert repeat.table == "Submissions.nh_m.h_gia_nh" and repeat.odata_path == ["nh_m", "h_gia_nh"]
    assert [r["t_n_h_"] for r in records.rows[repeat.key]] == [e["t_n_h_"] for e in entries]


@pytest.mark.parametrize("value, wkt, points", [
    ({"type": "LineString", "coordinates": [[105.8, 21, 0], [105.81, 21.01, 12.5]]},
     "LINESTRING (105.8 21 0, 105.81 21.01 12.5)", 2),
    ({"type": "Polygon", "coordinates": [[[1, 2], [3, 4], [5, 6], [1, 2]]]}, "POLYGON ((1 2, 3 4, 5 6, 1 2))", 4),
    ("LINESTRING (105.8 21 0,105.81 21.01 12.5)", "LINESTRING (105.8 21 0,105.81 21.01 12.5)", 2),
    ("21.0 105.8 0 0;21.01 105.81 12.5 3", "LINESTRING (105.8 21 0, 105.81 21.01 12.5)", 2),
])
def test_geo_shapes_become_wkt_longitude_first(value: Any, wkt: str, points: int) -> None:
    assert geo_shape(value) == (wkt, points)


@pytest.mark.parametrize("value", [{"type": "Point", "coordinates": [1, 2]}, "not a line", [1, 2], {"x": 1}])
def test_a_shape_that_is_not_one_is_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        geo_shape(value)


def test_no_submission_of_the_trap_form_is_quarantined(names_types: FormSchema, names_unicode: FormSchema) -> None:
    from consult.validate.report import ValidationContext
    from consult.validate.run import validate_records

    rows = recorded("names_types_test.submissions-expand.json")["value"]
    report = validate_records(names_types, RecordBuilder(names_types).build(rows),
                              ValidationContext(today=date(2026, 12, 4)))
    assert report.failures == [] and set(report.statuses.values()) == {"valid"}
    unicode_rows = recorded("names_unicode_test.submissions.json")["value"]
    report = validate_records(names_unicode, RecordBuilder(names_unicode).build(unicode_rows),
                              ValidationContext(today=date(2026, 12, 4)))
    assert report.failures == []
