"""XLSForm → XForm + FormSchema, with pyxform doing the conversion and ODK Validate the checking."""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consult.forms.media import referenced_media
from consult.forms.schema import (
    ROOT_TABLE,
    odata_name,
    Choice,
    ChoiceList,
    DataType,
    EntityDeclaration,
    Field,
    FormSchema,
    Labels,
    Repeat,
)

KIND_BY_PYXFORM_TYPE = {
    "select one": "select_one",
    "select all that apply": "select_multiple",
    "select one external": "select_one",
    "photo": "image",
    "int": "integer",
    "datetime": "dateTime",
    "gps": "geopoint",
}
"""pyxform's spelling of a type → the XLSForm name this project reports (aliases resolved)."""

DATA_TYPE_BY_BIND_TYPE = {
    "int": DataType.INTEGER,
    "decimal": DataType.DECIMAL,
    "date": DataType.DATE,
    "dateTime": DataType.DATETIME,
    "time": DataType.TIME,
    "geopoint": DataType.GEOPOINT,
    "geotrace": DataType.GEOTRACE,
    "geoshape": DataType.GEOSHAPE,
    "binary": DataType.BINARY,
}
"""Storage follows the XForm's bind type, whatever the XLSForm type was called (`int`, `range`,
`datetime`, `gps`, `calculate` with `bind::type`); every other bind type is text."""
DATA_TYPE_BY_KIND = {
    "select_one": DataType.SELECT_ONE,
    "select_multiple": DataType.SELECT_MULTIPLE,
    "note": DataType.NONE,
}
"""Kinds whose storage the bind type does not say: Central serves a note as null."""

METADATA_KINDS = {"start", "end", "today", "deviceid", "username", "phonenumber", "email",
                  "simserial", "subscriberid", "audit"}

_LANGUAGE_CODE = re.compile(r"\(([A-Za-z-]+)\)\s*$")


def language_code(language: str) -> str:
    """`Tiếng Việt (vi)` → `vi`: forms name languages as ODK wants, code uses the code."""
    match = _LANGUAGE_CODE.search(language)
    return match.group(1).lower() if match else language.strip().lower()


@dataclass(frozen=True)
class CompiledForm:
    xform: str
    schema: FormSchema
    warnings: list[str]


def load_converters() -> None:
    """Import pyxform and openpyxl up front: they are imported lazily (to keep `consult --help`
    instant), and first imports racing in the lint thread pool can deadlock."""
    import openpyxl  # noqa: F401
    import pyxform.builder  # noqa: F401
    import pyxform.validators.odk_validate  # noqa: F401
    import pyxform.xls2json  # noqa: F401
    import pyxform.xls2json_backends  # noqa: F401


def compile_xlsform(path: Path, media_dir: Path, validate: bool = True) -> CompiledForm:
    """Convert one XLSForm; raises pyxform's errors (PyXFormError, ODKValidateError) unchanged."""
    from pyxform.builder import create_survey_element_from_dict
    from pyxform.xls2json import workbook_to_json
    from pyxform.xls2json_backends import get_xlsform

    warnings: list[str] = []
    workbook = get_xlsform(xlsform=str(path))
    data = workbook_to_json(
        workbook_dict=workbook,
        fallback_form_name=workbook.fallback_form_name,
        warnings=warnings,
    )
    xform = create_survey_element_from_dict(data).to_xml(
        validate=validate, pretty_print=True, warnings=warnings
    )
    schema = schema_from_pyxform(data, source=path.name, xform=xform, media_dir=media_dir)
    return CompiledForm(xform=xform, schema=schema, warnings=warnings)


def _labels(value: Any, languages: dict[str, str]) -> Labels:
    if not value:
        return {}
    if isinstance(value, str):
        return {"default": value}
    labels = {}
    for name, text in value.items():
        code = language_code(name)
        languages.setdefault(code, name)
        labels[code] = text
    return labels


