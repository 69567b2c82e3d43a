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
import hashlib
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

KeyedInterview = tuple[str, datetime | None, tuple[str, ...] | None]
"""(instance id, submission date, its key by `DuplicateRule.key`)."""


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


def _order(interview: Interview | KeyedInterview) -> tuple[bool, datetime, str]:
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
        keyed = []
        for instance_id, submitted, values in interviews:
            if len(values) != len(self.columns):
                raise ValueError(f"{self.name}: {instance_id} has {len(values)} values for {self.columns}")
            keyed.append((instance_id, submitted, self.key(dict(zip(self.columns, values, strict=True)))))
        return self.judge(schema, keyed, failing)

    def judge(self, schema: FormSchema, keyed: Iterable[KeyedInterview],
              failing: Collection[str]) -> list[Failure]:
        """`across_form` over keys already computed (`key`): what an incremental recheck calls
        with the submissions of the keys that changed, which gives every one of them the
        verdict a form-wide pass would, since a key's verdict depends on its members only."""
        groups: dict[tuple[str, ...], list[str]] = {}
        rank: dict[str, int] = {}
        for instance_id, _, key in sorted(keyed, key=_order):
            if instance_id in rank:
                raise ValueError(f"{self.name}: {instance_id} is given twice")
            rank[instance_id] = len(rank)
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


KEY_SEPARATOR = "\x1f"
"""Joins a key's parts when it is stored: `key_text` folds this (a whitespace) into a space, so
no part contains it."""


def stored_key(key: tuple[str, ...] | None) -> str | None:
    return None if key is None else KEY_SEPARATOR.join(key)


def key_of_stored(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(text.split(KEY_SEPARATOR))


def key_hash(key: tuple[str, ...] | None) -> str | None:
    """What the key index holds: a key can be any length of free text ('specify' answers),
    longer than a PostgreSQL index entry allows."""
    return None if key is None else hashlib.sha1(stored_key(key).encode(), usedforsecurity=False).hexdigest()


def duplicate_rules(schema: FormSchema) -> list[DuplicateRule]:
    """The duplicate rules the form's profile declares for it (`consult.profiles`)."""
    return list(rules_for(schema).duplicates)
