"""The `consult` command."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from consult.cli_errors import USAGE, UserMistake, reported
from consult.forms import FormReport, FormSources, Profile, Severity, build_forms, check_forms
from consult.output_dirs import claim, mark

if TYPE_CHECKING:
    from consult.central import CentralSession


class ConsultGroup(TyperGroup):
    """Every command runs inside `reported`: a mistake is one line and exit 1, a bug a traceback."""

    def invoke(self, ctx: typer.Context) -> object:
        with reported(debug=bool(ctx.params.get("debug"))):
            return super().invoke(ctx)


app = typer.Typer(help="The ISG consultation pipeline: forms, Central, sync, findings.", no_args_is_help=True,
                  cls=ConsultGroup)
forms_app = typer.Typer(help="Build and lint the XLSForms in forms/.", no_args_is_help=True)
app.add_typer(forms_app, name="forms")

console = Console()
errors = Console(stderr=True)


@app.callback()
def main(debug: Annotated[bool, typer.Option(
        "--debug", help="On a failure, show its traceback and the log lines of Prefect, pyodk and GX too, "
                        "for a bug report.")] = False) -> None:
    """The ISG consultation pipeline: forms, Central, sync, findings."""


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


def _fits(table: Table) -> bool:
    return console.measure(table, options=console.options.update_width(10_000)).maximum <= console.width


def _summary(reports: list[FormReport], title: str) -> RenderableType:
    """One row per form; on a narrow terminal the media files go under the table, so no form id is cut."""
    rows, media = [], {}
    for report in reports:
        schema = report.compiled.schema if report.compiled else None
        status = "[green]ok" if report.ok else "[red]errors"
        if schema:
            questions = sum(1 for f in schema.fields if not f.metadata and f.kind != "calculate")
            rows.append((schema.form_id, schema.version, str(questions), str(len(schema.repeats)),
                         str(len(schema.choice_lists)), ", ".join(schema.media), status))
            for name in schema.media:
                media.setdefault(name, []).append(schema.form_id)
        else:
            rows.append((report.path.name, "", "", "", "", "", status))
    table = Table(title=title)
    for column in ("form_id", "version", "questions", "repeats", "lists", "media", "status"):
        table.add_column(column, no_wrap=column != "media")
    for row in rows:
        table.add_row(*row)
    if _fits(table):
        return table
    narrow = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("form_id", "version", "questions", "repeats", "lists", "status"):
        narrow.add_column(column, no_wrap=True, justify="left" if column == "form_id" else "right")
    for row in rows:
        narrow.add_row(*row[:5], row[6])
    if not media:
        return narrow
    return Group(narrow, Text("media: " + "; ".join(f"{name} ({', '.join(forms)})" for name, forms in media.items())))


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
    paths = _select(files, sources)
    claim(out, option="--out", create=False)
    try:
        with _forms_config():
            reports = build_forms(paths, sources.media_dir, out, profile)
    finally:
        mark(out)
    failed = _print_issues(reports)
    console.print(_summary(reports, f"build: {time.perf_counter() - started:.1f} s"))
    if failed or not all(r.ok for r in reports):
        errors.print(f"[red]{failed} error(s); forms with errors were not written")
        raise typer.Exit(1)
    console.print(f"XForms and FormSchemas written to [bold]{escape(str(out.resolve()))}[/bold]", soft_wrap=True)


CentralConfigFile = Annotated[Path | None, typer.Option(
    "--central-config", help="pyodk TOML config; CONSULT_CENTRAL_URL/_USER/_PASSWORD/_PROJECT override it.")]
BuildDir = Annotated[Path, typer.Option("--build-dir", help="Output of `consult forms build`.")]


@contextmanager
def _central(config_file: Path | None, project: str | None) -> Iterator[tuple[CentralSession, int]]:
    """Open a Central session and resolve the project (its failures are reported by `reported`)."""
    from consult.central import CentralSession, CentralSettings, resolve_project

    settings = CentralSettings.load(config_file)
    if project:
        settings = settings.model_copy(update={"project": project})
    with CentralSession(settings) as central:
        yield central, resolve_project(central, settings.project)


@app.command()
def deploy(
    build_dir: BuildDir = Path("build/forms"),
    central_config: CentralConfigFile = None,
    project: Annotated[str | None, typer.Option(help="Project name or id (default: from the config).")] = None,
    forms_config: Annotated[Path, typer.Option("--forms-config", help="Its [entity_lists.<name>] tables set "
                                               "each entity list's approval.")] = Path("forms/consult.toml"),
) -> None:
    """Publish the built forms and their media to ODK Central; unchanged forms are left alone."""
    from consult.central import MissingMediaError, built_forms, deploy_forms
    from consult.central.entities import read_entity_list_settings

    forms = built_forms(build_dir)
    if not forms:
        errors.print(f"[red]no built forms in {build_dir}: run `consult forms build` first")
        raise typer.Exit(2)
    refused: MissingMediaError | None = None
    with _central(central_config, project) as (central, project_id):
        try:
            deployed = deploy_forms(central, project_id, forms, read_entity_list_settings(forms_config))
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

    field_teams = read_teams(teams_file)
    claim(out, option="--out", create=False)
    try:
        with _central(central_config, project) as (central, project_id):
            access = ensure_teams(central, project_id, field_teams)
            name = project_name(central, project_id)
            sheet = write_qr_codes(central.settings.base_url, project_id, name, access, out)
    finally:
        mark(out)
    table = Table(title=f"field teams in project {project_id}")
    for column in ("team", "app user", "forms", "new assignments"):
        table.add_column(column)
    for item in access:
        table.add_row(item.team.name, f"{item.app_user_id}{' (new)' if item.created else ''}",
                      ", ".join(item.team.forms), ", ".join(item.assigned) or "-")
    console.print(table)
    console.print(f"QR codes: [bold]{escape(str(sheet.sheet.resolve()))}[/bold] (credentials: print, hand out, "
                  "do not share)", soft_wrap=True)


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
    page_size: Annotated[int, typer.Option("--page-size", min=1, help="Submissions per OData page (a "
                                           "transaction holds five); 5000 syncs large forms ~1.1x faster for "
                                           "~230 MB more memory (bench/README.md).")] = 1000,
    attachments: Annotated[Path, typer.Option("--attachments-dir", help="Where the files of the loaded "
                                              "submissions go (<form>/<instance>/).")] = Path("attachments"),
    no_attachments: Annotated[bool, typer.Option("--no-attachments", help="Do not download the submissions' "
                                                 "files.")] = False,
) -> None:
    """Pull, validate and load the submissions into the reporting database (the sync-submissions flow)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from consult.central import CentralSettings
    from consult.sync import SyncSummary, start_sync
    from consult.warehouse.database import create_engine_for, database_url

    CentralSettings.load(central_config)  # a configuration or URL mistake is said before anything starts
    engine = create_engine_for(database_url(db))
    try:
        if engine.dialect.name != "sqlite":
            engine.connect().close()
    finally:
        engine.dispose()
    claim(reports, option="--reports", create=False)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
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
                                   reports_dir=str(reports), page_size=page_size, progress=show,
                                   attachments_dir=None if no_attachments else str(attachments))
        finally:
            mark(reports)
    console.print(_sync_table(summaries))
    _print_entity_lists(_last_run_entity_lists(db))
    if (reports / "validation" / "index.html").is_file():
        console.print(f"Data Docs: [bold]{escape(str((reports / 'validation' / 'index.html').resolve()))}[/bold]",
                      soft_wrap=True)


