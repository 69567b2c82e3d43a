"""The automatic section of any form: what KoboToolbox calls a summary report, question by question.

ISG's findings know ISG's five forms; every other form in the database gets this section instead
of nothing: counts and shares of each choice, min/median/max and a histogram for numbers, dates by
week, free-text counts with a few verbatim answers (never those saved to an entity list: contacts
of a registry), locations with coordinates, and repeat entries per submission. Only valid, live
submissions are counted. Each figure is one SQL aggregate (or one column read) on one table of one
form, joined to `submissions` for the valid-and-live filter, so a form of any size is summarised
without loading it whole. Tables and columns come from the layout the warehouse writes
(`FormLayout.of`), never from field names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Select, and_, case, desc, distinct, func, inspect, select
from sqlalchemy import Table as SqlTable
from sqlalchemy.engine import Connection, Engine

from consult.forms.schema import ChoiceList, DataType, Field, FormSchema, Repeat
from consult.warehouse.records import INSTANCE, ROW, VALUE, FormLayout, TableKind, TableLayout
from consult.warehouse.tables import VALID, form_tables, submissions

from .display import display
from .model import Chart, ChartKind, Column, Kind, Section, Table, Unsummarised
from .source import live_valid
from .words import Words

VERBATIM = 5
"""Distinct answers quoted per free-text question, most frequent first."""
QUOTE = 1_000
"""Characters quoted of one answer: a 5 MB answer must not become a 5 MB cell (Excel stops at 32,767)."""
BINS = 10
ONE_BAR_EACH = 12
"""Whole numbers with at most this many distinct values get one bar per value instead of ranges."""
ALL_CHOICES = 20
"""Choice lists up to this long show every choice, unchosen ones as 0; longer lists (a province CSV)
show only the choices someone picked."""
SKIPPED_KINDS = frozenset({"calculate"})
"""Derived values, not answers: the questions they come from are summarised instead."""


class CannotSummarise(ValueError):
    """A form whose data the report cannot read as its FormSchema describes it."""


@dataclass(frozen=True)
class FormCounts:
    """One form's live submissions in the database (deleted and purged ones left out)."""

    form_id: str
    received: int
    valid: int

    @property
    def quarantined(self) -> int:
        return self.received - self.valid


def forms_in_database(conn: Connection) -> dict[str, FormCounts]:
    """Every form with a row in `submissions`, even one whose submissions were all deleted."""
    s = submissions.c
    is_live = and_(s.deleted_at.is_(None), s.purged_at.is_(None))
    query = (select(s.form_id, func.sum(case((is_live, 1), else_=0)),
                    func.sum(case((and_(is_live, s.validation_status == VALID), 1), else_=0)))
             .group_by(s.form_id).order_by(s.form_id))
    return {form_id: FormCounts(form_id, int(received or 0), int(valid or 0))
            for form_id, received, valid in conn.execute(query)}


def text_in(labels: Mapping[str, str], lang: str, schema: FormSchema) -> str | None:
    """A label in the report's language, else the form's default language, else the one it has."""
    for code in (lang, schema.default_language):
        if labels.get(code):
            return labels[code]
    return next((text for text in labels.values() if text), None)


def _ids(item: Field | Repeat) -> set[str]:
    """How the layout may name a field or a repeat: by its key (unique in the form) or its name."""
    return {item.name, getattr(item, "key", None) or item.name}


@dataclass(frozen=True)
class Question:
    field: Field
    title: str
    table: TableLayout
    repeat: Repeat | None


