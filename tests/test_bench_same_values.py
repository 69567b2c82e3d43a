"""bench/same_values.py finds a value consult stored differently from the baseline, and a missing row."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pandas as pd
import pytest

from consult.forms.xlsform import compile_xlsform
from consult.warehouse.database import create_engine_for

from .forms_lint.forms import write_form
from .warehouse.helpers import load_rows

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from same_values import compare

FORM = {
    "survey": [["type", "name", "label"],
               ["begin_group", "visit", "Chuyến thăm / Visit"],
               ["integer", "people", "Số người / People"],
               ["decimal", "budget", "Ngân sách / Budget"],
               ["date", "day", "Ngày / Day"],
               ["select_multiple topic", "topics", "Chủ đề / Topics"],
               ["geopoint", "place", "Vị trí / Place"],
               ["end_group", "", ""],
               ["begin_repeat", "members", "Thành viên / Members"],
               ["text", "member_name", "Họ tên / Name"],
               ["end_repeat", "", ""]],
    "choices": [["list_name", "name", "label"], ["topic", "forestry", "Lâm nghiệp / Forestry"],
                ["topic", "water", "Nước / Water"]],
    "settings": [["form_id", "version"], ["same_values_check", "2026120401"]],
}
ROWS = [
    {"__id": "uuid:a", "__system": {"submissionDate": "2026-12-04T03:00:00.000Z", "submitterId": "5",
                                    "reviewState": None, "formVersion": "2026120401"},
     "meta": {"instanceID": "uuid:a"},
     "visit": {"people": 3, "budget": 12.5, "day": "2026-12-01", "topics": "water forestry",
               "place": {"type": "Point", "coordinates": [105.8, 21.0, 12.0], "properties": {"accuracy": 4.5}}},
     "members": [{"__id": "m1", "member_name": "Nguyễn Thị Hoà"}, {"__id": "m2", "member_name": "Lê Văn Thành"}]},
    {"__id": "uuid:b", "__system": {"submissionDate": "2026-12-04T04:00:00.000+07:00", "submitterId": "6",
                                    "reviewState": "approved", "formVersion": "2026120401"},
     "meta": {"instanceID": "uuid:b"},
     "visit": {"people": None, "budget": None, "day": None, "topics": None, "place": None}, "members": []},
]


@pytest.fixture
def databases(tmp_path: Path):
    schema = compile_xlsform(write_form(tmp_path / "same_values_check.xlsx", FORM), tmp_path, validate=False).schema
    engine = create_engine_for(f"sqlite:///{tmp_path / 'consult.db'}")
    load_rows(engine, schema, ROWS)
    engine.dispose()
    with sqlite3.connect(tmp_path / "baseline.db") as db:  # what variants.baseline writes
        parents = pd.json_normalize([{k: v for k, v in row.items() if k != "members"} for row in ROWS])
        for column in parents.columns:
            parents[column] = parents[column].map(lambda v: str(v).replace("'", '"') if isinstance(v, list) else v)
        parents.to_sql("Submissions", db, index=False)
        pd.json_normalize([{**m, "__Submissions-id": row["__id"]} for row in ROWS for m in row["members"]]).to_sql(
            "Submissions_members", db, index=False)
    return schema, tmp_path / "consult.db", tmp_path / "baseline.db"


def test_what_consult_stored_is_what_the_baseline_stored(databases) -> None:
    schema, consult_db, baseline_db = databases
    check = compare(consult_db, baseline_db, schema)
    assert check.same, check.examples
    assert check.rows == {"same_values_check": 2, "same_values_check__topics": 2, "same_values_check__members": 2,
                          "submissions": 2}
    assert check.columns == 8 + 1 + 1 + 4  # visit (a geopoint is 4), topics' rows, members, system
    assert check.values == 2 * 8 + 2 + 2 + 2 * 4
    assert check.not_in_baseline == ["submissions.updated_at", "submissions.submitter_name", "submissions.device_id",
                                     "submissions.instance_name"]  # not in these rows' __system


def test_a_changed_value_and_a_missing_row_are_found(databases) -> None:
    schema, consult_db, baseline_db = databases
    with sqlite3.connect(consult_db) as db:
        db.execute("UPDATE same_values_check SET people = 4 WHERE _instance_id = 'uuid:a'")
        db.execute("UPDATE same_values_check SET place_lat = 21.5 WHERE _instance_id = 'uuid:a'")
        db.execute("DELETE FROM same_values_check__topics WHERE value = 'water'")
        db.execute("DELETE FROM same_values_check__members WHERE _row_id = 'm2'")
    check = compare(consult_db, baseline_db, schema)
    assert not check.same
    assert check.differences == 3
    assert check.unmatched_rows["same_values_check__members"] == 1
    assert any("same_values_check.people of uuid:a: consult 4.0, baseline 3.0" in e for e in check.examples)
    assert any("place_lat" in e for e in check.examples)
    assert any("same_values_check__topics of uuid:a" in e for e in check.examples)
