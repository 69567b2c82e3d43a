"""Checks an XLSForm before it reaches enumerators, naming the file, sheet, row and column.

Central accepts forms and submissions that break their own rules, so what is not caught
here reaches the field. pyxform and ODK Validate catch what makes a form unusable; the
checks below catch what makes it wrong for this project: a missing translation, a
constraint with no message, a choice list nobody uses, a version that did not move, a
name that would make a bad SQL column or OData property.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from consult.forms.schema import FormSchema
from consult.forms.xlsform import CompiledForm, compile_xlsform, language_code

LANGUAGES = ("Tiếng Việt (vi)", "English (en)")
DEFAULT_LANGUAGE = LANGUAGES[0]
TRANSLATED = ("label", "hint", "constraint_message", "required_message")
ALIASES = {"jr:constraintmsg": "constraint_message", "jr:requiredmsg": "required_message"}
UNLABELLED_TYPES = {"start", "end", "today", "deviceid", "username", "phonenumber", "email", "simserial",
                    "subscriberid", "audit", "calculate", "hidden", "begin_group", "begin_repeat",
                    "end_group", "end_repeat", "start-geopoint", "xml-external", "csv-external"}
SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
SAFE_CHOICE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
VERSION = re.compile(r"^\d{10}$")
REFERENCE = re.compile(r"\$\{([^}]*)\}")
EXPRESSION_COLUMNS = ("relevant", "constraint", "calculation", "choice_filter", "repeat_count",
                      "default", "required", "trigger")
SQL_RESERVED = frozenset("""
all analyse analyze and any array as asc asymmetric both by case cast check collate column constraint
create current_catalog current_date current_role current_time current_timestamp current_user default
deferrable desc distinct do else end except false fetch for foreign from grant group having in initially
intersect into lateral leading limit localtime localtimestamp not null offset on only or order placing
primary references returning select session_user some symmetric table then to trailing true union unique
user using variadic when where window with
""".split())
XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
MEDIA_LABELS = ("label", *(f"label_{language_code(lang)}" for lang in LANGUAGES[1:]))
"""Label columns of a choice CSV: `label` in the default language, `label_<code>` in the others."""
XPATH_WORDS = frozenset({"and", "or", "div", "mod", "true", "false", "not", "current", "position"})


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class FormIssue:
    file: str
    message: str
    sheet: str | None = None
    row: int | None = None
    column: str | None = None
    """The column's header (`label::English (en)`), which a person finds faster than a letter."""
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = [self.file]
        if self.sheet:
            where.append(f"sheet {self.sheet}")
        if self.row:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.severity}: {self.message}"


@dataclass
class FormReport:
    path: Path
    issues: list[FormIssue] = field(default_factory=list)
    compiled: CompiledForm | None = None

    @property
    def ok(self) -> bool:
        return self.compiled is not None and not any(i.severity is Severity.ERROR for i in self.issues)


@dataclass
class Sheet:
    name: str
    headers: list[str]
    rows: list[tuple[int, dict[str, str]]]

    def has(self, column: str) -> bool:
        return column in self.headers


def _canonical(header: str) -> str:
    base, sep, language = header.strip().partition("::")
    base = base.strip().lower().replace(" ", "_")
    base = ALIASES.get(base, base)
    return f"{base}::{language.strip()}" if sep else base


def read_sheets(path: Path) -> dict[str, Sheet]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    sheets = {}
    try:
        for ws in workbook.worksheets:
            rows = ws.iter_rows(values_only=True)
            header_row = next(rows, None) or ()
            headers = [_canonical(str(h)) if h is not None else "" for h in header_row]
            body = []
            for number, values in enumerate(rows, start=2):
                cells = {h: str(v).strip() for h, v in zip(headers, values) if h and v is not None
                         and str(v).strip()}
                if cells:
                    body.append((number, cells))
            sheets[ws.title.strip().lower()] = Sheet(ws.title, headers, body)
    finally:
        workbook.close()
    return sheets


