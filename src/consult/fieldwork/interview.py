"""What an enumerator's phone sends: one filled form as ODK submission XML.

The XML is shaped by the form's FormSchema alone (its fields are listed in the order of the
XForm's primary instance), so a question moving between groups never breaks the generator:
groups become nested elements, a repeat one element per entry, unanswered or non-relevant
questions empty elements, and calculations are filled as the phone would fill them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

from consult.forms.schema import Field, FormSchema

JR = "http://openrosa.org/javarosa"
ORX = "http://openrosa.org/xforms"
INSTANCE_ID = "instanceID"


@dataclass(frozen=True)
class Interview:
    """One submission as ODK Collect sends it, and whether it was filled in wrongly on purpose."""

    form_id: str
    instance_id: str
    xml: bytes
    mistake: str | None
    """The deliberate mistake (a key of `EXPECTED_RULE`), None for a correct interview."""
    submitted_order: int
    """Position in the order the enumerators send them: a duplicate comes after its original."""
    attachments: dict[str, bytes] = field(default_factory=dict)
    """File name (as the XML names it) → content, sent with the submission."""


@dataclass(frozen=True)
class Entity:
    """The `<meta><entity>` a form's entities sheet makes Collect write (entity spec 2025.1.0)."""

    dataset: str
    id: str
    label: str
    create: str
    """The `create` attribute as the phone writes it: "1" when always, "true"/"false" from a create_if."""
    update: str | None = None
    """`update` of a form with update_if ("true"/"false"); such an entity has no label and a `baseVersion`."""
    base_version: str = ""

    def xml(self) -> str:
        if self.update is not None:
            return (f"<entity dataset={quoteattr(self.dataset)} update={quoteattr(self.update)} "
                    f'baseVersion={quoteattr(self.base_version)} trunkVersion="" branchId="" id={quoteattr(self.id)}/>')
        return (f"<entity dataset={quoteattr(self.dataset)} create={quoteattr(self.create)} id={quoteattr(self.id)}>"
                f"<label>{escape(self.label)}</label></entity>")


@dataclass
class Draft:
    """An interview being filled in: answers as ODK writes them, before they become XML."""

    form_id: str
    answers: dict[str, str]
    """Field name → value in ODK's text form; absent means not answered (or not relevant)."""
    sent: datetime
    """When the phone sends it (orders the submissions)."""
    entries: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    """Repeat name → one answers dict per entry."""
    attachments: dict[str, bytes] = field(default_factory=dict)
    mistake: str | None = None
    entity: Entity | None = None
    """The entity the submission declares at its root (a consultation registering its respondent)."""
    entry_entities: dict[str, list[Entity]] = field(default_factory=dict)
    """Repeat name → the entity each entry declares (a registration's members), as `entries`."""
    original: bool = False
    """Another interview repeats this one on purpose (`duplicate_interview`): keep it correct."""

    @property
    def instance_id(self) -> str:
        return self.answers[INSTANCE_ID]


@dataclass
class _Node:
    name: str
    question: Field | None = None
    repeat: str | None = None
    children: dict[str, _Node] = field(default_factory=dict)


_CONCAT = re.compile(r"^concat\((?P<args>.*)\)$")
_CONCAT_ARG = re.compile(r"\s*(?:\$\{(?P<ref>\w+)\}|'(?P<text>[^']*)')\s*(?:,|$)")
_COUNT_WHERE = re.compile(
    r"^count\(\s*(?P<path>/[\w/]+)\[\s*(?P<field>\w+)\s*=\s*'(?P<value>[^']*)'\s*\]\s*\)$")


class SubmissionShape:
    """The instance tree of one form, read once from its FormSchema, that turns drafts into XML."""

    def __init__(self, schema: FormSchema):
        self.schema = schema
        repeats = {r.xpath: r.name for r in schema.repeats}
        self._root = _Node(schema.root)
        prefix = f"/{schema.root}/"
        for f in schema.fields:
            node, path = self._root, f"/{schema.root}"
            for part in f.xpath.removeprefix(prefix).split("/"):
                path = f"{path}/{part}"
                node = node.children.setdefault(part, _Node(part, repeat=repeats.get(path)))
            node.question = f
        attributes = {"xmlns:jr": JR, "xmlns:orx": ORX, "id": schema.form_id, "version": schema.version}
        declared = "".join(f" {name}={quoteattr(value)}" for name, value in attributes.items())
        self._open_root = f"<{schema.root}{declared}>"

    def xml(self, draft: Draft) -> bytes:
        """The submission as Collect sends it: UTF-8, every element of the instance, text escaped.

        Written as text rather than through ElementTree's serialiser, which is pure Python and
        would make the benchmarks' generator the bottleneck; `escape` is what it applies."""
        parts = ["<?xml version='1.0' encoding='UTF-8'?>\n", self._open_root]
        self._fill(parts, self._root, draft.answers, draft, draft.entity)
        parts.append(f"</{self._root.name}>")
        return "".join(parts).encode("utf-8")

    def _fill(self, parts: list[str], node: _Node, answers: dict[str, str], draft: Draft,
              entity: Entity | None) -> None:
        for child in node.children.values():
            if child.repeat:
                entities = draft.entry_entities.get(child.repeat, [])
                for i, entry in enumerate(draft.entries.get(child.repeat, [])):
                    parts.append(f"<{child.name}>")
                    self._fill(parts, child, entry, draft, entities[i] if i < len(entities) else None)
                    parts.append(f"</{child.name}>")
            elif child.question is not None and child.question.kind == "entity" and entity is not None:
                parts.append(entity.xml())
            elif child.question is not None and not child.children:
                value = answers.get(child.question.name)
                if value is None and child.question.calculation:
                    value = _calculated(child.question.calculation, draft)
                parts.append(f"<{child.name}>{escape(value)}</{child.name}>" if value else f"<{child.name}/>")
            else:
                parts.append(f"<{child.name}>")
                self._fill(parts, child, answers, draft, entity)
                parts.append(f"</{child.name}>")


def _calculated(calculation: str, draft: Draft) -> str | None:
    """What the phone computes for the calculations these forms use (instance names, lead counts)."""
    if match := _COUNT_WHERE.match(calculation):
        entries = draft.entries.get(match["path"].rsplit("/", 1)[-1], [])
        return str(sum(entry.get(match["field"]) == match["value"] for entry in entries))
    if match := _CONCAT.match(calculation):
        parts = [m["text"] if m["ref"] is None else draft.answers.get(m["ref"], "")
                 for m in _CONCAT_ARG.finditer(match["args"])]
        return "".join(parts)
    return None
