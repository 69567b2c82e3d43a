"""Constraints and support needed: what holds agencies back, counted, and in their own words.

Verbatim answers are shown exactly as typed (the renderers escape them): a sample of the
most frequent distinct answers per question, so the table stays readable at any scale.
"""

from __future__ import annotations

from .frames import frame, share, tally
from .model import Chart, ChartKind, Kind, Section, Table
from .source import Source
from .words import Words

SAMPLE = 10
"""Distinct verbatim answers shown per question."""
PROVINCE = "province_consultation"
OPEN_QUESTIONS = ((PROVINCE, "constraints"), (PROVINCE, "reasons_other"), (PROVINCE, "support_other"),
                  ("ministry_consultation", "reasons_not_supporting"))
"""Free-text questions about what stands in the way, and the support asked for."""


def constraints(src: Source, w: Words) -> Section:
    return Section("constraints", w("section.constraints"), (
        reasons_not_joining(src, w), support_needed(src, w), open_answers(src, w), verbatim(src, w)))


def _multi(src: Source, w: Words, key: str, field: str, asked: int) -> Table:
    """A province select_multiple: respondents per option, as a share of those asked."""
    counted = tally(src.choices(PROVINCE, field)["value"], src.codes(PROVINCE, field))
    rows = [{"option": src.label(PROVINCE, field, code), "respondents": n, "share": share(n, asked)}
            for code, n in counted.items()]
    columns = (w.column("option", Kind.TEXT, src.field_label(PROVINCE, field)), w.column("respondents"),
               w.column("share", Kind.SHARE))
    return w.table(key, columns, frame(rows, ["option", "respondents", "share"]),
                   Chart(ChartKind.BARS, ("option",), ("respondents",)))


def reasons_not_joining(src: Source, w: Words) -> Table:
    """Asked only of agencies not (yet) willing to join: the share is of them."""
    willing = src.answers(PROVINCE, "willing_to_join")["willing_to_join"]
    asked = int(willing.isin(["no", "undecided"]).sum())
    return _multi(src, w, "reasons_not_joining", "reasons_not_joining", asked)


def support_needed(src: Source, w: Words) -> Table:
    return _multi(src, w, "support_needed", "support_needed", len(src.answers(PROVINCE)))


def open_answers(src: Source, w: Words) -> Table:
    """How many answered each free-text question, out of the group's respondents."""
    rows = []
    for form_id, field in OPEN_QUESTIONS:
        answers = src.answers(form_id, field)[field]
        given = int(answers.dropna().astype(str).str.strip().ne("").sum())
        rows.append({"question": src.field_label(form_id, field), "group": w.group(form_id),
                     "respondents": len(answers), "answered": given, "share": share(given, len(answers))})
    columns = (w.column("question", Kind.TEXT), w.column("group", Kind.TEXT), w.column("respondents"),
               w.column("answered"), w.column("share", Kind.SHARE))
    return w.table("open_answers", columns, frame(rows, [c.key for c in columns]))


def verbatim(src: Source, w: Words) -> Table:
    """Up to SAMPLE distinct answers per question, most frequent first, ties in text order."""
    rows = []
    for form_id, field in OPEN_QUESTIONS:
        answers = src.answers(form_id, field)[field].dropna().astype(str)
        counted = answers[answers.str.strip() != ""].value_counts()
        ordered = sorted(counted.items(), key=lambda item: (-item[1], item[0]))[:SAMPLE]
        rows += [{"question": src.field_label(form_id, field), "answer": text, "times": int(n)}
                 for text, n in ordered]
    columns = (w.column("question", Kind.TEXT), w.column("answer", Kind.TEXT), w.column("times"))
    return w.table("verbatim", columns, frame(rows, ["question", "answer", "times"]), note=w("verbatim.note"))