SYNC_COUNTS = ("pulled", "new", "updated", "deleted", "purged", "valid", "quarantined", "written_back")


def _sync_table(summaries: list, counts: tuple[str, ...] = SYNC_COUNTS, seconds: bool = True) -> RenderableType:
    """One row per form when the terminal is wide enough; else one row per count and a column per form
    (numbered, named under the table), so on 80 columns no name or number is cut."""
    names = [s.form_id + (" (not modified)" if s.not_modified else "") for s in summaries]
    headers = [c.replace("_", " ") for c in counts] + (["seconds"] if seconds else [])
    values = [[str(getattr(s, c)) for c in counts] + ([f"{s.seconds:.2f}"] if seconds else []) for s in summaries]
    wide = Table(title="sync")
    wide.add_column("form", no_wrap=True)
    for header in headers:
        wide.add_column(header, justify="right", no_wrap=True)
    for name, row in zip(names, values, strict=True):
        wide.add_row(name, *row)
    if _fits(wide):
        return wide
    legend = "\n".join(f"{i}  {name}" for i, name in enumerate(names, 1))
    tall = Table(title="sync", box=box.SIMPLE_HEAD, pad_edge=False)
    tall.add_column("form", no_wrap=True)
    for i in range(1, len(names) + 1):
        tall.add_column(str(i), justify="right", no_wrap=True)
    for j, header in enumerate(headers):
        tall.add_row(header, *(row[j] for row in values))
    if _fits(tall):
        return Group(tall, Text(legend))
    short = {"updated": "upd", "deleted": "del", "quarantined": "quar", "written back": "back", "seconds": "s"}
    legend += "\n" + ", ".join(f"{short[h]}: {h}" for h in headers if h in short)
    rows = Table(title="sync", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("#", *headers):
        rows.add_column(short.get(header, header), justify="right", overflow="fold")
    for i, row in enumerate(values, 1):
        rows.add_row(str(i), *row)
    return Group(rows, Text(legend))


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Everything the demo makes; a folder the demo made is "
                                          "emptied first, any other non-empty folder refused.")] = Path(
        "build/demo"),
    lang: Annotated[str, typer.Option(help="Language of the report: vi or en.")] = "vi",
    seed: Annotated[int, typer.Option(help="Seed of the generated fieldwork.")] = 2004,
    forms_dir: FormsDir = Path("forms"),
) -> None:
    """A whole consultation round here: sandbox Central, deploy, teams, fieldwork, sync, findings."""
    from consult.demo import PROJECT, run_demo
    from consult.sandbox.server import DEFAULT_ADMIN_PASSWORD

    result = run_demo(workdir, forms_dir=forms_dir, seed=seed, lang=lang,
                      say=lambda line: console.print(f"• {escape(line)}"))
    console.print(_sync_table(result.summaries, ("pulled", "valid", "quarantined", "written_back"), seconds=False))
    console.print(f"Demo done in {result.seconds:.0f} s. Open:")
    for name, path in {"XForms": result.xforms, "QR sheet": result.qr_sheet, **result.reports}.items():
        console.print(f"  {name:10} [bold]{escape(str(path.resolve()))}[/bold]", soft_wrap=True)
    console.print(f"  {'database':10} [bold]{escape(result.database_url)}[/bold]", soft_wrap=True)
    program = shlex.quote(sys.argv[0]) if Path(sys.argv[0]).name == "consult" else "consult"  # .venv/bin/consult
    reports, exports = shlex.quote(str(workdir / "reports")), shlex.quote(str(workdir / "exports"))
    db, build = shlex.quote(result.database_url), shlex.quote(str(result.xforms))
    central = (f"CONSULT_CENTRAL_URL=http://127.0.0.1:8383 CONSULT_CENTRAL_USER={shlex.quote(result.central_user)} "
               f"CONSULT_CENTRAL_PASSWORD={DEFAULT_ADMIN_PASSWORD} CONSULT_CENTRAL_PROJECT={shlex.quote(PROJECT)}")
    console.print("The pipeline's commands on the demo's database (the sync needs the demo's Central: "
                  "start it in a second terminal with the first line):", soft_wrap=True)
    for line in (f"{program} sandbox --data-dir {shlex.quote(str(result.sandbox_dir))} --port 8383",
                 f"{central} {program} sync --db {db} --build-dir {build} --reports {reports} "
                 f"--attachments-dir {shlex.quote(str(workdir / 'attachments'))}",
                 f"{program} report --db {db} --build-dir {build} --lang en --out {reports} --pdf",
                 f"{program} export --db {db} --build-dir {build} --format spss --lang en --out {exports}",
                 f"{program} codebook --db {db} --build-dir {build} --out {exports}/codebook"):
        console.print(f"  {line}", soft_wrap=True, markup=False, highlight=False)


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
    attachments: Annotated[Path, typer.Option("--attachments-dir", help="Where `consult sync` or `consult "
                                              "attachments` put the submissions' files: linked from the report "
                                              "(the decision photos).")] = Path("attachments"),
) -> None:
    """Compile the consultation findings: an HTML report, an Excel workbook and a Markdown summary."""
    from consult.findings import LANGUAGES, compile_report
    from consult.findings.display import known_timezone

    if lang not in LANGUAGES:
        raise UserMistake(f"--lang must be vi or en, not {lang!r}", USAGE)
    if not known_timezone(timezone):
        raise UserMistake(f"--timezone {timezone} is not a time zone: use e.g. Asia/Ho_Chi_Minh", USAGE)
    claim(out, option="--out", create=False)
    try:
        paths = compile_report(db, build_dir, lang, out, pdf, timezone,  # type: ignore[arg-type]  # checked above
                               attachments)
    finally:
        mark(out)
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

