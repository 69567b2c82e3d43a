"""Short ways for the tests to put synthetic OData pages into a database."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence

from sqlalchemy import text
from sqlalchemy.engine import Engine

from consult.forms.schema import FormSchema
from consult.warehouse.database import create_engine_for
from consult.warehouse.load import FailureRow, LoadCounts, advance_watermark, load_page
from consult.warehouse.records import RecordBuilder
from consult.warehouse.tables import ensure_schema

from .odata_rows import odata_row

PROJECT = 1


def rows_of(db_url: str, sql: str) -> list[tuple]:
    """The rows a query returns, through an engine of its own (the database as another reader sees it)."""
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def load_rows(engine: Engine, schema: FormSchema, rows: list[dict], failures: Sequence[FailureRow] = (),
              statuses: Mapping[str, str] | None = None) -> LoadCounts:
    """Ensure the schema, then load `rows` as one page in one transaction."""
    builder = RecordBuilder(schema)
    ensure_schema(engine, [builder.layout])
    with engine.begin() as conn:
        return load_page(conn, PROJECT, builder.build(rows), statuses or {}, list(failures))


def failure(schema: FormSchema, instance_id: str, rule: str = "range", column: str = "staff_days",
            value: object = 750, row_id: str | None = None) -> FailureRow:
    return FailureRow(PROJECT, schema.form_id, instance_id, rule, column, row_id, value,
                      "Giá trị ngoài khoảng cho phép", "Value out of range")


def load_three_pages(url: str, schema: FormSchema, kill_at_page: int | None = None) -> None:
    """Load submissions 1–150 in three pages, each with its watermark; SIGKILL this process
    just before page `kill_at_page` would commit (for a test that runs it in a subprocess)."""
    builder, engine = RecordBuilder(schema), create_engine_for(url)
    ensure_schema(engine, [builder.layout])
    for number, start in enumerate((1, 51, 101)):
        records = builder.build([odata_row(schema, i, entries=i % 3) for i in range(start, start + 50)])
        with engine.begin() as conn:
            load_page(conn, PROJECT, records, {}, [])
            advance_watermark(conn, PROJECT, schema.form_id, records.submissions[-1].submission_date, None)
            if number == kill_at_page:
                os.kill(os.getpid(), signal.SIGKILL)
    engine.dispose()
