"""`consult export` and `consult codebook`: the forms of a build, from the reporting database, to files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from consult.findings.report import load_schemas, reporting_engine
from consult.forms.schema import FormSchema
from consult.output_dirs import claim

from .names import Format
from .tables import ExportTable, read_form
from .writers import SUFFIX, WRITERS, write_workbook


@dataclass(frozen=True)
class FormExport:
    form_id: str
    files: list[Path]
    rows: dict[str, int]
    """Table name → rows written."""


def selected_schemas(build_dir: Path, forms: list[str] | None) -> list[FormSchema]:
    schemas = load_schemas(build_dir)
    unknown = sorted(set(forms or ()) - set(schemas))
    if unknown:
        raise ValueError(f"no built form {', '.join(unknown)} in {build_dir}: built are {', '.join(schemas)}")
    return [schemas[f] for f in (forms or schemas)]


def write_tables(tables: list[ExportTable], fmt: Format, lang: str, folder: Path) -> list[Path]:
    if fmt is Format.XLSX:
        return [write_workbook(tables, folder / f"{tables[0].form_id}.xlsx", lang)]
    return [WRITERS[fmt](table, folder / f"{table.name}{SUFFIX[fmt]}", lang) for table in tables]


def export_forms(database: str | None, build_dir: Path, fmt: Format, lang: str, out: Path,
                 include_quarantined: bool = False, forms: list[str] | None = None) -> list[FormExport]:
    """Write every selected form's tables into `out/<format>-<lang>/`."""
    schemas = selected_schemas(build_dir, forms)
    folder = claim(out, option="--out") / f"{fmt}-{lang}"
    folder.mkdir(exist_ok=True)
    engine = reporting_engine(database)
    try:
        exports = []
        for schema in schemas:
            tables = read_form(engine, schema, include_quarantined)
            exports.append(FormExport(schema.form_id, write_tables(tables, fmt, lang, folder),
                                      {t.name: t.row_count for t in tables}))
        return exports
    finally:
        engine.dispose()


@dataclass(frozen=True)
class CodebookFiles:
    form_id: str
    html: Path
    workbook: Path
    markdown: Path


def write_codebooks(database: str | None, build_dir: Path, out: Path, lang: str = "vi",
                    include_quarantined: bool = False, forms: list[str] | None = None) -> list[CodebookFiles]:
    """`<form_id>-codebook.html`, `.xlsx` and `.md` per form in `out`: headings in `lang`, questions in
    every language of the form."""
    from .codebook import build_codebook, write_html, write_markdown
    from .codebook import write_workbook as write_codebook_workbook

    schemas = selected_schemas(build_dir, forms)
    folder = claim(out, option="--out")
    engine = reporting_engine(database)
    try:
        written = []
        for schema in schemas:
            book = build_codebook(schema, read_form(engine, schema, include_quarantined))
            stem = folder / f"{schema.form_id}-codebook"
            written.append(CodebookFiles(schema.form_id, write_html(book, stem.with_suffix(".html"), lang),
                                         write_codebook_workbook(book, stem.with_suffix(".xlsx"), lang),
                                         write_markdown(book, stem.with_suffix(".md"), lang)))
        return written
    finally:
        engine.dispose()
