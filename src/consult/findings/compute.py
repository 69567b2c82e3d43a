"""`compute_findings`: ISG's sections for ISG's forms, an automatic section for every other form in
the database, then the key figures from the tables."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from numbers import Real

from sqlalchemy.engine import Engine

from consult.forms.schema import FormSchema

from .commitment import commitment
from .constraints import constraints
from .coverage import coverage
from .donors import donors
from .display import display
from .frames import CONSULTATIONS
from .model import DEFAULT_TIMEZONE, FileLinks, Findings, Headline, Kind, Lang, Section, Table, missing
from .planning import planning
from .priorities import priorities
from .quality import quality
from .registry import focal_point_coverage, registry_sheet
from .source import Source
from .summary import FormCounts, forms_in_database, summarise_forms, unsummarised_section
from .words import GROUPS, Words
from .workshops import workshops

SECTIONS: tuple[Callable[[Source, Words], Section | None], ...] = (
    coverage, focal_point_coverage, commitment, priorities, constraints, donors, planning, workshops, quality)
"""In the order the report tells the story: who, which registered focal points that reached (only with
the registry), how keen, on what, what stands in the way, who pays, how provinces plan, what the
workshops did, and how far the data can be trusted."""
ISG_PROFILE = "isg"


def isg_forms(schemas: Mapping[str, FormSchema]) -> dict[str, FormSchema]:
    """The forms ISG's findings read: ISG's five, where their FormSchema opted into the ISG profile.
    Any other form, an ISG-profile form of a later round included, gets the automatic section."""
    return {form_id: s for form_id, s in schemas.items() if form_id in GROUPS and s.profile == ISG_PROFILE}


def compute_findings(engine: Engine, schemas: Mapping[str, FormSchema], lang: Lang = "vi",
                     timezone: str = DEFAULT_TIMEZONE, files: FileLinks | None = None) -> Findings:
    """The findings from the reporting database, labelled in `lang` (vi or en): ISG's sections when an
    ISG form has submissions, an automatic section for each other form, and the forms left out, named."""
    w = Words(lang)
    with engine.connect() as conn:
        forms = forms_in_database(conn)
    isg = isg_forms(schemas)
    with_isg = bool(isg.keys() & forms.keys())
    sections: list[Section] = []
    appendix: tuple[Table, ...] = ()
    if with_isg:
        with engine.connect() as conn:
            src = Source(conn, isg, lang, files)
            sections += [made for section in SECTIONS if (made := section(src, w)) is not None]
            appendix = tuple(t for t in (registry_sheet(src, w),) if t is not None)
    automatic, skipped = summarise_forms(engine, schemas, forms, w, covered=isg.__contains__)
    sections += automatic
    if skipped:
        sections.append(unsummarised_section(skipped, forms, w))
    labels = {key: w(key) for key in ("contents", "key_figures", "generated", "no_rows", "more_rows", "office")}
    title, subtitle = (w("title"), w("subtitle")) if with_isg else (w("summary.title"), w("summary.subtitle"))
    findings = Findings(lang, title, subtitle, datetime.now(UTC), (), tuple(sections), labels, tuple(skipped),
                        timezone=timezone, appendix=appendix)
    figures = headlines(findings, w) if with_isg else overall(forms, len(automatic), w)
    if skipped:
        figures += (Headline(w("headline.unsummarised"), len(skipped)),)
    return replace(findings, headlines=figures, labels=labels | (_round(findings, w) if with_isg else {}))


def _round(findings: Findings, w: Words) -> dict[str, str]:
    """The consultation round as the first and last interview dates the report counts."""
    groups = findings.table("coverage_by_group").frame
    first, last = groups["first"].dropna(), groups["last"].dropna()
    if first.empty or last.empty:
        return {}
    return {"round": w("round").format(first=display(min(first), Kind.DATE, findings.lang),
                                       last=display(max(last), Kind.DATE, findings.lang))}


def overall(forms: Mapping[str, FormCounts], summarised: int, w: Words) -> tuple[Headline, ...]:
    """Key figures of a report without ISG's forms: forms summarised, valid and quarantined submissions."""
    return (Headline(w("headline.forms"), summarised),
            Headline(w("headline.valid"), sum(f.valid for f in forms.values())),
            Headline(w("headline.quarantined"), sum(f.quarantined for f in forms.values())))


def headlines(findings: Findings, w: Words) -> tuple[Headline, ...]:
    """Key figures, each read off a table of the report so that it can never disagree with it."""
    t = findings.table
    groups = t("coverage_by_group").frame.set_index("group")["submissions"]
    focal = t("focal_points").frame
    interest = t("interest_by_group").frame.iloc[-1]
    willing = t("willingness").frame.iloc[0]
    commitment = t("commitment_by_province").frame
    knowledge = t("knowledge_gain").frame
    cprgs_both = knowledge[knowledge["topic"] == w("knowledge.cprgs")].iloc[-1]
    return (
        Headline(w("headline.consultations"), int(sum(groups[w.group(f)] for f in CONSULTATIONS))),
        Headline(w("headline.provinces"), len(t("coverage_by_province").frame)),
        Headline(w("headline.focal_points"), int((focal["members"] > 0).sum())),
        *_registry_headlines(findings, w),
        Headline(w("headline.mean_interest"), _number(interest["mean_interest"]), Kind.NUMBER),
        Headline(w("headline.willing"), _number(willing["willing"]), Kind.SHARE),
        Headline(w("headline.staff_days"), int(commitment["staff_days"].sum())),
        Headline(w("headline.budget_mvnd"), float(commitment["budget_mvnd"].sum()), Kind.NUMBER),
        Headline(w("headline.donor_budget"), float(t("donor_budgets").frame["budget"].sum()), Kind.NUMBER),
        Headline(w("headline.delegates"), int(t("workshop_delegates").frame["valid"].sum())),
        Headline(w("headline.knowledge_gain"), _number(cprgs_both["gain"]), Kind.NUMBER),
        Headline(w("headline.quarantined"), int(t("quality_by_form").frame["quarantined"].sum())),
    )


def _registry_headlines(findings: Findings, w: Words) -> tuple[Headline, ...]:
    """Registered focal points consulted and never consulted: the total row of the coverage table, when
    the report has the registry."""
    if not any(s.key == "focal_point_coverage" for s in findings.sections):
        return ()
    total = findings.table("focal_point_coverage_by_type").frame.iloc[-1]
    return (Headline(w("headline.focal_consulted"), int(total["focal.consulted"])),
            Headline(w("headline.focal_never_consulted"), int(total["focal.never_consulted"])))


def _number(value: object) -> float | None:
    """A figure read off a table cell: a plain float, or None where there was nothing to compute."""
    return float(value) if isinstance(value, Real) and not missing(value) else None
