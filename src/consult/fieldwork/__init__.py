"""Playing the enumerators: seeded, realistic interviews of the five forms as ODK submission XML.

The demo, the sync tests and the benchmarks need submissions that look like the ISG Office's
2003–2004 consultations: provinces (the five pilots above all), ministries and donors
consulted over a year, the pilot provinces' focal-point registrations, and the 29 + 19
delegates of the August 2004 workshops, each registration's members becoming focal points that
later interviews pick from the list (`focal_points`). Everything is drawn from the FormSchemas' own choice
lists and obeys each form's required, relevance, constraint and choice-filter rules, except
about 5 % of interviews spoiled on purpose, each labelled with the rule that must catch it
(`EXPECTED_RULE`). The same seed gives the same bytes.

    interviews = fieldwork({form_id: FormSchema.read(path), ...})
    for interview in interviews:  # in the order the enumerators send them
        submit(interview.xml, interview.attachments)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

from consult.forms.schema import FormSchema

from .focal_points import link_focal_points
from .interview import Draft, Interview, SubmissionShape
from .kit import FormKit
from .mistakes import EXPECTED_RULE, MISTAKES, deliberate_mistakes
from .national import donor_consultations, ministry_consultations
from .provincial import focal_point_registration, province_consultation, visits
from .workshops import WORKSHOPS, workshop_evaluations

__all__ = ["EXPECTED_RULE", "FORMS", "MISTAKES", "WORKSHOPS", "Interview", "fieldwork", "province_interviews"]

CONSULTATIONS = {"province_consultation": 60, "ministry_consultation": 25, "donor_consultation": 30}
"""Interviews at `scale=1.0`; registrations and workshop evaluations are the historical counts."""


def _provinces(kit: FormKit, count: int) -> list[Draft]:
    return [province_consultation(kit, visit) for visit in visits(kit, count)]


def _registrations(kit: FormKit, count: int) -> list[Draft]:
    """One registration per pilot province, whatever the scale: there were five."""
    return [focal_point_registration(kit, province) for province in kit.provinces(pilot="1")]


def _evaluations(kit: FormKit, count: int) -> list[Draft]:
    """One evaluation per delegate of the two workshops, whatever the scale."""
    return workshop_evaluations(kit)


FORMS: dict[str, Callable[[FormKit, int], list[Draft]]] = {
    "province_consultation": _provinces,
    "ministry_consultation": ministry_consultations,
    "donor_consultation": donor_consultations,
    "focal_point_registration": _registrations,
    "workshop_evaluation": _evaluations,
}
"""Form id → what its enumerators collect, given how many consultations; each form has its own
RNG stream, so a form's answers depend only on the seed and its count."""


def fieldwork(schemas: Mapping[str, FormSchema], seed: int = 2004, scale: float = 1.0,
              mistake_rate: float = 0.05) -> list[Interview]:
    """The interviews of every form in `schemas` (of the five known, and focal_point_update's few
    after them), in the order they are sent.

    `scale` multiplies the province, ministry and donor consultations (60, 25, 30 at 1.0);
    `mistake_rate` is the share spoiled on purpose, rounded up, every kind in turn.
    """
    kits = {form_id: FormKit(schemas[form_id], seed) for form_id in (*FORMS, "focal_point_update")
            if form_id in schemas}
    drafts = [draft for form_id, kit in kits.items() if form_id in FORMS
              for draft in FORMS[form_id](kit, round(CONSULTATIONS.get(form_id, 0) * scale))]
    drafts += deliberate_mistakes(drafts, kits, random.Random(f"{seed}:mistakes"), mistake_rate)
    drafts += link_focal_points(drafts, kits, random.Random(f"{seed}:focal_points"))
    return _sent(drafts, kits)


def province_interviews(schema: FormSchema, n: int, seed: int = 2004,
                        mistake_rate: float = 0.0) -> list[Interview]:
    """`n` province consultations for benchmarks (several thousand a second), correct unless
    `mistake_rate` asks otherwise (duplicates then come on top of `n`)."""
    kits = {schema.form_id: FormKit(schema, seed)}
    drafts = _provinces(kits[schema.form_id], n)
    drafts += deliberate_mistakes(drafts, kits, random.Random(f"{seed}:mistakes"), mistake_rate)
    link_focal_points(drafts, kits, random.Random(f"{seed}:focal_points"))
    return _sent(drafts, kits)


def _sent(drafts: list[Draft], kits: Mapping[str, FormKit]) -> list[Interview]:
    """The interviews as XML, in the order the phones send them (a duplicate days after its original)."""
    shapes = {form_id: SubmissionShape(kit.schema) for form_id, kit in kits.items()}
    order = sorted(range(len(drafts)), key=lambda i: (drafts[i].sent, i))
    return [Interview(d.form_id, d.instance_id, shapes[d.form_id].xml(d), d.mistake, position,
                      dict(d.attachments))
            for position, d in enumerate(drafts[i] for i in order)]