class _Checker:
    def __init__(self, path: Path, media_dir: Path):
        self.path, self.media_dir = path, media_dir
        self.file = str(path)
        self.issues: list[FormIssue] = []

    def error(self, message: str, sheet: str | None = None, row: int | None = None,
              column: str | None = None, severity: Severity = Severity.ERROR) -> None:
        self.issues.append(FormIssue(self.file, message, sheet, row, column, severity))

    # -- columns and translations
    def check_translated_columns(self, sheet: Sheet) -> None:
        for header in sheet.headers:
            base, _, language = header.partition("::")
            if base in TRANSLATED and not language:
                self.error(f"column '{header}' has no language: use "
                           + " and ".join(f"'{base}::{lang}'" for lang in LANGUAGES), sheet.name, 1, header)
            elif base in TRANSLATED and language not in LANGUAGES:
                self.error(f"unknown language '{language}' (the forms use {', '.join(LANGUAGES)})",
                           sheet.name, 1, header)
        for base in TRANSLATED:
            present = [lang for lang in LANGUAGES if sheet.has(f"{base}::{lang}")]
            for lang in LANGUAGES:
                if present and lang not in present:
                    self.error(f"'{base}' is translated into {', '.join(present)} but has no column "
                               f"'{base}::{lang}'", sheet.name, 1, f"{base}::{lang}")

    def check_row_translations(self, sheet: Sheet, number: int, cells: dict[str, str],
                               label_required: bool) -> None:
        for base in TRANSLATED:
            given = [lang for lang in LANGUAGES if cells.get(f"{base}::{lang}")]
            must = base == "label" and label_required
            if given or must:
                for lang in LANGUAGES:
                    if lang not in given:
                        self.error(f"{base} missing in {lang}", sheet.name, number, f"{base}::{lang}")
        if cells.get("constraint"):
            for lang in LANGUAGES:
                if not cells.get(f"constraint_message::{lang}"):
                    self.error(f"constraint '{cells['constraint']}' has no message in {lang}",
                               sheet.name, number, f"constraint_message::{lang}")

    # -- the survey sheet
    def check_survey(self, survey: Sheet, choices: Sheet | None) -> tuple[set[str], dict[str, int]]:
        self.check_translated_columns(survey)
        names: dict[str, int] = {}
        used_lists: set[str] = set()
        list_columns = self.choice_columns(choices)
        for number, cells in survey.rows:
            type_ = cells.get("type", "")
            words = type_.split()
            kind = "_".join(words[:2]) if words[:1] in (["begin"], ["end"]) else (words[0] if words else "")
            name = cells.get("name", "")
            if not type_:
                self.error("row has content but no type", survey.name, number, "type")
                continue
            if kind in ("end_group", "end_repeat"):
                continue
            if not name:
                self.error("question has no name", survey.name, number, "name")
            else:
                self.check_name(name, survey.name, number)
                if name.lower() in names:
                    self.error(f"name '{name}' is already used on row {names[name.lower()]}: names become "
                               "database columns and must be unique in the form", survey.name, number, "name")
                names.setdefault(name.lower(), number)
            self.check_row_translations(survey, number, cells, label_required=kind not in UNLABELLED_TYPES)
            if kind in ("select_one", "select_multiple", "rank") and len(words) >= 2:
                list_name = words[1]
                used_lists.add(list_name)
                if list_name not in list_columns:
                    self.error(f"choice list '{list_name}' is not defined in the choices sheet",
                               survey.name, number, "type")
                self.check_choice_filter(cells, list_columns.get(list_name), survey.name, number)
            elif kind in ("select_one_from_file", "select_multiple_from_file") and len(words) >= 2:
                self.check_choice_filter(cells, self.check_media(words[1], survey.name, number),
                                         survey.name, number)
        for number, cells in survey.rows:
            for column in (*EXPRESSION_COLUMNS, *(h for h in survey.headers if h.startswith(("label::", "hint::")))):
                for reference in REFERENCE.findall(cells.get(column, "")):
                    if reference.lower() not in names:
                        self.error(f"${{{reference}}} refers to no question of this form",
                                   survey.name, number, column)
        return used_lists, names

    def check_name(self, name: str, sheet: str, row: int) -> None:
        if not SAFE_NAME.match(name):
            self.error(f"name '{name}' is not safe for SQL and OData: use lower-case letters, digits and "
                       "'_', starting with a letter, at most 63 characters", sheet, row, "name")
        elif name in SQL_RESERVED:
            self.error(f"name '{name}' is an SQL reserved word; choose another name (e.g. '{name}_time')",
                       sheet, row, "name")

    def check_choice_filter(self, cells: dict[str, str], columns: set[str] | None, sheet: str, row: int) -> None:
        expression = cells.get("choice_filter", "")
        if not expression or columns is None:
            return
        bare = re.sub(r"\$\{[^}]*\}|'[^']*'|\"[^\"]*\"", " ", expression)
        for token in re.findall(r"(?<![\w/.$:@-])([A-Za-z_][\w-]*)\b(?!\s*\()", bare):
            if token not in XPATH_WORDS and token not in columns:
                self.error(f"choice_filter uses '{token}', which is not a column of the choice list "
                           f"(columns: {', '.join(sorted(columns))})", sheet, row, "choice_filter")

    def check_media(self, filename: str, sheet: str, row: int) -> set[str] | None:
        """The CSV behind a select_*_from_file: ODK makes each column an XML element, so every
        header must be an XML name; labels come as `label` (default language) and `label_<code>`."""
        path = self.media_dir / filename
        if not path.is_file():
            self.error(f"media file '{filename}' not found in {self.media_dir}", sheet, row, "type")
            return None
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or [])
            for column in reader.fieldnames or []:
                if not XML_NAME.match(column):
                    self.error(f"column '{column}' is not an XML name: ODK's engines turn CSV columns into "
                               "elements and refuse the form (use e.g. 'label_en')", filename, 1, column)
            needed = ("name", *MEDIA_LABELS)
            for column in needed:
                if column not in columns:
                    self.error(f"column '{column}' missing", filename, 1, column)
            seen = set()
            for number, record in enumerate(reader, start=2):
                for column in needed:
                    if column in columns and not (record.get(column) or "").strip():
                        self.error(f"empty '{column}'", filename, number, column)
                if record.get("name") in seen:
                    self.error(f"choice '{record['name']}' appears twice", filename, number, "name")
                seen.add(record.get("name"))
        return columns

    # -- the choices sheet
    def choice_columns(self, choices: Sheet | None) -> dict[str, set[str]]:
        columns: dict[str, set[str]] = {}
        for _, cells in choices.rows if choices else []:
            if cells.get("list_name"):
                columns[cells["list_name"]] = set(choices.headers) - {""}
        return columns

    def check_choices(self, choices: Sheet, used_lists: set[str]) -> None:
        self.check_translated_columns(choices)
        first_row: dict[str, int] = {}
        seen: set[tuple[str, str]] = set()
        for number, cells in choices.rows:
            list_name, name = cells.get("list_name", ""), cells.get("name", "")
            if not list_name:
                self.error("choice has no list_name", choices.name, number, "list_name")
                continue
            first_row.setdefault(list_name, number)
            if not name:
                self.error("choice has no name", choices.name, number, "name")
            elif not SAFE_CHOICE.match(name):
                self.error(f"choice name '{name}' must be letters, digits, '_' or '-' (no spaces: "
                           "select_multiple answers are space-separated)", choices.name, number, "name")
            elif (list_name, name) in seen:
                self.error(f"choice '{name}' appears twice in list '{list_name}'", choices.name, number, "name")
            seen.add((list_name, name))
            self.check_row_translations(choices, number, cells, label_required=True)
        for list_name, number in first_row.items():
            if list_name not in used_lists:
                self.error(f"choice list '{list_name}' is not used by any question", choices.name, number,
                           "list_name")

    # -- settings
    def check_settings(self, settings: Sheet | None, previous: FormSchema | None) -> None:
        if settings is None or not settings.rows:
            self.error("no settings sheet: form_id, version and default_language are needed", "settings")
            return
        number, cells = settings.rows[0]
        form_id, version = cells.get("form_id", ""), cells.get("version", "")
        if not form_id:
            self.error("form_id is missing", settings.name, number, "form_id")
        elif not SAFE_NAME.match(form_id):
            self.error(f"form_id '{form_id}' is not safe for SQL and OData", settings.name, number, "form_id")
        if cells.get("default_language") != DEFAULT_LANGUAGE:
            self.error(f"default_language must be '{DEFAULT_LANGUAGE}'", settings.name, number, "default_language")
        if not VERSION.match(version):
            self.error(f"version '{version}' is not YYYYMMDDNN (e.g. 2026112801)", settings.name, number, "version")
            return
        try:
            datetime.strptime(version[:8], "%Y%m%d")
        except ValueError:
            self.error(f"version '{version}' does not start with a real date", settings.name, number, "version")
        if previous and version < previous.version:
            self.error(f"version {version} is older than the one last built ({previous.version})",
                       settings.name, number, "version")

    def check_against_previous(self, compiled: CompiledForm, previous: FormSchema | None, row: int) -> None:
        if previous and previous.version == compiled.schema.version \
                and previous.xform_sha256 != compiled.schema.xform_sha256:
            self.error(f"the form changed since version {previous.version} was built, but its version did "
                       "not: raise the version (YYYYMMDDNN)", "settings", row, "version")

    # -- pyxform and ODK Validate
    def compile(self, sheets: dict[str, Sheet], names: dict[str, int]) -> CompiledForm | None:
        from pyxform.errors import PyXFormError
        from pyxform.validators.odk_validate import ODKValidateError

        try:
            compiled = compile_xlsform(self.path, self.media_dir)
        except ODKValidateError as exc:
            text = _clean_validate_message(str(exc))
            row = next((number for name, number in names.items()
                        if re.search(rf"\$\{{{re.escape(name)}\}}|/{re.escape(name)}\b", text, re.I)), None)
            column = next((c for word, c in VALIDATE_COLUMNS.items() if word in text), None)
            self.error(f"ODK Validate: {text}", "survey" if row else None, row, column if row else None)
            return None
        except (PyXFormError, ValueError, KeyError) as exc:
            self.error(*_locate_pyxform_message(str(exc), sheets))
            return None
        for warning in compiled.warnings:
            self.error(*_locate_pyxform_message(warning, sheets), severity=Severity.WARNING)
        return compiled


