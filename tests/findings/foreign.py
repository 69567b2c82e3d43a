"""Forms that are not ISG's, with submissions as Collect sends them, loaded the way a sync loads them.

`tests/findings/forms/` holds three small XLSForms (pyxform's Markdown form): a single-language
English form with every kind the automatic section summarises (integer, decimal, select_one,
select_multiple, date, text, geopoint, a note, a repeat), a form with Vietnamese labels only, and
a form whose FormSchema the report is not given. The answers below are chosen so that each count
the tests expect can be worked out by hand; one submission of the English form misses a required
answer and is quarantined by the real validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

from sqlalchemy.engine import Engine

from consult.fieldwork import Interview
from consult.forms import FormSchema
from consult.forms.xlsform import compile_xlsform
from consult.validate import ValidationContext, validate_records
from consult.warehouse.load import FailureRow, load_page
from consult.warehouse.records import FormLayout, RecordBuilder
from consult.warehouse.tables import ensure_schema

from ..served import odata_rows

FORMS = Path(__file__).parent / "forms"
FOREIGN = ("training_feedback", "khao_sat_ho", "unbuilt_form")
"""`unbuilt_form` is synced but its FormSchema is withheld: the report must name it."""
PROJECT_ID = 1
TODAY = date(2026, 1, 1)
SCRIPT = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://x","y")'

Answers = dict[str, "str | list[dict[str, str]] | None"]

TRAINING: list[Answers] = [
    {"participant": "Nguyễn Thị Hoà", "age": "34", "attended": "yes", "topics": "planning budget",
     "session_date": "2024-03-04", "rating": "7.5", "location": "10.5 105.9 0 5",
     "child": [{"child_name": "An", "child_age": "8", "in_school": "yes"},
               {"child_name": "Bình", "child_age": "4", "in_school": "no"}]},
    {"participant": SCRIPT, "age": "41", "attended": "no", "topics": "monitoring",
     "session_date": "2024-03-06", "rating": "9", "child": []},
    {"participant": FORMULA, "age": "29", "attended": "yes", "topics": "planning",
     "session_date": "2024-03-12", "rating": "6.25", "location": "9.9 106.3 0 4",
     "child": [{"child_name": "Chi", "child_age": "12", "in_school": "yes"}]},
    {"participant": "Trần Văn Đức", "age": "55", "attended": "yes", "topics": "planning monitoring",
     "session_date": "2024-03-13", "rating": "8",
     "child": [{"child_name": "Dung", "child_age": "1", "in_school": "no"},
               {"child_name": "Em", "child_age": "3", "in_school": "no"},
               {"child_name": "Phúc", "child_age": "16", "in_school": "yes"}]},
    {"participant": "Nguyễn Thị Hoà", "age": "62", "attended": "yes", "session_date": "2024-03-20",
     "child": []},
    {"participant": "Lê Quang Vinh", "age": "38", "topics": "budget", "session_date": "2024-03-20",
     "rating": "10", "location": "21.6 105.8 0 6",
     "child": [{"child_name": "Giang", "child_age": "7", "in_school": "yes"}]},
    # quarantined: the required participant is missing; none of its answers may be counted
    {"age": "20", "attended": "no", "topics": "budget", "session_date": "2024-03-04", "rating": "1",
     "location": "10.0 106.0 0 5", "child": [{"child_name": "Quân", "child_age": "5", "in_school": "yes"}]},
]

HOUSEHOLDS: list[Answers] = [
    {"tinh": "soc_trang", "so_nguoi": "5", "nguon_thu": "lua ca", "y_kien": "Cần thêm vốn vay ưu đãi."},
    {"tinh": "soc_trang", "so_nguoi": "3", "nguon_thu": "lua"},
    {"tinh": "tra_vinh", "so_nguoi": "7", "nguon_thu": "ca lam_thue",
     "y_kien": "Đường giao thông xuống cấp."},
    {"tinh": "soc_trang", "so_nguoi": "4", "nguon_thu": "lam_thue"},
    {"tinh": "tra_vinh", "so_nguoi": "6", "nguon_thu": "lua", "y_kien": "Cần thêm vốn vay ưu đãi."},
]

UNBUILT: list[Answers] = [{"answer": "một"}, {"answer": "hai"}]

ANSWERS = {"training_feedback": TRAINING, "khao_sat_ho": HOUSEHOLDS, "unbuilt_form": UNBUILT}


@dataclass(frozen=True)
class ForeignForms:
    schemas: dict[str, FormSchema]
    """Every foreign form's FormSchema, `unbuilt_form` included (the tests withhold it)."""
    xforms: dict[str, Path]


def build_foreign(out_dir: Path) -> ForeignForms:
    """Compile the forms with pyxform and ODK Validate, as `consult forms build` does."""
    out_dir.mkdir(parents=True, exist_ok=True)
    schemas, xforms = {}, {}
    for form_id in FOREIGN:
        compiled = compile_xlsform(FORMS / f"{form_id}.md", out_dir)
        xforms[form_id] = out_dir / f"{form_id}.xml"
        xforms[form_id].write_text(compiled.xform, encoding="utf-8")
        schemas[form_id] = compiled.schema
    return ForeignForms(schemas, xforms)


def _elements(answers: Answers) -> str:
    parts = []
    for name, value in answers.items():
        if isinstance(value, list):
            parts += [f"<{name}>{_elements(entry)}</{name}>" for entry in value]  # type: ignore[arg-type]
        elif value is not None:
            parts.append(f"<{name}>{escape(value)}</{name}>")
    return "".join(parts)


def interviews(schema: FormSchema, answers: list[Answers]) -> list[Interview]:
    """Submission XML as ODK Collect writes it: the root named and versioned, the instanceID in meta."""
    made = []
    for n, given in enumerate(answers, start=1):
        instance_id = f"uuid:{schema.form_id[:8]:0<8}-0000-4000-8000-{n:012d}"
        version = f' version="{schema.version}"' if schema.version else ""
        xml = (f'<?xml version="1.0" encoding="UTF-8"?><{schema.root} id="{schema.form_id}"{version}>'
               f"{_elements(given)}<meta><instanceID>{instance_id}</instanceID></meta></{schema.root}>")
        made.append(Interview(schema.form_id, instance_id, xml.encode("utf-8"), None, n))
    return made


def load_foreign(engine: Engine, forms: ForeignForms) -> dict[str, dict[str, str]]:
    """Through the sandbox's OData conversion, the warehouse's records, the real validation and load.
    Returns each form's validation statuses by instance id."""
    ensure_schema(engine, [FormLayout.of(s) for s in forms.schemas.values()])
    statuses = {}
    with engine.begin() as conn:
        for form_id, schema in forms.schemas.items():
            records = RecordBuilder(schema).build(odata_rows(forms.xforms[form_id],
                                                             interviews(schema, ANSWERS[form_id])))
            report = validate_records(schema, records, ValidationContext(today=TODAY))
            failures = [FailureRow(PROJECT_ID, form_id, f.instance_id, f.rule, f.column, f.row_id, f.value,
                                   f.message_vi, f.message_en) for f in report.failures]
            load_page(conn, PROJECT_ID, records, dict(report.statuses), failures)
            statuses[form_id] = {k: str(v) for k, v in report.statuses.items()}
    return statuses