def read_choice_file(path: Path, languages: dict[str, str], default_language: str) -> ChoiceList:
    """A CSV attached for select_*_from_file: `name`, `label` in the default language and
    `label_<code>` in the others (ODK turns CSV columns into XML elements, so no `label::…`
    headers); the other columns are properties that choice filters test."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = {code: "label" if code == default_language else f"label_{code}" for code in languages}
    choices = []
    for row in rows:
        labels = {code: row[column] for code, column in columns.items() if row.get(column)}
        properties = {k: v or "" for k, v in row.items() if k and k != "name" and k not in columns.values()}
        choices.append(Choice(name=row["name"], labels=labels, properties=properties))
    return ChoiceList(name=path.name, source=path.name, choices=choices)


def _data_type(question: dict, kind: str) -> DataType:
    from pyxform.question_type_dictionary import QUESTION_TYPE_DICT

    if kind in DATA_TYPE_BY_KIND:
        return DATA_TYPE_BY_KIND[kind]
    bind_type = (question.get("bind") or {}).get("type") \
        or (QUESTION_TYPE_DICT.get(question["type"], {}).get("bind") or {}).get("type")
    if bind_type is None:
        return DataType.NONE
    return DATA_TYPE_BY_BIND_TYPE.get(bind_type, DataType.STRING)


MAX_COLUMN = 54
"""63 (PostgreSQL's identifier limit) less room for a derived suffix such as `_accuracy`."""
DERIVED_COLUMNS = {DataType.GEOPOINT: ("_lon", "_lat", "_alt", "_accuracy"),
                   DataType.GEOTRACE: ("_points",), DataType.GEOSHAPE: ("_points",)}
"""Columns a field adds beside its own: the four parts of a point, a line's or polygon's point count."""
KEY_COLUMNS = ("_instance_id", "_row_id", "_parent_row_id", "_position", "value", "instance_name")
"""Names the layout's own columns take in every table (`instance_name`: meta/instanceName's column)."""


def _unique(candidates: list[str], taken: set[str], width: int = MAX_COLUMN) -> str:
    """The first candidate free case-insensitively, else the last one numbered (`name_2`, …)."""
    cut = [c.lower()[:width] for c in candidates]
    for candidate in cut:
        if candidate not in taken:
            return candidate
    number = 2
    while (numbered := f"{cut[-1][:width - 4]}_{number}") in taken:
        number += 1
    return numbered


def _storage_names(fields: list[Field], repeats: list[Repeat], root: str) -> tuple[list[Field], list[Repeat]]:
    """Keys, columns and table keys that never collide, whatever names the form uses.

    They start from Central's OData names (so an analyst finds the name Central shows), lower-case
    (so no query needs quoting), and grow the group path or a number only where two would meet: in
    one table for columns (derived columns included), in the whole form for table keys."""
    counts: dict[str, int] = {}
    for f in fields:
        counts[f.name] = counts.get(f.name, 0) + 1
    table_keys: set[str] = {""}
    named_repeats = []
    for r in repeats:
        path = [odata_name(p) for p in r.xpath.removeprefix(f"/{root}/").split("/")]
        key = _unique([path[-1], "_".join(path)], table_keys, 63)
        table_keys.add(key)
        named_repeats.append(r.model_copy(update={"key": key}))
    key_of_table = {ROOT_TABLE: ""} | {r.table: r.key for r in named_repeats}
    taken: dict[str, set[str]] = {}
    named_fields = []
    for f in fields:
        columns = taken.setdefault(f.table, set(KEY_COLUMNS))
        suffixes = DERIVED_COLUMNS.get(f.data_type, ())
        local = f.odata_path
        if f.group_path[:1] == ["meta"] and f.name == "instanceName":
            column = "instance_name"
        else:
            free = columns | {c[: -len(s)] for c in columns for s in suffixes if c.endswith(s)}
            shared = counts[f.name] > 1
            column = _unique(["_".join(local)] if shared else [local[-1], "_".join(local)], free)
            columns.add(column)
            columns.update(column + s for s in suffixes)
        update: dict = {"column": column,
                        "key": f.name if counts[f.name] == 1 else f.xpath.removeprefix(f"/{root}/")}
        if f.data_type is DataType.SELECT_MULTIPLE:
            owner = key_of_table[f.table]
            choice_key = _unique([column, f"{owner}_{column}" if owner else column, "_".join(local)],
                                 table_keys, 63)
            table_keys.add(choice_key)
            update["choice_table"] = choice_key
        named_fields.append(f.model_copy(update=update))
    return named_fields, named_repeats


def _entity_declaration(node: dict, repeat: str | None) -> EntityDeclaration:
    """pyxform writes the entities sheet as attributes of `meta/entity`: `dataset`, and `create` or
    `update` whose bind calculates the sheet's `create_if` or `update_if`."""
    attributes = {c["name"]: c for c in node.get("children", []) if c.get("type") == "attribute"}

    def condition(name: str) -> str | None:
        return ((attributes.get(name) or {}).get("bind") or {}).get("calculate") or None

    return EntityDeclaration(list_name=str(attributes["dataset"]["value"]), creates="create" in attributes,
                             create_if=condition("create"), updates="update" in attributes,
                             update_if=condition("update"), repeat=repeat)


def schema_from_pyxform(data: dict, source: str, xform: str, media_dir: Path) -> FormSchema:
    languages: dict[str, str] = {}
    fields: list[Field] = []
    repeats: list[Repeat] = []
    choice_lists: dict[str, ChoiceList] = {}
    media: list[str] = []
    entities: list[EntityDeclaration] = []
    root = data["name"]

    for list_name, choices in (data.get("choices") or {}).items():
        choice_lists[list_name] = ChoiceList(
            name=list_name,
            choices=[
                Choice(
                    name=str(c["name"]),
                    labels=_labels(c.get("label"), languages),
                    properties={k: str(v) for k, v in c.items() if k not in ("name", "label")},
                )
                for c in choices
            ],
        )

    def walk(node: dict, xpath: str, table: str, odata_path: list[str], group_path: list[str],
             repeat: str | None, inherited: list[str]) -> None:
        for child in node.get("children", []):
            name, kind = child["name"], KIND_BY_PYXFORM_TYPE.get(child["type"], child["type"])
            child_xpath = f"{xpath}/{name}"
            bind = child.get("bind") or {}
            relevant = bind.get("relevant") or None
            if kind == "loop":
                scope = inherited + [relevant] if relevant else inherited
                for column in child.get("columns", []):
                    walk({"children": child.get("children", [])}, f"{child_xpath}/{column['name']}", table,
                         odata_path + [odata_name(name), odata_name(column["name"])],
                         group_path + [name, column["name"]], repeat, scope)
                continue
            if kind in ("group", "repeat"):
                scope = inherited + [relevant] if relevant else inherited
                if kind == "repeat":
                    child_table = f"{table}.{'.'.join([*odata_path, odata_name(name)])}"
                    repeats.append(Repeat(
                        name=name, xpath=child_xpath, table=child_table, parent_table=table,
                        group_path=group_path, labels=_labels(child.get("label"), languages),
                        relevant=relevant, repeat_count=(child.get("control") or {}).get("jr:count"),
                        odata_path=odata_path + [odata_name(name)],
                    ))
                    walk(child, child_xpath, child_table, [], group_path + [name], child_xpath, scope)
                else:
                    walk(child, child_xpath, table, odata_path + [odata_name(name)], group_path + [name],
                         repeat, scope)
                continue
            if kind == "entity":
                entities.append(_entity_declaration(child, repeat))
            itemset = child.get("itemset")
            if itemset and itemset.endswith((".csv", ".xml", ".geojson")) and itemset not in media:
                media.append(itemset)
            fields.append(Field(
                name=name,
                kind=kind,
                data_type=_data_type(child, kind),
                xpath=child_xpath,
                table=table,
                odata_path=odata_path + [odata_name(name)],
                group_path=group_path,
                repeat=repeat,
                labels=_labels(child.get("label"), languages),
                hints=_labels(child.get("hint"), languages),
                required=str(bind.get("required", "")).lower() in ("yes", "true", "true()"),
                relevant=relevant,
                inherited_relevant=inherited,
                constraint=bind.get("constraint") or None,
                constraint_messages=_labels(bind.get("jr:constraintMsg"), languages),
                choice_list=itemset,
                choice_filter=child.get("choice_filter") or None,
                calculation=bind.get("calculate") or None,
                appearance=(child.get("control") or {}).get("appearance"),
                metadata=kind in METADATA_KINDS or group_path[:1] == ["meta"],
                entity_property=bind.get("entities:saveto") or None,
            ))

    walk(data, f"/{root}", ROOT_TABLE, [], [], None, [])
    fields, repeats = _storage_names(fields, repeats, root)
    default_language = data.get("default_language") or "default"
    for name in media:
        if name.endswith(".csv") and (media_dir / name).is_file():
            choice_lists[name] = read_choice_file(media_dir / name, languages, language_code(default_language))
    return FormSchema(
        form_id=data["id_string"],
        version=str(data.get("version") or ""),
        title=data.get("title") or data["id_string"],
        default_language=language_code(default_language),
        languages=languages,
        root=root,
        instance_name=data.get("instance_name"),
        fields=fields,
        repeats=repeats,
        choice_lists=choice_lists,
        media=referenced_media(xform),
        entities=entities,
        source=source,
        xform_sha256=hashlib.sha256(xform.encode("utf-8")).hexdigest(),
    )
