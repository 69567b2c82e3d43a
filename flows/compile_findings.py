"""Prefect flow: the consultation findings from the reporting DB, as the ISG Office reads them.

compute → the HTML report and the Excel workbook → a Markdown summary as a Prefect artifact
(also written beside them). The logic is in `consult.findings`.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from consult.findings import (
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


@task(cache_policy=NO_CACHE)
def compute(database: str | None, build_dir: str, lang: Lang) -> Findings:
    engine = reporting_engine(database)
    try:
        return compute_findings(engine, load_schemas(Path(build_dir)), lang)
    finally:
        engine.dispose()


@task(cache_policy=NO_CACHE)
def render_html(findings: Findings, path: Path) -> Path:
    return write_html(findings, path)


@task(cache_policy=NO_CACHE)
def render_workbook(findings: Findings, path: Path) -> Path:
    return write_workbook(findings, path)


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
                     reports_dir: str = "reports") -> dict[str, str]:
    """`database` defaults to CONSULT_DATABASE_URL, then sqlite:///reporting.db; `lang` is vi or en.
    Returns the paths written, by kind (`html`, `workbook`, `markdown`)."""
    paths = report_paths(Path(reports_dir), lang)
    findings = compute(database, build_dir, lang)
    html = render_html(findings, paths.html)
    workbook = render_workbook(findings, paths.workbook)
    publish_summary(findings, paths.markdown, [html, workbook])
    for form in findings.unsummarised:
        print(f"Not summarised: {form.form_id}: {form.reason}")
    return {"html": str(paths.html), "workbook": str(paths.workbook), "markdown": str(paths.markdown)}


if __name__ == "__main__":
    compile_findings()
