"""Focal-point coverage: whom of the focal-point registry the consultations reached, and the registry itself.

The registry is the `focal_points` entity list the sync copies into `entities__focal_points` (live
entities: not deleted). A valid consultation (province, ministry or donor) **consulted** focal point F
when its `focal_point` answer is F's uuid, or when the consultation registered F itself ("not in the
list": F's version 1 came from that submission). Quarantined and deleted consultations count for
nobody; a consultation form deployed before the registry has no `focal_point` column and counts nothing.
Workshop evaluations are not consultations: a delegate who only evaluated a workshop is not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from .frames import CONSULTATIONS, frame
from .model import Chart, ChartKind, Column, Kind, Section, Table, missing
from .source import Source
from .words import Words

FOCAL_POINTS = "focal_points"
FOCAL_POINT = "focal_point"
"""The consultations' question whose answer is the picked entity's uuid."""
STAKEHOLDER_TYPES = {"province": "province_consultation", "ministry": "ministry_consultation",
                     "donor": "donor_consultation"}
"""Each stakeholder type with the consultation of that group, whose name the report uses for it."""
AGENCY_CHOICES = {"province": ("province_consultation", "agency"),
                  "ministry": ("ministry_consultation", "ministry"),
                  "donor": ("donor_consultation", "organisation")}
"""Where an entity's `agency` code gets its label: the choice list the registering form picked it from."""
ENTITY_COLUMNS = ("uuid", "project_id", "label", "version", "conflict", "created_at", "updated_at",
                  "deleted_at", "creator_id", "creator_name", "synced_at")
"""The entity table's own columns (`warehouse.entities.SYSTEM_COLUMNS`); every other column is a property."""
PROPERTY_WORDS = ("full_name", "province", "stakeholder_type", "agency", "position", "phone")
"""The contract's properties, shown first and in this order; any other property follows by its name."""
COUNTS = ("focal.registered", "focal.consulted", "focal.never_consulted", "focal.conflicts")


@dataclass(frozen=True)
class Registry:
    """The live focal points with how many valid consultations each was in."""

    entities: pd.DataFrame
    """One row per live entity: every column of the entity table plus `consultations`."""
    properties: tuple[str, ...]
    unlinked: tuple[str, ...]
    """Consultation forms with no `focal_point` column: their consultations count for nobody."""


def read_registry(src: Source) -> Registry | None:
    """The registry joined to the consultations, or None when no sync brought the list in."""
    entities = src.entity_list(FOCAL_POINTS)
    if entities is None:
        return None
    created = src.entities_created_by(FOCAL_POINTS)
    links, unlinked = [], []
    for form_id in CONSULTATIONS:
        column = src.column_of(form_id, FOCAL_POINT)
        linked = src.has_column(form_id, "", column)
        answers = src.answers(form_id, *([column] if linked else []))
        if linked:
            picked = answers.dropna(subset=[column]).rename(columns={column: "uuid"})
            links.append(picked[["_instance_id", "uuid"]])
        else:
            unlinked.append(form_id)
        registered = created.merge(answers[["_instance_id"]], left_on="source_instance_id",
                                   right_on="_instance_id")
        links.append(registered[["_instance_id", "uuid"]])
    pairs = pd.concat(links, ignore_index=True).astype(str).drop_duplicates()
    per_entity = pairs.groupby("uuid")["_instance_id"].nunique()
    entities = entities.assign(consultations=[int(per_entity.get(u, 0)) for u in entities["uuid"]])
    found = [c for c in entities.columns if c not in ENTITY_COLUMNS and c != "consultations"]
    properties = (*(p for p in PROPERTY_WORDS if p in found), *(p for p in found if p not in PROPERTY_WORDS))
    return Registry(entities, properties, tuple(unlinked))


def focal_point_coverage(src: Source, w: Words) -> Section | None:
    """The section, shown only when the warehouse holds the focal-point registry."""
    registry = read_registry(src)
    if registry is None:
        return None
    return Section("focal_point_coverage", w("section.focal_point_coverage"),
                   (by_stakeholder_type(w, registry), by_province(src, w, registry)))


def _value(row: pd.Series, prop: str) -> str:
    value = row.get(prop)
    return "" if missing(value) else str(value)


def _texts(entities: pd.DataFrame, prop: str) -> pd.Series:
    """A property of every entity as text, empty where it is not set (or the list has no such property)."""
    if prop not in entities.columns:
        return pd.Series("", index=entities.index, dtype=str)
    return entities[prop].map(lambda v: "" if missing(v) else str(v))


def _counts(entities: pd.DataFrame) -> dict[str, int]:
    consulted = int((entities["consultations"] > 0).sum())
    conflicts = int(entities["conflict"].notna().sum())
    return dict(zip(COUNTS, (len(entities), consulted, len(entities) - consulted, conflicts), strict=True))


