"""Checks an XLSForm before it reaches enumerators, naming the file, sheet, row and column.

pyxform and ODK Validate are the law for every form: what they refuse is refused, with their
whole message. On top of them each form follows a profile:

- `odk` (every form): only what protects the pipeline: `${references}` that resolve, choice
  lists that exist, media files present, CSV columns that ODK's engines can load. A missing
  translation or a choice filter on a column the list lacks is a warning.
- `isg` (ISG's own forms, listed in `forms/consult.toml`): the ISG Office's house rules as
  well: every label, hint and message in Vietnamese and English with Vietnamese the default,
  a message for every constraint, no unused choice list, `YYYYMMDDNN` versions that move
  forward, lower-case names safe for SQL, choice CSVs with `label` and `label_en`.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from consult.forms.media import EXTERNAL_ITEMSETS, referenced_media
from consult.forms.schema import FormSchema, odata_name
from consult.forms.xlsform import CompiledForm, compile_xlsform, language_code

if TYPE_CHECKING:
    from consult.forms.entity_lists import DeclaredLists
    from consult.forms.profiles import FormProfiles

LANGUAGES = ("Tiếng Việt (vi)", "English (en)")
DEFAULT_LANGUAGE = LANGUAGES[0]
TRANSLATED = ("label", "hint", "constraint_message", "required_message")
ALIASES = {"jr:constraintmsg": "constraint_message", "jr:requiredmsg": "required_message",
           "set_form_id": "form_id", "set_form_title": "form_title"}
UNLABELLED_TYPES = {"start", "end", "today", "deviceid", "username", "phonenumber", "email", "simserial",
                    "subscriberid", "audit", "calculate", "hidden", "begin_group", "begin_repeat", "begin_loop",
                    "start-geopoint", "xml-external", "csv-external"}
SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
SAFE_CHOICE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
VERSION = re.compile(r"^\d{10}$")
REFERENCE = re.compile(r"\$\{([^}]*)\}")
EXPRESSION_COLUMNS = ("relevant", "constraint", "calculation", "choice_filter", "repeat_count",
                      "default", "required", "trigger", "readonly")
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
XLSFORM_SHEETS = ("survey", "choices", "settings", "external_choices", "osm", "entities")
XLSFORM_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".md", ".csv")
YES = ("yes", "true", "true()", "1")


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Profile(StrEnum):
    """The rules a form follows on top of pyxform and ODK Validate."""

    ODK = "odk"
    ISG = "isg"


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
    profile: Profile = Profile.ODK

    @property
    def ok(self) -> bool:
        return self.compiled is not None and not any(i.severity is Severity.ERROR for i in self.issues)


@dataclass
class Sheet:
    name: str
    headers: list[str]
    rows: list[tuple[int, dict[str, str]]]
    """(row or line number as the author sees it, non-empty cells by canonical header)."""
    header_row: int = 1
    counts_blank_rows: bool = True
    """Whether pyxform's `[row : N]` is this row number (spreadsheets) or the N-1th non-empty
    row (Markdown and CSV forms, where numbers here are lines of the file)."""

    def has(self, column: str) -> bool:
        return column in self.headers

    def row_for_pyxform(self, number: int) -> int:
        if self.counts_blank_rows or not 2 <= number <= len(self.rows) + 1:
            return number
        return self.rows[number - 2][0]


def _canonical(header: str) -> str:
    base, sep, language = header.strip().partition("::")
    base = base.strip().lower().replace(" ", "_")
    base = ALIASES.get(base, base)
    return f"{base}::{language.strip()}" if sep else base


RawSheet = tuple[str, list[tuple[int, list[str | None]]]]
"""A sheet's title and its numbered rows of cell text, header row first."""


def _cell_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _read_xlsx(path: Path) -> list[RawSheet]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        return [(ws.title, [(number, [_cell_text(v) for v in values])
                            for number, values in enumerate(ws.iter_rows(values_only=True), start=1)])
                for ws in workbook.worksheets]
    finally:
        workbook.close()


def _read_xls(path: Path) -> list[RawSheet]:
    import xlrd

    book = xlrd.open_workbook(str(path))
    try:
        return [(ws.name, [(number + 1, [_cell_text(c.value) for c in ws.row(number)])
                           for number in range(ws.nrows)]) for ws in book.sheets()]
    finally:
        book.release_resources()


