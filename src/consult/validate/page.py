"""One page of FormRecords as pandas columns, the shape the page rules read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from consult.forms.schema import DataType, FormSchema
from consult.warehouse.records import INSTANCE, PARENT, ROW, FormLayout, FormRecords, TableKind, TableLayout

from .expressions import Expr, Lookup, Scope, as_text, columns_by_name, holds
from .fields import FORM_TABLE, require_fields
from .report import Failure, ValidationContext

__all__ = ["FORM_TABLE", "ColumnFrame", "Page", "PageRule", "answer_column", "require_fields", "visible_columns"]


class ColumnFrame:
    """A page's rows of one table, a column at a time: each column becomes a Series when a rule
    first reads it. Rules read under half of a form's columns, and a DataFrame of them all was half
    of the page rules' time (bench/page_rules_bench.py). Integer columns stay integers (pandas'
    nullable `Int64`) when some are empty, so `${n} = '1'` reads "1", not the "1.0" of float64."""

    def __init__(self, rows: list[dict], columns: tuple[str, ...], integers: set[str]):
        self._rows, self._integers = rows, integers
        self.columns = frozenset(columns)
        self.index = pd.RangeIndex(len(rows))
        self._built: dict[str, pd.Series] = {}
        self._texts: dict[str, pd.Series] = {}

    @classmethod
    def of(cls, table: TableLayout, rows: list[dict]) -> ColumnFrame:
        return cls(rows, (*table.key_columns, *(c.name for c in table.columns)),
                   {c.name for c in table.columns if c.data_type is DataType.INTEGER})

    @property
    def empty(self) -> bool:
        return not self._rows

    def __getitem__(self, column: str) -> pd.Series:
        if column not in self._built:
            if column not in self.columns:
                raise KeyError(column)
            values = [row.get(column) for row in self._rows]
            self._built[column] = pd.Series(values, index=self.index, name=column,
                                            dtype="Int64" if column in self._integers else object)
        return self._built[column]

    def text(self, column: str) -> pd.Series:
        """The column as the expressions compare it (`as_text`), built once per page."""
        if column not in self._texts:
            self._texts[column] = as_text(self[column])
        return self._texts[column]


class TableFrames(Mapping[str, ColumnFrame]):
    """A page's tables, each built when a rule first reads it."""

    def __init__(self, records: FormRecords):
        self._records = records
        self._built: dict[str, ColumnFrame] = {}

    def __getitem__(self, key: str) -> ColumnFrame:
        if key not in self._built:
            table = next((t for t in self._records.layout.tables if t.key == key), None)
            if table is None:
                raise KeyError(key)
            self._built[key] = ColumnFrame.of(table, self._records.rows.get(key, []))
        return self._built[key]

    def __iter__(self) -> Iterator[str]:
        return (t.key for t in self._records.layout.tables)

    def __len__(self) -> int:
        return len(self._records.layout.tables)


@dataclass
class Page:
    schema: FormSchema
    records: FormRecords
    context: ValidationContext
    frames: TableFrames = field(init=False)
    _scoped: dict[str, ScopedTable] = field(init=False, default_factory=dict)
    _held: dict[tuple[str, Expr], pd.Series] = field(init=False, default_factory=dict)
    _columns: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.frames = TableFrames(self.records)
        self._columns = columns_by_name(self.schema)

    def scope(self, key: str, prop: Lookup | None = None) -> Scope:
        """`${name}` over a table's rows (`scoped`), read from the field's column, as text built once per page."""
        frame, columns = self.scoped(key), self._columns
        return Scope(frame.index, lambda name: frame[columns.get(name, name)], prop,
                     lambda name: frame.text(columns.get(name, name)))

    def holds(self, key: str, expr: Expr) -> pd.Series:
        """Where `expr` is true over a table's rows (`scoped`), each expression evaluated once per page:
        a repeat's relevance is every one of its questions' condition, and the repeat's own rules'."""
        if (key, expr) not in self._held:
            self._held[(key, expr)] = holds(expr, self.scope(key))
        return self._held[(key, expr)]

    def table(self, key: str) -> TableLayout:
        return self.records.layout.table(key)

    def scoped(self, key: str) -> ScopedTable:
        """A table's rows with the columns of the rows that own them, so `${x}` resolves anywhere below x.

        Field names are unique within a form, so an owner's column never meets one of the table's
        own; an owner's column is mapped onto the table's rows when a rule first reads it."""
        if key not in self._scoped:
            table = self.table(key)
            owner = None
            if table.parent is not None and table.kind is TableKind.REPEAT:
                parent = self.table(table.parent)
                link, owner_key = (INSTANCE, INSTANCE) if parent.kind is TableKind.FORM else (PARENT, ROW)
                owner = (self.scoped(parent.key), link, owner_key)
            self._scoped[key] = ScopedTable(self.frames[key], owner)
        return self._scoped[key]


class ScopedTable:
    """One table's rows (`frame`), reading a column it lacks from the rows that own them: the owning
    table's row whose `owner_key` equals this row's `link` (`_instance_id` under the form, the parent
    entry's `_row_id` under a repeat)."""

    def __init__(self, frame: ColumnFrame, owner: tuple[ScopedTable, str, str] | None):
        self.frame, self._owner = frame, owner
        self._mapped: dict[str, pd.Series] = {}
        self._texts: dict[str, pd.Series] = {}

    @property
    def index(self) -> pd.Index:
        return self.frame.index

    @property
    def empty(self) -> bool:
        return self.frame.empty

    def __getitem__(self, column: str) -> pd.Series:
        if column in self.frame.columns:
            return self.frame[column]
        if self._owner is None:
            raise KeyError(column)
        if column not in self._mapped:
            owner, link, owner_key = self._owner
            by_key = pd.Series(owner[column].to_numpy(), index=owner.frame[owner_key].to_numpy())
            if not by_key.index.is_unique:
                raise ValueError(f"owner rows repeat a {owner_key}")
            self._mapped[column] = pd.Series(self.frame[link].map(by_key).to_numpy(), index=self.frame.index,
                                             name=column)
        return self._mapped[column]

    def text(self, column: str) -> pd.Series:
        """`ColumnFrame.text`, an owner's columns included."""
        if column in self.frame.columns:
            return self.frame.text(column)
        if column not in self._texts:
            self._texts[column] = as_text(self[column])
        return self._texts[column]


def answer_column(table: TableLayout, field: str) -> str:
    """The column saying whether a field was answered (a geopoint's first of four)."""
    return next(c.name for c in table.columns if c.field == field)


def visible_columns(layout: FormLayout, key: str) -> set[str]:
    """Columns visible in `Page.scoped(key)`: the table's and its owners'."""
    names: set[str] = set()
    table: TableLayout | None = layout.table(key)
    while table is not None:
        names |= {c.name for c in table.columns}
        table = layout.table(table.parent) if table.parent is not None else None
    return names


class PageRule(Protocol):
    """A check over a whole page that GX expectations cannot state simply."""

    @property
    def name(self) -> str:
        """The rule name failures carry."""

    @property
    def fields(self) -> frozenset[str]:
        """Fields and repeats it reads."""

    @property
    def claims(self) -> frozenset[str]:
        """Fields whose required-when-relevant check it makes itself, with a better message."""

    def failures(self, page: Page) -> list[Failure]: ...
