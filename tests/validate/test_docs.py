"""Data Docs: the sync's latest results as static HTML, written once at its end, that open offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from consult.forms import FormSchema
from consult.validate import write_data_docs

from ..chromium import OFFLINE, chromium, png_colours
from .conftest import validate
from .submissions import answers, odata_row


@pytest.fixture
def docs(schemas: dict[str, FormSchema], tmp_path: Path) -> Path:
    schema = schemas["province_consultation"]
    validate(schema, [odata_row(schema, "uuid:docs-1", answers(schema.form_id, staff_days=2500)),
                      odata_row(schema, "uuid:docs-2", answers(schema.form_id, staff_days=-5))])
    index = write_data_docs(tmp_path)
    assert index is not None
    return index


def test_data_docs_show_the_latest_page_of_each_table(docs: Path, tmp_path: Path) -> None:
    assert docs == tmp_path / "validation" / "index.html" and docs.is_file()
    pages = {p.name for p in (tmp_path / "validation" / "validations").glob("*.html")}
    assert {"province_consultation.html", "province_consultation__members.html"} <= pages
    page = (tmp_path / "validation" / "validations" / "province_consultation.html").read_text(encoding="utf-8")
    assert "Staff-days must be between 0 and 2000." in page and "uuid:docs-1" in page
    assert "failed" in page and "<script" not in page.lower() and "http" not in page
    assert write_data_docs(tmp_path) is None  # nothing validated since


def test_data_docs_never_replace_a_folder_consult_did_not_write(schemas: dict[str, FormSchema],
                                                                 tmp_path: Path) -> None:
    mine = tmp_path / "validation" / "notes.txt"
    mine.parent.mkdir()
    mine.write_text("the analyst's own notes")
    schema = schemas["province_consultation"]
    validate(schema, [odata_row(schema, "uuid:docs-3", answers(schema.form_id))])
    with pytest.raises(ValueError, match="not made by consult"):
        write_data_docs(tmp_path)
    assert mine.read_text() == "the analyst's own notes"


def test_data_docs_render_in_a_browser_with_the_network_off(docs: Path, tmp_path: Path) -> None:
    page = docs.parent / "validations" / "province_consultation.html"
    dom = chromium(*OFFLINE, "--dump-dom", page.as_uri(), profile=tmp_path / "p1").stdout.decode("utf-8")
    assert "ExpectColumnValuesToBeBetween" in dom and "Staff-days must be between 0 and 2000." in dom
    assert dom.count("<tr>") > 20, "every expectation of the suite is listed"
    shot = tmp_path / "docs.png"
    chromium(*OFFLINE, f"--screenshot={shot}", "--window-size=1280,1600", docs.as_uri(), profile=tmp_path / "p2")
    assert png_colours(shot.read_bytes()) > 8, "the index is not blank offline"
