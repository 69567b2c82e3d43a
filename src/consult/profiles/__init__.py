"""Profiles: what a family of forms adds to the generic pipeline, keyed by form id.

The core (forms/, central/, warehouse/, validate/) carries any XLSForm and holds every form
to the checks it generates from the form itself (required, choices, constraints, types,
relevance). A form opts into more by naming a profile (`FormSchema.profile`, set at build);
the profile then says, form by form, which hand-written rules, duplicate keys and date
period its forms are held to. A form the profile does not list gets only `Profile.unlisted`
(for ISG: nothing, see `consult.profiles.isg`), so a new form never inherits rules written
for another form's questions.

Profiles load on first lookup; neither this package nor a profile loads pandas or GX on import
(the warehouse reads duplicate keys through it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import import_module
from types import MappingProxyType
from typing import TYPE_CHECKING

from consult.forms.schema import FormSchema
from consult.validate.fields import require_fields

if TYPE_CHECKING:
    from consult.validate.duplicates import DuplicateRule
    from consult.validate.page import PageRule

ODK = "odk"
"""The profile of a form that opted into nothing: only the generated checks."""


@dataclass(frozen=True)
class Period:
    """Every date question of the form lies between `start` and the validation day
    (for the bounds the question's own constraint does not already state)."""

    start: date
    rule: str = "date_period"
    """The rule name its failures carry."""


@dataclass(frozen=True)
class FormRules:
    """What a profile adds to one form's validation."""

    rules: tuple[PageRule, ...] = ()
    """Hand-written page rules (e.g. `consult.validate.rules.OneLead`)."""
    duplicates: tuple[DuplicateRule, ...] = ()
    """Keys that make two submissions one interview, judged form-wide after each sync pass."""
    period: Period | None = None

    def field_names(self) -> list[tuple[str, frozenset[str]]]:
        """(rule name, the fields and repeats it reads) of each rule."""
        return ([(r.name, frozenset(r.fields)) for r in self.rules]
                + [(d.name, frozenset(d.columns)) for d in self.duplicates])


NOTHING = FormRules()


@dataclass(frozen=True)
class Profile:
    name: str
    forms: Mapping[str, FormRules] = field(default_factory=dict)
    """Form id → what the form is held to beyond the generated checks."""
    unlisted: FormRules = NOTHING
    """What a form of this profile that `forms` does not list gets. Rules and duplicate keys
    name a form's questions, so only a period may apply to forms nobody has read."""

    def __post_init__(self) -> None:
        if self.unlisted.rules or self.unlisted.duplicates:
            raise ValueError(f"profile {self.name}: rules and duplicate keys name a form's questions, "
                             "so they belong to a listed form, not to `unlisted`")
        object.__setattr__(self, "forms", MappingProxyType(dict(self.forms)))

    def rules_for(self, schema: FormSchema) -> FormRules:
        """The form's additions, refused when one names a field or repeat the form lacks."""
        rules = self.forms.get(schema.form_id, self.unlisted)
        for rule, fields in rules.field_names():
            require_fields(schema, f"{rule} of profile {self.name}", fields)
        return rules


_BUILT_IN = {ODK: None, "isg": "consult.profiles.isg"}
"""Profile name → the module defining `PROFILE` (None: a profile that adds nothing)."""
_loaded: dict[str, Profile] = {}


def profile(name: str) -> Profile:
    """The profile of that name; an unknown name is an error, never a silent 'nothing'."""
    if name not in _loaded:
        if name not in _BUILT_IN:
            raise ValueError(f"unknown profile {name!r}: consult knows {', '.join(sorted(_BUILT_IN))}")
        module = _BUILT_IN[name]
        _loaded[name] = import_module(module).PROFILE if module else Profile(name)
    return _loaded[name]


def rules_for(schema: FormSchema) -> FormRules:
    """What the form's profile adds to its validation (checked against the form's fields)."""
    return profile(schema.profile).rules_for(schema)


def profile_names() -> list[str]:
    return sorted(_BUILT_IN)