def _coverage_table(w: Words, key: str, first: Column, groups: Sequence[tuple[str, pd.DataFrame]],
                    registry: Registry, note: str | None = None) -> Table:
    rows = [{first.key: name, **_counts(mine)} for name, mine in groups]
    rows.append({first.key: w("total"), **_counts(registry.entities)})
    columns = (first, *(w.column(c) for c in COUNTS))
    chart = Chart(ChartKind.BARS, (first.key,), ("focal.registered", "focal.consulted"))
    return w.table(key, columns, frame(rows, [c.key for c in columns]), chart, note=note)


def _note(w: Words, registry: Registry) -> str:
    note = w("focal_point_coverage.note")
    if not registry.unlinked:
        return note
    forms = "; ".join(w.group(f) for f in registry.unlinked)
    return f"{note} {w('focal_point_coverage.unlinked').format(forms=forms)}"


def stakeholder_type_label(w: Words, code: str) -> str:
    if code in STAKEHOLDER_TYPES:
        return w.group(STAKEHOLDER_TYPES[code])
    return code or w("focal.type_not_given")


def by_stakeholder_type(w: Words, registry: Registry) -> Table:
    """Province, ministry, donor in that order, then any other type the registry holds, then the total."""
    entities = registry.entities
    types = _texts(entities, "stakeholder_type")
    codes = [*STAKEHOLDER_TYPES, *sorted(set(types) - set(STAKEHOLDER_TYPES))]
    groups = [(stakeholder_type_label(w, code), entities[types == code]) for code in codes]
    return _coverage_table(w, "focal_point_coverage_by_type", w.column("stakeholder_type", Kind.TEXT), groups,
                           registry, _note(w, registry))


def by_province(src: Source, w: Words, registry: Registry) -> Table:
    """Provinces with a registered focal point in the province list's order; national stakeholders
    (no province) last, then the total. Counted as the table before it, whose note says how."""
    entities = registry.entities
    provinces = _texts(entities, "province")
    order = src.province_codes()
    present = set(provinces) - {""}
    codes = [c for c in order if c in present] + sorted(present - set(order))
    groups = [(src.province_label(code) or code, entities[provinces == code]) for code in codes]
    if (provinces == "").any():
        groups.append((w("focal.national"), entities[provinces == ""]))
    return _coverage_table(w, "focal_point_coverage_by_province", w.column("province", Kind.TEXT), groups,
                           registry)


def _utc(value: object) -> datetime | None:
    """A time as naive UTC (Excel keeps no time zone); PostgreSQL gives aware times, SQLite naive UTC ones."""
    if missing(value):
        return None
    moment = pd.Timestamp(value)  # type: ignore[arg-type]
    return (moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo else moment).to_pydatetime()


def registry_sheet(src: Source, w: Words) -> Table | None:
    """Every live focal point: label, properties (province, type and agency by their names), version,
    open conflict, created and updated (UTC), and how many valid consultations it was in."""
    registry = read_registry(src)
    if registry is None:
        return None
    rows = []
    for _, entity in registry.entities.iterrows():
        kind = _value(entity, "stakeholder_type")
        row: dict[str, object] = {"focal.label": entity["label"]}
        for prop in registry.properties:
            value = _value(entity, prop)
            if prop == "province":
                value = src.province_label(value) or ""
            elif prop == "stakeholder_type":
                value = stakeholder_type_label(w, kind) if value else ""
            elif prop == "agency" and value and src.has_field(*AGENCY_CHOICES.get(kind, ("", ""))):
                value = src.label(*AGENCY_CHOICES[kind], value) or value
            row[f"property.{prop}"] = value or None
        row |= {"focal.version": int(entity["version"]),
                "focal.conflict": None if missing(entity["conflict"]) else entity["conflict"],
                "focal.created_at": _utc(entity["created_at"]), "focal.updated_at": _utc(entity["updated_at"]),
                "focal.consultations": int(entity["consultations"]), "focal.uuid": entity["uuid"]}
        rows.append(row)
    columns = (w.column("focal.label", Kind.TEXT),
               *(Column(f"property.{p}", w(f"focal.{p}") if p in PROPERTY_WORDS else p, Kind.TEXT)
                 for p in registry.properties),
               w.column("focal.version"), w.column("focal.conflict", Kind.TEXT),
               w.column("focal.created_at", Kind.DATE), w.column("focal.updated_at", Kind.DATE),
               w.column("focal.consultations"), w.column("focal.uuid", Kind.TEXT))
    return w.table("focal_point_registry", columns, frame(rows, [c.key for c in columns]),
                   note=w("focal_point_registry.note"))
