"""A reporting database full of fieldwork, built once per session without HTTP.

The generator's interviews go the way a sync takes them (Collect XML → Central's OData rows
→ warehouse records → validation → load → form-wide duplicate check), plus what a sync also
records: one deletion in Central, and the write-back of the quarantined submissions (review
state `hasIssues`) but one. Two valid interviews carry hostile answers, as a respondent could
type them, and one valid interview is deleted so that the findings must leave it out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from sqlalchemy import text, update
from sqlalchemy.engine import Engine

from consult.fieldwork import Interview, fieldwork
from consult.forms import FormSchema
from consult.validate import ValidationContext, validate_records
from consult.warehouse.database import create_engine_for
from consult.warehouse.load import FailureRow, load_page, mark_deleted, recheck_duplicates
from consult.warehouse.records import FormLayout, FormRecords, RecordBuilder
from consult.warehouse.tables import ensure_schema, submissions

from ..conftest import FORM_IDS, BuiltForms
from ..served import odata_rows
from .foreign import ForeignForms, build_foreign, load_foreign

PROJECT_ID = 1
SCRIPT = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://x","y")'
TODAY = date(2026, 1, 1)


@dataclass(frozen=True)
class Page:
    """One form's submissions as the sync would load them."""

    schema: FormSchema
    records: FormRecords
    statuses: dict[str, str]
    failures: list[FailureRow]


@dataclass(frozen=True)
class Fieldwork:
    schemas: dict[str, FormSchema]
    pages: list[Page]
    interviews: list[Interview]
    deleted: str
    """A valid province consultation deleted in Central: counted nowhere but in `deleted`."""
    hostile: dict[str, str]
    """Instance id → the hostile answer it gives to `constraints`."""
    not_written_back: str
    """The one quarantined submission the supervisor was not yet told about."""


def _hostile(interviews: list[Interview]) -> tuple[list[Interview], dict[str, str]]:
    """Two clean province consultations answer `constraints` with markup and a formula."""
    clean = [i for i in interviews if i.form_id == "province_consultation" and i.mistake is None]
    chosen = {clean[2].instance_id: SCRIPT, clean[3].instance_id: FORMULA}
    changed = []
    for interview in interviews:
        answer = chosen.get(interview.instance_id)
        if answer is not None:
            xml = interview.xml.decode("utf-8")
            start, end = xml.find("<constraints"), xml.find("</constraints>")
            tail = xml[end + len("</constraints>"):] if end >= 0 else xml[xml.find("/>", start) + 2:]
            xml = xml[:start] + f"<constraints>{escape(answer)}</constraints>" + tail
            interview = replace(interview, xml=xml.encode("utf-8"))
        changed.append(interview)
    return changed, chosen


@pytest.fixture(scope="session")
def field_data(built_forms: BuiltForms) -> Fieldwork:
    schemas = {form_id: built_forms.schema(form_id) for form_id in FORM_IDS}
    interviews, hostile = _hostile(fieldwork(schemas))
    pages = []
    for form_id in FORM_IDS:
        schema = schemas[form_id]
        records = RecordBuilder(schema).build(odata_rows(built_forms.xform(form_id),
                                                          [i for i in interviews if i.form_id == form_id]))
        report = validate_records(schema, records, ValidationContext(today=TODAY))
        failures = [FailureRow(PROJECT_ID, form_id, f.instance_id, f.rule, f.column, f.row_id, f.value,
                               f.message_vi, f.message_en) for f in report.failures]
        pages.append(Page(schema, records, dict(report.statuses), failures))
    clean = [i for i in interviews if i.form_id == "province_consultation" and i.mistake is None]
    quarantined = sorted(i.instance_id for i in interviews if i.mistake)
    return Fieldwork(schemas, pages, interviews, clean[5].instance_id, hostile, quarantined[0])


def load_fieldwork(engine: Engine, data: Fieldwork) -> None:
    """Load the pages, judge duplicates, record the deletion and the write-back, as a sync does."""
    ensure_schema(engine, [FormLayout.of(s) for s in data.schemas.values()])
    with engine.begin() as conn:
        for page in data.pages:
            load_page(conn, PROJECT_ID, page.records, page.statuses, page.failures)
            recheck_duplicates(conn, PROJECT_ID, page.schema, page.records.layout)
        mark_deleted(conn, PROJECT_ID, "province_consultation", [(data.deleted, "2004-12-01T00:00:00.000Z")])
        s = submissions.c
        conn.execute(update(submissions).where(s.validation_status == "quarantined",
                                               s.instance_id != data.not_written_back)
                     .values(review_state="hasIssues"))


@pytest.fixture(scope="session")
def reporting_db(field_data: Fieldwork, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('findings') / 'reporting.db'}"
    engine = create_engine_for(url)
    load_fieldwork(engine, field_data)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def engine(reporting_db: str) -> Iterator[Engine]:
    engine = create_engine_for(reporting_db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM submissions")).scalar_one() > 150
    yield engine
    engine.dispose()


def as_isg(schemas: dict[str, FormSchema]) -> dict[str, FormSchema]:
    """ISG's forms opted into the ISG profile, as the build writes them once `forms/consult.toml` says so."""
    return {form_id: s.model_copy(update={"profile": "isg"}) for form_id, s in schemas.items()}


def write_schemas(schemas: dict[str, FormSchema], out_dir: Path) -> Path:
    """A build directory holding just these FormSchemas: what `consult report --build-dir` reads."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for form_id, schema in schemas.items():
        schema.write(out_dir / f"{form_id}.schema.json")
    return out_dir


@pytest.fixture(scope="session")
def schemas(field_data: Fieldwork) -> dict[str, FormSchema]:
    return as_isg(field_data.schemas)


@pytest.fixture(scope="session")
def isg_build_dir(schemas: dict[str, FormSchema], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_schemas(schemas, tmp_path_factory.mktemp("isg-build"))


@pytest.fixture(scope="session")
def foreign_forms(tmp_path_factory: pytest.TempPathFactory) -> ForeignForms:
    return build_foreign(tmp_path_factory.mktemp("foreign-build"))


@pytest.fixture(scope="session")
def mixed_db(field_data: Fieldwork, foreign_forms: ForeignForms,
             tmp_path_factory: pytest.TempPathFactory) -> str:
    """ISG's fieldwork and the foreign forms' submissions in one reporting database."""
    url = f"sqlite:///{tmp_path_factory.mktemp('mixed') / 'reporting.db'}"
    engine = create_engine_for(url)
    load_fieldwork(engine, field_data)
    load_foreign(engine, foreign_forms)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def mixed_engine(mixed_db: str) -> Iterator[Engine]:
    engine = create_engine_for(mixed_db)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def mixed_schemas(schemas: dict[str, FormSchema], foreign_forms: ForeignForms) -> dict[str, FormSchema]:
    """What the build directory holds: every form but `unbuilt_form`, synced yet never built here."""
    return schemas | {f: s for f, s in foreign_forms.schemas.items() if f != "unbuilt_form"}
