"""The `consult` command."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from consult.forms import FormReport, FormSources, Profile, Severity, build_forms, check_forms

if TYPE_CHECKING:
    from consult.central import CentralSession

app = typer.Typer(help="The ISG consultation pipeline: forms, Central, sync, findings.", no_args_is_help=True)
forms_app = typer.Typer(help="Build and lint the XLSForms in forms/.", no_args_is_help=True)
app.add_typer(forms_app, name="forms")

console = Console()
errors = Console(stderr=True)

FormsDir = Annotated[Path, typer.Option("--forms-dir", help="Folder of the XLSForms (media in its media/).")]
OutDir = Annotated[Path, typer.Option("--out", help="Where the XForms and FormSchemas are written.")]
Files = Annotated[list[Path] | None, typer.Argument(help="XLSForms to process (default: all in --forms-dir).")]
ProfileOption = Annotated[Profile | None, typer.Option(
    "--profile", help="Rules for every form given: odk (any form) or isg (ISG house rules); default: "
                      "as forms/consult.toml says.")]


def _select(files: list[Path] | None, sources: FormSources) -> list[Path]:
    paths = files or sources.xlsforms()
    missing = [p for p in paths if not p.is_file()]
    if missing or not paths:
        errors.print(f"[red]no such XLSForm: {', '.join(map(str, missing)) or sources.forms_dir / '*.xlsx'}")
        raise typer.Exit(2)
    return paths


@contextmanager
def _forms_config() -> Iterator[None]:
    """A forms/consult.toml that cannot be used is one red line, not a traceback."""
    from consult.forms import FormsConfigError

    try:
        yield
    except FormsConfigError as exc:
        errors.print(f"[red]{escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None


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
    profile: ProfileOption = None,
) -> None:
    """Check the forms: pyxform, ODK Validate, references and media; ISG's house rules for isg forms."""
    sources = FormSources(forms_dir)
    started = time.perf_counter()
    with _forms_config():
        reports = check_forms(_select(files, sources), sources.media_dir, against, profile)
    failed = _print_issues(reports)
    console.print(_summary(reports, f"lint: {time.perf_counter() - started:.1f} s"))
    if failed or not all(r.ok for r in reports):
        errors.print(f"[red]{failed} error(s)")
        raise typer.Exit(1)


@forms_app.command("build")
def forms_build(files: Files = None, forms_dir: FormsDir = Path("forms"), out: OutDir = Path("build/forms"),
                profile: ProfileOption = None) -> None:
    """Lint, then write `<form_id>.xml`, `<form_id>.schema.json` and the media into --out."""
    sources = FormSources(forms_dir)
    started = time.perf_counter()
    with _forms_config():
        reports = build_forms(_select(files, sources), sources.media_dir, out, profile)
    failed = _print_issues(reports)
    console.print(_summary(reports, f"build: {time.perf_counter() - started:.1f} s"))
    if failed or not all(r.ok for r in reports):
        errors.print(f"[red]{failed} error(s); forms with errors were not written")
        raise typer.Exit(1)
    console.print(f"XForms and FormSchemas written to [bold]{out.resolve()}[/bold]")


CentralConfigFile = Annotated[Path | None, typer.Option(
    "--central-config", help="pyodk TOML config; CONSULT_CENTRAL_URL/_USER/_PASSWORD/_PROJECT override it.")]
BuildDir = Annotated[Path, typer.Option("--build-dir", help="Output of `consult forms build`.")]