VALIDATE_COLUMNS = {"constraint": "constraint", "relevant": "relevant", "calculate": "calculation",
                    "required": "required", "choice": "choice_filter"}


def _locate_pyxform_message(message: str, sheets: dict[str, Sheet]) -> tuple[str, str | None, int | None,
                                                                              str | None]:
    """pyxform names a row for some errors and only a quoted value for others: find that value's cell."""
    match = re.search(r"\[row\s*:\s*(\d+)\]", message)
    named_sheet = re.search(r"\b(survey|choices|settings|entities)\b", message, re.IGNORECASE)
    text = re.sub(r"\s*\[row\s*:\s*\d+\]\s*", " ", message).strip()
    if match:
        return text, (named_sheet.group(1).lower() if named_sheet else "survey"), int(match.group(1)), None
    for quoted in re.findall(r"'([^']+)'|\"([^\"]+)\"", message):
        value = next(q for q in quoted if q)
        for sheet in sheets.values():
            for number, cells in sheet.rows:
                for column, cell in cells.items():
                    if cell == value or cell.split()[:1] == [value]:
                        return text, sheet.name, number, column
    return text, (named_sheet.group(1).lower() if named_sheet else None), None, None


def _clean_validate_message(message: str) -> str:
    message = re.sub(r"The following files failed validation:.*", "", message, flags=re.S)
    lines = [line.strip() for line in message.splitlines() if line.strip() and line.strip() != "null"]
    useful = [line for line in lines if not line.startswith(("at ", "org.", "java.", "Caused by"))]
    return re.sub(r"\s+null\b", "", " ".join(useful))[:600].strip()


def check_form(path: Path, media_dir: Path, previous: FormSchema | None = None) -> FormReport:
    """Everything we know how to check about one XLSForm, then the conversion itself."""
    checker = _Checker(path, media_dir)
    report = FormReport(path=path, issues=checker.issues)
    try:
        sheets = read_sheets(path)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        checker.error(f"cannot read the workbook: {exc.__class__.__name__}: {exc}")
        return report
    survey = sheets.get("survey")
    if survey is None:
        checker.error("no 'survey' sheet", "survey")
        return report
    for needed in ("type", "name"):
        if not survey.has(needed):
            checker.error(f"the survey sheet has no '{needed}' column", survey.name, 1, needed)
    if checker.issues:
        return report
    choices = sheets.get("choices")
    settings = sheets.get("settings")
    used_lists, names = checker.check_survey(survey, choices)
    if choices is not None:
        checker.check_choices(choices, used_lists)
    checker.check_settings(settings, previous)
    compiled = checker.compile(sheets, names)
    if compiled is not None:
        settings_row = settings.rows[0][0] if settings and settings.rows else 2
        checker.check_against_previous(compiled, previous, settings_row)
        report.compiled = compiled
    return report
