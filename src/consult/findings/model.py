"""The shape of the findings: sections of titled tables, each able to say how it is drawn.

Every output (HTML, workbook, Markdown) renders the same `Findings`, so a figure is computed
once and the tests check it once: a table's `frame` holds exactly the cells the reader sees,
in the columns `columns` names, already labelled in the report's language.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from enum import StrEnum
from typing import Literal

import pandas as pd

Lang = Literal["vi", "en"]
LANGUAGES: tuple[Lang, ...] = ("vi", "en")
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


class Kind(StrEnum):
    """How a column's cells are formatted: the workbook's number format, the HTML's digits."""

    TEXT = "text"
    COUNT = "count"
    NUMBER = "number"
    """A mean, a sum of money: one decimal."""
    SHARE = "share"
    """A fraction 0–1 shown as a percentage."""
    DATE = "date"
    FILE = "file"
    """A file the submissions attached, as a path relative to the report: shown as a link to it."""


@dataclass(frozen=True)
class FileLinks:
    """Where the submissions' files were downloaded (`consult attachments`, `consult sync`) and where the
    report is written: links in the report are relative between the two, so the folders can move together."""

    root: Path
    report_dir: Path

    def link(self, stored_path: str) -> str | None:
        """The link to a stored file, or None when it is not on this disk."""
        path = self.root / stored_path
        return Path(os.path.relpath(path.resolve(), self.report_dir.resolve())).as_posix() if path.is_file() else None


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: Kind = Kind.TEXT


class ChartKind(StrEnum):
    BARS = "bars"
    """Horizontal bars, one per row: rankings and distributions."""
    HEAT_MAP = "heat_map"
    """Rows × the value columns, cells shaded by value: the donor × province matrix."""


@dataclass(frozen=True)
class Chart:
    kind: ChartKind
    category: tuple[str, ...]
    """Keys of the columns naming each bar (or heat-map row), joined with ` – ` when several."""
    values: tuple[str, ...]
    """Keys of the columns drawn: one series per key (grouped bars), or the heat map's columns."""


@dataclass(frozen=True)
class Table:
    key: str
    """Stable identifier, also the anchor in the HTML and the base of the sheet name."""
    title: str
    sheet: str
    """Short name for the workbook tab (at most 31 characters)."""
    columns: tuple[Column, ...]
    frame: pd.DataFrame
    """One column per entry of `columns`, by key, in that order."""
    chart: Chart | None = None
    note: str | None = None
    drawn: tuple[Column, ...] = ()
    """Columns only the chart draws (the donor × province cells), kept in `frame` but not listed."""

    def column(self, key: str) -> Column:
        return next(c for c in (*self.columns, *self.drawn) if c.key == key)

    def rows(self) -> list[tuple[object, ...]]:
        """The cells as plain Python values (None for a missing value), row by row."""
        return [tuple(None if missing(v) else v for v in row)
                for row in self.frame[[c.key for c in self.columns]].itertuples(index=False, name=None)]


def missing(value: object) -> bool:
    """No value: None, or pandas' NaN/NaT/NA for an empty cell or a mean of nothing."""
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))  # type: ignore[call-overload]


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    tables: tuple[Table, ...]
    sheet: str | None = None
    """When set, the workbook stacks all the section's tables on this one sheet (a form's automatic
    summary has many small tables: one sheet per form reads better than one per question)."""
    summary: str | None = None
    """When set, the Markdown summary shows this line instead of the section's tables."""


@dataclass(frozen=True)
class Unsummarised:
    """A form in the database the report could not summarise, and why: named, never skipped in silence."""

    form_id: str
    reason: str


@dataclass(frozen=True)
class Headline:
    """One key figure, shown first in every output."""

    label: str
    value: float | int | None
    kind: Kind = Kind.COUNT


@dataclass(frozen=True)
class Findings:
    lang: Lang
    title: str
    subtitle: str
    generated_at: datetime
    headlines: tuple[Headline, ...]
    sections: tuple[Section, ...]
    labels: dict[str, str] = field(default_factory=dict)
    """Words the renderers need in the report's language (`contents`, `generated`, ...)."""
    unsummarised: tuple[Unsummarised, ...] = ()
    timezone: str = DEFAULT_TIMEZONE
    """Where the readers are: the time the report was made is shown in it (`generated_at` is UTC)."""
    appendix: tuple[Table, ...] = ()
    """Tables only the workbook carries, each on a sheet named by its `sheet`: lists too long to print
    (the focal-point registry), which analysts filter and sort rather than read."""

    @property
    def tables(self) -> list[Table]:
        return [t for s in self.sections for t in s.tables]

    def contents(self) -> list[tuple[str, Section, list[tuple[str, Table]]]]:
        """Sections and tables with their numbers (`3`, `3.2`): every output numbers them alike."""
        return [(str(i), section, [(f"{i}.{j}", table) for j, table in enumerate(section.tables, start=1)])
                for i, section in enumerate(self.sections, start=1)]

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)
