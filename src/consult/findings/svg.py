"""Charts as inline SVG: no plotting library, no images to ship, text stays text (and is escaped).

Every string drawn comes from answers or labels, so each goes through `escape`; long labels
are shortened on the chart and kept whole in a `<title>` tooltip (and in the table below it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

PALETTE = ("#1f6f5c", "#e0a030", "#4a7fb5", "#b5524a", "#7a5aa6")
LABEL_WIDTH = 290
BAR_AREA = 420
VALUE_WIDTH = 80
BAR = 14
GAP = 8
MAX_LABEL = 46
CELL = 22
HEADER = 120
FONT = 'font-family="Noto Sans, DejaVu Sans, Segoe UI, Arial, sans-serif" font-size="11"'

Format = Callable[[float | None], str]
Series = tuple[str, Sequence[float | None]]


def _short(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _label(x: float, y: float, text: str, anchor: str = "end", extra: str = "") -> str:
    """A label, shortened when long, with the whole text as its tooltip."""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" dominant-baseline="middle"{extra}>'
            f'<title>{escape(text)}</title>{escape(_short(text))}</text>')


def _open(width: float, height: float, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="{escape(title)}" {FONT}>'
            f'<title>{escape(title)}</title>')


def _legend(series: Sequence[Series]) -> list[str]:
    parts, x = [], LABEL_WIDTH
    for k, (name, _) in enumerate(series):
        parts.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{PALETTE[k % len(PALETTE)]}"/>')
        parts.append(_label(x + 16, 10, name, "start"))
        x += 24 + 7 * min(len(name), MAX_LABEL)
    return parts


def bar_chart(title: str, categories: Sequence[str], series: Sequence[Series], fmt: Format) -> str:
    """Horizontal bars, one group per category and one bar per series, each with its value."""
    legend = 24 if len(series) > 1 else 0
    row = len(series) * BAR + GAP
    width, height = LABEL_WIDTH + BAR_AREA + VALUE_WIDTH, legend + len(categories) * row + GAP
    top = max((v for _, values in series for v in values if v is not None and v > 0), default=1.0)
    parts = [_open(width, height, title), *(_legend(series) if legend else [])]
    for i, category in enumerate(categories):
        y = legend + i * row + GAP / 2
        parts.append(_label(LABEL_WIDTH - 8, y + len(series) * BAR / 2, category))
        for k, (_, values) in enumerate(series):
            value = values[i]
            length = BAR_AREA * max(value or 0.0, 0.0) / top
            colour = PALETTE[k % len(PALETTE)]
            parts.append(f'<rect x="{LABEL_WIDTH}" y="{y + k * BAR:.1f}" width="{length:.1f}" '
                         f'height="{BAR - 2}" fill="{colour}"><title>{escape(fmt(value))}</title></rect>')
            parts.append(f'<text x="{LABEL_WIDTH + length + 4:.1f}" y="{y + k * BAR + BAR / 2 - 1:.1f}" '
                         f'dominant-baseline="middle" fill="#333">{escape(fmt(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _shade(fraction: float) -> str:
    """From a pale to the palette's green as the value grows."""
    low, high = (0xEE, 0xF5, 0xF1), (0x1F, 0x6F, 0x5C)
    return "#" + "".join(f"{round(a + (b - a) * fraction):02x}" for a, b in zip(low, high, strict=True))


def heat_map(title: str, rows: Sequence[str], columns: Sequence[str],
             values: Sequence[Sequence[float | None]], fmt: Format) -> str:
    """A grid of rows × columns shaded by value; empty cells stay white."""
    width, height = LABEL_WIDTH + CELL * len(columns) + GAP, HEADER + CELL * len(rows) + GAP
    top = max((v for line in values for v in line if v), default=1.0)
    parts = [_open(width, height, title)]
    for j, column in enumerate(columns):
        x = LABEL_WIDTH + j * CELL + CELL / 2
        parts.append(f'<g transform="translate({x:.1f},{HEADER - 6}) rotate(-60)">'
                     f'{_label(0, 0, column, "start")}</g>')
    for i, row in enumerate(rows):
        y = HEADER + i * CELL
        parts.append(_label(LABEL_WIDTH - 8, y + CELL / 2, row))
        for j, value in enumerate(values[i]):
            x = LABEL_WIDTH + j * CELL
            fraction = (value or 0.0) / top
            fill = _shade(fraction) if value else "#ffffff"
            tooltip = escape(f"{row} × {columns[j]}: {fmt(value)}")
            parts.append(f'<rect x="{x}" y="{y}" width="{CELL - 1}" height="{CELL - 1}" fill="{fill}" '
                         f'stroke="#dde5e1"><title>{tooltip}</title></rect>')
            if value:
                ink = "#ffffff" if fraction > 0.5 else "#1d2b26"
                parts.append(f'<text x="{x + CELL / 2 - 0.5:.1f}" y="{y + CELL / 2:.1f}" '
                             f'text-anchor="middle" dominant-baseline="middle" fill="{ink}">'
                             f'{escape(fmt(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)