def _read_md(path: Path) -> list[RawSheet]:
    """pyxform's Markdown form: `| sheet |` opens a sheet, `| | type | name |` rows follow."""
    from pyxform.xls2json_backends import (
        MD_CELL,
        MD_COMMENT,
        MD_COMMENT_INLINE,
        MD_PIPE_OR_ESCAPE,
        MD_SEPARATOR,
    )

    sheets: list[RawSheet] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if MD_COMMENT.match(line):
            continue
        inline = MD_COMMENT_INLINE.match(line)
        if inline:
            line = inline.group(1)
        match = MD_CELL.match(line)
        if not match or MD_SEPARATOR.match(match.group(1)):
            continue
        cells = [c.strip().replace(r"\|", "|") or None for c in MD_PIPE_OR_ESCAPE.split(match.group(1))]
        if cells[0]:
            sheets.append((cells[0], []))
        if sheets and any(cells[1:]):
            sheets[-1][1].append((number, cells[1:]))
    return sheets


def _read_csv(path: Path) -> list[RawSheet]:
    """pyxform's CSV form: a sheet name in the first column opens a sheet, the rest are its cells."""
    sheets: list[RawSheet] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        for values in reader:
            if not values:
                continue
            if values[0].strip():
                sheets.append((values[0].strip(), []))
            content = [v.strip() or None for v in values[1:]]
            if sheets and any(content):
                sheets[-1][1].append((reader.line_num, content))
    return sheets


def read_sheets(path: Path) -> dict[str, Sheet]:
    """The sheets of any XLSForm pyxform reads, keyed as pyxform keys them; rows keep the numbers
    the author sees (spreadsheet rows, or lines of a Markdown/CSV form)."""
    suffix = path.suffix.lower()
    readers = {".xlsx": _read_xlsx, ".xlsm": _read_xlsx, ".xls": _read_xls, ".md": _read_md, ".csv": _read_csv}
    if suffix not in readers:
        raise ValueError(f"'{suffix}' is not an XLSForm type; use {', '.join(XLSFORM_SUFFIXES)}")
    raw = readers[suffix](path)
    sheets = {}
    for title, rows in raw:
        key = title.strip().lower()
        if key not in XLSFORM_SHEETS:
            if len(raw) != 1 or suffix == ".csv":
                continue
            key = "survey"  # pyxform reads a workbook's only sheet as the survey, whatever its name
        header_row = rows[0][1] if rows else []
        headers = [_canonical(h) if h else "" for h in header_row]
        body = []
        for number, values in rows[1:]:
            cells = {h: v for h, v in zip(headers, values) if h and v}
            if cells:
                body.append((number, cells))
        sheets[key] = Sheet(title, headers, body, rows[0][0] if rows else 1,
                            counts_blank_rows=suffix in (".xlsx", ".xlsm", ".xls"))
    return sheets


def external_itemsets(path: Path) -> str | None:
    """`itemsets.csv` of a form's `select_one_external` questions, from its external_choices sheet."""
    from pyxform.utils import external_choices_to_csv
    from pyxform.xls2json_backends import get_xlsform

    return external_choices_to_csv(get_xlsform(xlsform=str(path)))


@dataclass(frozen=True)
class QuestionType:
    """A survey row's type as pyxform parses it (aliases, `begin_repeat`, `or_other`…)."""

    kind: str
    """`begin_group`, `end_repeat`, `select_one`, `select_one_from_file`, `integer`…"""
    list_name: str | None = None

    @property
    def is_end(self) -> bool:
        return self.kind.startswith("end_")

    @classmethod
    def parse(cls, type_: str) -> QuestionType:
        from pyxform import aliases
        from pyxform.xls2json import RE_BEGIN_CONTROL, RE_END_CONTROL, RE_SELECT

        text = re.sub(r"\s+", " ", type_.strip())
        control = {"lgroup": "repeat", "looped group": "repeat"}
        if match := RE_END_CONTROL.search(text):
            return cls(f"end_{control.get(match['type'], match['type'])}")
        if match := RE_BEGIN_CONTROL.search(text):
            return cls(f"begin_{control.get(match['type'], match['type'])}", match["list_name"])
        if match := RE_SELECT.search(text):
            command = match["select_command"]
            if command in aliases.select_from_file:
                kind = "select_one_from_file" if "one" in command else "select_multiple_from_file"
            elif command == "select_one_external":
                kind = command
            elif command == "rank":
                kind = "rank"
            else:
                kind = "select_one" if aliases.select[command] == "select one" else "select_multiple"
            return cls(kind, match["list_name"])
        return cls(text.split(" ")[0] if text else "")


