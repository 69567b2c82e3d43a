"""Duplicate interviews: one organisation is not consulted twice on the same date.

Which forms have such a rule, and what their key is, is the form's profile's to say
(`consult.profiles`); this module only judges a key over the submissions of a form.

Judged form-wide, never page by page: Central pages submissions newest first, so a page
check would load the later interview (as valid) before the earlier one and never flag it.
After each sync pass the caller reads `DuplicateRule.columns` of every live submission of
the form (NULLs kept: the 'specify' columns are NULL unless 'other' was chosen) with their
submission dates, and `DuplicateRule.across_form` says which are duplicates. Which one is
the original depends on submission dates (then instance ids) only, so the verdict is the
same whatever order the rows arrive in.

Only a submission passing every other rule counts as the original: when a broken interview
is entered again correctly, the re-entry is the original and neither is a duplicate.

Pure Python (no pandas, no GX, no database): the warehouse imports it.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from consult.forms.schema import FormSchema
from consult.profiles import rules_for

from . import messages
from .fields import FORM_TABLE
from .report import Failure

Interview = tuple[str, datetime | None, Sequence[Any]]
"""(instance id, submission date, values of a rule's `columns` as stored)."""


@dataclass(frozen=True)
class KeyPart:
    column: str
    other: str | None = None
    """The 'specify' text that stands for the organisation when `column` is 'other'."""


@functools.lru_cache(maxsize=65536)
def key_text(value: Any) -> str | None:
    """A key value compared the way people mean it: case, spacing and Unicode form ignored.

    Vietnamese typed on different keyboards arrives precomposed or decomposed; NFC makes
    “Sở KH&ĐT” one organisation whichever way it was typed.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFC", str(value))).strip().casefold()
    return text or None


def _order(interview: Interview) -> tuple[bool, datetime, str]:
    """Oldest first, undated last, ties broken by instance id."""
    instance_id, submitted, _ = interview
    if submitted is None:
        return True, datetime.min.replace(tzinfo=UTC), instance_id
    return False, submitted if submitted.tzinfo else submitted.replace(tzinfo=UTC), instance_id


@dataclass(frozen=True)
class DuplicateRule:
    """One organisation consulted once per date: the key, and which columns to read it from."""

    name: str
    table_key: str
    """The layout table holding `columns` (the form's own table)."""
    columns: tuple[str, ...]
    """Columns whose stored values, in this order, `across_form` is given."""
    parts: tuple[KeyPart, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, name: str, parts: Sequence[KeyPart]) -> DuplicateRule:
        """A rule over the form's own table, reading each part's column and its 'specify' text."""
        columns = tuple(c for p in parts for c in (p.column, p.other) if c)
        return cls(name, FORM_TABLE, columns, tuple(parts))

    def key(self, row: Mapping[str, Any]) -> tuple[str, ...] | None:
        """The key of a row; None when a part is missing (the required rules catch that)."""
        values = []
        for part in self.parts:
            value = row.get(part.column)
            if part.other and value == "other":
                value = row.get(part.other)
            text = key_text(value)
            if text is None:
                return None
            values.append(text)
        return tuple(values)

    def across_form(self, schema: FormSchema, interviews: Iterable[Interview],
                    failing: Collection[str]) -> list[Failure]:
        """The duplicates among every live submission of a form.

        `interviews`: (instance id, submission date, values of `columns`) of each live
        submission. `failing`: instance ids with failures of other rules. Within each key, in
        order of submission date (undated last) then instance id, the original is the first
        interview not in `failing` (the first one if all are failing). Those before it are not
        duplicates (a broken interview entered again correctly); those after it are. Failures
        come in that order too, oldest duplicate first."""
        groups: dict[tuple[str, ...], list[str]] = {}
        rank: dict[str, int] = {}
        for interview in sorted(interviews, key=_order):
            instance_id, _, values = interview
            if instance_id in rank:
                raise ValueError(f"{self.name}: {instance_id} is given twice")
            rank[instance_id] = len(rank)
            if len(values) != len(self.columns):
                raise ValueError(f"{self.name}: {instance_id} has {len(values)} values for {self.columns}")
            key = self.key(dict(zip(self.columns, values, strict=True)))
            if key is not None:
                groups.setdefault(key, []).append(instance_id)
        labels = [messages.question(schema, p.column) for p in self.parts]
        failures = []
        for key, members in groups.items():
            start = next((n for n, i in enumerate(members) if i not in failing), 0)
            original = members[start]
            message = messages.duplicate(labels, original)
            failures += [Failure.of(i, self.name, self.parts[0].column, None, " | ".join(key), message)
                         for i in members[start + 1:]]
        return sorted(failures, key=lambda f: rank[f.instance_id])


def duplicate_rules(schema: FormSchema) -> list[DuplicateRule]:
    """The duplicate rules the form's profile declares for it (`consult.profiles`)."""
    return list(rules_for(schema).duplicates)
