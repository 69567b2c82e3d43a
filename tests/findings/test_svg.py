"""Charts keep every word and number: long labels wrap, values sit inside the drawing, wide maps split."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from consult.findings.svg import LABEL_WIDTH, MAX_HEAT_COLUMNS, bar_chart, heat_map, lines

LONG = ("Chương trình hỗ trợ Ngành Nông nghiệp và Phát triển nông thôn (FSSP) – Văn phòng đối tác "
        "tại Hà Nội, Việt Nam")
SVG = "{http://www.w3.org/2000/svg}"


def _view_box(svg: str) -> tuple[float, float]:
    match = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg)
    assert match, "every chart scales to its container"
    return float(match[1]), float(match[2])


def test_a_long_label_wraps_whole_instead_of_being_cut() -> None:
    svg = bar_chart("t", [LONG, "Ngắn"], [("n", [3, 12345])], lambda v: f"{v:,.0f}")
    root = ET.fromstring(svg)
    spans = [t.text for t in root.iter(f"{SVG}tspan")]
    assert " ".join(spans[:len(lines(LONG))]) == LONG and "…" not in svg
    assert len(lines(LONG)) > 1
    width, height = _view_box(svg)
    for text in root.iter(f"{SVG}text"):
        if text.get("class") == "value":
            assert float(text.get("x", 0)) + 7 * len(text.text or "") <= width, "the longest bar keeps its number"
    assert height >= len(lines(LONG)) * 12


def test_a_wide_heat_map_is_drawn_as_several_maps_on_one_scale() -> None:
    columns = [f"Tỉnh {i}" for i in range(2 * MAX_HEAT_COLUMNS + 3)]
    values = [[float(j % 4) for j in range(len(columns))], [None] * len(columns)]
    drawn = heat_map("m", ["Donor A", LONG], columns, values, lambda v: "" if v is None else f"{v:.0f}")
    maps = re.findall(r"<svg.*?</svg>", drawn, re.S)
    assert len(maps) == 3
    for svg in maps:
        ET.fromstring(svg)
        assert _view_box(svg)[0] <= LABEL_WIDTH + 22 * MAX_HEAT_COLUMNS + 120
    assert all(f">{c}</tspan>" in drawn for c in columns), "every column keeps its label"