@contextmanager
def _central(config_file: Path | None, project: str | None) -> Iterator[tuple[CentralSession, int]]:
    """Open a Central session and resolve the project; any failure becomes one red line and exit 1."""
    from consult.central import (
        CentralConfigError,
        CentralError,
        CentralSession,
        CentralSettings,
        DeployError,
        resolve_project,
    )

    try:
        settings = CentralSettings.load(config_file)
        if project:
            settings = settings.model_copy(update={"project": project})
        with CentralSession(settings) as central:
            yield central, resolve_project(central, settings.project)
    except (CentralConfigError, CentralError, DeployError, OSError, ValueError) as exc:
        errors.print(f"[red]{escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None


@app.command()
def deploy(
    build_dir: BuildDir = Path("build/forms"),
    central_config: CentralConfigFile = None,
    project: Annotated[str | None, typer.Option(help="Project name or id (default: from the config).")] = None,
) -> None:
    """Publish the built forms and their media to ODK Central; unchanged forms are left alone."""
    from consult.central import MissingMediaError, built_forms, deploy_forms

    forms = built_forms(build_dir)
    if not forms:
        errors.print(f"[red]no built forms in {build_dir}: run `consult forms build` first")
        raise typer.Exit(2)
    refused: MissingMediaError | None = None
    with _central(central_config, project) as (central, project_id):
        try:
            deployed = deploy_forms(central, project_id, forms)
        except MissingMediaError as exc:
            deployed, refused = exc.deployed, exc
    table = Table(title=f"deployed to project {project_id} on {central.settings.base_url}")
    for column in ("form_id", "version", "action", "attachments"):
        table.add_column(column)
    for item in deployed:
        table.add_row(item.form_id, item.version, str(item.action), ", ".join(item.attachments))
    console.print(table)
    if refused is not None:
        for line in str(refused).splitlines():
            errors.print(f"[red]{escape(line)}", soft_wrap=True)
        raise typer.Exit(1)


@app.command()
def teams(
    teams_file: Annotated[Path, typer.Option("--teams", help="Team definitions.")] = Path("forms/teams.toml"),
    out: Annotated[Path, typer.Option(help="Where the QR codes and the printable sheet go.")] = Path("build/teams"),
    central_config: CentralConfigFile = None,
    project: Annotated[str | None, typer.Option(help="Project name or id (default: from the config).")] = None,
) -> None:
    """Create an app user per field team, assign its forms, and write ODK Collect QR codes."""
    from consult.central import ensure_teams, read_teams, write_qr_codes
    from consult.central.teams import project_name

    with _central(central_config, project) as (central, project_id):
        access = ensure_teams(central, project_id, read_teams(teams_file))
        sheet = write_qr_codes(central.settings.base_url, project_id, project_name(central, project_id), access, out)
    table = Table(title=f"field teams in project {project_id}")
    for column in ("team", "app user", "forms", "new assignments"):
        table.add_column(column)
    for item in access:
        table.add_row(item.team.name, f"{item.app_user_id}{' (new)' if item.created else ''}",
                      ", ".join(item.team.forms), ", ".join(item.assigned) or "-")
    console.print(table)
    console.print(f"QR codes: [bold]{sheet.sheet.resolve()}[/bold] (credentials: print, hand out, do not share)")


@app.command()
def sync(
    form: Annotated[list[str] | None, typer.Option("--form", help="Only this form (repeatable).")] = None,
    full: Annotated[bool, typer.Option("--full", help="Pull everything and mark purged submissions.")] = False,
    write_back: Annotated[bool, typer.Option("--write-back", help="Mark quarantined submissions `hasIssues` "
                                                                   "in Central with a comment saying why.")] = False,
    db: Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL (default CONSULT_DATABASE_URL, then "
                                                        "sqlite:///reporting.db).")] = None,
    build_dir: BuildDir = Path("build/forms"),
    central_config: CentralConfigFile = None,
    project: Annotated[str | None, typer.Option(help="Project name or id (default: from the config).")] = None,
    reports: Annotated[Path, typer.Option(help="Where the validation Data Docs go.")] = Path("reports"),
    page_size: Annotated[int, typer.Option("--page-size", min=1, help="Submissions per OData page and "
                                           "transaction; 5000 syncs large forms ~1.5x faster for ~140 MB more "
                                           "memory (bench/README.md).")] = 1000,
) -> None:
    """Pull, validate and load the submissions into the reporting database (the sync-submissions flow)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from consult.central import CentralConfigError, CentralError
    from consult.sync import SyncSummary, start_sync

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bars: dict[str, int] = {}

        def show(summary: SyncSummary) -> None:
            if summary.form_id not in bars:
                bars[summary.form_id] = progress.add_task(summary.form_id, total=None)
            note = "not modified" if summary.not_modified else f"{summary.quarantined} quarantined"
            progress.update(bars[summary.form_id], completed=summary.pulled, total=summary.expected,
                            description=f"{summary.form_id} ({note})")

        try:
            summaries = start_sync(forms=form, full=full, write_back=write_back, project=project,
                                   build_dir=str(build_dir), database=db,
                                   central_config=str(central_config) if central_config else None,
                                   reports_dir=str(reports), page_size=page_size, progress=show)
        except (CentralConfigError, CentralError, ValueError, OSError) as exc:
            errors.print(f"[red]{escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(1) from None
    table = Table(title="sync")
    for column in ("form", "pulled", "new", "updated", "deleted", "purged", "valid", "quarantined",
                   "written back", "seconds"):
        table.add_column(column, justify="left" if column == "form" else "right")
    for s in summaries:
        table.add_row(s.form_id + (" (not modified)" if s.not_modified else ""), *map(str, (
            s.pulled, s.new, s.updated, s.deleted, s.purged, s.valid, s.quarantined, s.written_back)),
            f"{s.seconds:.2f}")
    console.print(table)
    if (reports / "validation" / "index.html").is_file():
        console.print(f"Data Docs: [bold]{(reports / 'validation' / 'index.html').resolve()}[/bold]")


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Everything the demo makes (emptied first).")] = Path("build/demo"),
    lang: Annotated[str, typer.Option(help="Language of the report: vi or en.")] = "vi",
    seed: Annotated[int, typer.Option(help="Seed of the generated fieldwork.")] = 2004,
) -> None:
    """A whole consultation round here: sandbox Central, deploy, teams, fieldwork, sync, findings."""
    from consult.demo import run_demo

    result = run_demo(workdir, seed=seed, lang=lang, say=lambda line: console.print(f"• {escape(line)}"))
    table = Table(title="sync")
    for column in ("form", "pulled", "valid", "quarantined", "written back"):
        table.add_column(column)
    for s in result.summaries:
        table.add_row(s.form_id, str(s.pulled), str(s.valid), str(s.quarantined), str(s.written_back))
    console.print(table)
    console.print(f"Demo done in {result.seconds:.0f} s. Open:")
    for name, path in {"XForms": result.xforms, "QR sheet": result.qr_sheet, **result.reports}.items():
        console.print(f"  {name:10} [bold]{path.resolve()}[/bold]")
    console.print(f"  {'database':10} [bold]{result.database_url}[/bold]")


@app.command()
def sandbox(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8383,
    data_dir: Annotated[Path, typer.Option(help="Where the sandbox keeps its SQLite file and blobs.")] = Path(
        "build/sandbox"),
    admin_email: Annotated[str, typer.Option(help="The web user to create.")] = "admin@example.org",
    domain: Annotated[str | None, typer.Option(help="Public base URL for absolute links.")] = None,
) -> None:
    """Serve a local ODK Central-compatible server for tests, demos and training (Ctrl-C stops it).

    The admin password comes from CONSULT_SANDBOX_ADMIN_PASSWORD (default: sandbox-admin-password)."""
    import os

    from consult.sandbox import serve
    from consult.sandbox.server import DEFAULT_ADMIN_PASSWORD, PASSWORD_ENV

    data_dir.mkdir(parents=True, exist_ok=True)
    console.print(f"ODK Central sandbox on [bold]http://127.0.0.1:{port}[/bold], data in {data_dir}, "
                  f"user {admin_email}")
    serve("127.0.0.1", port, data_dir, domain, admin_email, os.environ.get(PASSWORD_ENV, DEFAULT_ADMIN_PASSWORD))


@app.command()
def report(
    db: Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL (default CONSULT_DATABASE_URL, then "
                                                        "sqlite:///reporting.db).")] = None,
    build_dir: BuildDir = Path("build/forms"),
    lang: Annotated[str, typer.Option("--lang", help="Language of the report: vi (default) or en.")] = "vi",
    out: Annotated[Path, typer.Option("--out", help="Where the report files are written.")] = Path("reports"),
    pdf: Annotated[bool, typer.Option("--pdf", help="Also write the A4 PDF (findings-<lang>.pdf).")] = False,
    timezone: Annotated[str, typer.Option("--timezone", help="The readers' time zone, for the report's "
                                                             "date.")] = "Asia/Ho_Chi_Minh",
) -> None:
    """Compile the consultation findings: an HTML report, an Excel workbook and a Markdown summary."""
    from sqlalchemy.exc import SQLAlchemyError

    from consult.findings import LANGUAGES, compile_report
    from consult.findings.display import known_timezone
    from consult.findings.pdf import PdfUnavailable

    if lang not in LANGUAGES:
        errors.print(f"[red]--lang must be vi or en, not {escape(lang)}")
        raise typer.Exit(2)
    if not known_timezone(timezone):
        errors.print(f"[red]--timezone {escape(timezone)} is not a time zone: use e.g. Asia/Ho_Chi_Minh")
        raise typer.Exit(2)
    try:
        paths = compile_report(db, build_dir, lang, out, pdf, timezone)  # type: ignore[arg-type]  # checked above
    except (ValueError, OSError, SQLAlchemyError, PdfUnavailable) as exc:
        errors.print(f"[red]{escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    for name, path in (("Report", paths.html), ("Workbook", paths.workbook), ("Summary", paths.markdown),
                       ("PDF", paths.pdf)):
        if path is not None:
            console.print(f"{name}: [bold]{escape(str(path.resolve()))}[/bold]", soft_wrap=True)
    for form in paths.unsummarised:
        errors.print(f"[yellow]Not summarised: {escape(form.form_id)}: {escape(form.reason)}", soft_wrap=True)


DatabaseUrl = Annotated[str | None, typer.Option(
    "--db", help="SQLAlchemy URL (default CONSULT_DATABASE_URL, then sqlite:///reporting.db).")]
FormOption = Annotated[list[str] | None, typer.Option("--form", help="Only this form (repeatable).")]
Quarantined = Annotated[bool, typer.Option("--include-quarantined", help="Add the quarantined submissions, "
                                                                           "with their validation_status.")]


@app.command()
def export(
    format: Annotated[str, typer.Option("--format", help="stata, spss, parquet, csv or xlsx.")] = "stata",
    lang: Annotated[str, typer.Option("--lang", help="Language of the labels: vi (default) or en.")] = "vi",
    out: Annotated[Path, typer.Option("--out", help="Folder of the exports (one sub-folder per format and "
                                                    "language).")] = Path("exports"),
    include_quarantined: Quarantined = False,
    form: FormOption = None,
    db: DatabaseUrl = None,
    build_dir: BuildDir = Path("build/forms"),
) -> None:
    """Write each form's data, labelled, for Stata, SPSS, R, Python or Excel: one file per form and repeat."""
    from sqlalchemy.exc import SQLAlchemyError

    from consult.exports import Format, export_forms

    if format not in set(Format) or lang not in ("vi", "en"):
        errors.print(f"[red]--format must be one of {', '.join(Format)} and --lang vi or en, "
                     f"not {escape(format)}/{escape(lang)}")
        raise typer.Exit(1)
    try:
        exports = export_forms(db, build_dir, Format(format), lang, out, include_quarantined, form)
    except (ValueError, OSError, SQLAlchemyError) as exc:
        errors.print(f"[red]{escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    for item in exports:
        rows = ", ".join(f"{name}: {count}" for name, count in item.rows.items())
        console.print(f"{item.form_id} ({rows}): [bold]{escape(str(item.files[0].parent.resolve()))}[/bold]",
                      soft_wrap=True)


@app.command()
def codebook(
    lang: Annotated[str, typer.Option("--lang", help="Language of the headings: vi (default) or en; the "
                                                     "questions are in every language of the form.")] = "vi",
    out: Annotated[Path, typer.Option("--out", help="Folder of the codebooks.")] = Path("codebook"),
    include_quarantined: Quarantined = False,
    form: FormOption = None,
    db: DatabaseUrl = None,
    build_dir: BuildDir = Path("build/forms"),
) -> None:
    """Write each form's codebook (HTML, Excel, Markdown): questions, codes, labels and counts per column."""
    from sqlalchemy.exc import SQLAlchemyError

    from consult.exports import write_codebooks

    if lang not in ("vi", "en"):
        errors.print(f"[red]--lang must be vi or en, not {escape(lang)}")
        raise typer.Exit(1)
    try:
        books = write_codebooks(db, build_dir, out, lang, include_quarantined, form)
    except (ValueError, OSError, SQLAlchemyError) as exc:
        errors.print(f"[red]{escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    for book in books:
        console.print(f"{book.form_id}: [bold]{escape(str(book.html.resolve()))}[/bold] (+ .xlsx, .md)",
                      soft_wrap=True)


@app.command()
def attachments(
    out: Annotated[Path, typer.Option("--out", help="Folder of the files: <form>/<instance>/.")] = Path(
        "attachments"),
    form: FormOption = None,
    db: DatabaseUrl = None,
    build_dir: BuildDir = Path("build/forms"),
    central_config: CentralConfigFile = None,
    project: Annotated[str | None, typer.Option(help="Project name or id (default: from the config).")] = None,
) -> None:
    """Download the files (photos…) of the loaded submissions; files already here are not fetched again."""
    from sqlalchemy.exc import SQLAlchemyError

    from consult.attachments import has_attachments, sync_attachments
    from consult.exports.run import selected_schemas
    from consult.findings.report import reporting_engine

    try:
        schemas = [s for s in selected_schemas(build_dir, form) if has_attachments(s)]
        engine = reporting_engine(db)
    except (ValueError, OSError, SQLAlchemyError) as exc:
        errors.print(f"[red]{escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    try:
        with _central(central_config, project) as (central, project_id):
            summaries = [sync_attachments(central, engine, project_id, schema, out) for schema in schemas]
    except SQLAlchemyError as exc:
        errors.print(f"[red]{escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    table = Table(title=f"attachments in {out}")
    for column in ("form", "submissions", "downloaded", "unchanged", "missing on Central"):
        table.add_column(column, justify="left" if column == "form" else "right", overflow="fold")
    for summary in summaries:
        table.add_row(summary.form_id, *map(str, (summary.submissions, summary.downloaded, summary.unchanged,
                                                  len(summary.missing))))
    console.print(table)
    for summary in summaries:
        for missing in summary.missing:
            errors.print(f"[yellow]{summary.form_id} {escape(str(missing))}", soft_wrap=True)

if __name__ == "__main__":
    app()
