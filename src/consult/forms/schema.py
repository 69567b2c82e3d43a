"""FormSchema: what one XLSForm asks, in the shape every later step needs.

The reporting database derives its tables and columns from it, the validation suites
their expectations, Central pulls their OData paths, and reports their labels, so it
names each field by XPath, by OData path and table, by storage type and by label in
every language of the form.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field as PydanticField, model_validator

ROOT_TABLE = "Submissions"
_NOT_ODATA = re.compile(r"[^A-Za-z0-9_]+")


def odata_name(name: str) -> str:
    """The name Central's OData gives an XML name (contract step 26): each run of characters outside
    `[A-Za-z0-9_]` becomes one `_`, and a name not starting with an ASCII letter or `_` gets a leading `_`
    (`tên` → `t_n`, `đường` → `__ng`, `x-y.z` → `x_y_z`)."""
    lead = "" if name[:1] == "_" or (name[:1].isascii() and name[:1].isalpha()) else "_"
    return lead + _NOT_ODATA.sub("_", name)


class DataType(StrEnum):
    """How a value is stored, not how it is asked."""

    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    GEOPOINT = "geopoint"
    GEOTRACE = "geotrace"
    GEOSHAPE = "geoshape"
    SELECT_ONE = "select_one"
    SELECT_MULTIPLE = "select_multiple"
    BINARY = "binary"
    NONE = "none"


Labels = dict[str, str]
"""Text by language code (`vi`, `en`)."""


class Choice(BaseModel):
    name: str
    labels: Labels
    properties: dict[str, str] = PydanticField(default_factory=dict)
    """Extra columns of the choice (e.g. `workshop`, `pilot`), which choice filters test."""


class ChoiceList(BaseModel):
    name: str
    source: str | None = None
    """The media file the list comes from (`provinces.csv`), or None for the choices sheet."""
    choices: list[Choice]

    def names(self) -> list[str]:
        return [c.name for c in self.choices]

    def label(self, name: str, lang: str) -> str | None:
        for choice in self.choices:
            if choice.name == name:
                return choice.labels.get(lang)
        return None


class Field(BaseModel):
    """One question, calculation or metadata value of the form."""

    name: str
    """The XML name, as written in the XLSForm (`q-hyphen`, `tên`)."""
    key: str = ""
    """Unique in the form: the name, or the path from the root (`g2/dup`) when two fields share it."""
    column: str = ""
    """Its column in the reporting database: the OData name, lower-case, unique in its table
    (case-insensitively, derived columns such as a geopoint's `_lat` included)."""
    kind: str
    """The XLSForm type without its list (`text`, `select_one`, `start`, `image`, ...)."""
    data_type: DataType
    xpath: str
    table: str
    """The OData entity set whose rows hold this value (`Submissions`, `Submissions.members`)."""
    odata_path: list[str]
    """Keys from the table's row to the value: groups become nested objects in OData."""
    group_path: list[str]
    """Names of the enclosing groups and repeats, outermost first."""
    repeat: str | None = None
    """XPath of the innermost enclosing repeat."""
    labels: Labels = PydanticField(default_factory=dict)
    hints: Labels = PydanticField(default_factory=dict)
    required: bool = False
    relevant: str | None = None
    inherited_relevant: list[str] = PydanticField(default_factory=list)
    """Relevance conditions of the enclosing groups and repeats: the field is asked only when all hold."""
    constraint: str | None = None
    constraint_messages: Labels = PydanticField(default_factory=dict)
    choice_list: str | None = None
    choice_filter: str | None = None
    calculation: str | None = None
    appearance: str | None = None
    metadata: bool = False
    """Filled by the device (start, end, instanceID...), never by the enumerator."""
    entity_property: str | None = None
    """The entity-list property this answer is saved to (`save_to`): a record about a person or a
    thing kept in the list, which reports count but do not quote."""
    choice_table: str | None = None
    """For a select_multiple: the key of its choices table in the layout (one row per chosen option)."""

    @model_validator(mode="after")
    def _default_names(self) -> Field:
        """Schemas built before names were derived: the name was both key and column."""
        self.key = self.key or self.name
        self.column = self.column or self.name
        if self.data_type is DataType.SELECT_MULTIPLE and self.choice_table is None:
            self.choice_table = self.column
        return self

    @property
    def always_asked(self) -> bool:
        return self.relevant is None and not self.inherited_relevant

    @property
    def stores_data(self) -> bool:
        return self.data_type is not DataType.NONE


class Repeat(BaseModel):
    name: str
    xpath: str
    table: str
    """Central's OData entity set: `Submissions.` and the OData names of the path, groups included."""
    parent_table: str
    group_path: list[str]
    labels: Labels = PydanticField(default_factory=dict)
    relevant: str | None = None
    repeat_count: str | None = None
    key: str = ""
    """Key of its table in the layout, unique in the form (case-insensitively): the OData name,
    lower-case, or a longer one when two repeats or select_multiples would meet."""
    odata_path: list[str] = PydanticField(default_factory=list)
    """Keys from the parent table's `$expand` row to this repeat's entries (groups become objects)."""

    @model_validator(mode="after")
    def _default_names(self) -> Repeat:
        self.key = self.key or self.name
        self.odata_path = self.odata_path or [self.name]
        return self


class EntityDeclaration(BaseModel):
    """What a submission may do to an entity list (the form's `entities` sheet): create an entity
    when `create_if` holds (always when there is none), update one when `update_if` holds."""

    list_name: str
    creates: bool = False
    create_if: str | None = None
    updates: bool = False
    update_if: str | None = None
    repeat: str | None = None
    """The xpath of the repeat whose entries each declare one; None: one per submission."""


class FormSchema(BaseModel):
    form_id: str
    version: str
    title: str
    default_language: str
    languages: dict[str, str]
    """Language code to the form's language name: `{"vi": "Tiếng Việt (vi)", ...}`."""
    root: str
    """Name of the instance's root element (`data`)."""
    instance_name: str | None = None
    fields: list[Field]
    repeats: list[Repeat] = PydanticField(default_factory=list)
    choice_lists: dict[str, ChoiceList] = PydanticField(default_factory=dict)
    media: list[str] = PydanticField(default_factory=list)
    """Files the form declares and Central must hold before publishing."""
    entities: list[EntityDeclaration] = PydanticField(default_factory=list)
    source: str
    """File name of the XLSForm."""
    xform_sha256: str
    profile: str = "odk"
    """The house rules, domain rules and findings the form opted into (`isg`), or `odk`: only what
    pyxform, ODK Validate and the pipeline itself need. Set at build from `forms/consult.toml`."""

    def field(self, key: str) -> Field:
        """The field with this key, or else with this name (the same thing when names are unique)."""
        for f in self.fields:
            if f.key == key:
                return f
        for f in self.fields:
            if f.name == key:
                return f
        raise KeyError(f"{self.form_id} has no field {key!r}")

    def fields_in(self, table: str) -> list[Field]:
        return [f for f in self.fields if f.table == table and f.stores_data]

    @property
    def tables(self) -> list[str]:
        return [ROOT_TABLE, *(r.table for r in self.repeats)]

    def choices_for(self, field: Field | str) -> ChoiceList | None:
        f = self.field(field) if isinstance(field, str) else field
        return self.choice_lists.get(f.choice_list) if f.choice_list else None

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=1) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> FormSchema:
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