class _Checker:
    def __init__(self, path: Path, media_dir: Path, profile: Profile, entity_lists: DeclaredLists):
        self.path, self.media_dir, self.profile = path, media_dir, profile
        self.entity_lists = entity_lists
        self.isg = profile is Profile.ISG
        self.file = str(path)
        self.issues: list[FormIssue] = []

    def error(self, message: str, sheet: str | None = None, row: int | None = None,
              column: str | None = None, severity: Severity = Severity.ERROR) -> None:
        self.issues.append(FormIssue(self.file, message, sheet, row, column, severity))

    def warning(self, message: str, sheet: str | None = None, row: int | None = None,
                column: str | None = None) -> None:
        self.error(message, sheet, row, column, Severity.WARNING)

    def house_rule(self, message: str, sheet: str | None = None, row: int | None = None,
                   column: str | None = None) -> None:
        """An error under the ISG profile, a warning for any other form."""
        self.error(message, sheet, row, column, Severity.ERROR if self.isg else Severity.WARNING)

    # -- columns and translations
    def check_isg_columns(self, sheet: Sheet) -> None:
        for header in sheet.headers:
            base, _, language = header.partition("::")
            if base in TRANSLATED and not language:
                self.error(f"column '{header}' has no language: use "
                           + " and ".join(f"'{base}::{lang}'" for lang in LANGUAGES), sheet.name,
                           sheet.header_row, header)
            elif base in TRANSLATED and language not in LANGUAGES:
                self.error(f"unknown language '{language}' (the forms use {', '.join(LANGUAGES)})",
                           sheet.name, sheet.header_row, header)
        for base in TRANSLATED:
            present = [lang for lang in LANGUAGES if sheet.has(f"{base}::{lang}")]
            for lang in LANGUAGES:
                if present and lang not in present:
                    self.error(f"'{base}' is translated into {', '.join(present)} but has no column "
                               f"'{base}::{lang}'", sheet.name, sheet.header_row, f"{base}::{lang}")

    def sheet_languages(self, sheet: Sheet, base: str) -> list[str]:
        if self.isg:
            return list(LANGUAGES)
        return [h.partition("::")[2] for h in sheet.headers if h.partition("::")[0] == base and "::" in h]

    def check_row_translations(self, sheet: Sheet, number: int, cells: dict[str, str],
                               label_required: bool) -> None:
        for base in TRANSLATED:
            languages = self.sheet_languages(sheet, base)
            if len(languages) < (1 if self.isg else 2):
                continue
            given = [lang for lang in languages if cells.get(f"{base}::{lang}")]
            must = base == "label" and label_required and self.isg
            if given or must:
                for lang in languages:
                    if lang not in given:
                        self.house_rule(f"{base} missing in {lang}", sheet.name, number, f"{base}::{lang}")
        if cells.get("constraint") and self.isg:
            for lang in LANGUAGES:
                if not cells.get(f"constraint_message::{lang}"):
                    self.error(f"constraint '{cells['constraint']}' has no message in {lang}",
                               sheet.name, number, f"constraint_message::{lang}")

    # -- the survey sheet
    def check_survey(self, survey: Sheet, choices: Sheet | None) -> tuple[set[str], dict[str, int]]:
        if self.isg:
            self.check_isg_columns(survey)
        names: dict[str, int] = {}
        lowered: dict[str, int] = {}
        used_lists: set[str] = set()
        list_columns = self.choice_columns(choices)
        for number, cells in survey.rows:
            type_ = cells.get("type", "")
            if not type_:
                if self.isg:
                    self.error("row has content but no type", survey.name, number, "type")
                continue
            question = QuestionType.parse(type_)
            if question.is_end:
                continue
            name = cells.get("name", "")
            if not name:
                self.error("question has no name", survey.name, number, "name")
            else:
                names.setdefault(name, number)
                if self.isg:
                    self.check_name(name, survey.name, number)
                    if name.lower() in lowered:
                        self.error(f"name '{name}' is already used on row {lowered[name.lower()]}: names "
                                   "become database columns and must be unique in the form",
                                   survey.name, number, "name")
                    lowered.setdefault(name.lower(), number)
            self.check_row_translations(survey, number, cells,
                                        label_required=question.kind not in UNLABELLED_TYPES)
            if question.list_name and question.list_name.startswith("${"):
                if question.list_name[2:-1] not in {c.get("name") for _, c in survey.rows}:
                    self.error(f"{question.list_name} refers to no question of this form", survey.name, number,
                               "type")
            elif question.kind in ("select_one", "select_multiple", "rank") and question.list_name:
                used_lists.add(question.list_name)
                if question.list_name not in list_columns:
                    self.error(f"choice list '{question.list_name}' is not defined in the choices sheet",
                               survey.name, number, "type")
                self.check_choice_filter(cells, list_columns.get(question.list_name), survey.name, number)
            elif question.kind.endswith("_from_file") and question.list_name:
                self.check_choice_filter(cells, self.check_choice_file(question.list_name),
                                         survey.name, number)
            elif question.kind == "begin_loop" and question.list_name:
                used_lists.add(question.list_name)
        reference_columns = (*EXPRESSION_COLUMNS, *(h for h in survey.headers if h.partition("::")[0] in TRANSLATED))
        for number, cells in survey.rows:
            for column in reference_columns:
                for reference in REFERENCE.findall(cells.get(column, "")):
                    if reference.strip().removeprefix("last-saved#") not in names:
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
                self.house_rule(f"choice_filter uses '{token}', which is not a column of the choice list "
                                f"(columns: {', '.join(sorted(columns))})", sheet, row, "choice_filter")

    def check_choice_file(self, filename: str) -> set[str] | None:
        """The CSV behind a select_*_from_file: ODK makes each column an XML element, so every
        header must be an XML name. ISG's lists also give `label` (Vietnamese) and `label_en`.
        A missing file is reported once, where the XForm's media are checked."""
        path = self.media_dir / filename
        if not filename.lower().endswith(".csv") or not path.is_file():
            return self.entity_lists.columns(filename)
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or [])
            for column in reader.fieldnames or []:
                if not XML_NAME.match(column):
                    self.error(f"column '{column}' is not an XML name: ODK's engines turn CSV columns into "
                               "elements and refuse the form (use e.g. 'label_en')", filename, 1, column)
            if not self.isg:
                return columns
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

    def check_choices(self, choices: Sheet, used_lists: set[str], duplicates_allowed: bool) -> None:
        if self.isg:
            self.check_isg_columns(choices)
        first_row: dict[str, int] = {}
        seen: set[tuple[str, str]] = set()
        for number, cells in choices.rows:
            list_name, name = cells.get("list_name", ""), cells.get("name", "")
            if not list_name:
                if self.isg:
                    self.error("choice has no list_name", choices.name, number, "list_name")
                continue
            first_row.setdefault(list_name, number)
            self.check_row_translations(choices, number, cells, label_required=True)
            if not self.isg:
                continue
            if not name:
                self.error("choice has no name", choices.name, number, "name")
            elif not SAFE_CHOICE.match(name):
                self.error(f"choice name '{name}' must be letters, digits, '_' or '-' (no spaces: "
                           "select_multiple answers are space-separated)", choices.name, number, "name")
            elif (list_name, name) in seen and not duplicates_allowed:
                self.error(f"choice '{name}' appears twice in list '{list_name}'", choices.name, number, "name")
            seen.add((list_name, name))
        if self.isg:
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
            self.house_rule(f"the form changed since version {previous.version or '(none)'} was built, but its "
                            "version did not: raise the version (Central refuses a changed form under a "
                            "published version)", "settings", row, "version")

    # -- media
    def check_odata_names(self, schema: FormSchema, names: dict[str, int], sheet: str) -> None:
        """Central's OData renames every XML name (`a-b`, `a.b` → `a_b`, `tên`, `tèn` → `t_n`); two questions
        or repeats whose paths meet in one OData path would share one value there (no recording shows
        which Central keeps), so the form is refused, in every profile."""
        seen: dict[tuple[str, ...], str] = {}
        root = f"/{schema.root}/"
        for xpath in [*(f.xpath for f in schema.fields), *(r.xpath for r in schema.repeats)]:
            path = xpath.removeprefix(root)
            odata = tuple(odata_name(part) for part in path.split("/"))
            first = seen.setdefault(odata, path)
            if first != path:
                self.error(f"'{path}' and '{first}' are both '{'/'.join(odata)}' in Central's OData (each run of "
                           "characters other than A-Z, a-z, 0-9 and _ becomes one _), so their answers would "
                           "meet in one value: rename one of them", sheet, names.get(path.rsplit("/", 1)[-1]),
                           "name")

    def check_media(self, compiled: CompiledForm, sheets: dict[str, Sheet]) -> None:
        for name in referenced_media(compiled.xform):
            if name == EXTERNAL_ITEMSETS and "external_choices" in sheets:
                continue  # the build writes it from the external_choices sheet, as pyxform's xls2xform does
            if not (self.media_dir / name).is_file() and not self.entity_lists.declares(name):
                sheet, row, column = _locate_media(name, sheets)
                hint = ""
                if name.lower().endswith(".csv"):
                    hint = (f", and no form here declares an entity list '{name[:-4]}': add the file, or declare "
                            f"the list in a form's entities sheet or under [entity_lists.{name[:-4]}] in consult.toml")
                self.error(f"media file '{name}' not found in {self.media_dir}{hint}", sheet, row, column)

    # -- pyxform and ODK Validate
    def compile(self, sheets: dict[str, Sheet], names: dict[str, int]) -> CompiledForm | None:
        from pyxform.errors import PyXFormError
        from pyxform.validators.odk_validate import ODKValidateError

        try:
            compiled = compile_xlsform(self.path, self.media_dir)
        except ODKValidateError as exc:
            text = clean_validate_message(str(exc))
            survey = sheets.get("survey")
            row, column = _validate_location(text, survey, names) if survey else (None, None)
            self.error(f"ODK Validate: {text}", survey.name if row and survey else None, row, column)
            return None
        except (PyXFormError, ValueError, KeyError) as exc:
            self.error(*_locate_pyxform_message(str(exc), sheets))
            return None
        for warning in compiled.warnings:
            self.warning(*_locate_pyxform_message(warning, sheets))
        return compiled


