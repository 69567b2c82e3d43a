"""Charts as inline SVG: no plotting library, no images to ship, text stays text (and is escaped).

Every string drawn comes from answers or labels, so each goes through `escape`. Long labels wrap
onto more lines (the row grows) rather than being cut, and each chart has a `viewBox` so it scales
to the width of the page or screen it is shown on: no bar, value or label is ever cut off.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from html import escape

PALETTE = ("#1f6f5c", "#e0a030", "#4a7fb5", "#b5524a", "#7a5aa6")
LABEL_WIDTH = 290
BAR_AREA = 420
VALUE_WIDTH = 80
BAR = 14
GAP = 8
MAX_LABEL = 46
"""Characters per line of a category label (about LABEL_WIDTH at 11 px)."""
LINE = 12
CELL = 22
HEADER = 120
MAX_HEAT_COLUMNS = 20
"""Columns per heat map: a wider matrix is drawn as several maps, one under the other."""
FONT = 'font-family="Noto Sans, DejaVu Sans, Segoe UI, Arial, sans-serif" font-size="11"'

Format = Callable[[float | None], str]
Series = tuple[str, Sequence[float | None]]


def lines(text: str, width: int = MAX_LABEL) -> list[str]:
    """A label broken into lines of at most `width` characters, words kept whole where they fit."""
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]


def _label(x: float, y: float, text: str, anchor: str = "end", width: int = MAX_LABEL) -> str:
    """A label on as many lines as it needs, centred on `y`, with the whole text as its tooltip."""
    parts = lines(text, width)
    first = y - (len(parts) - 1) * LINE / 2
    spans = "".join(f'<tspan x="{x:.1f}" y="{first + i * LINE:.1f}">{escape(part)}</tspan>'
                    for i, part in enumerate(parts))
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" dominant-baseline="middle">'
            f'<title>{escape(text)}</title>{spans}</text>')


def _open(width: float, height: float, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}" preserveAspectRatio="xMinYMin meet" role="img" '
            f'aria-label="{escape(title)}" {FONT}><title>{escape(title)}</title>')


def _legend(series: Sequence[Series]) -> list[str]:
    parts, x = [], LABEL_WIDTH
    for k, (name, _) in enumerate(series):
        parts.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{PALETTE[k % len(PALETTE)]}"/>')
        parts.append(_label(x + 16, 10, name, "start", width=len(name)))
        x += 24 + 7 * len(name)
    return parts


def bar_chart(title: str, categories: Sequence[str], series: Sequence[Series], fmt: Format) -> str:
    """Horizontal bars, one group per category and one bar per series, each with its value."""
    legend = 24 if len(series) > 1 else 0
    heights = [max(len(series) * BAR, len(lines(c)) * LINE) + GAP for c in categories]
    legend_width = sum(24 + 7 * len(name) for name, _ in series) if legend else 0
    width = max(LABEL_WIDTH + BAR_AREA + VALUE_WIDTH, LABEL_WIDTH + legend_width)
    height = legend + sum(heights) + GAP
    top = max((v for _, values in series for v in values if v is not None and v > 0), default=1.0)
    parts = [_open(width, height, title), *(_legend(series) if legend else [])]
    y0 = legend + GAP / 2
    for i, category in enumerate(categories):
        bars = y0 + (heights[i] - GAP - len(series) * BAR) / 2
        parts.append(_label(LABEL_WIDTH - 8, y0 + (heights[i] - GAP) / 2, category))
        for k, (_, values) in enumerate(series):
            value = values[i]
            length = BAR_AREA * max(value or 0.0, 0.0) / top
            colour = PALETTE[k % len(PALETTE)]
            parts.append(f'<rect x="{LABEL_WIDTH}" y="{bars + k * BAR:.1f}" width="{length:.1f}" '
                         f'height="{BAR - 2}" fill="{colour}"><title>{escape(fmt(value))}</title></rect>')
            parts.append(f'<text class="value" x="{LABEL_WIDTH + length + 4:.1f}" '
                         f'y="{bars + k * BAR + BAR / 2 - 1:.1f}" dominant-baseline="middle" fill="#333">'
                         f'{escape(fmt(value))}</text>')
        y0 += heights[i]
    parts.append("</svg>")
    return "".join(parts)


def _shade(fraction: float) -> str:
    """From a pale to the palette's green as the value grows."""
    low, high = (0xEE, 0xF5, 0xF1), (0x1F, 0x6F, 0x5C)
    return "#" + "".join(f"{round(a + (b - a) * fraction):02x}" for a, b in zip(low, high, strict=True))


def heat_map(title: str, rows: Sequence[str], columns: Sequence[str],
             values: Sequence[Sequence[float | None]], fmt: Format) -> str:
    """A grid of rows × columns shaded by value; empty cells stay white. More than MAX_HEAT_COLUMNS
    columns are drawn as several maps, each fitting a page's width, shaded on one common scale."""
    top = max((v for line in values for v in line if v), default=1.0)
    maps = []
    for start in range(0, max(len(columns), 1), MAX_HEAT_COLUMNS):
        part = slice(start, start + MAX_HEAT_COLUMNS)
        maps.append(_heat_map(title, rows, columns[part], [line[part] for line in values], fmt, top))
    return "".join(maps)


def _heat_map(title: str, rows: Sequence[str], columns: Sequence[str],
              values: Sequence[Sequence[float | None]], fmt: Format, top: float) -> str:
    heights = [max(CELL, len(lines(r)) * LINE + 4) for r in rows]
    width, height = LABEL_WIDTH + CELL * len(columns) + HEADER, HEADER + sum(heights) + GAP
    parts = [_open(width, height, title)]
    for j, column in enumerate(columns):
        x = LABEL_WIDTH + j * CELL + CELL / 2
        parts.append(f'<g transform="translate({x:.1f},{HEADER - 6}) rotate(-60)">'
                     f'{_label(0, 0, column, "start", width=max(len(column), 1))}</g>')
    y = float(HEADER)
    for i, row in enumerate(rows):
        parts.append(_label(LABEL_WIDTH - 8, y + heights[i] / 2, row))
        for j, value in enumerate(values[i]):
            x = LABEL_WIDTH + j * CELL
            fraction = (value or 0.0) / top
            fill = _shade(fraction) if value else "#ffffff"
            tooltip = escape(f"{row} × {columns[j]}: {fmt(value)}")
            parts.append(f'<rect x="{x}" y="{y:.1f}" width="{CELL - 1}" height="{heights[i] - 1}" fill="{fill}" '
                         f'stroke="#dde5e1"><title>{tooltip}</title></rect>')
            if value:
                ink = "#ffffff" if fraction > 0.5 else "#1d2b26"
                parts.append(f'<text class="value" x="{x + CELL / 2 - 0.5:.1f}" y="{y + heights[i] / 2:.1f}" '
                             f'text-anchor="middle" dominant-baseline="middle" fill="{ink}">'
                             f'{escape(fmt(value))}</text>')
        y += heights[i]
    parts.append("</svg>")
    return "".join(parts)
