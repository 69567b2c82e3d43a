"""Validation fixtures: the forms' schemas, and pages validated once per session (GX is slow to start)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from consult.forms import FormSchema
from consult.validate import ValidationContext, ValidationReport, validate_records
from consult.warehouse.records import RecordBuilder

from ..conftest import FORM_IDS, BuiltForms

TODAY = date(2025, 1, 15)
"""The validation day: answers after it are in the future."""


@pytest.fixture(scope="session")
def schemas(built_forms: BuiltForms) -> dict[str, FormSchema]:
    return {form_id: built_forms.schema(form_id) for form_id in FORM_IDS}


def validate(schema: FormSchema, odata_rows: list[dict[str, Any]]) -> ValidationReport:
    records = RecordBuilder(schema).build(odata_rows)
    return validate_records(schema, records, ValidationContext(TODAY))
