"""Compiling the report files: what `consult report` and the compile-findings flow both call."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import Engine, make_url

from consult.forms.schema import FormSchema
from consult.warehouse.database import create_engine_for, database_url, safe_url

from .compute import compute_findings
from .html import write_html
from .markdown import markdown_summary
from .model import DEFAULT_TIMEZONE, FileLinks, Findings, Lang, Unsummarised
from .workbook import write_workbook


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    workbook: Path
    markdown: Path
    unsummarised: tuple[Unsummarised, ...] = ()
    """Forms in the database the report could not summarise: the command names them too."""
    pdf: Path | None = None


def load_schemas(build_dir: Path) -> dict[str, FormSchema]:
    """Every FormSchema `consult forms build` wrote: the report's labels come from them."""
    schemas = {path.name.removesuffix(".schema.json"): FormSchema.read(path)
               for path in sorted(build_dir.glob("*.schema.json"))}
    if not schemas:
        raise ValueError(f"no FormSchemas in {build_dir}: run `consult forms build` first")
    return schemas


def report_paths(out_dir: Path, lang: Lang) -> ReportPaths:
    """`findings-vi.html`, `findings-vi.xlsx`, `findings-vi.md`: one set per language side by side."""
    return ReportPaths(out_dir / f"findings-{lang}.html", out_dir / f"findings-{lang}.xlsx",
                       out_dir / f"findings-{lang}.md")


def write_report(findings: Findings, out_dir: Path, pdf: bool = False) -> ReportPaths:
    """The HTML, workbook and Markdown; with `pdf`, the A4 PDF beside them (`findings-vi.pdf`)."""
    paths = report_paths(out_dir, findings.lang)
    write_html(findings, paths.html)
    write_workbook(findings, paths.workbook)
    paths.markdown.write_text(markdown_summary(findings), encoding="utf-8")
    paths = replace(paths, unsummarised=findings.unsummarised)
    if pdf:
        from .pdf import write_pdf

        paths = replace(paths, pdf=write_pdf(paths.html, paths.html.with_suffix(".pdf")))
    return paths


def reporting_engine(database: str | None) -> Engine:
    """The reporting database (`database` as `consult sync` resolves it), refusing one no sync filled:
    an empty report would look like a consultation nobody answered."""
    url = make_url(database_url(database))
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).is_file():
        raise ValueError(f"no reporting database at {url.database}: run `consult sync` first")
    engine = create_engine_for(url)
    if not inspect(engine).has_table("submissions"):
        engine.dispose()
        raise ValueError(f"{safe_url(url)} holds no submissions: run `consult sync` first")
    return engine


def compile_report(database: str | None, build_dir: Path, lang: Lang, out_dir: Path, pdf: bool = False,
                   timezone: str = DEFAULT_TIMEZONE, attachments_dir: Path | None = None) -> ReportPaths:
    """Compute the findings and write the files; with `attachments_dir`, link the files found there."""
    engine = reporting_engine(database)
    files = FileLinks(attachments_dir, out_dir) if attachments_dir is not None else None
    try:
        findings = compute_findings(engine, load_schemas(build_dir), lang, timezone, files)
    finally:
        engine.dispose()
    return write_report(findings, out_dir, pdf)
