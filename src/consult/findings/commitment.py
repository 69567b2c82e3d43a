"""Interest and commitment: how keen each group is, who will join, and what they put on the table."""

from __future__ import annotations

import pandas as pd

from .frames import CONSULTATIONS, frame, mean, numbers, share, tally
from .model import Chart, ChartKind, Kind, Section, Table
from .source import Source
from .words import Words

INTERESTED = 4
"""Interest levels from here up (4 interested, 5 very interested) count as interested."""
WILLINGNESS = {"province_consultation": "willing_to_join", "ministry_consultation": "willing_to_support"}
"""The yes/no/undecided question each group was asked about taking part."""


def commitment(src: Source, w: Words) -> Section:
    return Section("commitment", w("section.commitment"), (
        interest_distribution(src, w), interest_by_group(src, w), willingness(src, w),
        commitment_by_province(src, w), focal_points(src, w)))


def _interest(src: Source) -> dict[str, pd.Series]:
    return {f: src.answers(f, "interest_level")["interest_level"] for f in CONSULTATIONS}


def interest_distribution(src: Source, w: Words) -> Table:
    interest = _interest(src)
    counts = {f: tally(v, src.codes(f, "interest_level")) for f, v in interest.items()}
    levels = src.codes("province_consultation", "interest_level")
    rows = [{"level": src.label("province_consultation", "interest_level", level),
             **{f: counts[f].get(level, 0) for f in CONSULTATIONS},
             "total": sum(counts[f].get(level, 0) for f in CONSULTATIONS)} for level in levels]
    columns = (w.column("level", Kind.TEXT, src.field_label("province_consultation", "interest_level")),
               *(w.column(f, Kind.COUNT, w.group(f)) for f in CONSULTATIONS), w.column("total"))
    return w.table("interest_distribution", columns, frame(rows, [c.key for c in columns]),
                   Chart(ChartKind.BARS, ("level",), CONSULTATIONS))


def interest_by_group(src: Source, w: Words) -> Table:
    """Mean interest (1–5) and the share interested (4–5), each group and all together."""
    interest = _interest(src)
    groups = [(w.group(f), interest[f]) for f in CONSULTATIONS]
    groups.append((w("all_groups"), pd.concat(list(interest.values()), ignore_index=True)))
    rows = []
    for name, answers in groups:
        levels = numbers(answers)
        rows.append({"group": name, "respondents": len(levels), "mean_interest": mean(levels),
                     "interested": share(int((levels >= INTERESTED).sum()), len(levels))})
    columns = (w.column("group", Kind.TEXT), w.column("respondents"), w.column("mean_interest", Kind.NUMBER),
               w.column("interested", Kind.SHARE))
    return w.table("interest_by_group", columns, frame(rows, [c.key for c in columns]),
                   Chart(ChartKind.BARS, ("group",), ("mean_interest",)))


def willingness(src: Source, w: Words) -> Table:
    """Provinces were asked whether they will join, ministries whether they will support."""
    rows = []
    for form_id, field in WILLINGNESS.items():
        counted = tally(src.answers(form_id, field)[field], ["yes", "undecided", "no"])
        answered = sum(counted.values())
        rows.append({"group": w.group(form_id), "respondents": answered, **counted,
                     "willing": share(counted["yes"], answered)})
    columns = (w.column("group", Kind.TEXT), w.column("respondents"),
               *(w.column(code, Kind.COUNT, src.label("province_consultation", "willing_to_join", code))
                 for code in ("yes", "undecided", "no")),
               w.column("willing", Kind.SHARE))
    return w.table("willingness", columns, frame(rows, [c.key for c in columns]),
                   Chart(ChartKind.BARS, ("group",), ("yes", "undecided", "no")))


def commitment_by_province(src: Source, w: Words) -> Table:
    """Staff-days and counterpart budget per year that each province's agencies **willing to join**
    commit, largest first; what undecided or unwilling agencies wrote is shown apart, never added in."""
    form_id = "province_consultation"
    pilots = set(src.pilot_provinces())
    held = src.quarantined(form_id, "province")
    answered = src.by_province(form_id, "willing_to_join", "staff_days", "budget_mvnd")
    rows = []
    for code, province, mine in answered:
        willing = mine[mine["willing_to_join"] == "yes"]
        others = mine[mine["willing_to_join"] != "yes"]
        rows.append({"province": province, "pilot": w.yes_no(code in pilots), "respondents": len(mine),
                     "willing_count": len(willing), "staff_days": int(numbers(willing["staff_days"]).sum()),
                     "budget_mvnd": float(numbers(willing["budget_mvnd"]).sum()),
                     "staff_days_not_willing": int(numbers(others["staff_days"]).sum()),
                     "quarantined": held.get(code, 0)})
    columns = (w.column("province", Kind.TEXT), w.column("pilot", Kind.TEXT), w.column("respondents"),
               w.column("willing_count"), w.column("staff_days", Kind.COUNT, w("staff_days_willing")),
               w.column("budget_mvnd", Kind.NUMBER, w("budget_mvnd_willing")), w.column("staff_days_not_willing"),
               w.column("quarantined", Kind.COUNT, w("quarantined_not_counted")))
    table = frame(rows, [c.key for c in columns]).sort_values("staff_days", ascending=False, kind="stable")
    return w.table("commitment_by_province", columns, table.reset_index(drop=True),
                   Chart(ChartKind.BARS, ("province",), ("staff_days",)), note=w("commitment_by_province.note"))


def focal_points(src: Source, w: Words) -> Table:
    """Every pilot province, registered or not: a missing row would hide a missing decision."""
    form_id = "focal_point_registration"
    registrations = src.answers(form_id, "province", "decision_number", "decision_date")
    held = src.quarantined(form_id, "province")
    photos = src.file_links(form_id, "decision_photo")
    members = src.entries(form_id, "members", "member_name", "member_agency", "member_gender", "member_role")
    rows = []
    for code in src.pilot_provinces():
        mine = registrations[registrations["province"] == code]
        team = members[members["_instance_id"].isin(mine["_instance_id"])]
        leads = team[team["member_role"] == "lead"]
        rows.append({
            "quarantined": held.get(code, 0),
            "province": src.label(form_id, "province", code),
            "decision": "; ".join(str(n) for n in mine["decision_number"].dropna()) or None,
            "decision_date": min(mine["decision_date"].dropna(), default=None),
            "decision_photo": next((photos[i] for i in mine["_instance_id"] if i in photos), None),
            "members": len(team), "women": int((team["member_gender"] == "female").sum()),
            "lead": "; ".join(str(n) for n in leads["member_name"].dropna()) or None,
            "lead_agency": "; ".join(str(src.label(form_id, "member_agency", a))
                                     for a in leads["member_agency"]) or None})
    columns = (w.column("province", Kind.TEXT, src.field_label(form_id, "province")),
               w.column("decision", Kind.TEXT, src.field_label(form_id, "decision_number")),
               w.column("decision_date", Kind.DATE, src.field_label(form_id, "decision_date")),
               w.column("decision_photo", Kind.FILE, src.field_label(form_id, "decision_photo")),
               w.column("members"), w.column("women"), w.column("lead", Kind.TEXT),
               w.column("lead_agency", Kind.TEXT), w.column("quarantined", Kind.COUNT, w("quarantined_not_counted")))
    note = w("focal_points.note") if any(r["quarantined"] for r in rows) else None
    return w.table("focal_points", columns, frame(rows, [c.key for c in columns]),
                   Chart(ChartKind.BARS, ("province",), ("members",)), note=note)