VALIDATE_COLUMNS = {"constraint": "constraint", "display condition": "relevant", "relevant": "relevant",
                    "calculate": "calculation", "required": "required", "choice": "choice_filter",
                    "repeat_count": "repeat_count", "jr:count": "repeat_count"}


def _validate_location(text: str, survey: Sheet, names: dict[str, int]) -> tuple[int | None, str | None]:
    """The survey cell ODK Validate's message is about: the expression it quotes, else the first
    `${name}` (or path) it mentions, with the column its wording names."""
    squeezed = re.sub(r"\s+", "", text)
    for number, cells in survey.rows:
        for column in EXPRESSION_COLUMNS:
            expression = re.sub(r"\s+", "", cells.get(column, ""))
            if len(expression) >= 3 and expression in squeezed:
                return number, column
    row = next((names[r] for r in REFERENCE.findall(text) if r in names), None)
    if row is None:
        row = next((number for name, number in names.items() if re.search(rf"/{re.escape(name)}\b", text)), None)
    if row is None:
        return None, None
    column = next((c for word, c in VALIDATE_COLUMNS.items() if word in text.lower()), None)
    if column is None:
        used = [c for number, cells in survey.rows if number == row for c in EXPRESSION_COLUMNS if c in cells]
        column = used[0] if len(used) == 1 else None
    return row, column


