"""One ExportTable to a file in each analysis format.

pyreadstat and pyarrow are imported inside the writers: `consult --help` and `consult sync`
never pay for them (`python -X importtime`: pyreadstat ~0.2 s with pandas, pyarrow ~0.1 s more).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from consult.findings.workbook import FORMULA_START

from .names import LIMITS, Format, fit_label, variable_names
from .tables import INDICATOR_LABELS, NUMERIC, ExportColumn, ExportTable, Kind, text_in, value_numbers

STATA_VERSION = 15
"""Stata 15's .dta (format 118): UTF-8 text, read by Stata 14 and later, haven and pandas."""
SUFFIX = {Format.STATA: ".dta", Format.SPSS: ".sav", Format.PARQUET: ".parquet", Format.CSV: ".csv",
          Format.XLSX: ".xlsx"}
LABELS_SUFFIX = "_labels"


def inert_text(text: str) -> str:
    """Text a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab or CR first) gets a leading `'`:
    Excel and LibreOffice then show it as typed. The Excel workbook needs no such change (its cells
    are marked as text), so only CSV files carry the apostrophe."""
    return "'" + text if text.startswith(FORMULA_START) else text


def utc_naive(moment: datetime | None) -> datetime | None:
    """Stata, SPSS and Excel have no time zones: every timestamp is written in UTC."""
    if moment is None:
        return None
    return (moment.astimezone(UTC) if moment.tzinfo else moment).replace(tzinfo=None)


def _indicator_labels(lang: str) -> dict[int, str]:
    no, yes = INDICATOR_LABELS.get(lang, INDICATOR_LABELS["en"])
    return {0: no, 1: yes}


def variable_label(c: ExportColumn, lang: str, fmt: Format) -> str:
    """The column's label cut to the format's limit; an indicator's question is cut before its choice,
    which is what tells the indicators of one question apart."""
    limits = LIMITS[fmt]
    if c.kind is Kind.INDICATOR and c.choice is not None:
        question = c.field.labels if c.field else {}
        tail = ": " + c.choice_label(c.choice.name, lang)
        room = limits.variable_label - (len(tail.encode()) if limits.label_in_bytes else len(tail))
        if room >= 10:
            return fit_label(text_in(question, lang, c.name), room, limits.label_in_bytes) + tail
    return fit_label(c.label(lang), limits.variable_label, limits.label_in_bytes)


def _labelled(table: ExportTable, fmt: Format, lang: str) -> tuple[Any, dict[str, Any]]:
    """The DataFrame and pyreadstat's keyword arguments (variable and value labels) for Stata or SPSS."""
    import pandas as pd

    limits = LIMITS[fmt]
    names = variable_names([c.name for c in table.columns], fmt)
    frame: dict[str, Any] = {}
    variable_labels: list[str] = []
    value_labels: dict[str, dict[int, str]] = {}
    measure: dict[str, str] = {}
    for c in table.columns:
        name, values = names[c.name].name, table.data[c.name]
        variable_labels.append(variable_label(c, lang, fmt))
        if c.kind is Kind.SELECT_ONE:
            numbers = value_numbers(c, values)
            frame[name] = pd.Series([None if v is None else numbers[str(v)] for v in values], dtype="float64")
            value_labels[name] = {
                n: fit_label(c.choice_label(code, lang), limits.value_label, limits.label_in_bytes)
                for code, n in numbers.items()}
            measure[name] = "nominal"
        elif c.kind in NUMERIC:
            frame[name] = pd.Series(values, dtype="float64")
            if c.kind is Kind.INDICATOR:
                value_labels[name] = _indicator_labels(lang)
                measure[name] = "nominal"
            else:
                measure[name] = "scale"
        elif c.kind is Kind.DATE:
            frame[name] = pd.Series(values, dtype="object")
            measure[name] = "scale"
        elif c.kind is Kind.DATETIME:
            frame[name] = pd.Series(pd.to_datetime([utc_naive(v) for v in values]), dtype="datetime64[us]")
            measure[name] = "scale"
        else:
            frame[name] = pd.Series(["" if v is None else str(v) for v in values], dtype="object")
            measure[name] = "nominal"
    options: dict[str, Any] = {"column_labels": variable_labels, "variable_value_labels": value_labels}
    if fmt is Format.SPSS:
        options["variable_measure"] = measure
    return pd.DataFrame(frame, index=range(table.row_count)), options


def _file_label(table: ExportTable, fmt: Format) -> str:
    limits = LIMITS[fmt]
    return fit_label(f"{table.form_id}: {table.name}", limits.variable_label, limits.label_in_bytes)


def write_stata(table: ExportTable, path: Path, lang: str) -> Path:
    import pyreadstat

    frame, options = _labelled(table, Format.STATA, lang)
    pyreadstat.write_dta(frame, str(path), file_label=_file_label(table, Format.STATA), version=STATA_VERSION,
                         **options)
    return path


def write_spss(table: ExportTable, path: Path, lang: str) -> Path:
    import pyreadstat

    frame, options = _labelled(table, Format.SPSS, lang)
    pyreadstat.write_sav(frame, str(path), file_label=_file_label(table, Format.SPSS), **options)
    return path


