"""Priorities: which dialogue topics come first (the CPRGS in ARD?) and which activities are wanted."""

from __future__ import annotations

from .frames import CONSULTATIONS, frame, ranked, share, tally
from .model import Chart, ChartKind, Kind, Section, Table
from .source import Source
from .words import Words


def priorities(src: Source, w: Words) -> Section:
    return Section("priorities", w("section.priorities"), (topic_ranking(src, w), activity_ranking(src, w)))


def topic_ranking(src: Source, w: Words) -> Table:
    """Every group was asked the same topic list: ranked by how many respondents chose each, with the
    count per group and the share of all respondents."""
    respondents = sum(len(src.answers(f)) for f in CONSULTATIONS)
    chosen = {f: tally(src.choices(f, "priority_topics")["value"], src.codes(f, "priority_topics"))
              for f in CONSULTATIONS}
    rows = [{"topic": src.label("province_consultation", "priority_topics", code),
             **{f: chosen[f].get(code, 0) for f in CONSULTATIONS},
             "total": sum(chosen[f].get(code, 0) for f in CONSULTATIONS)}
            for code in src.codes("province_consultation", "priority_topics")]
    table = ranked(frame(rows, ["topic", *CONSULTATIONS, "total"]), "total")
    table["share"] = [share(n, respondents) for n in table["total"]]
    columns = (w.column("rank"), w.column("topic", Kind.TEXT, src.field_label("province_consultation",
                                                                               "priority_topics")),
               *(w.column(f, Kind.COUNT, w.group(f)) for f in CONSULTATIONS), w.column("total"),
               w.column("share", Kind.SHARE))
    return w.table("topic_ranking", columns, table, Chart(ChartKind.BARS, ("topic",), CONSULTATIONS))


def activity_ranking(src: Source, w: Words) -> Table:
    """Preferred activities were asked of the provinces only."""
    form_id = "province_consultation"
    respondents = len(src.answers(form_id))
    field = "preferred_activities"
    chosen = tally(src.choices(form_id, field)["value"], src.codes(form_id, field))
    rows = [{"activity": src.label(form_id, field, code), "respondents": n}
            for code, n in chosen.items()]
    table = ranked(frame(rows, ["activity", "respondents"]), "respondents")
    table["share"] = [share(n, respondents) for n in table["respondents"]]
    columns = (w.column("rank"), w.column("activity", Kind.TEXT, src.field_label(form_id, field)),
               w.column("respondents"), w.column("share", Kind.SHARE))
    return w.table("activity_ranking", columns, table, Chart(ChartKind.BARS, ("activity",), ("respondents",)))
