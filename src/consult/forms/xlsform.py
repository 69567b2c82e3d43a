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
    Choice,
    ChoiceList,
    DataType,
    Field,
    FormSchema,
    Labels,
    Repeat,
)

KIND_BY_PYXFORM_TYPE = {
    "select one": "select_one",
    "select all that apply": "select_multiple",
    "photo": "image",
}

DATA_TYPE_BY_KIND = {
    "integer": DataType.INTEGER,
    "decimal": DataType.DECIMAL,
    "range": DataType.DECIMAL,
    "date": DataType.DATE,
    "today": DataType.DATE,
    "dateTime": DataType.DATETIME,
    "start": DataType.DATETIME,
    "end": DataType.DATETIME,
    "time": DataType.TIME,
    "geopoint": DataType.GEOPOINT,
    "select_one": DataType.SELECT_ONE,
    "select_multiple": DataType.SELECT_MULTIPLE,
    "image": DataType.BINARY,
    "audio": DataType.BINARY,
    "video": DataType.BINARY,
    "file": DataType.BINARY,
    "note": DataType.NONE,
}

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


def schema_from_pyxform(data: dict, source: str, xform: str, media_dir: Path) -> FormSchema:
    languages: dict[str, str] = {}
    fields: list[Field] = []
    repeats: list[Repeat] = []
    choice_lists: dict[str, ChoiceList] = {}
    media: list[str] = []
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
            if kind in ("group", "repeat"):
                scope = inherited + [relevant] if relevant else inherited
                if kind == "repeat":
                    child_table = ".".join([ROOT_TABLE, *group_path, name])
                    repeats.append(Repeat(
                        name=name, xpath=child_xpath, table=child_table, parent_table=table,
                        group_path=group_path, labels=_labels(child.get("label"), languages),
                        relevant=relevant, repeat_count=(child.get("control") or {}).get("jr:count"),
                    ))
                    walk(child, child_xpath, child_table, [], group_path + [name], child_xpath, scope)
                else:
                    walk(child, child_xpath, table, odata_path + [name], group_path + [name], repeat, scope)
                continue
            itemset = child.get("itemset")
            if itemset and itemset.endswith((".csv", ".xml", ".geojson")) and itemset not in media:
                media.append(itemset)
            fields.append(Field(
                name=name,
                kind=kind,
                data_type=DATA_TYPE_BY_KIND.get(kind, DataType.STRING),
                xpath=child_xpath,
                table=table,
                odata_path=odata_path + [name],
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
            ))

    walk(data, f"/{root}", ROOT_TABLE, [], [], None, [])
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
        source=source,
        xform_sha256=hashlib.sha256(xform.encode("utf-8")).hexdigest(),
    )
