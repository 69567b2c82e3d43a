"""Donors: what support they offer, how much money is indicated, and in which provinces they work."""

from __future__ import annotations

import pandas as pd

from .frames import frame, in_order, mean, numbers, share, tally
from .model import Chart, ChartKind, Column, Kind, Section, Table
from .source import Source
from .words import Words

DONOR = "donor_consultation"
OTHER = "other"


def donors(src: Source, w: Words) -> Section:
    return Section("donors", w("section.donors"), (
        support_types(src, w), budgets_by_type(src, w), budgets(src, w), province_matrix(src, w)))


def organisation_names(src: Source) -> pd.DataFrame:
    """`_instance_id`, `organisation`, `org_type` (labels): an 'other' organisation by the name typed."""
    answers = src.answers(DONOR, "organisation", "organisation_other", "org_type", "project_name",
                          "indicative_budget_kusd", "ard_portfolio_musd")
    named = [other if code == OTHER and isinstance(other, str) and other.strip()
             else src.label(DONOR, "organisation", code)
             for code, other in zip(answers["organisation"], answers["organisation_other"], strict=True)]
    return answers.assign(name=named, type=[src.label(DONOR, "org_type", c) for c in answers["org_type"]])


def support_types(src: Source, w: Words) -> Table:
    respondents = len(src.answers(DONOR))
    counted = tally(src.choices(DONOR, "support_types")["value"], src.codes(DONOR, "support_types"))
    rows = [{"support": src.label(DONOR, "support_types", code), "donors": n, "share": share(n, respondents)}
            for code, n in counted.items()]
    columns = (w.column("support", Kind.TEXT, src.field_label(DONOR, "support_types")), w.column("donors"),
               w.column("share", Kind.SHARE))
    return w.table("donor_support_types", columns, frame(rows, ["support", "donors", "share"]),
                   Chart(ChartKind.BARS, ("support",), ("donors",)))


def budgets_by_type(src: Source, w: Words) -> Table:
    """Indicative budgets are asked only of donors offering funding: counted and summed per type."""
    answers = src.answers(DONOR, "org_type", "indicative_budget_kusd")
    rows = []
    for code in src.codes(DONOR, "org_type"):
        mine = answers[answers["org_type"] == code]
        budget = numbers(mine["indicative_budget_kusd"])
        rows.append({"org_type": src.label(DONOR, "org_type", code), "donors": len(mine),
                     "funding": len(budget), "budget_total": float(budget.sum()),
                     "budget_mean": mean(budget)})
    columns = (w.column("org_type", Kind.TEXT, src.field_label(DONOR, "org_type")), w.column("donors"),
               w.column("funding"), w.column("budget_total", Kind.NUMBER),
               w.column("budget_mean", Kind.NUMBER))
    return w.table("donor_budgets_by_type", columns, frame(rows, [c.key for c in columns]),
                   Chart(ChartKind.BARS, ("org_type",), ("budget_total",)))


def budgets(src: Source, w: Words) -> Table:
    """Each funding offer, largest first (ties by name)."""
    offers = organisation_names(src).dropna(subset=["indicative_budget_kusd"])
    rows = [{"organisation": r.name, "org_type": r.type, "project": r.project_name,
             "budget": float(r.indicative_budget_kusd), "portfolio": r.ard_portfolio_musd}
            for r in offers.itertuples()]
    table = frame(rows, ["organisation", "org_type", "project", "budget", "portfolio"])
    table = table.sort_values(["budget", "organisation"], ascending=[False, True], kind="stable")
    columns = (w.column("organisation", Kind.TEXT, src.field_label(DONOR, "organisation")),
               w.column("org_type", Kind.TEXT, src.field_label(DONOR, "org_type")),
               w.column("project", Kind.TEXT, src.field_label(DONOR, "project_name")),
               w.column("budget", Kind.NUMBER, src.field_label(DONOR, "indicative_budget_kusd")),
               w.column("portfolio", Kind.NUMBER, src.field_label(DONOR, "ard_portfolio_musd")))
    return w.table("donor_budgets", columns, table.reset_index(drop=True))


def province_matrix(src: Source, w: Words) -> Table:
    """Donor (organisation) × province: how many of its consultations name the province as where it
    works. The table lists each donor's provinces; the heat map draws the matrix, provinces in the
    province list's order and only those some donor works in (the others are named in the note)."""
    names = organisation_names(src)[["_instance_id", "name"]]
    active = src.choices(DONOR, "active_provinces").merge(names, on="_instance_id")
    every = src.codes(DONOR, "active_provinces")
    provinces = in_order(active["value"], every)
    counts = active.groupby(["name", "value"]).size()
    label = {p: src.label(DONOR, "active_provinces", p) or p for p in every}
    rows = []
    for name in sorted(active["name"].unique()):
        mine = [p for p in provinces if counts.get((name, p), 0)]
        rows.append({"organisation": name, "province_count": len(mine),
                     "provinces": ", ".join(label[p] for p in mine),
                     **{p: int(counts.get((name, p), 0)) for p in provinces}})
    columns = (w.column("organisation", Kind.TEXT, src.field_label(DONOR, "organisation")),
               w.column("province_count"), w.column("provinces", Kind.TEXT))
    drawn = tuple(Column(p, label[p], Kind.COUNT) for p in provinces)
    quiet = [label[p] for p in every if p not in provinces]
    note = w("donor_province_matrix.note").format(count=len(quiet), provinces=", ".join(quiet)) if quiet else None
    return w.table("donor_province_matrix", columns, frame(rows, [c.key for c in (*columns, *drawn)]),
                   Chart(ChartKind.HEAT_MAP, ("organisation",), tuple(provinces)), note=note, drawn=drawn)
