"""The report as a reader sees it: headless Chromium renders it, with its charts and Vietnamese text.

`make test` installs Debian's chromium (and the Noto fonts for the diacritics) when missing
(tests/chromium.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from consult.findings import compute_findings, write_html
from consult.forms import FormSchema

from ..chromium import chromium, png_colours


@pytest.fixture(scope="module")
def report(engine: Engine, schemas: dict[str, FormSchema], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser") / "findings-vi.html"
    write_html(compute_findings(engine, schemas, "vi"), path)
    return path


def test_chromium_renders_the_charts_and_the_vietnamese_text(report: Path, tmp_path: Path) -> None:
    dom = chromium("--dump-dom", report.as_uri(), profile=tmp_path / "p1").stdout.decode("utf-8")
    assert "Hội thảo" in dom and "Thái Nguyên" in dom and "Sóc Trăng" in dom
    assert dom.count("<svg") >= 10, "bar charts and the donor × province heat map are drawn"
    screenshot = tmp_path / "report.png"
    chromium(f"--screenshot={screenshot}", "--window-size=1280,2400", report.as_uri(), profile=tmp_path / "p2")
    assert png_colours(screenshot.read_bytes()) > 20, "the page is not blank: text and coloured bars show"


@pytest.fixture(scope="module")
def mixed_report(mixed_engine: Engine, mixed_schemas: dict[str, FormSchema],
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser-mixed") / "findings-en.html"
    write_html(compute_findings(mixed_engine, mixed_schemas, "en"), path)
    return path


def test_chromium_renders_the_automatic_section_of_a_foreign_form(mixed_report: Path, tmp_path: Path) -> None:
    dom = chromium("--dump-dom", mixed_report.as_uri(), profile=tmp_path / "p1").stdout.decode("utf-8")
    start = dom.index('<section id="form-training_feedback">')
    training = dom[start:dom.index("</section>", start)]
    assert "Attended every session?" in training and training.count("<svg") >= 4
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in training, "the answer stays text"
    assert "<script" not in dom
    start = dom.index('<section id="form-khao_sat_ho">')
    households = dom[start:dom.index("</section>", start)]
    assert "Khảo sát hộ gia đình" in households and "Trồng lúa" in households and "Sóc Trăng" in households
    assert "unbuilt_form" in dom[dom.index('<section id="unsummarised">'):]


def test_chromium_draws_a_foreign_form_alone(mixed_engine: Engine, mixed_schemas: dict[str, FormSchema],
                                             tmp_path: Path) -> None:
    """The households' section at the top of a page of its own, so that the screenshot shows it."""
    findings = compute_findings(mixed_engine, mixed_schemas, "vi")
    (households,) = (s for s in findings.sections if s.key == "form-khao_sat_ho")
    alone = write_html(replace(findings, sections=(households,)), tmp_path / "households.html")
    screenshot = tmp_path / "households.png"
    chromium(f"--screenshot={screenshot}", "--window-size=1280,2400", alone.as_uri(),
              profile=tmp_path / "p2")
    assert png_colours(screenshot.read_bytes()) > 20, "the section is drawn: text and coloured bars show"
