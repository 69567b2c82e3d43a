"""The demo: a whole consultation round on this machine, from the XLSForms to the findings.

A sandbox Central on a free loopback port stands in for the ISG Office's server; the
fieldwork generator plays the enumerators (with its ~5 % deliberate mistakes) and posts
over OpenRosa as ODK Collect does; then the real sync flow runs with write-back, and the
findings are compiled. Every step is the production code path; only the server and the
enumerators are stand-ins.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from consult.central import (
    BuiltForm,
    CentralSession,
    CentralSettings,
    collect_session,
    deploy_forms,
    ensure_teams,
    read_teams,
    resolve_project,
    submit,
    write_qr_codes,
)
from consult.cli_errors import USAGE, UserMistake
from consult.fieldwork import fieldwork
from consult.forms import FormSchema, FormSources, build_forms
from consult.output_dirs import claim
from consult.sandbox import SandboxServer

PROJECT = "ISG Consultations"
Say = Callable[[str], None]


@dataclass
class DemoResult:
    xforms: Path
    qr_sheet: Path
    database_url: str
    interviews: int
    mistakes: int
    summaries: list = field(default_factory=list)
    sandbox_dir: Path = Path()
    """The sandbox Central's data: `consult sandbox --data-dir` serves it again after the demo."""
    central_user: str = ""
    reports: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


def _build(forms_dir: Path, out: Path, say: Say) -> dict[str, FormSchema]:
    sources = FormSources(forms_dir)
    reports = build_forms(sources.xlsforms(), sources.media_dir, out)
    problems = [str(i) for r in reports for i in r.issues if not r.ok]
    if problems:
        raise ValueError("the forms do not pass lint:\n" + "\n".join(problems))
    say(f"built {len(reports)} forms into {out}")
    return {r.compiled.schema.form_id: r.compiled.schema for r in reports if r.compiled}


def check_demo(forms_dir: Path, lang: str) -> None:
    """What would make the demo fail at its end, said before it starts."""
    from consult.findings import LANGUAGES

    if lang not in LANGUAGES:
        raise UserMistake(f"--lang must be one of {', '.join(LANGUAGES)}, not {lang!r}", USAGE)
    if not FormSources(forms_dir).xlsforms() or not (forms_dir / "teams.toml").is_file():
        raise UserMistake(f"no XLSForms and teams.toml in {forms_dir.resolve()}: run `consult demo` in the "
                          "project's folder (the one with forms/), or give --forms-dir")


def run_demo(workdir: Path, forms_dir: Path = Path("forms"), seed: int = 2004, lang: str = "vi",
             say: Say = print) -> DemoResult:
    """Everything under `workdir` (emptied first if the demo made it), so the demo can be run again and again."""
    started = time.perf_counter()
    check_demo(forms_dir, lang)
    claim(workdir, option="--workdir", empty=True)
    reports_dir = claim(workdir / "reports", option="--reports")
    build_dir = workdir / "forms"
    schemas = _build(forms_dir, build_dir, say)
    database_url = f"sqlite:///{(workdir / 'reporting.db').resolve()}"
    with SandboxServer(data_dir=(workdir / "sandbox").resolve()) as server:
        settings = CentralSettings(url=server.url, username=server.admin_email, password=server.admin_password,
                                   project=PROJECT)
        with CentralSession(settings) as central:
            project_id = resolve_project(central, PROJECT)
            deployed = deploy_forms(central, project_id, [BuiltForm.load(build_dir, f) for f in sorted(schemas)])
            say(f"deployed {len(deployed)} forms to the sandbox Central at {server.url}")
            teams = ensure_teams(central, project_id, read_teams(forms_dir / "teams.toml"))
            sheet = write_qr_codes(settings.base_url, project_id, PROJECT, teams, workdir / "teams").sheet
            say(f"{len(teams)} field teams, QR codes in {sheet.parent}")
        interviews = fieldwork(schemas, seed=seed)
        senders = {form_id: itertools.cycle([t for t in teams if form_id in t.team.forms]) for form_id in schemas}
        with collect_session() as session:
            for interview in interviews:
                team = next(senders[interview.form_id])
                submit(session, settings.base_url, project_id, team.token, interview.xml, interview.attachments,
                       device_id=f"collect:{team.app_user_id}")
        mistakes = sum(1 for i in interviews if i.mistake)
        say(f"the enumerators sent {len(interviews)} interviews ({mistakes} with a deliberate mistake)")
        summaries = _sync(settings, build_dir, database_url, reports_dir)
        photos = _attachments(settings, database_url, schemas, workdir / "attachments")
        say(f"{photos} files of the submissions (decision photos) in {workdir / 'attachments'}")
    result = DemoResult(build_dir, sheet, database_url, len(interviews), mistakes, summaries,
                        workdir / "sandbox", server.admin_email)
    result.reports = _findings(database_url, schemas, lang, reports_dir, workdir / "attachments")
    result.reports["data docs"] = reports_dir / "validation" / "index.html"
    result.reports |= _analysts_data(database_url, build_dir, workdir / "exports")
    result.seconds = time.perf_counter() - started
    return result