entities_app = typer.Typer(help="Entity lists (the focal-point registry): import, list, export, sync.",
                           no_args_is_help=True)
app.add_typer(entities_app, name="entities")
ListName = Annotated[str, typer.Option("--list", help="The entity list, e.g. focal_points.")]
ProjectOption = Annotated[str | None, typer.Option(help="Project name or id (default: from the config).")]


@entities_app.command("import")
def entities_import(
    file: Annotated[Path, typer.Argument(help="A .xlsx or .csv: a label column and one column per property.")],
    list_name: ListName,
    key: Annotated[str | None, typer.Option(help="The column that tells rows apart (e.g. phone); a rerun skips "
                                                 "rows already imported. Default: the file's uuid column.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Entities per request.")] = 200,
    central_config: CentralConfigFile = None,
    project: ProjectOption = None,
) -> None:
    """Check every row, then create the entities Central lacks; nothing is created if any row is bad."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from consult.entities import ImportRefused, import_entities

    if not file.is_file():
        raise UserMistake(f"no such file: {file}: give the contact sheet (.xlsx or .csv)")
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console)
    tasks: list[int] = []

    def show(done: int, total: int) -> None:
        """The bar appears once every row passed the checks and there is something to create."""
        if total and not tasks:
            bar.start()
            tasks.append(bar.add_task(f"{list_name}: creating", total=total))
        if tasks:
            bar.update(tasks[0], completed=done)

    with _central(central_config, project) as (central, project_id):
        try:
            result = import_entities(central, project_id, list_name, file, key, batch_size, show)
        except ImportRefused as refused:
            errors.print(f"[red]{escape(str(refused))}; fix these rows and run again:", soft_wrap=True)
            for problem in refused.problems:
                errors.print(f"[red]  {escape(problem)}", soft_wrap=True)
            raise typer.Exit(1) from None
        finally:
            bar.stop()
    console.print(f"{list_name}: {result.rows} rows, {result.created} created, {result.skipped} already there")


@entities_app.command("list")
def entities_list(list_name: ListName, central_config: CentralConfigFile = None, project: ProjectOption = None) -> None:
    """The entities of a list: label, version, open conflict, last change."""
    from consult.entities import read_entities

    with _central(central_config, project) as (central, project_id):
        records = sorted(read_entities(central, project_id, list_name), key=lambda r: r.label)
    table = Table(title=f"{list_name}: {len(records)} entities")
    table.add_column("label", overflow="ellipsis", no_wrap=True, max_width=40)
    table.add_column("v", justify="right")
    table.add_column("conflict")
    table.add_column("updated")
    table.add_column("uuid", no_wrap=True)
    for r in records:
        table.add_row(escape(r.label), str(r.version), r.conflict or "", (r.updated_at or r.created_at)[:10],
                      r.uuid[:8])
    console.print(table)


@entities_app.command("export")
def entities_export(
    list_name: ListName,
    out: Annotated[Path, typer.Option("--out", help="A .csv (UTF-8 with BOM) or .xlsx file.")],
    central_config: CentralConfigFile = None,
    project: ProjectOption = None,
) -> None:
    """Write the list to a CSV or Excel file: uuid, label, properties, version, conflict, times, creator."""
    from consult.entities import export_entities, list_properties, read_entities

    if out.suffix.lower() not in (".csv", ".xlsx"):
        raise UserMistake(f"--out {out}: give a .csv or .xlsx file", USAGE)
    with _central(central_config, project) as (central, project_id):
        properties = list_properties(central, project_id, list_name)
        records = list(read_entities(central, project_id, list_name))
        export_entities(records, properties, out)
    console.print(f"{list_name}: {len(records)} entities written to [bold]{escape(str(out.resolve()))}[/bold]",
                  soft_wrap=True)


@entities_app.command("sync")
def entities_sync(
    list_names: Annotated[list[str] | None, typer.Option("--list", help="Only this list (repeatable; default: "
                                                                         "every list of the project).")] = None,
    db: DatabaseUrl = None,
    central_config: CentralConfigFile = None,
    project: ProjectOption = None,
) -> None:
    """Copy the entity lists into the reporting database: only what changed since the last sync."""
    from consult.warehouse.database import create_engine_for, database_url
    from consult.warehouse.entities import sync_entity_lists

    engine = create_engine_for(database_url(db))
    try:
        with _central(central_config, project) as (central, project_id):
            summaries = sync_entity_lists(central, engine, project_id, list_names)
    finally:
        engine.dispose()
    _print_entity_lists([(s.list_name, s.new, s.updated, s.deleted, s.restored, s.conflicts, len(s.errors))
                         for s in summaries])
    for s in summaries:
        for error in s.errors:
            errors.print(f"[yellow]{s.list_name}: no entity from {escape(str(error))}", soft_wrap=True)


def _print_entity_lists(rows: list[tuple[str, int, int, int, int, int, int]]) -> None:
    """The entity lists' counts, and what to do about open conflicts: only a person can say which
    offline update of a focal point was right."""
    if not rows:
        return
    table = Table(title="entity lists")
    for column in ("list", "new", "updated", "deleted", "restored", "conflicts", "errors"):
        table.add_column(column, justify="left" if column == "list" else "right")
    for row in rows:
        table.add_row(row[0], *map(str, row[1:]))
    console.print(table)
    for name, *_, conflicts, _errors in rows:
        if conflicts:
            errors.print(f"[yellow]{name}: {conflicts} entit{'y' if conflicts == 1 else 'ies'} in conflict (updated "
                         f"offline from an old version): check and resolve in Central, Entities → {name}",
                         soft_wrap=True)


def _last_run_entity_lists(db: str | None) -> list[tuple[str, int, int, int, int, int, int]]:
    """The entity lists the run just recorded in `sync_runs` (the flow may have run in a Prefect worker)."""
    import json

    from sqlalchemy import select

    from consult.warehouse.database import create_engine_for, database_url
    from consult.warehouse.tables import sync_runs

    engine = create_engine_for(database_url(db))
    try:
        with engine.connect() as conn:
            summary = conn.execute(select(sync_runs.c.summary).order_by(sync_runs.c.id.desc()).limit(1)).scalar()
    finally:
        engine.dispose()
    lists = json.loads(summary).get("entity_lists", []) if summary else []
    return [(e["list"], e["new"], e["updated"], e["deleted"], e["restored"], e["conflicts"], e["entity_errors"])
            for e in lists]


if __name__ == "__main__":
    app()
