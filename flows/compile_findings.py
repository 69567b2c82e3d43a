"""Prefect flow: the consultation findings from the reporting DB, as the ISG Office reads them.

compute → the HTML report, the Excel workbook and (with `pdf`) the A4 PDF → a Markdown summary as a
Prefect artifact (also written beside them). The logic is in `consult.findings`.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from consult.findings import (
    DEFAULT_TIMEZONE,
    Findings,
    Lang,
    compute_findings,
    load_schemas,
    markdown_summary,
    report_paths,
    reporting_engine,
    write_html,
    write_workbook,
)
from consult.findings.model import FileLinks
from consult.findings.pdf import write_pdf


@task(cache_policy=NO_CACHE)
def compute(database: str | None, build_dir: str, lang: Lang, timezone: str, files: FileLinks | None) -> Findings:
    engine = reporting_engine(database)
    try:
        return compute_findings(engine, load_schemas(Path(build_dir)), lang, timezone, files)
    finally:
        engine.dispose()


@task(cache_policy=NO_CACHE)
def render_html(findings: Findings, path: Path) -> Path:
    return write_html(findings, path)


@task(cache_policy=NO_CACHE)
def render_workbook(findings: Findings, path: Path) -> Path:
    return write_workbook(findings, path)


@task(cache_policy=NO_CACHE)
def render_pdf(html: Path) -> Path:
    return write_pdf(html, html.with_suffix(".pdf"))


@task(cache_policy=NO_CACHE)
def publish_summary(findings: Findings, path: Path, files: list[Path]) -> str:
    summary = markdown_summary(findings)
    path.write_text(summary, encoding="utf-8")
    listing = "\n".join(f"- `{file.resolve()}`" for file in files)
    artifact = create_markdown_artifact(key=f"consultation-findings-{findings.lang}",
                                        markdown=f"{summary}\n{listing}\n", description=findings.title)
    return str(artifact)


@flow(name="compile-findings", log_prints=True)
def compile_findings(database: str | None = None, build_dir: str = "build/forms", lang: Lang = "vi",
                     reports_dir: str = "reports", pdf: bool = True,
                     timezone: str = DEFAULT_TIMEZONE, attachments_dir: str | None = "attachments") -> dict[str, str]:
    """`database` defaults to CONSULT_DATABASE_URL, then sqlite:///reporting.db; `lang` is vi or en.
    Returns the paths written, by kind (`html`, `workbook`, `markdown`, `pdf`)."""
    paths = report_paths(Path(reports_dir), lang)
    files = FileLinks(Path(attachments_dir), Path(reports_dir)) if attachments_dir else None
    findings = compute(database, build_dir, lang, timezone, files)
    html = render_html(findings, paths.html)
    written = {"html": html, "workbook": render_workbook(findings, paths.workbook)}
    if pdf:
        written["pdf"] = render_pdf(html)
    publish_summary(findings, paths.markdown, list(written.values()))
    for form in findings.unsummarised:
        print(f"Not summarised: {form.form_id}: {form.reason}")
    return {kind: str(path) for kind, path in (written | {"markdown": paths.markdown}).items()}


if __name__ == "__main__":
    compile_findings()