def _sync(settings: CentralSettings, build_dir: Path, database_url: str, reports_dir: Path) -> list:
    """The sync as `consult sync` runs it (the flow on a configured Prefect API, else the same steps in this
    process), given the sandbox's credentials the way production gets them: the environment (restored
    afterwards, so a caller's own configuration is left as it was)."""
    central = {"CONSULT_CENTRAL_URL": settings.url, "CONSULT_CENTRAL_USER": settings.username,
               "CONSULT_CENTRAL_PASSWORD": settings.password.get_secret_value(),
               "CONSULT_CENTRAL_PROJECT": settings.project}
    before = {key: os.environ.get(key) for key in central}
    os.environ.update(central)
    try:
        from consult.sync import start_sync

        return start_sync(build_dir=str(build_dir), database=database_url, write_back=True,
                          reports_dir=str(reports_dir))
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _findings(database_url: str, schemas: dict[str, FormSchema], lang: str, out: Path,
              attachments: Path) -> dict[str, Path]:
    """The report in `lang`, and the A4 PDF in both languages (MARD reads Vietnamese, the donors English),
    linking the decision photos in `attachments`."""
    from consult.findings import LANGUAGES, compute_findings
    from consult.findings.model import FileLinks
    from consult.findings.report import write_report
    from consult.warehouse.database import create_engine_for

    engine = create_engine_for(database_url)
    try:
        files = FileLinks(attachments, out)
        written = {other: write_report(compute_findings(engine, schemas, other, files=files), out, pdf=True)
                   for other in (lang, *(other for other in LANGUAGES if other != lang))}
    finally:
        engine.dispose()
    paths = written[lang]
    return {"report": paths.html, "workbook": paths.workbook, "summary": paths.markdown,
            **{f"PDF ({other})": p.pdf for other, p in written.items() if p.pdf is not None}}


def _attachments(settings: CentralSettings, database_url: str, schemas: dict[str, FormSchema], out: Path) -> int:
    """The files enumerators attached (the decision photos), downloaded once into `out/<form>/<instance>/`."""
    from consult.attachments import has_attachments, sync_attachments
    from consult.warehouse.database import create_engine_for

    engine = create_engine_for(database_url)
    try:
        with CentralSession(settings) as central:
            project_id = resolve_project(central, settings.project)
            return sum(sync_attachments(central, engine, project_id, schema, out).downloaded
                       for schema in schemas.values() if has_attachments(schema))
    finally:
        engine.dispose()


def _analysts_data(database_url: str, build_dir: Path, out: Path) -> dict[str, Path]:
    """Labelled Stata (Vietnamese) and SPSS (English) files and the bilingual codebook, as `consult export`
    and `consult codebook` write them."""
    from consult.exports import Format, export_forms, write_codebooks

    stata = export_forms(database_url, build_dir, Format.STATA, "vi", out)
    spss = export_forms(database_url, build_dir, Format.SPSS, "en", out)
    codebooks = write_codebooks(database_url, build_dir, out / "codebook")
    return {"Stata (vi)": stata[0].files[0].parent, "SPSS (en)": spss[0].files[0].parent,
            "codebook": codebooks[0].html.parent}
