"""The HTML report, the workbook and the Markdown summary show every figure of the findings, in the
report's language, and never let a respondent's answer act as markup or as a formula."""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from datetime import date
from html import escape
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy.engine import Engine

from consult.findings import (
    ChartKind,
    Findings,
    Kind,
    compute_findings,
    markdown_summary,
    write_html,
    write_workbook,
)
from consult.findings.display import display
from consult.findings.markdown import md
from consult.findings.svg import MAX_HEAT_COLUMNS
from consult.findings.workbook import HEADER_ROW, NUMBER_FORMATS, put
from consult.forms import FormSchema

from .conftest import FORMULA, SCRIPT

VIETNAMESE = ("Sóc Trăng", "Thái Nguyên", "Thanh Hoá", "Trà Vinh", "Kinh phí đối ứng của tỉnh còn hạn chế.")
"""Pilot provinces and a verbatim answer: diacritics that must survive every output."""


@pytest.fixture(scope="module", params=["vi", "en"])
def findings(request: pytest.FixtureRequest, engine: Engine, schemas: dict[str, FormSchema]) -> Findings:
    return compute_findings(engine, schemas, request.param)


@pytest.fixture(scope="module")
def html(findings: Findings, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = write_html(findings, tmp_path_factory.mktemp("html") / f"findings.{findings.lang}.html")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def workbook_path(findings: Findings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_workbook(findings, tmp_path_factory.mktemp("xlsx") / f"findings.{findings.lang}.xlsx")


def _article(html: str, key: str) -> str:
    start = html.index(f'<article id="{key}">')
    return html[start:html.index("</article>", start)]


# --- HTML -----------------------------------------------------------------------------------------

def test_html_escapes_hostile_answers(html: str) -> None:
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"<script", html, re.IGNORECASE), "the report runs no script at all"
    assert escape(FORMULA) in html


def test_html_is_self_contained(html: str) -> None:
    assert not re.search(r"<link|<img|\ssrc=|url\(|@import", html, re.IGNORECASE)
    assert not re.findall(r'href="(?!#)', html), "links stay inside the report"
    assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html


def test_html_keeps_vietnamese_intact(html: str, findings: Findings) -> None:
    assert unicodedata.is_normalized("NFC", html)
    assert f'<html lang="{findings.lang}">' in html
    assert VIETNAMESE[-1] in html, "verbatim answers stay as typed in either language"
    if findings.lang == "vi":
        assert all(name in html for name in VIETNAMESE)
        assert "Đầu mối đối thoại chính sách cấp tỉnh" in html and "Mức độ quan tâm" in html
    else:
        assert "Provincial policy-dialogue focal points" in html and "Soc Trang" in html


def test_html_shows_every_figure_of_every_table(html: str, findings: Findings) -> None:
    for table in findings.tables:
        article = _article(html, table.key)
        assert escape(table.title) in article
        cells = re.findall(r"<td[^>]*>(.*?)</td>", article)
        want = [escape(display(v, c.kind, findings.lang)) for row in table.rows()
                for c, v in zip(table.columns, row, strict=True)]
        assert cells == want, table.key
    for headline in findings.headlines:
        assert escape(display(headline.value, headline.kind, findings.lang)) in html


def test_html_charts_are_well_formed_svg(html: str, findings: Findings) -> None:
    figures = re.findall(r"<figure[^>]*>(.*?)</figure>", html, re.DOTALL)
    assert len(figures) == sum(1 for t in findings.tables if t.chart and t.rows())
    for chart in re.findall(r"<svg.*?</svg>", html, re.DOTALL):
        ET.fromstring(chart)  # escaped text keeps every chart parseable XML
        assert 'viewBox="0 0 ' in chart, "charts scale to the width they are shown at"
    heat_map = _article(html, "donor_province_matrix")
    matrix = findings.table("donor_province_matrix")
    assert matrix.chart and matrix.chart.kind is ChartKind.HEAT_MAP
    provinces = matrix.chart.values
    assert heat_map.count("<rect") == len(matrix.rows()) * len(provinces)
    assert heat_map.count("<svg") == -(-len(provinces) // MAX_HEAT_COLUMNS), "wide matrices split into maps"
    for province in provinces:
        assert f"<title>{escape(matrix.column(province).label)}</title>" in heat_map


def test_the_delegates_expected_appear(html: str, findings: Findings) -> None:
    delegates = findings.table("workshop_delegates").rows()
    assert [row[1] for row in delegates] == [29, 19]
    assert [row[2] for row in delegates] == [29, 19], "the fieldwork holds every delegate's evaluation"
    cells = re.findall(r'<td class="num">(\d+)</td>', _article(html, "workshop_delegates"))
    assert cells[0::4] == ["29", "19"]


def test_html_lists_the_contents(html: str, findings: Findings) -> None:
    nav = html[html.index("<nav>"):html.index("</nav>")]
    for _, section, tables in findings.contents():
        assert f'href="#{section.key}"' in nav and escape(section.title) in nav
        for table_number, table in tables:
            assert f'href="#{table.key}">{table_number} {escape(table.title)}</a>' in nav


# --- workbook -------------------------------------------------------------------------------------

def _cells(sheet: Worksheet, row: int, width: int) -> list[object]:
    return [sheet.cell(row, j).value for j in range(1, width + 1)]


def test_workbook_has_a_formatted_sheet_per_table(workbook_path: Path, findings: Findings) -> None:
    book = load_workbook(workbook_path)
    contents = list(findings.contents())
    stacked = [f"{number} {section.sheet}" for number, section, _ in contents if section.sheet is not None]
    assert stacked == ["9 focal_point_update"], "an automatic section is one sheet (ISG's do not read the form)"
    numbered = [t for _, section, tables in contents if section.sheet is None for t in tables]
    assert book.sheetnames[1 + len(numbered):] == stacked
    for sheet_name, (number, table) in zip(book.sheetnames[1:1 + len(numbered)], numbered, strict=True):
        sheet = book[sheet_name]
        assert sheet_name.startswith(f"{number} ") and len(sheet_name) <= 31
        assert sheet["A1"].value == table.title and sheet.freeze_panes == f"B{HEADER_ROW + 1}"
        assert _cells(sheet, HEADER_ROW, len(table.columns)) == [c.label for c in table.columns]
        header = sheet.cell(HEADER_ROW, 1)
        assert header.font.bold and header.fill.fgColor.rgb.endswith("1F6F5C")
        assert sheet.column_dimensions["A"].width >= 8
        for i, row in enumerate(table.rows(), start=HEADER_ROW + 1):
            for j, (column, value) in enumerate(zip(table.columns, row, strict=True), start=1):
                cell = sheet.cell(i, j)
                got = cell.value.date() if isinstance(value, date) else cell.value
                same = got == pytest.approx(value) if isinstance(value, float) else got == value
                assert same, (table.key, i, j, got, value)
                if column.kind is not Kind.TEXT and value is not None:
                    assert cell.number_format == NUMBER_FORMATS[column.kind]


def test_workbook_stores_hostile_answers_as_text(workbook_path: Path, findings: Findings) -> None:
    book = load_workbook(workbook_path)
    found = {cell.value: cell for sheet in book for row in sheet.iter_rows() for cell in row
             if cell.value in (FORMULA, SCRIPT)}
    assert set(found) == {FORMULA, SCRIPT}
    assert found[FORMULA].data_type == "s" and found[FORMULA].quotePrefix
    with zipfile.ZipFile(workbook_path) as archive:
        sheets = [archive.read(name).decode("utf-8") for name in archive.namelist()
                  if name.startswith("xl/worksheets/sheet")]
    assert not any("<f>" in xml or "<f " in xml for xml in sheets), "no cell of the workbook is a formula"


def test_workbook_keeps_vietnamese(workbook_path: Path, findings: Findings) -> None:
    book = load_workbook(workbook_path)
    texts = {str(cell.value) for sheet in book for row in sheet.iter_rows() for cell in row if cell.value}
    assert VIETNAMESE[-1] in texts
    if findings.lang == "vi":
        assert set(VIETNAMESE) <= texts and book.sheetnames[0] == "Mục lục"
        assert any("tỉnh" in name for name in book.sheetnames)
    contents = book[book.sheetnames[0]]
    assert contents["A1"].value == findings.title
    links = [c for row in contents.iter_rows() for c in row if c.hyperlink]
    assert len(links) == len(book.sheetnames) - 1 and all(c.hyperlink.location for c in links)  # one per sheet


@pytest.mark.parametrize("answer", ["=1+1", "+84 912", "-5 ha", "@SUM(A1)", "\t=1", "=HYPERLINK(\"http://x\")"])
def test_any_formula_like_answer_is_text(answer: str, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    put(book.active["A1"], answer)
    book.save(tmp_path / "x.xlsx")
    cell = load_workbook(tmp_path / "x.xlsx").active["A1"]
    assert cell.value == answer and cell.data_type == "s" and cell.quotePrefix


# --- Markdown -------------------------------------------------------------------------------------

def test_markdown_summary(findings: Findings) -> None:
    summary = markdown_summary(findings)
    assert summary.startswith(f"# {md(findings.title)}")
    assert "<script" not in summary and "&lt;script&gt;" in summary
    for table in findings.tables:  # an automatic section (focal_point_update's) is one line there
        assert md(table.title) in summary or table.key.startswith("form-focal_point_update-")
    assert "6 phiếu hợp lệ" in summary or "6 valid" in summary
    for headline in findings.headlines:
        figure = md(display(headline.value, headline.kind, findings.lang))
        assert f"| {md(headline.label)} | {figure} |" in summary
    delegates = summary[summary.index(md(findings.table("workshop_delegates").title)):]
    assert re.search(r"\| 29 \| 29 \|", delegates) and re.search(r"\| 19 \| 19 \|", delegates)
    if findings.lang == "vi":
        assert "Sóc Trăng" in summary


def test_markdown_cells_cannot_break_a_table() -> None:
    assert md("a | b\nc [x](http://y) <b>") == r"a \| b c \[x\](http://y) &lt;b&gt;"


def test_display_follows_the_language() -> None:
    assert display(1234.5, Kind.NUMBER, "vi") == "1.234,5" and display(1234.5, Kind.NUMBER, "en") == "1,234.5"
    assert display(0.797, Kind.SHARE, "vi") == "79,7 %" and display(0.797, Kind.SHARE, "en") == "79.7%"
    assert display(date(2004, 8, 10), Kind.DATE, "vi") == "10/08/2004"
    assert display(None, Kind.COUNT, "en") == display(float("nan"), Kind.NUMBER, "vi") == "–"