def _locate_media(name: str, sheets: dict[str, Sheet]) -> tuple[str | None, int | None, str | None]:
    """The cell that makes the form need `name`: a media column, a `select_one_from_file`, a
    `pulldata('x', …)`, `instance('x')` or `search('x')`, or a `csv-external`/`xml-external` row."""
    stem = name.rsplit(".", 1)[0]
    call = re.compile(rf"""\b(pulldata|instance|search)\s*\(\s*['"]{re.escape(stem)}(\.csv)?['"]""")
    ordered = sorted(sheets.values(), key=lambda s: s.name.lower() != "survey")
    for sheet in ordered:
        for number, cells in sheet.rows:
            for column, value in cells.items():
                if value == name or value.split()[-1:] == [name] or call.search(value):
                    return sheet.name, number, column
            if cells.get("type", "").replace("_", "-") in ("csv-external", "xml-external") \
                    and cells.get("name") == stem:
                return sheet.name, number, "type"
    return None, None, None


def _locate_pyxform_message(message: str, sheets: dict[str, Sheet]) -> tuple[str, str | None, int | None,
                                                                              str | None]:
    """pyxform names a row for some errors and only a quoted value for others: find that value's cell."""
    match = re.search(r"\[row\s*:\s*(\d+)\]", message)
    named_sheet = re.search(r"\b(survey|choices|settings|entities|external_choices)\b", message, re.IGNORECASE)
    text = re.sub(r"\s*\[row\s*:\s*(\d+|unknown)\]\s*", " ", message).strip()
    if match:
        key = named_sheet.group(1).lower() if named_sheet else "survey"
        sheet = sheets.get(key)
        row = int(match.group(1))
        return text, (sheet.name if sheet else key), (sheet.row_for_pyxform(row) if sheet else row), None
    for quoted in re.findall(r"'([^']+)'|\"([^\"]+)\"", message):
        value = next(q for q in quoted if q)
        for sheet in sheets.values():
            for number, cells in sheet.rows:
                for column, cell in cells.items():
                    if cell == value or cell.split()[:1] == [value]:
                        return text, sheet.name, number, column
    return text, (named_sheet.group(1).lower() if named_sheet else None), None, None


