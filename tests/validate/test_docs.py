"""Data Docs: the sync's latest results as static HTML, written once at its end."""

from __future__ import annotations

from pathlib import Path

from consult.forms import FormSchema
from consult.validate import write_data_docs

from .conftest import validate
from .submissions import answers, odata_row


def test_data_docs_show_the_latest_page_of_each_table(schemas: dict[str, FormSchema], tmp_path: Path) -> None:
    schema = schemas["province_consultation"]
    validate(schema, [odata_row(schema, "uuid:docs-1", answers(schema.form_id, staff_days=2500))])
    index = write_data_docs(tmp_path)
    assert index == tmp_path / "validation" / "index.html" and index.is_file()
    pages = {p.name for p in (tmp_path / "validation" / "validations").rglob("*.html")}
    assert {"province_consultation.html", "province_consultation__members.html"} <= pages
    page = next((tmp_path / "validation" / "validations" / "province_consultation").rglob("*.html"))
    assert "Staff-days must be between 0 and 2000." in page.read_text(encoding="utf-8")
    assert write_data_docs(tmp_path) is None  # nothing validated since
