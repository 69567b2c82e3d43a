"""How a figure reads in the report's language: `1.234,5` and `79,7 %` in Vietnamese, `1,234.5` and
`79.7%` in English, dates as `10/08/2004` or `2004-08-10`. The HTML and Markdown outputs share it;
the workbook keeps numbers as numbers and lets Excel format them."""

from __future__ import annotations

from datetime import date, datetime
from numbers import Real
from zoneinfo import ZoneInfo, available_timezones

from .model import Kind, Lang, missing

MISSING = "–"


def _swap_separators(text: str) -> str:
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def display(value: object, kind: Kind, lang: Lang) -> str:
    """The text of one cell; `–` for a missing value (no answer, nothing to divide by)."""
    if missing(value):
        return MISSING
    if kind is Kind.DATE and isinstance(value, (date, datetime)):
        return value.strftime("%d/%m/%Y") if lang == "vi" else value.strftime("%Y-%m-%d")
    if kind is Kind.FILE:
        return str(value).rsplit("/", 1)[-1]
    if kind in (Kind.TEXT, Kind.DATE) or not isinstance(value, Real):
        return str(value)
    if kind is Kind.SHARE:
        text = f"{float(value) * 100:.1f}"
        return _swap_separators(text) + " %" if lang == "vi" else text + "%"
    text = f"{int(float(value)):,}" if kind is Kind.COUNT else f"{float(value):,.1f}"
    return _swap_separators(text) if lang == "vi" else text


def local_time(moment: datetime, timezone: str, lang: Lang) -> str:
    """`04/12/2026 20:40 (GMT+07:00)`: the readers' clock, with its offset so nobody has to guess."""
    local = moment.astimezone(ZoneInfo(timezone))
    offset = local.strftime("%z")
    stamp = local.strftime("%d/%m/%Y %H:%M") if lang == "vi" else local.strftime("%Y-%m-%d %H:%M")
    return f"{stamp} (GMT{offset[:3]}:{offset[3:]})"


def known_timezone(name: str) -> bool:
    return name in available_timezones()
