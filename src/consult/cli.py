"""The `consult` command."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from consult.forms import FormReport, FormSources, Severity, build_forms, check_forms

app = typer.Typer(help="The ISG consultation pipeline: forms, Central, sync, findings.", no_args_is_help=True)
forms_app = typer.Typer(help="Build and lint the XLSForms in forms/.", no_args_is_help=True)
app.add_typer(forms_app, name="forms")

console = Console()
errors = Console(stderr=True)

FormsDir = Annotated[Path, typer.Option("--forms-dir", help="Folder of the XLSForms (media in its media/).")]
OutDir = Annotated[Path, typer.Option("--out", help="Where the XForms and FormSchemas are written.")]
Files = Annotated[list[Path] | None, typer.Argument(help="XLSForms to process (default: all in --forms-dir).")]


def _select(files: list[Path] | None, sources: FormSources) -> list[Path]:
    paths = files or sources.xlsforms()
    missing = [p for p in paths if not p.is_file()]
    if missing or not paths:
        errors.print(f"[red]no such XLSForm: {', '.join(map(str, missing)) or sources.forms_dir / '*.xlsx'}")
        raise typer.Exit(2)
    return paths


def _print_issues(reports: list[FormReport]) -> int:
    count = 0
    for report in reports:
        for issue in report.issues:
            colour = "red" if issue.severity is Severity.ERROR else "yellow"
            errors.print(f"[{colour}]{escape(str(issue))}[/{colour}]", soft_wrap=True)
            count += issue.severity is Severity.ERROR
    return count


def _summary(reports: list[FormReport], title: str) -> Table:
    table = Table(title=title)
    for column in ("form_id", "version", "questions", "repeats", "lists", "media", "status"):
        table.add_column(column, overflow="fold")
    for report in reports:
        schema = report.compiled.schema if report.compiled else None
        status = "[green]ok" if report.ok else "[red]errors"
        if schema:
            questions = sum(1 for f in schema.fields if not f.metadata and f.kind != "calculate")
            table.add_row(schema.form_id, schema.version, str(questions),
                          str(len(schema.repeats)), str(len(schema.choice_lists)), ", ".join(schema.media), status)
        else:
            table.add_row(report.path.name, "", "", "", "", "", status)
    return table


@forms_app.command("lint")
def forms_lint(
    files: Files = None,
    forms_dir: FormsDir = Path("forms"),
    against: Annotated[Path, typer.Option(help="Last build, whose versions must not go backwards.")] = Path(
        "build/forms"),
) -> None:
    """Check the forms: translations, messages, choice lists, names, versions, pyxform and ODK Validate."""
    sources = FormSources(forms_dir)
    started = time.perf_counter()
    reports = check_forms(_select(files, sources), sources.media_dir, against)
    failed = _print_issues(reports)
    console.print(_summary(reports, f"lint: {time.perf_counter() - started:.1f} s"))
    if failed or not all(r.ok for r in reports):
        errors.print(f"[red]{failed} error(s)")
        raise typer.Exit(1)


@forms_app.command("build")
def forms_build(files: Files = None, forms_dir: FormsDir = Path("forms"), out: OutDir = Path("build/forms")) -> None:
    """Lint, then write `<form_id>.xml`, `<form_id>.schema.json` and the media into --out."""
    sources = FormSources(forms_dir)
    started = time.perf_counter()
    reports = build_forms(_select(files, sources), sources.media_dir, out)
    failed = _print_issues(reports)
    console.print(_summary(reports, f"build: {time.perf_counter() - started:.1f} s"))
    if failed or not all(r.ok for r in reports):
        errors.print(f"[red]{failed} error(s); forms with errors were not written")
        raise typer.Exit(1)
    console.print(f"XForms and FormSchemas written to [bold]{out.resolve()}[/bold]")


if __name__ == "__main__":
    app()
