"""Variable names and label lengths each analysis format accepts.

The reporting database's column names are Central's OData names in lower case (ASCII letters,
digits, `_`), so they are already legal in Stata; what a format may refuse is a name that is
too long, a reserved word, or (SPSS) one not starting with a letter. A refused name is changed
the same way on every run, so an analyst's do-file keeps working, and the codebook says how.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum


class Format(StrEnum):
    STATA = "stata"
    SPSS = "spss"
    PARQUET = "parquet"
    CSV = "csv"
    XLSX = "xlsx"


@dataclass(frozen=True)
class Limits:
    """Stata allows 32-character names, but readstat (which writes the file) names each value-label set
    `<variable><n>` (n counting the labelled variables from 0) and that name must fit 32 bytes with its
    terminator: names are cut at 28, room for 999 labelled variables in a table."""

    name_bytes: int
    variable_label: int
    """Characters (Stata) or UTF-8 bytes (SPSS) of a variable label."""
    value_label: int
    label_in_bytes: bool
    reserved: frozenset[str]
    letter_first: bool


STATA_RESERVED = frozenset({"_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int",
                            "long", "_n", "_N", "_pi", "_pred", "_rc", "_skip", "strL", "using", "with"})
SPSS_RESERVED = frozenset({"ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO", "WITH"})
STATA = Limits(28, 80, 32_000, label_in_bytes=False, reserved=STATA_RESERVED, letter_first=False)
SPSS = Limits(64, 256, 120, label_in_bytes=True, reserved=SPSS_RESERVED, letter_first=True)
LIMITS: dict[Format, Limits] = {Format.STATA: STATA, Format.SPSS: SPSS}
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]+")


@dataclass(frozen=True)
class Renamed:
    column: str
    name: str
    why: str


def _legal(column: str, limits: Limits) -> tuple[str, str]:
    name, why = _NOT_NAME.sub("_", column), []
    if name != column:
        why.append("characters outside A-Z, 0-9, _ became _")
    if limits.letter_first and not name[:1].isalpha():
        name = "v" + name
        why.append("a name must start with a letter: `v` prefixed")
    elif name[:1].isdigit():
        name = "_" + name
        why.append("a name must not start with a digit: `_` prefixed")
    if name.upper() in {r.upper() for r in limits.reserved}:
        name += "_"
        why.append("a reserved word: `_` appended")
    if len(name.encode()) > limits.name_bytes:
        digest = hashlib.sha1(column.encode()).hexdigest()[:4]
        name = f"{name[:limits.name_bytes - 5]}_{digest}"
        why.append(f"longer than {limits.name_bytes}: first {limits.name_bytes - 5} characters, `_`, "
                   "4 characters of the SHA-1 of the full name")
    return name, "; ".join(why)


def variable_names(columns: list[str], fmt: Format) -> dict[str, Renamed]:
    """Column → its name in `fmt`, unique in the table (case-insensitively, as SPSS and Stata users
    expect), the same for the same columns on every run."""
    limits = LIMITS.get(fmt)
    out: dict[str, Renamed] = {}
    taken: set[str] = set()
    for column in columns:
        name, why = _legal(column, limits) if limits else (column, "")
        candidate, n = name, 2
        while candidate.lower() in taken:
            suffix = f"_{n}"
            stem = name if limits is None else name[:limits.name_bytes - len(suffix)]
            candidate, n = stem + suffix, n + 1
        if candidate != name:
            why = "; ".join(filter(None, [why, f"another column already had `{name}`: numbered"]))
        taken.add(candidate.lower())
        out[column] = Renamed(column, candidate, why)
    return out


def fit_label(label: str, limit: int, in_bytes: bool) -> str:
    """Cut a label to the format's limit with an ellipsis; the codebook keeps the whole text."""
    def size(text: str) -> int:
        return len(text.encode()) if in_bytes else len(text)

    if size(label) <= limit:
        return label
    while size(label + "…") > limit:
        label = label[:-1]
    return label.rstrip() + "…"
