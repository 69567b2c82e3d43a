"""Workshops: did the two August 2004 training workshops reach their delegates, and did they work?

The source document gives the delegates expected: 29 in Sóc Trăng (An Giang, Sóc Trăng, Trà
Vinh), 19 in Thanh Hoá (Thái Nguyên, Thanh Hoá). Evaluations received are set against them,
quarantined ones included, so a missing or held-back evaluation shows.
"""

from __future__ import annotations

import pandas as pd

from .frames import frame, mean, numbers, share, spread
from .model import Chart, ChartKind, Kind, Section, Table
from .source import Source
from .words import Words

WORKSHOP = "workshop_evaluation"
EXPECTED_DELEGATES = {"soc_trang_2004": 29, "thanh_hoa_2004": 19}
"""Delegates per workshop, as the ISG Office reported them."""
USEFUL = 4
"""Usefulness from here up (useful, very useful) counts as useful."""
KNOWLEDGE = {"cprgs": ("cprgs_before", "cprgs_after"), "results": ("results_before", "results_after")}
SESSIONS = ("session_cprgs", "session_mpi_2215", "session_results", "session_indicators",
            "session_group_work")


def workshops(src: Source, w: Words) -> Section:
    return Section("workshops", w("section.workshops"), (
        delegates(src, w), delegates_by_province(src, w), knowledge_gain(src, w), session_usefulness(src, w),
        will_apply(src, w)))


def _workshops(src: Source) -> list[str]:
    return src.codes(WORKSHOP, "workshop") or list(EXPECTED_DELEGATES)


def _per_workshop(src: Source, w: Words, answers: pd.DataFrame) -> list[tuple[str | None, pd.DataFrame]]:
    """(workshop label, its delegates' answers) for each workshop, then both together."""
    parts = [(src.label(WORKSHOP, "workshop", code), answers[answers["workshop"] == code])
             for code in _workshops(src)]
    return [*parts, (w("both_workshops"), answers)]


def delegates(src: Source, w: Words) -> Table:
    received = src.received(WORKSHOP, "workshop")
    rows = []
    for code in _workshops(src):
        mine = received[received["workshop"] == code]
        valid = int(mine["valid"].sum())
        rows.append({"workshop": src.label(WORKSHOP, "workshop", code), "valid": valid, "received": len(mine),
                     "expected": EXPECTED_DELEGATES.get(code), "quarantined": len(mine) - valid})
    columns = (w.column("workshop", Kind.TEXT), w.column("expected"), w.column("received"), w.column("valid"),
               w.column("quarantined"))
    chart = Chart(ChartKind.BARS, ("workshop",), ("expected", "valid"))
    return w.table("workshop_delegates", columns, frame(rows, [c.key for c in columns]), chart,
                   note=w("workshop_delegates.note"))


def delegates_by_province(src: Source, w: Words) -> Table:
    """Valid evaluations per workshop and delegate province, provinces in the list's order."""
    answers = src.answers(WORKSHOP, "workshop", "province")
    rows = []
    for code in _workshops(src):
        mine = answers[answers["workshop"] == code]["province"].value_counts()
        rows += [{"workshop": src.label(WORKSHOP, "workshop", code),
                  "province": src.label(WORKSHOP, "province", province), "delegates": int(mine[province])}
                 for province in src.codes(WORKSHOP, "province") if province in mine.index]
    columns = (w.column("workshop", Kind.TEXT), w.column("province", Kind.TEXT), w.column("delegates"))
    chart = Chart(ChartKind.BARS, ("workshop", "province"), ("delegates",))
    return w.table("workshop_delegates_by_province", columns, frame(rows, [c.key for c in columns]), chart)


def knowledge_gain(src: Source, w: Words) -> Table:
    """Self-rated knowledge (1–5) before and after, over delegates who rated both: mean gain and its
    standard deviation, and the share who rated themselves higher after."""
    answers = src.answers(WORKSHOP, "workshop", *(f for pair in KNOWLEDGE.values() for f in pair))
    rows = []
    for workshop, mine in _per_workshop(src, w, answers):
        for topic, (before_field, after_field) in KNOWLEDGE.items():
            before, after = pd.to_numeric(mine[before_field]), pd.to_numeric(mine[after_field])
            rated = before.notna() & after.notna()
            gain = after[rated] - before[rated]
            rows.append({"workshop": workshop, "topic": w(f"knowledge.{topic}"), "delegates": len(gain),
                         "before": mean(before[rated]), "after": mean(after[rated]), "gain": mean(gain),
                         "gain_sd": spread(gain), "improved": share(int((gain > 0).sum()), len(gain))})
    columns = (w.column("workshop", Kind.TEXT), w.column("topic", Kind.TEXT), w.column("delegates"),
               w.column("before", Kind.NUMBER), w.column("after", Kind.NUMBER), w.column("gain", Kind.NUMBER),
               w.column("gain_sd", Kind.NUMBER), w.column("improved", Kind.SHARE))
    return w.table("knowledge_gain", columns, frame(rows, [c.key for c in columns]),
                   Chart(ChartKind.BARS, ("workshop", "topic"), ("before", "after")))


def session_usefulness(src: Source, w: Words) -> Table:
    answers = src.answers(WORKSHOP, *SESSIONS)
    rows = []
    for session in SESSIONS:
        rated = numbers(answers[session])
        rows.append({"session": src.field_label(WORKSHOP, session), "delegates": len(rated),
                     "mean_usefulness": mean(rated),
                     "useful": share(int((rated >= USEFUL).sum()), len(rated))})
    columns = (w.column("session", Kind.TEXT), w.column("delegates"),
               w.column("mean_usefulness", Kind.NUMBER), w.column("useful", Kind.SHARE))
    return w.table("session_usefulness", columns, frame(rows, [c.key for c in columns]),
                   Chart(ChartKind.BARS, ("session",), ("mean_usefulness",)))


def will_apply(src: Source, w: Words) -> Table:
    answers = src.answers(WORKSHOP, "workshop", "will_apply")
    rows = []
    for workshop, mine in _per_workshop(src, w, answers):
        answered = int(mine["will_apply"].notna().sum())
        applying = int((mine["will_apply"] == "yes").sum())
        rows.append({"workshop": workshop, "delegates": answered, "applying": applying,
                     "applying_share": share(applying, answered)})
    columns = (w.column("workshop", Kind.TEXT), w.column("delegates"), w.column("applying"),
               w.column("applying_share", Kind.SHARE))
    return w.table("will_apply", columns, frame(rows, [c.key for c in columns]),
                   Chart(ChartKind.BARS, ("workshop",), ("applying_share",)))