class FormSummary:
    """One form's automatic section, read on one connection."""

    def __init__(self, conn: Connection, schema: FormSchema, counts: FormCounts, w: Words, key: str):
        self.conn, self.schema, self.counts, self.w, self.key = conn, schema, counts, w, key
        self.layout = FormLayout.of(schema)
        self.sql = form_tables(self.layout)
        inspector = inspect(conn)
        existing = set(inspector.get_table_names())
        if self.layout.table("").name not in existing:
            raise CannotSummarise(w("summary.no_tables"))
        self.columns = {t.key: {c["name"] for c in inspector.get_columns(t.name)} if t.name in existing
                        else set() for t in self.layout.tables}
        self.tables: list[Table] = []
        self._row_counts: dict[str, int] = {}

    # --- reading -----------------------------------------------------------------------------------

    def _valid(self, table: SqlTable, *columns: object) -> Select:
        """`columns` from `table`'s rows that belong to valid, live submissions of this form."""
        return (select(*columns)  # type: ignore[call-overload]
                .select_from(table.join(submissions, submissions.c.instance_id == table.c[INSTANCE]))
                .where(live_valid(self.schema.form_id)))

    def _rows(self, layout: TableLayout) -> int:
        """Rows the questions of this table could answer: valid submissions, or their repeat entries."""
        if layout.kind is TableKind.FORM:
            return self.counts.valid
        if layout.key not in self._row_counts:
            query = self._valid(self.sql[layout.key], func.count())
            self._row_counts[layout.key] = int(self.conn.execute(query).scalar_one())
        return self._row_counts[layout.key]

    def _has(self, layout: TableLayout, *columns: str) -> bool:
        return all(c in self.columns[layout.key] for c in columns)

    # --- the section -------------------------------------------------------------------------------

    def section(self) -> Section:
        """Overview, repeats and number statistics first, then each question's table in the form's
        order, then the one-row-per-question lists of free text, verbatim answers, locations and others."""
        w, counts = self.w, self.counts
        overview = pd.DataFrame({"received": [counts.received], "valid": [counts.valid],
                                 "quarantined": [counts.quarantined]})
        note = w("summary.overview.note").format(valid=self._n(counts.valid),
                                                 quarantined=self._n(counts.quarantined))
        head = [self._table(w("summary.overview"), (w.column("received"), w.column("valid"),
                                                    w.column("quarantined")), overview, note=note)]
        head += self._repeats()
        numbers: list[dict[str, object]] = []
        texts: list[dict[str, object]] = []
        quotes: list[dict[str, object]] = []
        places: list[dict[str, object]] = []
        others: list[dict[str, object]] = []
        questions = self._questions()
        for question in questions:
            match question.field.data_type:
                case DataType.SELECT_ONE:
                    self._select_one(question)
                case DataType.SELECT_MULTIPLE:
                    self._select_multiple(question)
                case DataType.INTEGER | DataType.DECIMAL:
                    numbers.append(self._number(question))
                case DataType.DATE | DataType.DATETIME:
                    self._weeks(question)
                case DataType.GEOPOINT | DataType.GEOTRACE | DataType.GEOSHAPE:
                    places.append(self._place(question))
                case DataType.STRING:
                    texts.append(self._text(question, quotes))
                case _:
                    others.append({"question": question.title, "answers": self._answered(question)})
        head += self._list(w("summary.numbers"), numbers, (w.column("answers"), *(
            w.column(k, Kind.NUMBER) for k in ("minimum", "median", "mean", "maximum"))))
        tail = self._list(w("summary.text"), texts, (w.column("answers"), w.column("distinct")))
        if quotes:
            note = w("summary.verbatim.note").format(n=VERBATIM, cut=self._n(QUOTE))
            columns = (w.column("question", Kind.TEXT), w.column("answer", Kind.TEXT), w.column("times"))
            tail.append(self._table(w("summary.verbatim"), columns, pd.DataFrame(quotes), note=note))
        tail += self._list(w("summary.locations"), places, (w.column("with_coordinates"),))
        tail += self._list(w("summary.other"), others, (w.column("answers"),))
        ordered = [*head, *self.tables, *tail]
        tables = tuple(replace(t, key=f"{self.key}-{i}") for i, t in enumerate(ordered, start=1))
        schema = self.schema
        title = (schema.form_id if schema.title in ("", schema.form_id)
                 else f"{schema.title} ({schema.form_id})")
        line = w("summary.line").format(valid=self._n(counts.valid), quarantined=self._n(counts.quarantined),
                                        questions=self._n(len(questions)))
        return Section(self.key, title, tables, sheet=schema.form_id, summary=line)

    def _questions(self) -> list[Question]:
        """Every answer the form stores, in the form's order; notes, metadata and calculations left out."""
        by_field = {i: t for t in self.layout.tables if t.kind is not TableKind.CHOICES for i in t.fields}
        questions = []
        for f in self.schema.fields:
            table = next((by_field[i] for i in _ids(f) if i in by_field), None)
            if not f.stores_data or f.metadata or f.kind in SKIPPED_KINDS or table is None:
                continue
            repeat = next((r for r in self.schema.repeats if r.table == f.table), None)
            label = text_in(f.labels, self.w.lang, self.schema) or f.name
            title = f"{self._repeat_title(repeat)} › {label}" if repeat else label
            questions.append(Question(f, title, table, repeat))
        return questions

    def _repeat_title(self, repeat: Repeat) -> str:
        return text_in(repeat.labels, self.w.lang, self.schema) or repeat.name

    def _repeat_layout(self, repeat: Repeat) -> TableLayout | None:
        ids = _ids(repeat)
        return next((t for t in self.layout.tables if t.kind is TableKind.REPEAT and t.key in ids), None)

    # --- one kind of question each -----------------------------------------------------------------

    def _choices(self, question: Question, counts: dict[str, int], answered: int, multiple: bool) -> None:
        choices = self.schema.choices_for(question.field)
        codes = choices.names() if choices else []
        shown = [c for c in codes if c in counts or len(codes) <= ALL_CHOICES]
        shown += sorted(c for c in counts if c not in codes)
        frame = pd.DataFrame({"choice": [self._choice_label(choices, c) for c in shown],
                              "answers": [counts.get(c, 0) for c in shown],
                              "share": [counts.get(c, 0) / answered if answered else None for c in shown]})
        notes = [self._answered_of(question, answered)]
        if multiple:
            notes.append(self.w("summary.multiple.note"))
        w = self.w
        self._add(question.title,
                  (w.column("choice", Kind.TEXT), w.column("answers"), w.column("share", Kind.SHARE)), frame,
                  Chart(ChartKind.BARS, ("choice",), ("answers",)), " ".join(notes))

    def _choice_label(self, choices: ChoiceList | None, code: str) -> str:
        choice = next((c for c in choices.choices if c.name == code), None) if choices else None
        return (text_in(choice.labels, self.w.lang, self.schema) if choice else None) or code

    def _select_one(self, question: Question) -> None:
        counts: dict[str, int] = {}
        if self._has(question.table, question.field.column):
            table = self.sql[question.table.key]
            column = table.c[question.field.column]
            query = self._valid(table, column, func.count()).where(column.is_not(None)).group_by(column)
            counts = {str(value): int(n) for value, n in self.conn.execute(query)}
        self._choices(question, counts, sum(counts.values()), multiple=False)

    def _select_multiple(self, question: Question) -> None:
        """Counted from the choices table, one row per option picked: no splitting of strings. Answered:
        submissions (or repeat entries, `_row_id`) with at least one option."""
        ids = _ids(question.field)
        layout = next((t for t in self.layout.tables
                       if t.kind is TableKind.CHOICES and set(t.fields) & ids), None)
        counts: dict[str, int] = {}
        answered = 0
        if layout is not None and self._has(layout, VALUE):
            table = self.sql[layout.key]
            value = table.c[VALUE]
            counts = {str(v): int(n) for v, n in self.conn.execute(
                self._valid(table, value, func.count()).group_by(value))}
            rows = self._valid(table, table.c[INSTANCE], table.c[ROW]).distinct().subquery()
            answered = int(self.conn.execute(select(func.count()).select_from(rows)).scalar_one())
        self._choices(question, counts, answered, multiple=True)

    def _values(self, question: Question) -> pd.Series:
        if not self._has(question.table, question.field.column):
            return pd.Series(dtype=float)
        column = self.sql[question.table.key].c[question.field.column]
        query = self._valid(self.sql[question.table.key], column).where(column.is_not(None))
        return pd.Series(self.conn.execute(query).scalars().all(), dtype=float)

    def _number(self, question: Question) -> dict[str, object]:
        values = self._values(question)
        if not values.empty:
            self._histogram(question, values)
        return {"question": question.title, "answers": len(values), **_spread(values)}

    def _histogram(self, question: Question, values: pd.Series) -> None:
        whole = bool((values == values.round()).all())
        kind = Kind.COUNT if whole else Kind.NUMBER
        distinct_values = sorted(values.unique())
        if whole and len(distinct_values) <= ONE_BAR_EACH:
            labels = [display(v, kind, self.w.lang) for v in distinct_values]
            counts = [int((values == v).sum()) for v in distinct_values]
        else:
            histogram, edges = np.histogram(values.to_numpy(), bins=BINS)
            labels = [f"{display(lo, Kind.NUMBER, self.w.lang)} – {display(hi, Kind.NUMBER, self.w.lang)}"
                      for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
            counts = [int(n) for n in histogram]
        frame = pd.DataFrame({"bin": labels, "answers": counts, "share": [n / len(values) for n in counts]})
        w = self.w
        self._add(f"{question.title}: {w('summary.distribution')}",
                  (w.column("bin", Kind.TEXT), w.column("answers"), w.column("share", Kind.SHARE)), frame,
                  Chart(ChartKind.BARS, ("bin",), ("answers",)), self._answered_of(question, len(values)))

    def _weeks(self, question: Question) -> None:
        """Answers per week (Monday first), from one GROUP BY on the date: never a row per submission."""
        weeks: dict[date, int] = {}
        if self._has(question.table, question.field.column):
            table = self.sql[question.table.key]
            column = table.c[question.field.column]
            query = self._valid(table, column, func.count()).where(column.is_not(None)).group_by(column)
            for value, n in self.conn.execute(query):
                day = value.date() if isinstance(value, datetime) else value
                monday = day - timedelta(days=day.weekday())
                weeks[monday] = weeks.get(monday, 0) + int(n)
        order = sorted(weeks)
        frame = pd.DataFrame({"week": order, "answers": [weeks[m] for m in order]})
        w = self.w
        self._add(f"{question.title}: {w('summary.by_week')}",
                  (w.column("week", Kind.DATE), w.column("answers")), frame,
                  Chart(ChartKind.BARS, ("week",), ("answers",)),
                  self._answered_of(question, sum(weeks.values())))

    def _answered(self, question: Question, *columns: str) -> int:
        """Rows where every one of `columns` (the field's own column by default) holds a value."""
        columns = columns or (question.field.column,)
        if not self._has(question.table, *columns):
            return 0
        table = self.sql[question.table.key]
        query = self._valid(table, func.count()).where(*(table.c[c].is_not(None) for c in columns))
        return int(self.conn.execute(query).scalar_one())

    def _place(self, question: Question) -> dict[str, object]:
        if question.field.data_type is DataType.GEOPOINT:
            ids = _ids(question.field)
            parts = {c.part: c.name for c in question.table.columns if c.field in ids and c.part}
            found = {"lat", "lon"} <= set(parts)
            answered = self._answered(question, parts["lat"], parts["lon"]) if found else 0
        else:
            answered = self._answered(question)
        return {"question": question.title, "with_coordinates": answered}

    def _text(self, question: Question, quotes: list[dict[str, object]]) -> dict[str, object]:
        if not self._has(question.table, question.field.column):
            return {"question": question.title, "answers": 0, "distinct": 0}
        table = self.sql[question.table.key]
        column = table.c[question.field.column]
        counting = self._valid(table, func.count(column), func.count(distinct(column)))
        answered, different = self.conn.execute(counting).one()
        if not question.field.entity_property:
            top = (self._valid(table, column, func.count().label("times")).where(column.is_not(None))
                   .group_by(column).order_by(desc("times"), column).limit(VERBATIM))
            quotes += [{"question": question.title, "answer": _quote(value), "times": int(n)}
                       for value, n in self.conn.execute(top)]
        return {"question": question.title, "answers": int(answered), "distinct": int(different)}

    def _repeats(self) -> list[Table]:
        """Entries per valid submission, submissions without any counting as 0."""
        rows = []
        s = submissions.c
        for repeat in self.schema.repeats:
            layout = self._repeat_layout(repeat)
            if layout is None or not self._has(layout, INSTANCE, ROW):
                continue
            table = self.sql[layout.key]
            query = (select(s.instance_id, func.count(table.c[ROW]))
                     .select_from(submissions.outerjoin(table, table.c[INSTANCE] == s.instance_id))
                     .where(live_valid(self.schema.form_id)).group_by(s.instance_id))
            per = pd.Series([int(n) for _, n in self.conn.execute(query)], dtype=float)
            rows.append({"repeat": self._repeat_title(repeat), "with_entries": int((per > 0).sum()),
                         "entries": int(per.sum()), **_spread(per)})
        w = self.w
        columns = (w.column("repeat", Kind.TEXT), w.column("with_entries"), w.column("entries"),
                   w.column("minimum"), w.column("median", Kind.NUMBER), w.column("maximum"))
        return [self._table(w("summary.repeats"), columns, pd.DataFrame(rows))] if rows else []

    # --- tables ------------------------------------------------------------------------------------

    def _list(self, title: str, rows: list[dict[str, object]], columns: tuple[Column, ...]) -> list[Table]:
        """A table of one row per question (numbers, free text, locations), when the form has any."""
        return [self._table(title, (self.w.column("question", Kind.TEXT), *columns), pd.DataFrame(rows))] \
            if rows else []

    def _table(self, title: str, columns: tuple[Column, ...], frame: pd.DataFrame, chart: Chart | None = None,
               note: str | None = None) -> Table:
        """Keyed once the section's order is known."""
        shown = frame[[c.key for c in columns]].reset_index(drop=True)
        return Table(self.key, title, self.schema.form_id, columns, shown, chart, note)

    def _add(self, title: str, columns: tuple[Column, ...], frame: pd.DataFrame, chart: Chart | None = None,
             note: str | None = None) -> None:
        """A question's own table (choices, histogram, weeks), in the form's order."""
        self.tables.append(self._table(title, columns, frame, chart, note))

    def _answered_of(self, question: Question, answered: int) -> str:
        unit = self.w("summary.unit.entries" if question.repeat else "summary.unit.submissions")
        total = self._rows(question.table)
        text = self.w("summary.answered_of").format(answered=self._n(answered), total=self._n(total),
                                                    unit=unit)
        return f"{self.w('summary.per_entry').format(repeat=self._repeat_title(question.repeat))} {text}" \
            if question.repeat else text

    def _n(self, value: int) -> str:
        return display(value, Kind.COUNT, self.w.lang)


def _quote(answer: str) -> str:
    return answer if len(answer) <= QUOTE else answer[:QUOTE - 1] + "…"


def _spread(values: pd.Series) -> dict[str, float | None]:
    """Minimum, median, mean and maximum; None for each when there is nothing to summarise."""
    if values.empty:
        return dict.fromkeys(("minimum", "median", "mean", "maximum"))
    return {"minimum": float(values.min()), "median": float(values.median()), "mean": float(values.mean()),
            "maximum": float(values.max())}


def _anchor(form_id: str, taken: set[str]) -> str:
    """An id for the HTML (`form-…`), unique, of characters that need no escaping in an attribute."""
    base = "form-" + re.sub(r"[^A-Za-z0-9_-]+", "-", form_id)
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    taken.add(key)
    return key


def summarise_forms(engine: Engine, schemas: Mapping[str, FormSchema], forms: Mapping[str, FormCounts],
                    w: Words, covered: Callable[[str], bool]) -> tuple[list[Section], list[Unsummarised]]:
    """An automatic section for each form in the database that `covered` does not take, and the forms
    that could not be summarised, with why. One form's failure costs only its own section: each is read
    on its own connection, so a failed statement cannot abort the next form's reads on PostgreSQL."""
    sections: list[Section] = []
    skipped: list[Unsummarised] = []
    taken: set[str] = set()
    for form_id, counts in forms.items():
        if covered(form_id):
            continue
        schema = schemas.get(form_id)
        if schema is None:
            skipped.append(Unsummarised(form_id, w("summary.no_schema")))
            continue
        try:
            with engine.connect() as conn:
                sections.append(FormSummary(conn, schema, counts, w, _anchor(form_id, taken)).section())
        except CannotSummarise as exc:
            skipped.append(Unsummarised(form_id, str(exc)))
        except Exception as exc:  # noqa: BLE001  # whatever breaks, the form is named and the rest reported
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            skipped.append(Unsummarised(form_id, w("summary.failed").format(error=first_line[:300])))
    return sections, skipped


def unsummarised_section(skipped: list[Unsummarised], forms: Mapping[str, FormCounts], w: Words) -> Section:
    """The forms the report leaves out, in the report itself: a reader must not take them for empty."""
    received = [forms[s.form_id].received if s.form_id in forms else None for s in skipped]
    frame = pd.DataFrame({"form": [s.form_id for s in skipped], "received": received,
                          "reason": [s.reason for s in skipped]})
    columns = (w.column("form", Kind.TEXT), w.column("received"), w.column("reason", Kind.TEXT))
    title = w("summary.skipped")
    return Section("unsummarised", title, (Table("unsummarised-forms", title, title, columns, frame),))
