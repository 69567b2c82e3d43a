"""The report as a reader sees it: headless Chromium renders it, with its charts and Vietnamese text.

`make test` installs Debian's chromium (and the Noto fonts for the diacritics) when missing.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from consult.findings import compute_findings, write_html
from consult.forms import FormSchema

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium fonts-noto-core)")
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          timeout=120, check=True)


def _png_colours(png: bytes) -> int:
    """How many distinct colours the screenshot has: a blank or failed page has one or two."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour_type = struct.unpack(">IIBB", png[16:26])
    data = b"".join(png[i + 8:i + 8 + struct.unpack(">I", png[i:i + 4])[0]]
                    for i in _chunks(png) if png[i + 4:i + 8] == b"IDAT")
    raw = zlib.decompress(data)
    channels = {2: 3, 6: 4}[colour_type]
    stride = width * channels + 1
    pixels = {raw[r * stride + 1 + c * channels:r * stride + 1 + (c + 1) * channels]
              for r in range(0, height, 7) for c in range(0, width, 7)}
    return len(pixels)


def _chunks(png: bytes) -> list[int]:
    offsets, i = [], 8
    while i < len(png):
        offsets.append(i)
        i += 12 + struct.unpack(">I", png[i:i + 4])[0]
    return offsets


@pytest.fixture(scope="module")
def report(engine: Engine, schemas: dict[str, FormSchema], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser") / "findings-vi.html"
    write_html(compute_findings(engine, schemas, "vi"), path)
    return path


def test_chromium_renders_the_charts_and_the_vietnamese_text(report: Path, tmp_path: Path) -> None:
    dom = _chromium("--dump-dom", report.as_uri(), profile=tmp_path / "p1").stdout.decode("utf-8")
    assert "Hội thảo" in dom and "Thái Nguyên" in dom and "Sóc Trăng" in dom
    assert dom.count("<svg") >= 10, "bar charts and the donor × province heat map are drawn"
    screenshot = tmp_path / "report.png"
    _chromium(f"--screenshot={screenshot}", "--window-size=1280,2400", report.as_uri(), profile=tmp_path / "p2")
    assert _png_colours(screenshot.read_bytes()) > 20, "the page is not blank: text and coloured bars show"


@pytest.fixture(scope="module")
def mixed_report(mixed_engine: Engine, mixed_schemas: dict[str, FormSchema],
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser-mixed") / "findings-en.html"
    write_html(compute_findings(mixed_engine, mixed_schemas, "en"), path)
    return path


def test_chromium_renders_the_automatic_section_of_a_foreign_form(mixed_report: Path, tmp_path: Path) -> None:
    dom = _chromium("--dump-dom", mixed_report.as_uri(), profile=tmp_path / "p1").stdout.decode("utf-8")
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
    alone = write_html(replace(findings, sections=(findings.sections[8],)), tmp_path / "households.html")
    assert findings.sections[8].key == "form-khao_sat_ho"
    screenshot = tmp_path / "households.png"
    _chromium(f"--screenshot={screenshot}", "--window-size=1280,2400", alone.as_uri(),
              profile=tmp_path / "p2")
    assert _png_colours(screenshot.read_bytes()) > 20, "the section is drawn: text and coloured bars show"
