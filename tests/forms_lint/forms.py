"""Small XLSForms written in each format pyxform reads, for the lint and build tests."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl

Sheets = dict[str, list[list[str]]]
"""Sheet name → rows (header first) of cell text; '' is an empty cell."""


def write_form(path: Path, sheets: Sheets) -> Path:
    """Write `sheets` as the file type `path`'s suffix names: .xlsx, .xlsm, .xls, .md or .csv."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix
    if suffix in (".xlsx", ".xlsm"):
        book = openpyxl.Workbook()
        book.remove(book.active)
        for name, rows in sheets.items():
            sheet = book.create_sheet(name)
            for row in rows:
                sheet.append([cell or None for cell in row])
        book.save(path)
    elif suffix == ".xls":
        import xlwt

        book = xlwt.Workbook(encoding="utf-8")
        for name, rows in sheets.items():
            sheet = book.add_sheet(name)
            for r, row in enumerate(rows):
                for c, cell in enumerate(row):
                    if cell:
                        sheet.write(r, c, cell)
        book.save(str(path))
    elif suffix == ".md":
        lines = []
        for name, rows in sheets.items():
            lines.append(f"| {name} |")
            lines.extend("| | " + " | ".join(cell.replace("|", r"\|") for cell in row) + " |" for row in rows)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif suffix == ".csv":
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            for name, rows in sheets.items():
                writer.writerow([name])
                writer.writerows(["", *row] for row in rows)
    else:
        raise ValueError(suffix)
    return path


def line_of(path: Path, fragment: str) -> int:
    """The 1-based line of a Markdown/CSV form that holds `fragment`."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if fragment in line:
            return number
    raise KeyError(fragment)