def labels_metadata(table: ExportTable, lang: str) -> dict[str, Any]:
    """What a reader of the Parquet file needs to label it: the table, and for each column its question
    and the label of each code."""
    return {"form_id": table.form_id, "table": table.name, "parent": table.parent, "lang": lang,
            "columns": {c.name: {"label": c.label(lang), "kind": str(c.kind),
                                 "values": _value_labels(c, lang)} for c in table.columns}}


def _value_labels(c: ExportColumn, lang: str) -> dict[str, str]:
    if c.kind is Kind.INDICATOR:
        return {str(k): v for k, v in _indicator_labels(lang).items()}
    if c.kind in (Kind.SELECT_ONE, Kind.SELECT_MULTIPLE):
        return {choice.name: c.choice_label(choice.name, lang) for choice in c.choices}
    return {}


def write_parquet(table: ExportTable, path: Path, lang: str) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {Kind.INTEGER: pa.int64(), Kind.DECIMAL: pa.float64(), Kind.INDICATOR: pa.int8(),
             Kind.DATE: pa.date32(), Kind.DATETIME: pa.timestamp("us", tz="UTC")}
    fields, arrays = [], []
    for c in table.columns:
        kind = types.get(c.kind, pa.string())
        metadata = {"label": c.label(lang), "kind": str(c.kind),
                    "values": json.dumps(_value_labels(c, lang), ensure_ascii=False)}
        fields.append(pa.field(c.name, kind, metadata=metadata))
        arrays.append(pa.array(table.data[c.name], type=kind))
    labels = json.dumps(labels_metadata(table, lang), ensure_ascii=False)
    schema = pa.schema(fields, metadata={"consult": labels})
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)
    return path


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, float)):
        return repr(value)
    return inert_text(str(value))


def label_rows(table: ExportTable, lang: str) -> Iterable[tuple[str, str, str, str]]:
    """`variable, label, value, value_label`: a row per column, then one per code it can hold."""
    for c in table.columns:
        yield c.name, c.label(lang), "", ""
        for code, text in _value_labels(c, lang).items():
            yield c.name, "", code, text


def write_csv(table: ExportTable, path: Path, lang: str) -> Path:
    """UTF-8 with a byte-order mark, so Excel opens Vietnamese text correctly; the labels companion
    `<table>_labels.csv` beside it."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([c.name for c in table.columns])
        columns = [table.data[c.name] for c in table.columns]
        for i in range(table.row_count):
            writer.writerow([_csv_value(values[i]) for values in columns])
    labels = path.with_name(path.stem + LABELS_SUFFIX + ".csv")
    with labels.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["variable", "label", "value", "value_label"])
        writer.writerows([inert_text(v) for v in row] for row in label_rows(table, lang))
    return path


def write_workbook(tables: list[ExportTable], path: Path, lang: str) -> Path:
    """One sheet per table, named after the table, then a `labels` sheet; header row frozen."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    from consult.findings.workbook import put

    book = Workbook(write_only=True)
    taken: set[str] = {"labels"}
    bold = Font(bold=True)
    formats = {Kind.DATE: "yyyy-mm-dd", Kind.DATETIME: "yyyy-mm-dd hh:mm:ss"}
    for table in tables:
        sheet = book.create_sheet(_sheet_name(table.key or table.form_id, taken))
        sheet.freeze_panes = "A2"
        header = []
        for c in table.columns:
            cell = WriteOnlyCell(sheet)
            put(cell, c.name)
            cell.font = bold
            header.append(cell)
        sheet.append(header)
        columns = [(c, table.data[c.name]) for c in table.columns]
        for i in range(table.row_count):
            row = []
            for c, values in columns:
                value, cell = values[i], WriteOnlyCell(sheet)
                if value is None:
                    pass
                elif c.kind in formats:
                    cell.value = utc_naive(value) if c.kind is Kind.DATETIME else value
                    cell.number_format = formats[c.kind]
                elif c.kind in NUMERIC and isinstance(value, (int, float)):
                    cell.value = value
                else:
                    put(cell, value)
                row.append(cell)
            sheet.append(row)
    labels = book.create_sheet("labels")
    labels.append(["table", "variable", "label", "value", "value_label"])
    for table in tables:
        for row in label_rows(table, lang):
            cells = []
            for value in (table.name, *row):
                cell = WriteOnlyCell(labels)
                put(cell, value)
                cells.append(cell)
            labels.append(cells)
    book.save(path)
    return path


def _sheet_name(wanted: str, taken: set[str]) -> str:
    name = "".join(" " if ch in "[]:*?/\\" else ch for ch in wanted)[:31] or "data"
    candidate, n = name, 2
    while candidate.lower() in taken:
        candidate, n = f"{name[:31 - len(str(n)) - 1]}~{n}", n + 1
    taken.add(candidate.lower())
    return candidate


WRITERS = {Format.STATA: write_stata, Format.SPSS: write_spss, Format.PARQUET: write_parquet,
           Format.CSV: write_csv}
