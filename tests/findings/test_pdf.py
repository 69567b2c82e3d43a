"""The A4 PDF a ministry receives, read back as a reader (and a printer) would see it.

The report is laid out by WeasyPrint; poppler's `pdfinfo`, `pdftotext` and `pdftoppm` read it
back: page size and count, every word inside the text block (no chart or table runs off the
page), the table of contents' page numbers against where each heading really is, no heading
left alone at a page foot, every bar value and every province of the heat map present, and
pages that are not blank. `make test` installs poppler-utils with Chromium (`make browser`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from consult.findings import compute_findings, write_html
from consult.findings.display import display
from consult.findings.model import ChartKind, Findings
from consult.findings.pdf import write_pdf
from consult.forms import FormSchema

from ..chromium import png_colours

A4 = (595.28, 841.89)
MARGIN = 16 / 25.4 * 72
"""The left and right page margins of the print stylesheet (16 mm), in points."""
PAGES = (12, 30)
"""The fixture's report (about 170 submissions, 31 tables) fits in this many A4 pages."""


def _poppler(*args: str) -> str:
    tool = shutil.which(args[0])
    if tool is None:
        pytest.fail(f"{args[0]} is not installed: `make test` installs poppler-utils (apt-get install poppler-utils)")
    return subprocess.run([tool, *args[1:]], capture_output=True, check=True, timeout=120).stdout.decode("utf-8")


@dataclass(frozen=True)
class Page:
    number: int
    lines: list[str]
    words: list[tuple[float, float, str]]
    """(xMin, xMax, text) of every word."""


@dataclass(frozen=True)
class Pdf:
    path: Path
    findings: Findings
    pages: list[Page]


@pytest.fixture(scope="module", params=["vi", "en"])
def pdf(request: pytest.FixtureRequest, engine: Engine, schemas: dict[str, FormSchema],
        tmp_path_factory: pytest.TempPathFactory) -> Pdf:
    findings = compute_findings(engine, schemas, request.param)
    folder = tmp_path_factory.mktemp(f"pdf-{request.param}")
    path = write_pdf(write_html(findings, folder / f"findings-{request.param}.html"),
                     folder / f"findings-{request.param}.pdf")
    layout = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", _poppler("pdftotext", "-bbox-layout", str(path), "-"))
                           .replace(' xmlns="http://www.w3.org/1999/xhtml"', ""))
    pages = []
    for number, page in enumerate(layout.iter("page"), start=1):
        lines = [" ".join(unescape(w.text or "") for w in line.iter("word")) for line in page.iter("line")]
        words = [(float(w.get("xMin", 0)), float(w.get("xMax", 0)), w.text or "") for w in page.iter("word")]
        pages.append(Page(number, lines, words))
    return Pdf(path, findings, pages)


def test_a4_pages_within_bounds(pdf: Pdf) -> None:
    info = _poppler("pdfinfo", str(pdf.path))
    size = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info)
    assert size and abs(float(size[1]) - A4[0]) < 1 and abs(float(size[2]) - A4[1]) < 1
    assert PAGES[0] <= len(pdf.pages) <= PAGES[1]


def test_nothing_runs_off_the_text_block(pdf: Pdf) -> None:
    for page in pdf.pages:
        outside = [w for w in page.words if w[0] < MARGIN - 1 or w[1] > A4[0] - MARGIN + 1]
        assert not outside, f"page {page.number}: {outside[:5]}"


def test_the_cover_dates_the_report_in_viet_nam_time(pdf: Pdf) -> None:
    cover = " ".join(pdf.pages[0].lines)
    assert pdf.findings.title.split(":")[0] in cover
    assert "GMT+07:00" in cover and pdf.findings.labels["office"] in cover


def _headings(findings: Findings) -> dict[str, str]:
    """Text of each section and table heading → its anchor."""
    headings = {}
    for number, section, tables in findings.contents():
        headings[f"{number}. {section.title}"] = section.key
        headings.update({f"{n} {t.title}": t.key for n, t in tables})
    return headings


def _page_of(pdf: Pdf, heading: str) -> int:
    """The first page after the contents whose lines start the heading (long titles wrap)."""
    start = heading[:40]
    return next(p.number for p in pdf.pages[2:] if any(line.startswith(start) for line in p.lines))


def test_the_contents_give_the_page_each_heading_is_on(pdf: Pdf) -> None:
    contents = " ".join(" ".join(p.lines) for p in pdf.pages[1:3])
    for heading in _headings(pdf.findings):
        match = re.search(re.escape(heading[:40]) + r".*?(?:\s*\.){3,}\s*(\d+)", contents)
        assert match, f"{heading!r} has no page number in the contents"
        assert int(match[1]) == _page_of(pdf, heading), heading


def test_no_heading_is_left_at_a_page_foot(pdf: Pdf) -> None:
    starts = [h[:40] for h in _headings(pdf.findings)]
    for page in pdf.pages[2:]:
        body = [line for line in page.lines if not re.fullmatch(r"\d+ / \d+", line)]
        assert body and not any(body[-1].startswith(s) for s in starts), f"page {page.number} ends on {body[-1]!r}"


def test_every_bar_value_and_every_province_of_the_heat_map_is_printed(pdf: Pdf) -> None:
    words = {w for page in pdf.pages for _, _, w in page.words}
    for table in pdf.findings.tables:
        if table.chart is None or table.chart.kind is not ChartKind.BARS:
            continue
        for key in table.chart.values:
            column = table.column(key)
            for value in table.frame[key]:
                shown = display(value, column.kind, pdf.findings.lang)
                assert all(part in words for part in shown.split()), f"{table.key}: {shown!r}"
    matrix = pdf.findings.table("donor_province_matrix")
    printed = re.sub(r"\s+", "", _poppler("pdftotext", "-raw", str(pdf.path), "-"))  # rotated labels: a glyph a line
    listed = re.sub(r"\s+", "", " ".join(matrix.frame["provinces"]))
    for province in matrix.chart.values if matrix.chart else ():
        label = re.sub(r"\s+", "", matrix.column(province).label)
        assert printed.count(label) > listed.count(label), f"{province} is not on the heat map"


def test_pages_are_not_blank(pdf: Pdf, tmp_path: Path) -> None:
    _poppler("pdftoppm", "-r", "30", "-png", str(pdf.path), str(tmp_path / "page"))
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == len(pdf.pages)
    for image in images:
        assert png_colours(image.read_bytes()) > 3, f"{image.name} is blank"
