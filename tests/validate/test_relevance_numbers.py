"""A relevance that compares a number reads it as ODK does, whatever else is on the page.

pandas turns an integer column into float64 as soon as one value on the page is empty, and the
text of 1.0 is "1.0": `${n} = '1'` then held only on pages where every submission answered `n`.
"""

from __future__ import annotations

from datetime import date

import pytest

from consult.forms.schema import FormSchema
from consult.forms.xlsform import compile_xlsform
from consult.validate.report import ValidationContext
from consult.validate.run import validate_records
from consult.warehouse.records import RecordBuilder

from ..forms_lint.forms import write_form

FORM = {
    "survey": [["type", "name", "label", "required", "relevant"],
               ["integer", "n", "Số người / People", "", ""],
               ["text", "why", "Vì sao? / Why?", "yes", "${n} = '1'"],
               ["integer", "households", "Số hộ / Households", "", ""],
               ["text", "where", "Ở đâu? / Where?", "yes", "${households} != '0'"]],
    "settings": [["form_id", "version"], ["numbers_in_relevance", "2026120401"]],
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> FormSchema:
    folder = tmp_path_factory.mktemp("numbers")
    return compile_xlsform(write_form(folder / "numbers_in_relevance.xlsx", FORM), folder, validate=False).schema


def _row(instance_id: str, **answers: object) -> dict:
    return {"__id": instance_id, "__system": {"submissionDate": "2026-12-04T10:00:00.000Z"},
            "meta": {"instanceID": instance_id}, **answers}


@pytest.mark.parametrize("others", [[], [_row("uuid:empty", n=None, households=None, where="x")]],
                         ids=["alone on its page", "beside an empty answer"])
def test_a_number_compared_with_text_reads_as_its_digits(schema: FormSchema, others: list[dict]) -> None:
    rows = [_row("uuid:one", n=1, why=None, households=0, where=None),
            _row("uuid:two", n=2, why=None, households=3, where=None), *others]
    report = validate_records(schema, RecordBuilder(schema).build(rows), ValidationContext(today=date(2026, 12, 4)))
    failed = sorted((f.instance_id, f.column) for f in report.failures)
    assert failed == [("uuid:one", "why"), ("uuid:two", "where")]


def test_a_failure_shows_an_empty_integer_as_no_value(schema: FormSchema) -> None:
    from consult.validate.page import FORM_TABLE, Page
    from consult.validate.relevance import row_failures
    from consult.validate.report import Bilingual

    rows = [_row("uuid:one", n=7), _row("uuid:empty", n=None)]
    page = Page(schema, RecordBuilder(schema).build(rows), ValidationContext(today=date(2026, 12, 4)))
    column = page.frames[FORM_TABLE]["n"]
    assert str(column.dtype) == "Int64"
    failures = row_failures(page, FORM_TABLE, column.isna() | (column == 7), "test", "n", column, Bilingual("x", "x"))
    assert [(f.instance_id, f.value) for f in failures] == [("uuid:one", "7"), ("uuid:empty", None)]
