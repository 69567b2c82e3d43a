"""Coverage: who was consulted, where, by whom and when, so a reader can judge the evidence."""

from __future__ import annotations

from datetime import date

import pandas as pd

from .frames import FORMS, frame, tally
from .model import Chart, ChartKind, Kind, Section, Table
from .source import Source
from .words import Words


def coverage(src: Source, w: Words) -> Section:
    return Section("coverage", w("section.coverage"), (
        by_group(src, w), by_province(src, w),
        by_choice(src, w, "coverage_by_agency", "province_consultation", "agency"),
        by_choice(src, w, "coverage_by_ministry", "ministry_consultation", "ministry"),
        by_choice(src, w, "coverage_by_org_type", "donor_consultation", "org_type"),
        by_enumerator(src, w), by_month(src, w)))


def by_group(src: Source, w: Words) -> Table:
    rows = []
    for form_id in FORMS:
        dates = src.answers(form_id, "consultation_date")["consultation_date"].dropna()
        held = src.held_back(form_id)
        rows.append({"group": w.group(form_id), "submissions": len(dates), "first": min(dates, default=None),
                     "last": max(dates, default=None), "quarantined": held})
    columns = (w.column("group", Kind.TEXT), w.column("submissions"), w.column("first", Kind.DATE),
               w.column("last", Kind.DATE), w.column("quarantined", Kind.COUNT, w("quarantined_not_counted")))
    return w.table("coverage_by_group", columns, frame(rows, [c.key for c in columns]),
                   Chart(ChartKind.BARS, ("group",), ("submissions",)))


def by_province(src: Source, w: Words) -> Table:
    """Provinces in the province list's order, most consulted first; only those consulted."""
    pilots = set(src.pilot_provinces())
    held = src.quarantined("province_consultation", "province")
    rows = [{"province": province, "pilot": w.yes_no(code in pilots), "submissions": len(visited),
             "agencies": int(visited["agency"].nunique()), "quarantined": held.get(code, 0)}
            for code, province, visited in src.by_province("province_consultation", "agency")]
    columns = (w.column("province", Kind.TEXT), w.column("pilot", Kind.TEXT), w.column("submissions"),
               w.column("agencies"), w.column("quarantined", Kind.COUNT, w("quarantined_not_counted")))
    table = frame(rows, [c.key for c in columns]).sort_values("submissions", ascending=False, kind="stable")
    return w.table("coverage_by_province", columns, table.reset_index(drop=True),
                   Chart(ChartKind.BARS, ("province",), ("submissions",)))


def by_choice(src: Source, w: Words, key: str, form_id: str, field: str) -> Table:
    """Consultations by one select_one, every choice listed (a zero shows who was not reached)."""
    counted = tally(src.answers(form_id, field)[field], src.codes(form_id, field))
    rows = [{"category": src.label(form_id, field, code), "submissions": n} for code, n in counted.items()]
    columns = (w.column("category", Kind.TEXT, src.field_label(form_id, field)), w.column("submissions"))
    return w.table(key, columns, frame(rows, ["category", "submissions"]),
                   Chart(ChartKind.BARS, ("category",), ("submissions",)))


def _per_form(w: Words, key: str, label_column: str, values: dict[str, pd.Series]) -> Table:
    """Submissions of every form by one value they all have (enumerator, month), with a total."""
    counts = {form_id: v.dropna().astype(str).value_counts() for form_id, v in values.items()}
    rows = []
    for value in sorted(set().union(*(c.index for c in counts.values()))):
        per_form = {form_id: int(counts[form_id].get(value, 0)) for form_id in FORMS}
        rows.append({label_column: value, **per_form, "total": sum(per_form.values())})
    columns = (w.column(label_column, Kind.TEXT), *(w.column(f, Kind.COUNT, w.group(f)) for f in FORMS),
               w.column("total"))
    return w.table(key, columns, frame(rows, [c.key for c in columns]),
                   Chart(ChartKind.BARS, (label_column,), ("total",)))


def by_enumerator(src: Source, w: Words) -> Table:
    """By the phone's username: the ISG and CECI staff who held the interviews, busiest first."""
    table = _per_form(w, "coverage_by_enumerator", "enumerator",
                      {f: src.answers(f, "username")["username"] for f in FORMS})
    busiest = table.frame.sort_values("total", ascending=False, kind="stable").reset_index(drop=True)
    return w.table(table.key, table.columns, busiest, table.chart)


def by_month(src: Source, w: Words) -> Table:
    """By the month of the consultation date (days would be too many rows to read)."""
    return _per_form(w, "coverage_by_month", "month",
                     {f: src.answers(f, "consultation_date")["consultation_date"].map(_month) for f in FORMS})


def _month(day: object) -> str | None:
    return f"{day:%Y-%m}" if isinstance(day, date) else None
