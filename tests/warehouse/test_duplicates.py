"""The form-wide duplicate recheck: what it reads (`interviews`, `failing_instances`), what it
writes (`replace_rule_failures`, `refresh_statuses`) and `recheck_duplicates` end to end."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from consult.forms.schema import FormSchema
from consult.warehouse.failures import failures_of
from consult.warehouse.load import (
    FailureRow,
    failing_instances,
    interviews,
    load_page,
    mark_deleted,
    mark_purged,
    recheck_duplicates,
    refresh_statuses,
    replace_rule_failures,
)
from consult.warehouse.records import FormLayout, RecordBuilder
from consult.warehouse.tables import submissions

from ..conftest import BuiltForms
from .helpers import PROJECT, failure, load_rows
from .odata_rows import BASE_TIME, instance_id, odata_row

FORM = "province_consultation"
OTHER_PROJECT = 2
DUPLICATE = "duplicate_interview"


def _statuses(engine: Engine, project_id: int = PROJECT) -> dict[str, str]:
    s = submissions.c
    with engine.connect() as conn:
        return dict(conn.execute(select(s.instance_id, s.validation_status).where(
            s.project_id == project_id, s.form_id == FORM)).all())


def _load_other_project(engine: Engine, schema: FormSchema, indices: list[int],
                        failures: Sequence[FailureRow] = (), statuses: dict[str, str] | None = None) -> None:
    """The same form in another project: its submissions share the form's tables."""
    with engine.begin() as conn:
        load_page(conn, OTHER_PROJECT, RecordBuilder(schema).build([odata_row(schema, i) for i in indices]),
                  statuses or {}, list(failures))


def _duplicate(index: int, original: int, project_id: int = PROJECT, rule: str = DUPLICATE) -> FailureRow:
    return FailureRow(project_id, FORM, instance_id(index), rule, "province", None,
                      "an_giang | dard | 2004-08-11", f"Trùng với bài {instance_id(original)}",
                      f"Duplicate of {instance_id(original)}")


def _ids(*indices: int) -> set[str]:
    return {instance_id(i) for i in indices}


def _replace(conn: Connection, *failures: FailureRow) -> set[str]:
    return replace_rule_failures(conn, PROJECT, FORM, DUPLICATE, list(failures))


def test_interviews_are_the_live_submissions_of_the_form_in_the_project(engine: Engine,
                                                                       province: FormSchema) -> None:
    def row(index: int, name: str | None) -> dict:
        return odata_row(province, index, overrides={"respondent_name": name, "province": "an_giang"})

    rows = [row(1, "Lâm Thị Điệp"), row(2, "Lâm Thị Điệp"), row(3, "Trần Văn Đức"), row(4, "Chau Van Loc"),
            row(5, "Thạch Sa Ra"), row(6, None), row(7, "Lý Văn Tư")]
    load_rows(engine, province, rows, failures=[failure(province, instance_id(4))])
    _load_other_project(engine, province, [8])
    with engine.begin() as conn:
        mark_deleted(conn, PROJECT, FORM, [(instance_id(5), datetime(2026, 11, 28, tzinfo=UTC))])
        mark_purged(conn, PROJECT, FORM, {instance_id(i) for i in range(1, 7)})
        found = interviews(conn, PROJECT, FORM, FORM, ["province", "respondent_name"])
        elsewhere = interviews(conn, OTHER_PROJECT, FORM, FORM, ["province"])
    names = {1: "Lâm Thị Điệp", 2: "Lâm Thị Điệp", 3: "Trần Văn Đức", 4: "Chau Van Loc", 6: None}
    assert sorted(found) == sorted((instance_id(i), BASE_TIME + timedelta(seconds=i), ("an_giang", name))
                                   for i, name in names.items())
    assert [i for i, _, _ in elsewhere] == [instance_id(8)]


def test_interviews_come_typed(engine: Engine, province: FormSchema) -> None:
    row = odata_row(province, 1, overrides={"start_time": "2004-08-10T08:30:00+07:00"})
    load_rows(engine, province, [row])
    with engine.begin() as conn:
        (found,) = interviews(conn, PROJECT, FORM, FORM, ["consultation_date", "start_time", "staff_days"])
    _, submitted, (consulted, started, days) = found
    assert submitted == BASE_TIME + timedelta(seconds=1) and submitted.tzinfo is not None
    assert consulted == date(2004, 8, 11) and isinstance(days, int)
    assert started == datetime(2004, 8, 10, 1, 30, tzinfo=UTC)


def test_failing_instances_have_failures_of_other_rules(engine: Engine, province: FormSchema) -> None:
    load_rows(engine, province, [odata_row(province, i) for i in range(1, 5)], failures=[
        failure(province, instance_id(1)), _duplicate(2, 1),
        failure(province, instance_id(3), rule="required"), _duplicate(3, 1)])
    _load_other_project(engine, province, [5], failures=[_duplicate(5, 5, OTHER_PROJECT, rule="range")])
    with engine.begin() as conn:
        assert failing_instances(conn, PROJECT, FORM, except_rule=DUPLICATE) == _ids(1, 3)
        assert failing_instances(conn, PROJECT, FORM, except_rule="range") == _ids(2, 3)
        assert failing_instances(conn, PROJECT, "donor_consultation", except_rule=DUPLICATE) == set()


def _rule_rows(conn: Connection, index: int) -> list[tuple]:
    return [(f.rule, f.message_en) for f in failures_of(conn, PROJECT, FORM, instance_id(index))]


