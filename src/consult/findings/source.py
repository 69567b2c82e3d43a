"""What the findings read: valid, live submissions only, as DataFrames, with their labels.

Only the filter and the joins are SQL (SQLAlchemy Core, the same on SQLite and PostgreSQL);
the counting is pandas, so no dialect's date or string functions are needed. A form that was
never synced (no schema, or no table yet) reads as empty rather than failing the report.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pandas as pd
from sqlalchemy import MetaData, Table, and_, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from consult.forms.schema import FormSchema
from consult.warehouse.records import INSTANCE, POSITION, VALUE, FormLayout, table_name
from consult.warehouse.tables import VALID, form_tables, submissions

from .frames import in_order
from .model import FileLinks, Lang, missing

PROVINCE_LIST = "provinces.csv"
ATTACHMENTS = "attachments"
"""The table `consult.attachments` keeps of the downloaded files (read as SQL: importing it costs nothing here)."""
ENTITY_TABLE_PREFIX = "entities"
ENTITY_VERSIONS = "entity_versions"
"""How `consult.warehouse.entities` names an entity list's table and the versions table (reflected here:
that module brings pyodk, which a report does not need)."""


def live(form_id: str) -> ColumnElement[bool]:
    """Submissions Central still holds: neither deleted nor purged."""
    s = submissions.c
    return and_(s.form_id == form_id, s.deleted_at.is_(None), s.purged_at.is_(None))


def live_valid(form_id: str) -> ColumnElement[bool]:
    """The submissions findings count: live, and passed every check."""
    return and_(live(form_id), submissions.c.validation_status == VALID)


class Source:
    """One report's view of the reporting database, in one language."""

    def __init__(self, conn: Connection, schemas: Mapping[str, FormSchema], lang: Lang,
                 files: FileLinks | None = None):
        self.conn, self.schemas, self.lang, self.files = conn, schemas, lang, files
        existing = set(inspect(conn).get_table_names())
        self._has_attachments = ATTACHMENTS in existing
        self._tables: dict[str, dict[str, Table]] = {
            form_id: {key: table for key, table in form_tables(FormLayout.of(schema)).items()
                      if table.name in existing}
            for form_id, schema in schemas.items()}

    def _table(self, form_id: str, key: str) -> Table | None:
        return self._tables.get(form_id, {}).get(key)

    def _read(self, form_id: str, key: str, columns: tuple[str, ...],
              valid_only: bool = True) -> pd.DataFrame:
        table = self._table(form_id, key)
        status = () if valid_only else (submissions.c.validation_status,)
        if table is None or not all(c in table.c for c in columns):
            return pd.DataFrame(columns=[*columns, *(c.name for c in status)])
        query = (select(*(table.c[c] for c in columns), *status)
                 .join(submissions, submissions.c.instance_id == table.c[INSTANCE])
                 .where(live_valid(form_id) if valid_only else live(form_id))
                 .order_by(*(table.c[c] for c in columns if c in (INSTANCE, POSITION, VALUE))))
        return pd.read_sql(query, self.conn)

    def answers(self, form_id: str, *fields: str) -> pd.DataFrame:
        """One row per valid submission: `_instance_id` and the given fields' columns."""
        return self._read(form_id, "", (INSTANCE, *fields))

    def received(self, form_id: str, *fields: str) -> pd.DataFrame:
        """Every live submission, quarantined ones too: `_instance_id`, the fields and `valid` (bool)."""
        answers = self._read(form_id, "", (INSTANCE, *fields), valid_only=False)
        valid = answers.pop("validation_status") == VALID
        return answers.assign(valid=valid.astype(bool))

    def quarantined(self, form_id: str, field: str) -> dict[str, int]:
        """Live submissions held back by validation, counted by one answer (e.g. per province): what a
        figure beside them does not count."""
        held = self.received(form_id, field)
        return {str(k): int(n) for k, n in held.loc[~held["valid"], field].dropna().value_counts().items()}

    def held_back(self, form_id: str) -> int:
        """How many live submissions of the form are quarantined."""
        return int((~self.received(form_id)["valid"]).sum())

    def by_province(self, form_id: str, *fields: str) -> Iterator[tuple[str, str | None, pd.DataFrame]]:
        """(code, label, its answers) for each province with valid answers, in the province list's order."""
        answers = self.answers(form_id, "province", *fields)
        for code in in_order(answers["province"], self.codes(form_id, "province")):
            yield code, self.label(form_id, "province", code), answers[answers["province"] == code]

    def choices(self, form_id: str, field: str) -> pd.DataFrame:
        """One row per option chosen in a select_multiple: `_instance_id`, `value`."""
        return self._read(form_id, field, (INSTANCE, VALUE))

    def entries(self, form_id: str, repeat: str, *fields: str) -> pd.DataFrame:
        """One row per repeat entry of a valid submission: `_instance_id`, `_position` and the fields."""
        return self._read(form_id, repeat, (INSTANCE, POSITION, *fields))

    def file_links(self, form_id: str, question: str) -> dict[str, str]:
        """Instance id → link to the file the question attached, for files downloaded to this disk
        (`consult attachments` or the sync's `--attachments-dir`); empty without them."""
        if self.files is None or not self._has_attachments:
            return {}
        rows = self.conn.execute(text(f"SELECT instance_id, stored_path FROM {ATTACHMENTS} WHERE form_id = :form "
                                      "AND question = :question AND stored_path IS NOT NULL"),
                                 {"form": form_id, "question": question})
        return {instance: link for instance, stored in rows if (link := self.files.link(stored))}

    def label(self, form_id: str, field: str, code: object) -> str | None:
        """A choice's label in the report's language; the code itself when the form has no label."""
        if missing(code):
            return None
        schema = self.schemas.get(form_id)
        choices = schema.choices_for(field) if schema else None
        return (choices.label(str(code), self.lang) if choices else None) or str(code)

    def codes(self, form_id: str, field: str) -> list[str]:
        """A choice list's codes in the form's order: the order tables list categories in."""
        schema = self.schemas.get(form_id)
        choices = schema.choices_for(field) if schema else None
        return choices.names() if choices else []

    def field_label(self, form_id: str, field: str) -> str:
        schema = self.schemas.get(form_id)
        return schema.field(field).labels.get(self.lang, field) if schema else field

    def has_column(self, form_id: str, key: str, column: str) -> bool:
        """Whether the FormSchema and the database both have this column: a form deployed before a
        question was added has neither, a database synced before it lacks it."""
        table = self._table(form_id, key)
        if table is None or column not in table.c:
            return False
        return column in {c["name"] for c in inspect(self.conn).get_columns(table.name)}

    def has_field(self, form_id: str, field: str) -> bool:
        schema = self.schemas.get(form_id)
        return schema is not None and any(field in (f.key, f.name) for f in schema.fields)

    def column_of(self, form_id: str, field: str) -> str:
        """The column a field is stored in (its name, unless two fields of the form share it)."""
        return (self.schemas[form_id].field(field).column or field) if self.has_field(form_id, field) else field

    def entity_list(self, list_name: str) -> pd.DataFrame | None:
        """The live entities of a list (`entities__<list>`, as the sync writes it; deleted ones left out),
        every column, by label in code-point order on every database; None when no sync brought the list in."""
        name = table_name(ENTITY_TABLE_PREFIX, list_name)
        if not inspect(self.conn).has_table(name):
            return None
        table = Table(name, MetaData(), autoload_with=self.conn)
        entities = pd.read_sql(select(table).where(table.c.deleted_at.is_(None)), self.conn)
        return entities.sort_values(["label", "uuid"], kind="stable").reset_index(drop=True)

    def entities_created_by(self, list_name: str) -> pd.DataFrame:
        """`uuid`, `source_instance_id`: the submission that made each entity of the list (its version 1)."""
        if not inspect(self.conn).has_table(ENTITY_VERSIONS):
            return pd.DataFrame(columns=["uuid", "source_instance_id"])
        versions = Table(ENTITY_VERSIONS, MetaData(), autoload_with=self.conn)
        v = versions.c
        return pd.read_sql(select(v.uuid, v.source_instance_id).where(
            v.list_name == list_name, v.version == 1, v.source_instance_id.is_not(None)), self.conn)

    def province_label(self, code: object) -> str | None:
        """A province's name in the report's language, from the province list the forms attach."""
        if missing(code) or code == "":
            return None
        for schema in self.schemas.values():
            choices = schema.choice_lists.get(PROVINCE_LIST)
            if choices is not None:
                return choices.label(str(code), self.lang) or str(code)
        return str(code)

    def province_codes(self) -> list[str]:
        """The province list's codes in its order (the order tables list provinces in)."""
        for schema in self.schemas.values():
            choices = schema.choice_lists.get(PROVINCE_LIST)
            if choices is not None:
                return choices.names()
        return []

    def pilot_provinces(self) -> list[str]:
        """The pilot provinces, as the province list's `pilot` column marks them."""
        for schema in self.schemas.values():
            for choices in schema.choice_lists.values():
                if choices.source == PROVINCE_LIST:
                    return [c.name for c in choices.choices if c.properties.get("pilot") == "1"]
        return []
