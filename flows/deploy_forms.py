"""Prefect flow: the XLSForms in forms/ → published on ODK Central, with field teams and QR codes.

Build and lint the forms, publish what changed (drafts, media, publish), then make sure
every field team has its app user, its forms and its QR code. The logic is in
`consult.forms` and `consult.central`.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from consult.central import (
    CentralSession,
    CentralSettings,
    DeployedForm,
    built_forms,
    deploy_forms,
    ensure_teams,
    read_teams,
    resolve_project,
    write_qr_codes,
)
from consult.central.entities import read_entity_list_settings
from consult.central.teams import project_name
from consult.forms import FormSources, build_forms


@task(cache_policy=NO_CACHE)
def build(forms_dir: str, build_dir: str) -> None:
    sources = FormSources(Path(forms_dir))
    reports = build_forms(sources.xlsforms(), sources.media_dir, Path(build_dir))
    problems = [str(issue) for report in reports if not report.ok for issue in report.issues]
    if problems:
        raise ValueError("the forms do not pass lint:\n" + "\n".join(problems))


@task(cache_policy=NO_CACHE)
def publish(build_dir: str, forms_dir: str, settings: CentralSettings) -> list[DeployedForm]:
    """The built forms, entity lists' creators first, with each list's approval from forms/consult.toml."""
    lists = read_entity_list_settings(Path(forms_dir) / "consult.toml")
    with CentralSession(settings) as central:
        return deploy_forms(central, resolve_project(central, settings.project), built_forms(Path(build_dir)), lists)


@task(cache_policy=NO_CACHE)
def field_teams(teams_file: str, qr_dir: str, settings: CentralSettings) -> str:
    with CentralSession(settings) as central:
        project_id = resolve_project(central, settings.project)
        access = ensure_teams(central, project_id, read_teams(Path(teams_file)))
        name = project_name(central, project_id)
        return str(write_qr_codes(settings.base_url, project_id, name, access, Path(qr_dir)).sheet)


@flow(name="deploy-forms", log_prints=True)
def deploy_forms_flow(forms_dir: str = "forms", build_dir: str = "build/forms",
                      teams_file: str = "forms/teams.toml", qr_dir: str = "build/teams",
                      project: str | None = None, central_config: str | None = None) -> list[DeployedForm]:
    """Credentials come from the environment or the pyodk config, never from parameters."""
    settings = CentralSettings.load(Path(central_config) if central_config else None)
    if project:
        settings = settings.model_copy(update={"project": project})
    build(forms_dir, build_dir)
    deployed = publish(build_dir, forms_dir, settings)
    sheet = field_teams(teams_file, qr_dir, settings)
    create_table_artifact(key="deployed-forms", table=[
        {"form": d.form_id, "version": d.version, "action": str(d.action), "attachments": ", ".join(d.attachments)}
        for d in deployed], description=f"QR sheet for the field supervisor: {sheet}")
    return deployed


if __name__ == "__main__":
    deploy_forms_flow()
