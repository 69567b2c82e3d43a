"""Small counting helpers every section shares, so each figure is computed one way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

CONSULTATIONS = ("province_consultation", "ministry_consultation", "donor_consultation")
"""The stakeholder groups the ISG Office consulted on the network."""
FORMS = (*CONSULTATIONS, "focal_point_registration", "workshop_evaluation")


def share(part: float, whole: float) -> float | None:
    """A fraction, or None when there is nobody to divide by (never a division by zero)."""
    return part / whole if whole else None


def numbers(values: pd.Series) -> pd.Series:
    """Answers as numbers: select_one levels (`'1'`…`'5'`) are stored as text."""
    return pd.to_numeric(values, errors="coerce").dropna().astype(float)


def mean(values: pd.Series) -> float | None:
    values = numbers(values)
    return float(values.mean()) if len(values) else None


def spread(values: pd.Series) -> float | None:
    """The sample standard deviation; None below two values."""
    values = numbers(values)
    return float(values.std(ddof=1)) if len(values) > 1 else None


def in_order(codes: Iterable[str], order: Sequence[str]) -> list[str]:
    """The codes present, the choice list's first, in its order, then any unknown code sorted."""
    present = {str(c) for c in codes if c is not None and not pd.isna(c)}
    return [c for c in order if c in present] + sorted(present - set(order))


def tally(values: pd.Series, order: Sequence[str], keep_zero: bool = True) -> dict[str, int]:
    """How often each code occurs, in the choice list's order (every listed code when `keep_zero`)."""
    counted = values.dropna().astype(str).value_counts()
    if not keep_zero:
        return {code: int(counted[code]) for code in in_order(counted.index, order)}
    codes = [*order, *sorted(set(counted.index) - set(order))]
    return {code: int(counted.get(code, 0)) for code in codes}


def ranked(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """Highest `by` first, ties kept in the given (choice list) order, so the ranking is the same
    in every language, with a 1-based `rank` column (equal values share a rank)."""
    frame = frame.sort_values(by, ascending=False, kind="stable").reset_index(drop=True)
    frame.insert(0, "rank", frame[by].rank(method="min", ascending=False).astype(int))
    return frame


def frame(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> pd.DataFrame:
    """A table's frame with exactly these columns, even when there are no rows."""
    return pd.DataFrame(rows, columns=list(columns))