def clean_validate_message(message: str) -> str:
    """ODK Validate's whole cause, on one line: the exception names and the failing XPath stay;
    only Java stack frames, repeated lines and the temporary file's name go."""
    message = re.sub(r"The following files failed validation:.*", "", message, flags=re.S)
    kept: list[str] = []
    for raw in message.splitlines():
        line = raw.strip()
        if not line or line == "null" or line in ("ODK Validate Errors:",) or re.match(r"at [\w$.<>]+\(", line) \
                or re.fullmatch(r"\.\.\. \d+ more", line):
            continue
        cause = re.sub(r"^Caused by: [\w.$]+(Exception|Error): ", "", line)
        if line.startswith("Caused by:") and cause in kept:
            continue
        if line not in kept:
            kept.append(line)
    return re.sub(r"\s+null\b", "", " ".join(kept)).strip()


_clean_validate_message = clean_validate_message


def settings_of(sheets: dict[str, Sheet]) -> dict[str, str]:
    settings = sheets.get("settings")
    return settings.rows[0][1] if settings and settings.rows else {}


def form_id_of(path: Path, sheets: dict[str, Sheet]) -> str:
    """The form_id as pyxform decides it: the settings sheet's, else the file's name."""
    return settings_of(sheets).get("form_id") or path.stem


def check_form(path: Path, media_dir: Path, previous: FormSchema | None = None,
               profile: Profile | str | None = None, profiles: FormProfiles | None = None,
               entity_lists: DeclaredLists | None = None) -> FormReport:
    """Everything we know how to check about one XLSForm, then the conversion itself.

    The form follows `profile` if given, else the one `profiles` (by default the `consult.toml`
    of the forms folder, media_dir's parent) gives it. A `<list>.csv` it reads needs no media
    file when `entity_lists` (by default: what the forms folder declares) has that list."""
    report = FormReport(path=path)
    try:
        sheets = read_sheets(path)
    except Exception as exc:  # the readers raise many kinds for a file that is not a form
        report.issues.append(FormIssue(str(path), f"cannot read the workbook: {exc.__class__.__name__}: {exc}"))
        return report
    if profile is None:
        from consult.forms.profiles import FormProfiles, FormsConfigError

        try:
            profiles = profiles or FormProfiles.read(media_dir.parent)
        except FormsConfigError as exc:
            report.issues.append(FormIssue(str(path), str(exc)))
            return report
        profile = profiles.profile_of(path, form_id_of(path, sheets))
    if entity_lists is None:
        from consult.forms.entity_lists import DeclaredLists

        entity_lists = DeclaredLists.read(media_dir.parent, [path])
    checker = _Checker(path, media_dir, Profile(profile), entity_lists)
    report.profile, report.issues = checker.profile, checker.issues
    survey = sheets.get("survey")
    if survey is None:
        checker.error("no 'survey' sheet", "survey")
        return report
    for needed in ("type", "name"):
        if not survey.has(needed):
            checker.error(f"the survey sheet has no '{needed}' column", survey.name, survey.header_row, needed)
    if checker.issues:
        return report
    choices = sheets.get("choices")
    settings = sheets.get("settings")
    used_lists, names = checker.check_survey(survey, choices)
    if choices is not None:
        duplicates_allowed = settings_of(sheets).get("allow_choice_duplicates", "").lower() in YES
        checker.check_choices(choices, used_lists, duplicates_allowed)
    if checker.isg:
        checker.check_settings(settings, previous)
    compiled = checker.compile(sheets, names)
    if compiled is not None:
        checker.check_odata_names(compiled.schema, names, survey.name)
        checker.check_media(compiled, sheets)
        settings_row = settings.rows[0][0] if settings and settings.rows else 2
        checker.check_against_previous(compiled, previous, settings_row)
        report.compiled = CompiledForm(compiled.xform, compiled.schema.model_copy(update={"profile": str(profile)}),
                                       compiled.warnings)
    return report
