"""What validation hands back: per-submission statuses and the reasons behind each quarantine."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

Status = Literal["valid", "quarantined"]
VALUE_CHARS = 500
"""A failure keeps at most this much of the offending value: enough to see it, bounded for the DB."""


def value_text(value: Any) -> str | None:
    """The offending value as text for the failures table and the review comment."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))  # integer columns become float in pandas as soon as one is null
    elif isinstance(value, (date, datetime)):
        text = value.isoformat()
    else:
        text = str(value)
    return text[:VALUE_CHARS]


@dataclass(frozen=True)
class Bilingual:
    vi: str
    en: str


@dataclass(frozen=True)
class Failure:
    """One reason a submission is quarantined, in both languages the supervisor may read."""

    instance_id: str
    rule: str
    column: str | None
    """The form field (or repeat) it is about; None when about the submission as a whole."""
    row_id: str | None
    """The repeat entry's `__id` when the value sits in a repeat, else None."""
    value: str | None
    message_vi: str
    message_en: str

    @classmethod
    def of(cls, instance_id: str, rule: str, column: str | None, row_id: Any, value: Any,
           message: Bilingual) -> Failure:
        row = row_id if isinstance(row_id, str) and row_id else None  # "" or NaN: not in a repeat
        return cls(instance_id, rule, column, row, value_text(value), message.vi, message.en)


@dataclass(frozen=True)
class ValidationContext:
    """What a page's validation needs besides the page: the day it runs (answers after it are in
    the future). Nothing from the database: duplicate interviews are judged form-wide later."""

    today: date


@dataclass
class ValidationReport:
    statuses: dict[str, Status]
    failures: list[Failure]

    @property
    def quarantined(self) -> list[str]:
        return [i for i, s in self.statuses.items() if s == "quarantined"]

    def failures_of(self, instance_id: str) -> list[Failure]:
        return [f for f in self.failures if f.instance_id == instance_id]