def test_rule_failures_are_replaced_form_wide_and_only_changes_reported(engine: Engine,
                                                                         province: FormSchema) -> None:
    load_rows(engine, province, [odata_row(province, i) for i in range(1, 5)],
              failures=[failure(province, instance_id(1))])
    with engine.begin() as conn:
        assert _replace(conn, _duplicate(2, 1), _duplicate(3, 1)) == _ids(2, 3)
    with engine.begin() as conn:  # idempotent, whatever the order
        assert _replace(conn, _duplicate(3, 1), _duplicate(2, 1)) == set()
        # a new original: the same submissions, another message
        assert _replace(conn, _duplicate(2, 1), _duplicate(3, 4)) == _ids(3)
        assert _rule_rows(conn, 3) == [(DUPLICATE, f"Duplicate of {instance_id(4)}")]
        assert _replace(conn, _duplicate(3, 4)) == _ids(2)
        assert _rule_rows(conn, 2) == []
        assert _rule_rows(conn, 1) == [("range", "Value out of range")]  # other rules stay
        assert _replace(conn) == _ids(3)
        assert _rule_rows(conn, 3) == []
    assert _statuses(engine)[instance_id(2)] == "valid"  # statuses are the caller's: refresh_statuses


def test_rule_failures_must_be_of_the_rule_and_form(engine: Engine, province: FormSchema) -> None:
    load_rows(engine, province, [odata_row(province, 1)])
    for stray in (_duplicate(1, 1, rule="range"), _duplicate(1, 1, project_id=OTHER_PROJECT)):
        with pytest.raises(ValueError, match="not of rule"), engine.begin() as conn:
            replace_rule_failures(conn, PROJECT, FORM, DUPLICATE, [stray])


def test_statuses_follow_the_failures_left(engine: Engine, province: FormSchema) -> None:
    load_rows(engine, province, [odata_row(province, i) for i in (1, 2, 3)],
              statuses={instance_id(2): "quarantined"})
    _load_other_project(engine, province, [9], statuses={instance_id(9): "quarantined"})
    with engine.begin() as conn:
        _replace(conn, _duplicate(1, 3))
    assert _statuses(engine)[instance_id(1)] == "valid"
    with engine.begin() as conn:
        refresh_statuses(conn, PROJECT, FORM, [*_ids(1, 2, 9), "uuid:unknown"])
    assert _statuses(engine) == {instance_id(1): "quarantined", instance_id(2): "valid",
                                 instance_id(3): "valid"}
    assert _statuses(engine, OTHER_PROJECT) == {instance_id(9): "quarantined"}


SAME = {"province": "an_giang", "agency": "dard", "consultation_date": "2004-08-11"}
"""One agency interviewed on one day; submission `i` is submitted at BASE_TIME + i seconds."""


def _recheck(engine: Engine, schema: FormSchema) -> set[str]:
    with engine.begin() as conn:
        return recheck_duplicates(conn, PROJECT, schema, FormLayout.of(schema))


def test_the_later_interview_is_the_duplicate_though_central_sends_it_first(engine: Engine,
                                                                           province: FormSchema) -> None:
    load_rows(engine, province, [odata_row(province, 3, overrides=SAME),  # newest first, as Central pages
                                 odata_row(province, 2, overrides=SAME | {"agency": "dpi"})])
    load_rows(engine, province, [odata_row(province, 1, overrides=SAME)])
    assert _recheck(engine, province) == _ids(3)
    assert _statuses(engine) == {instance_id(1): "valid", instance_id(2): "valid",
                                 instance_id(3): "quarantined"}
    with engine.connect() as conn:
        (found,) = failures_of(conn, PROJECT, FORM, instance_id(3))
    assert (found.rule, found.column, found.row_id, found.value) == (DUPLICATE, "province", None,
                                                                     "an_giang | dard | 2004-08-11")
    assert instance_id(1) in found.message_vi and instance_id(1) in found.message_en
    assert found.message_vi.startswith("Trùng cuộc tham vấn")
    assert _recheck(engine, province) == set()

    load_rows(engine, province, [odata_row(province, 3, overrides=SAME)])  # pulled again: page verdict only
    assert _statuses(engine)[instance_id(3)] == "valid"
    assert _recheck(engine, province) == _ids(3)
    assert _statuses(engine)[instance_id(3)] == "quarantined"

    with engine.begin() as conn:  # the original is deleted: the later one stands alone
        mark_deleted(conn, PROJECT, FORM, [(instance_id(1), datetime(2026, 11, 28, tzinfo=UTC))])
    assert _recheck(engine, province) == _ids(3)
    assert _statuses(engine)[instance_id(3)] == "valid"
    with engine.connect() as conn:
        assert failures_of(conn, PROJECT, FORM, instance_id(3)) == []


def test_a_broken_interview_entered_again_leaves_the_re_entry_valid(engine: Engine,
                                                                   province: FormSchema) -> None:
    load_rows(engine, province, [odata_row(province, 2, overrides=SAME)])
    load_rows(engine, province, [odata_row(province, 1, overrides=SAME)],
              failures=[failure(province, instance_id(1))])
    assert _recheck(engine, province) == set()
    assert _statuses(engine) == {instance_id(1): "quarantined", instance_id(2): "valid"}
    load_rows(engine, province, [odata_row(province, 1, overrides=SAME)])  # the broken one is fixed
    assert _recheck(engine, province) == _ids(2)
    assert _statuses(engine) == {instance_id(1): "valid", instance_id(2): "quarantined"}


def test_forms_without_duplicate_rules_are_left_alone(engine: Engine, built_forms: BuiltForms) -> None:
    assert _recheck(engine, built_forms.schema("workshop_evaluation")) == set()


def test_the_loader_loads_neither_pandas_nor_gx() -> None:
    code = ("import sys, consult.warehouse.load; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'great_expectations')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
